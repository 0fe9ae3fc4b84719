//! `plots/lm_remedies.png`: the dashboard a TRL user watches, per remedy, and a table of
//! where each arm ends.

use std::ops::Range;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::policy::{Band, Group, band, banded, y_range};
use super::{Area, Swatch, em, headed, noted, noted_at, pt, role, save_png, text, with_key};
use crate::error::Result;
use crate::experiments::Experiment;
use crate::experiments::lm_measures::Snapshot;
use crate::experiments::lm_remedies::{End, LmRemedies, Remedies, Remedy};
use crate::stats::median;

/// How far beyond the other arms' range an arm's band may reach before it is drawn at
/// the panel's edge (and named in the caption), so that one diverging arm does not flatten
/// the rest.
const OFF_SCALE: f64 = 4.0;

/// `plots/lm_remedies.png`: `rewards/chosen` and `rewards/margins` over updates, median
/// and interquartile band over seeds per arm, above the end state of each arm.
pub fn draw(data: &Remedies, path: &Path) -> Result<()> {
    let runs = &data.comparison;
    let claims = LmRemedies::claims(data);
    let arms = runs.drawn();
    let groups: Vec<Group<'_>> = (arms.iter())
        .map(|&arm| Group {
            name: arm.id(),
            runs: runs.of(arm).map(|r| r.points.as_slice()).collect(),
        })
        .collect();
    let names: Vec<String> = arms.iter().map(|a| a.name(&data.config)).collect();
    let entries: Vec<(Swatch, &str)> = (arms.iter().zip(&names))
        .map(|(a, n)| (Swatch::Band(role(a.id())), n.as_str()))
        .collect();
    save_png(path, (1800, 1700), |root| {
        let body = headed(root, &runs.heading(), &claims)?;
        let body = with_key(&body, &entries, true)?;
        let height = body.dim_in_pixel().1;
        let rows = arms.len() as u32 + TABLE_LINES;
        let (curves, table) = body.split_vertically(height - em(2.0) * rows);
        let panels = curves.split_evenly((1, 2));
        let reward = |m: fn(&Snapshot) -> f64| {
            (groups.iter())
                .map(|g| (role(g.name), band(g, &m)))
                .collect::<Vec<_>>()
        };
        dashboard_panel(
            &panels[0],
            ("rewards/chosen", &names),
            &reward(|p| p.dashboard.rewards_chosen),
        )?;
        dashboard_panel(
            &panels[1],
            (
                "rewards/margins = rewards/chosen − rewards/rejected",
                &names,
            ),
            &reward(|p| p.dashboard.margins()),
        )?;
        end_table(&table, data, &arms)
    })
}

/// A dashboard panel (β = the world's for every arm, the mean over the training pairs),
/// with the arms that reach [`OFF_SCALE`] times beyond the others drawn at its edge and
/// named in its caption.
fn dashboard_panel(
    area: &Area<'_>,
    (caption, names): (&str, &[String]),
    bands: &[(RGBColor, Band)],
) -> Result<()> {
    let (range, off) = scale(bands);
    let caption = match off.is_empty() {
        true => caption.to_string(),
        false => {
            let off: Vec<String> = (off.iter())
                .map(|&(k, v)| format!("{} off scale, to {v:.1}", names[k]))
                .collect();
            format!("{caption} ({})", off.join(", "))
        }
    };
    let y_desc = "β (log π − log π_ref), mean over the pairs";
    banded(area, (&caption, y_desc), bands, range)
}

/// The y range of `bands`, without those that reach [`OFF_SCALE`] times the others'
/// span beyond it: those are returned with their furthest median value.
fn scale(bands: &[(RGBColor, Band)]) -> (Range<f64>, Vec<(usize, f64)>) {
    let extent = |b: &Band| {
        b.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
                (l.min(p.1), h.max(p.3))
            })
    };
    let mut kept: Vec<usize> = (0..bands.len()).collect();
    let mut off = Vec::new();
    loop {
        let union = |ks: &[usize]| {
            ks.iter()
                .map(|&k| extent(&bands[k].1))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), (a, b)| {
                    (l.min(a), h.max(b))
                })
        };
        let worst = kept.iter().copied().max_by(|&a, &b| {
            let reach = |k: usize| {
                let rest: Vec<usize> = kept.iter().copied().filter(|&j| j != k).collect();
                let (lo, hi) = union(&rest);
                let (a, b) = extent(&bands[k].1);
                ((lo - a).max(b - hi)) / (hi - lo).max(1e-9)
            };
            reach(a).total_cmp(&reach(b))
        });
        let Some(k) = worst.filter(|_| kept.len() > 1) else {
            break;
        };
        let rest: Vec<usize> = kept.iter().copied().filter(|&j| j != k).collect();
        let (lo, hi) = union(&rest);
        let (a, b) = extent(&bands[k].1);
        if (lo - a).max(b - hi) <= OFF_SCALE * (hi - lo).max(1e-9) {
            break;
        }
        let furthest = (bands[k].1.iter().map(|p| p.2))
            .max_by(|x, y| {
                (x - (lo + hi) / 2.0)
                    .abs()
                    .total_cmp(&(y - (lo + hi) / 2.0).abs())
            })
            .unwrap_or(0.0);
        off.push((k, furthest));
        kept = rest;
    }
    off.sort_by_key(|o| o.0);
    let range = y_range(kept.iter().map(|&k| &bands[k].1));
    (range, off)
}

