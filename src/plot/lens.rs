//! `lm_lens.png`: the paper's lens against the exact kernel, from `lm_lens`' first seed.
//! Left: the LBK proxy (solid) and the exact `η²‖K‖²_F` (dashed) over training, per
//! family, for DPO and SFT on `y⁺`, on log scales. Middle: per signal, the spread over its
//! updates of the Spearman correlation, across families, of the LBK and `‖K‖²_F` (a box:
//! quartiles, median, 5th to 95th percentile). Right: each family's
//! accumulated change of `log π(y | χ)` under DPO, actual and as the full, last-layer and
//! frozen kernels predict it, as horizontal bars whose family names read upright.

use std::path::Path;

use plotters::prelude::*;

use super::{
    Area, Swatch, em, family, headed, mesh, pt, quantile_box, record, role, save_png, text, tick,
    with_key,
};
use crate::error::Result;
use crate::experiments::lm_lens::{Kernel, Lens, SignalRun};
use crate::experiments::lm_world::Signal;
use crate::language::Family;

/// The kernels' colours in the right panel.
const FULL: RGBColor = RGBColor(31, 119, 180);
const LAST_LAYER: RGBColor = RGBColor(255, 127, 14);
const FROZEN: RGBColor = RGBColor(44, 160, 44);

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
    save_png(path, (1800, 1240), |root| {
        let body = headed(
            root,
            &format!(
                "How good is the paper's lens? LBK, ‖K‖² and three kernels on the tiny LM (seed {first})"
            ),
            &claims,
        )?;
        let (left, rest) = body.split_horizontally(720);
        let (middle, right) = rest.split_horizontally(460);
        let families: Vec<(Swatch, &str)> = (Family::sequences())
            .map(|f| (Swatch::Line(family(f)), f.id()))
            .chain([(Swatch::Dashed(BLACK), "η²‖K‖²_F (dashed)")])
            .collect();
        let left = with_key(&left, &families, false)?;
        let halves = left.split_evenly((2, 1));
        let (upper, lower) = (&halves[0], &halves[1]);
        for (area, signal) in [(upper, Signal::Dpo), (lower, Signal::SftChosen)] {
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
fn lbk_panel(area: &Area<'_>, run: &SignalRun) -> Result<()> {
    let eta2 = run.eta * run.eta;
    let values: Vec<f64> = (run.steps.iter())
        .flat_map(|s| [s.lbk, eta2 * s.kernel_norm_sq])
        .filter(|v| *v > 0.0 && v.is_finite())
        .collect();
    if values.is_empty() {
        // Every update's residual was zero (an underflowed DPO coefficient): no LBK.
        let text = format!("{}: no update moved the model, so no LBK", run.signal.id());
        area.draw(&Text::new(text, (20, 40), super::text(pt::PANEL)))?;
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
            text(pt::PANEL),
        )
        .margin(em(0.8))
        .x_label_area_size(em(3.2))
        .y_label_area_size(em(5.6))
        .build_cartesian_2d(1.0..last, (lo * 0.5..hi * 2.0).log_scale())?;
    mesh(&mut chart.configure_mesh())
        .x_desc("update")
        .y_desc("per family (log scale)")
        .x_label_formatter(&tick)
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()?;
    record(&chart);
    for member in Family::sequences() {
        let colour = family(member);
        let points =
            |f: &dyn Fn(&crate::experiments::lm_lens::StepLens) -> f64| -> Vec<(f64, f64)> {
                (run.steps.iter())
                    .filter(|s| s.family == member)
                    .map(|s| (s.step as f64, f(s)))
                    .filter(|p| p.1 > 0.0)
                    .collect()
            };
        chart.draw_series(LineSeries::new(points(&|s| s.lbk), colour.stroke_width(2)))?;
        chart.draw_series(DashedLineSeries::new(
            points(&|s| eta2 * s.kernel_norm_sq),
            6,
            4,
            colour.stroke_width(1),
        ))?;
    }
    Ok(())
}

/// Per signal, the spread over its updates of the Spearman correlation of LBK and
/// `‖K‖²_F` across families: the interquartile box, the median line and whiskers from
/// the 5th to the 95th percentile, in the signal's colour.
fn spearman_panel(area: &Area<'_>, runs: &[&SignalRun]) -> Result<()> {
    let n = runs.len();
    let names: Vec<&str> = runs.iter().map(|r| r.signal.id()).collect();
    let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let all: Vec<f64> = (runs.iter())
        .flat_map(|r| Lens::proxy_spearman(r).into_iter().map(|p| p.1))
        .filter(|r| r.is_finite())
        .collect();
    let pooled = match all.is_empty() {
        true => String::new(),
        false => format!(": median {:.2}", crate::stats::median(&all)),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(format!("LBK ranks as ‖K‖²{pooled}"), text(pt::PANEL))
        .margin(em(0.8))
        .x_label_area_size(em(0.6 * longest as f64 + 1.5))
        .y_label_area_size(em(4.6))
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), -1.05..1.05)?;
    mesh(&mut chart.configure_mesh())
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let k = x.round();
            match (x - k).abs() < 1e-6 && (0.0..n as f64).contains(&k) {
                true => names[k as usize].to_string(),
                false => String::new(),
            }
        })
        .x_label_style(text(pt::TEXT).transform(FontTransform::Rotate270))
        .y_desc("Spearman(LBK, ‖K‖²_F) per update")
        .y_label_formatter(&tick)
        .draw()?;
    record(&chart);
    chart.draw_series([PathElement::new(
        vec![(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
        BLACK.mix(0.5),
    )])?;
    for (k, run) in runs.iter().enumerate() {
        let values: Vec<f64> = (Lens::proxy_spearman(run).into_iter())
            .map(|p| p.1)
            .filter(|r| r.is_finite())
            .collect();
        if values.is_empty() {
            continue;
        }
        let q = [0.05, 0.25, 0.5, 0.75, 0.95].map(|p| crate::stats::quantile(&values, p));
        quantile_box(&mut chart, k as f64, q, role(run.signal.id()))?;
    }
    Ok(())
}

/// Accumulated change per family at the run's end: actual and per kernel, as bars.
fn kernel_panel(area: &Area<'_>, run: &SignalRun) -> Result<()> {
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
        (Some(Kernel::Full), "full eNTK", FULL),
        (Some(Kernel::LastLayer), "last layer", LAST_LAYER),
        (Some(Kernel::Frozen), "frozen eNTK (first update)", FROZEN),
    ];
    let entries: Vec<(Swatch, &str)> = bars.iter().map(|b| (Swatch::Bar(b.2), b.1)).collect();
    let area = with_key(area, &entries, false)?;
    let all: Vec<f64> = (families.iter())
        .flat_map(|&f| bars.iter().map(move |b| value(f, b.0)))
        .collect();
    let lo = all.iter().copied().fold(0.0, f64::min);
    let hi = all.iter().copied().fold(0.0, f64::max);
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let n = families.len() as f64;
    // Families top to bottom, bars horizontal so that their names read upright.
    let row = |i: usize| n - 1.0 - i as f64;
    let mut chart = ChartBuilder::on(&area)
        .caption(
            format!("{}: Σ Δlog π after {end} updates", run.signal.id()),
            text(pt::PANEL),
        )
        .margin(em(0.8))
        .x_label_area_size(em(3.2))
        .y_label_area_size(em(10.0))
        .build_cartesian_2d((lo - pad)..(hi + pad), -0.5..n - 0.5)?;
    mesh(&mut chart.configure_mesh())
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
        .x_desc("Δ log π(y | χ) (nats)")
        .x_label_formatter(&tick)
        .draw()?;
    record(&chart);
    let width = 0.2;
    for (b, (kernel, _, colour)) in bars.iter().enumerate() {
        let offset = (1.5 - b as f64) * width;
        chart.draw_series(families.iter().enumerate().map(|(i, &f)| {
            let y = row(i) + offset;
            Rectangle::new(
                [(0.0, y - width / 2.0), (value(f, *kernel), y + width / 2.0)],
                colour.filled(),
            )
        }))?;
    }
    Ok(())
}
