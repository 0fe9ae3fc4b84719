//! `lm_lens.png`: the paper's lens against the exact kernel, from `lm_lens`' first seed.
//! Left: the LBK proxy (solid) and the exact `η²‖K‖²_F` (dashed) over training, per
//! family, for DPO and SFT on `y⁺`, on log scales. Middle: the per-update Spearman
//! correlation, across families, of the LBK and `‖K‖²_F`, per signal. Right: each family's
//! accumulated change of `log π(y | χ)` under DPO, actual and as the full, last-layer and
//! frozen kernels predict it, as horizontal bars whose family names read upright.

use std::path::Path;

use plotters::prelude::*;

use super::{FONT, header, legend, save_png, tick};
use crate::error::Result;
use crate::experiments::lm_lens::{Kernel, Lens, SignalRun};
use crate::experiments::lm_world::Signal;
use crate::language::Family;

/// Colours of the families, in [`Family::sequences`] order, and of the signals.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Draws the figure to `path`.
///
/// # Errors
/// If the figure cannot be drawn or written.
pub fn draw(data: &Lens, path: &Path) -> Result<()> {
    let first = data.runs.first().map_or(0, |r| r.seed);
    let runs: Vec<&SignalRun> = data.runs.iter().filter(|r| r.seed == first).collect();
    let of = |s: Signal| runs.iter().copied().find(|r| r.signal == s);
    let claims =
        <crate::experiments::lm_lens::LmLens as crate::experiments::Experiment>::claims(data);
    save_png(path, (1800, 1000), |root| {
        let (top, body) = root.split_vertically(50);
        header(
            &top,
            &format!(
                "How good is the paper's lens? LBK, ‖K‖² and three kernels on the tiny LM (seed {first})"
            ),
            22,
            &claims,
        )?;
        let (left, rest) = body.split_horizontally(700);
        let (middle, right) = rest.split_horizontally(500);
        let (upper, lower) = left.split_vertically(475);
        for (area, signal) in [(&upper, Signal::Dpo), (&lower, Signal::SftChosen)] {
            if let Some(run) = of(signal) {
                lbk_panel(area, run)?;
            }
        }
        spearman_panel(&middle, &runs)?;
        if let Some(run) = of(Signal::Dpo) {
            kernel_panel(&right, run)?;
        }
        Ok(())
    })
}

/// LBK (solid) and `η²‖K‖²_F` (dashed) per family over one run's updates.
fn lbk_panel(area: &super::Area<'_>, run: &SignalRun) -> Result<()> {
    let eta2 = run.eta * run.eta;
    let values: Vec<f64> = (run.steps.iter())
        .flat_map(|s| [s.lbk, eta2 * s.kernel_norm_sq])
        .filter(|v| *v > 0.0 && v.is_finite())
        .collect();
    if values.is_empty() {
        // Every update's residual was zero (an underflowed DPO coefficient): no LBK.
        let text = format!("{}: no update moved the model, so no LBK", run.signal.id());
        area.draw(&Text::new(text, (20, 40), (FONT, 17)))?;
        return Ok(());
    }
    let hi = values.iter().copied().fold(0.0, f64::max);
    // At most twelve decades below the largest value, so that the axis stays readable.
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(hi * 1e-12);
    let last = run.steps.last().map_or(1, |s| s.step) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: LBK (solid) vs η²‖K‖²_F (dashed)", run.signal.id()),
            (FONT, 17),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(1.0..last, (lo * 0.5..hi * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("update")
        .y_desc("per family (log scale)")
        .x_label_formatter(&tick)
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    for (k, family) in Family::sequences().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let points =
            |f: &dyn Fn(&crate::experiments::lm_lens::StepLens) -> f64| -> Vec<(f64, f64)> {
                (run.steps.iter())
                    .filter(|s| s.family == family)
                    .map(|s| (s.step as f64, f(s)))
                    .filter(|p| p.1 > 0.0)
                    .collect()
            };
        chart
            .draw_series(LineSeries::new(points(&|s| s.lbk), colour.stroke_width(2)))?
            .label(family.id())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(3)));
        chart.draw_series(DashedLineSeries::new(
            points(&|s| eta2 * s.kernel_norm_sq),
            6,
            4,
            colour.stroke_width(1),
        ))?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// The per-update Spearman correlation of LBK and `‖K‖²_F` across families, per signal.
fn spearman_panel(area: &super::Area<'_>, runs: &[&SignalRun]) -> Result<()> {
    let last = runs
        .iter()
        .filter_map(|r| r.steps.last())
        .map(|s| s.step)
        .max()
        .unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption("Does LBK rank the families as ‖K‖² does?", (FONT, 17))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1.0..last, -1.05..1.05)?;
    chart
        .configure_mesh()
        .x_desc("update")
        .y_desc("Spearman of LBK and ‖K‖²_F across families")
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    for (k, run) in runs.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let points: Vec<(f64, f64)> = Lens::proxy_spearman(run)
            .into_iter()
            .filter(|p| p.1.is_finite())
            .map(|(s, r)| (s as f64, r))
            .collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(run.signal.id())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(3)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)
}

