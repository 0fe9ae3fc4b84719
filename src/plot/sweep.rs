//! `sweep.png`: on how many seeds each claim holds, per cell of a sweep's grid. A cell
//! reads `k/n` (the claim holds on `k` of the `n` seeds whose run succeeded) and is
//! shaded by `k/n`. With two grid keys, one heatmap per claim over the two keys; otherwise
//! one heatmap of claims (rows) against cells (columns: the one key's values, or the
//! cells' names).

use std::path::Path;

use nalgebra::DMatrix;

use super::{blues, colourbar, heatmap_labelled, save_png, titled};
use crate::error::Result;
use crate::experiments::Pooled;

/// The width of the colour bar's strip, in pixels.
const BAR: u32 = 300;
/// The colour bar's height at most, in pixels: beside the first row of panels.
const BAR_HEIGHT: u32 = 520;

/// Draws `pooled` for a grid of `keys`, titled `heading`, to `path`.
///
/// # Errors
/// If the figure cannot be drawn or written.
pub fn draw(pooled: &Pooled, (keys, heading): (&[&str], &str), path: &Path) -> Result<()> {
    let rate = |c: usize, k: usize| match pooled.seeds[c] {
        0 => 0.0,
        n => pooled.holds[c][k] as f64 / n as f64,
    };
    let text = |c: usize, k: usize| format!("{}/{}", pooled.holds[c][k], pooled.seeds[c]);
    let claims: Vec<&str> = pooled.claims.iter().map(String::as_str).collect();
    let values = |cell: &str, key: usize| -> String {
        cell.split(';')
            .nth(key)
            .and_then(|a| a.split_once('=').map(|(_, v)| v.to_string()))
            .unwrap_or_default()
    };
    if keys.len() == 2 && !claims.is_empty() {
        let xs: Vec<String> = dedup(pooled.cells.iter().map(|c| values(c, 0)));
        let ys: Vec<String> = dedup(pooled.cells.iter().map(|c| values(c, 1)));
        let columns = 3.min(claims.len());
        let rows = claims.len().div_ceil(columns);
        let size = (560 * columns as u32 + BAR, 470 * rows as u32 + 70);
        return save_png(path, size, |root| {
            let root = titled(root, heading)?;
            let (panels, bar) = root.split_horizontally(size.0 - BAR);
            let (bar, _) = bar.split_vertically(BAR_HEIGHT.min(bar.dim_in_pixel().1));
            colourbar(&bar, (0.0, 1.0), &blues, "share of seeds")?;
            let areas = panels.split_evenly((rows, columns));
            for (k, (claim, area)) in claims.iter().zip(&areas).enumerate() {
                // Row r is the r-th value of the second key from the top; cells are
                // ordered with the first key slowest.
                let cell = |r: usize, c: usize| c * ys.len() + (ys.len() - 1 - r);
                let m = DMatrix::from_fn(ys.len(), xs.len(), |r, c| rate(cell(r, c), k));
                let ys_top: Vec<&str> = ys.iter().rev().map(String::as_str).collect();
                let xs: Vec<&str> = xs.iter().map(String::as_str).collect();
                heatmap_labelled(
                    area,
                    claim,
                    (keys[0], keys[1]),
                    (Some(&ys_top), Some(&xs)),
                    &m,
                    &blues,
                    Some(&|r, c| text(cell(r, c), k)),
                )?;
            }
            Ok(())
        });
    }
    let columns: Vec<String> = match keys.len() {
        1 => pooled.cells.iter().map(|c| values(c, 0)).collect(),
        _ => pooled.cells.clone(),
    };
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let rows = claims.len().max(1);
    let longest = claims.iter().map(|c| c.chars().count()).max().unwrap_or(0) as u32;
    let width = (200 * columns.len() as u32).clamp(420, 2400) + 14 * longest + 120 + BAR;
    let size = (width, 56 * rows as u32 + 230);
    save_png(path, size, |root| {
        let root = titled(root, heading)?;
        let (panel, bar) = root.split_horizontally(width - BAR);
        let (bar, _) = bar.split_vertically(BAR_HEIGHT.min(bar.dim_in_pixel().1));
        colourbar(&bar, (0.0, 1.0), &blues, "share of seeds")?;
        let m = DMatrix::from_fn(claims.len(), columns.len(), |k, c| rate(c, k));
        let x = if keys.len() == 1 { keys[0] } else { "cell" };
        heatmap_labelled(
            &panel,
            "",
            (x, "claim"),
            (Some(&claims), Some(&columns)),
            &m,
            &blues,
            Some(&|k, c| text(c, k)),
        )
    })
}

/// The distinct items of `items`, in first-seen order.
fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}