/// The end-state table's lines besides one per arm: its title, its note, its headings.
const TABLE_LINES: u32 = 5;

/// The columns of the end-state table: heading, and the cell of one arm.
type Column = (&'static str, fn(&[End], &[(End, End)]) -> String);

/// Each column's median over seeds, and the per-seed count of `y⁺` kept.
const COLUMNS: [Column; 6] = [
    ("Δ logps/chosen", |e, _| signed(e, |e| e.chosen)),
    ("rewards/margins", |e, _| plain(e, |e| e.margin)),
    ("rewards/accuracies", |e, _| plain(e, |e| e.accuracy)),
    ("Δ others", |e, _| signed(e, |e| e.others)),
    ("degenerate", |e, _| plain(e, |e| e.degenerate)),
    ("y⁺ kept", |_, pairs| {
        let k = pairs
            .iter()
            .filter(|(d, e)| e.chosen > d.chosen + 1.0)
            .count();
        format!("{k}/{} seeds", pairs.len())
    }),
];

/// The median of `measure`, with a sign.
fn signed(ends: &[End], measure: fn(&End) -> f64) -> String {
    format!(
        "{:+.2}",
        median(&ends.iter().map(measure).collect::<Vec<_>>())
    )
}

/// The median of `measure`.
fn plain(ends: &[End], measure: fn(&End) -> f64) -> String {
    format!(
        "{:.2}",
        median(&ends.iter().map(measure).collect::<Vec<_>>())
    )
}

/// The end state of each arm, the median over seeds: one row per arm, its colour and
/// name first.
fn end_table(area: &Area<'_>, data: &Remedies, arms: &[Remedy]) -> Result<()> {
    let runs = &data.comparison;
    let (width, _) = area.dim_in_pixel();
    let line = em(2.0) as i32;
    let first = em(9.0) as i32;
    let column = (width as i32 - first - em(2.0) as i32) / COLUMNS.len() as i32;
    let at = |k: usize| first + em(1.0) as i32 + column * k as i32 + column / 2;
    let bold = text(pt::TEXT)
        .style(FontStyle::Bold)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    let plain_font = text(pt::TEXT)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    let area = noted_at(
        area,
        "Where each arm ends: the median over seeds",
        pt::PANEL,
    )?;
    let area = noted(
        &area,
        "changes over DPO in nats; rewards at DPO's β for every arm; degenerate: the share of greedy answers to training prompts; y⁺ kept: the seeds where logps/chosen ends over 1 nat above DPO's",
    )?;
    let y0 = line / 2;
    for (k, (heading, _)) in COLUMNS.iter().enumerate() {
        area.draw_text(heading, &bold, (at(k), y0))?;
    }
    let left = text(pt::TEXT)
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (row, &arm) in arms.iter().enumerate() {
        let y = y0 + line * (row as i32 + 1);
        let e = em(1.0) as i32;
        area.draw(&Rectangle::new(
            [(e, y - e / 2), (3 * e, y + e / 2)],
            role(arm.id()).mix(0.8).filled(),
        ))?;
        area.draw_text(&arm.name(&data.config), &left, (4 * e, y))?;
        let pairs: Vec<(End, End)> = (runs.paired(Remedy::Dpo, arm).into_iter())
            .map(|(d, r)| (End::of(d), End::of(r)))
            .collect();
        let ends: Vec<End> = pairs.iter().map(|p| p.1).collect();
        for (k, (_, cell)) in COLUMNS.iter().enumerate() {
            let value = match (arm, k) {
                (Remedy::Dpo, 5) => "baseline".to_string(),
                _ => cell(&ends, &pairs),
            };
            area.draw_text(&value, &plain_font, (at(k), y))?;
        }
    }
    Ok(())
}