/// Accumulated change per family at the run's end: actual and per kernel, as bars.
fn kernel_panel(area: &super::Area<'_>, run: &SignalRun) -> Result<()> {
    let end = run.kernels.last().map_or(0, |k| k.step);
    let families: Vec<Family> = Family::sequences().collect();
    let value = |family: Family, kernel: Option<Kernel>| -> f64 {
        (run.kernels.iter())
            .find(|k| {
                k.step == end
                    && k.family == family
                    && (kernel.is_none() || Some(k.kernel) == kernel)
            })
            .map_or(0.0, |k| {
                if kernel.is_some() {
                    k.predicted
                } else {
                    k.actual
                }
            })
    };
    let bars: [(Option<Kernel>, &str, RGBColor); 4] = [
        (None, "actual", BLACK),
        (Some(Kernel::Full), "full eNTK", PALETTE[0]),
        (Some(Kernel::LastLayer), "last layer", PALETTE[3]),
        (
            Some(Kernel::Frozen),
            "frozen eNTK (first update)",
            PALETTE[2],
        ),
    ];
    let all: Vec<f64> = (families.iter())
        .flat_map(|&f| bars.iter().map(move |b| value(f, b.0)))
        .collect();
    let lo = all.iter().copied().fold(0.0, f64::min);
    let hi = all.iter().copied().fold(0.0, f64::max);
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let n = families.len() as f64;
    // Families top to bottom, bars horizontal so that their names read upright.
    let row = |i: usize| n - 1.0 - i as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{}: accumulated Δ log π(y | χ) after {end} updates",
                run.signal.id()
            ),
            (FONT, 17),
        )
        .margin(10)
        .x_label_area_size(50)
        .y_label_area_size(140)
        .build_cartesian_2d((lo - pad)..(hi + pad), -0.5..n - 0.5)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(families.len())
        .y_label_formatter(&|y| {
            let i = (n - 1.0 - y).round();
            if (n - 1.0 - y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < families.len() {
                families[i as usize].id().to_string()
            } else {
                String::new()
            }
        })
        .label_style((FONT, 13))
        .x_desc("change of log π(y | χ) from the signal's start (nats)")
        .x_label_formatter(&tick)
        .axis_desc_style((FONT, 14))
        .draw()?;
    let width = 0.2;
    for (b, (kernel, name, colour)) in bars.iter().enumerate() {
        let colour = *colour;
        let offset = (1.5 - b as f64) * width;
        chart
            .draw_series(families.iter().enumerate().map(|(i, &f)| {
                let y = row(i) + offset;
                Rectangle::new(
                    [(0.0, y - width / 2.0), (value(f, *kernel), y + width / 2.0)],
                    colour.filled(),
                )
            }))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)
}
