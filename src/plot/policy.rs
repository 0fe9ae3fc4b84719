//! The on/off-policy figure: every measure of [`Policy`] per regime, as the median over
//! seeds with an interquartile band.

use std::ops::Range;
use std::path::Path;

use plotters::prelude::*;

use super::{Area, FONT, legend, save_png, tick, title};
use crate::error::Result;
use crate::experiments::lm_measures::{Prefix, Snapshot};
use crate::experiments::lm_policy::Policy;
use crate::experiments::lm_world::Regime;
use crate::language::{ANSWER_LEN, Family};
use crate::stats::quantile;

/// The colour of a regime: off-policy red, SPIN orange, online blue.
fn colour(regime: Regime) -> RGBColor {
    match regime {
        Regime::OffPolicy => RGBColor(214, 39, 40),
        Regime::Spin => RGBColor(255, 127, 14),
        Regime::Online => RGBColor(31, 119, 180),
    }
}

/// `(lower quartile, median, upper quartile)` over seeds.
type Quartiles = (f64, f64, f64);

/// `(x, lower quartile, median, upper quartile)` over seeds.
type Band = Vec<(f64, f64, f64, f64)>;

/// The band over seeds of `measure` at every tracking step of `regime`.
fn band(data: &Policy, regime: Regime, measure: &dyn Fn(&Snapshot) -> f64) -> Band {
    let runs: Vec<_> = data.of(regime).collect();
    runs[0]
        .points
        .iter()
        .enumerate()
        .map(|(k, point)| {
            let values: Vec<f64> = runs.iter().map(|r| measure(&r.points[k])).collect();
            let q = |p| quantile(&values, p);
            (point.step as f64, q(0.25), q(0.5), q(0.75))
        })
        .collect()
}

/// The y range of some bands, padded.
fn y_range<'a>(bands: impl Iterator<Item = &'a Band>) -> Range<f64> {
    let (lo, hi) = bands
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(p.1), h.max(p.3))
        });
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad)..(hi + pad)
}

/// One panel of a band per regime against the DPO update.
fn panel(area: &Area<'_>, caption: &str, y_desc: &str, bands: &[(Regime, Band)]) -> Result<()> {
    let x_max = bands
        .iter()
        .flat_map(|b| b.1.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, y_range(bands.iter().map(|b| &b.1)))?;
    chart
        .configure_mesh()
        .x_desc("DPO update")
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    for (regime, band) in bands {
        let c = colour(*regime);
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|p| (p.0, p.1))
            .chain(band.iter().rev().map(|p| (p.0, p.3)))
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(outline, c.mix(0.2).filled())))?;
        chart
            .draw_series(LineSeries::new(
                band.iter().map(|p| (p.0, p.2)),
                c.stroke_width(3),
            ))?
            .label(regime.id())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)
}

/// Per response position on the rejected prefixes: the change over DPO of `log max π`,
/// median over seeds with an interquartile bar, one marker per regime.
fn positions(area: &Area<'_>, data: &Policy) -> Result<()> {
    let changes: Vec<(Regime, Vec<Quartiles>)> = Regime::ALL
        .into_iter()
        .map(|regime| {
            let per_position = (0..ANSWER_LEN)
                .map(|m| {
                    let values: Vec<f64> = data
                        .of(regime)
                        .map(|r| r.change(|p| p.position(Prefix::Rejected, m).argmax))
                        .collect();
                    let q = |p| quantile(&values, p);
                    (q(0.25), q(0.5), q(0.75))
                })
                .collect();
            (regime, per_position)
        })
        .collect();
    let (lo, hi) = changes
        .iter()
        .flat_map(|c| c.1.iter())
        .fold((0.0f64, 0.0f64), |(l, h), p| (l.min(p.0), h.max(p.2)));
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "rejected prefixes: change of log max π per position",
            (FONT, 17),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..(ANSWER_LEN as f64 - 0.5), (lo - pad)..(hi + pad))?;
    let names = ["entity", "copula", "value (y⁻'s valley)", "END"];
    chart
        .configure_mesh()
        .x_desc("response position of y⁻")
        .y_desc("Δ mean log max π over DPO (nats)")
        .x_labels(ANSWER_LEN)
        .x_label_formatter(&|x| {
            let m = x.round();
            if (x - m).abs() < 1e-6 && (0.0..ANSWER_LEN as f64).contains(&m) {
                names[m as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&tick)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(-0.5, 0.0), (ANSWER_LEN as f64 - 0.5, 0.0)],
        BLACK.mix(0.5),
    ))?;
    for (k, (regime, per_position)) in changes.iter().enumerate() {
        let c = colour(*regime);
        let x = |m: usize| m as f64 + (k as f64 - 1.0) * 0.2;
        chart.draw_series(
            per_position
                .iter()
                .enumerate()
                .map(|(m, p)| PathElement::new(vec![(x(m), p.0), (x(m), p.2)], c.stroke_width(3))),
        )?;
        chart
            .draw_series(
                per_position
                    .iter()
                    .enumerate()
                    .map(|(m, p)| Circle::new((x(m), p.1), 6, c.filled())),
            )?
            .label(regime.id())
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, c.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)
}

/// `plots/lm_policy.png`: chosen, the other families, rejected, the argmax per position
/// on the rejected prefixes, the repeater and the entropy, per regime.
pub fn draw(data: &Policy, path: &Path) -> Result<()> {
    let bands = |measure: &dyn Fn(&Snapshot) -> f64| {
        Regime::ALL
            .into_iter()
            .map(|regime| (regime, band(data, regime, measure)))
            .collect::<Vec<_>>()
    };
    let seeds = data.runs.len() / Regime::ALL.len();
    let heading = format!(
        "Off-policy vs on-policy DPO from one SFT checkpoint, {} updates each: median and interquartile band over {seeds} seeds (from {})",
        data.updates, data.seed
    );
    let nats = "mean log π(y | χ) (nats)";
    save_png(path, (1800, 1160), |root| {
        let (top, body) = root.split_vertically(50);
        title(&top, &heading, 22)?;
        let panels = body.split_evenly((2, 3));
        panel(
            &panels[0],
            "chosen y⁺",
            nats,
            &bands(&|p| p.family(Family::Chosen)),
        )?;
        panel(
            &panels[1],
            "mean of the other families (squeezing)",
            nats,
            &bands(&Snapshot::others),
        )?;
        panel(
            &panels[2],
            "the dataset's y⁻ (on-policy regimes push their own samples)",
            nats,
            &bands(&|p| p.family(Family::Rejected)),
        )?;
        positions(&panels[3], data)?;
        panel(
            &panels[4],
            "repeater: greedy answers not in the answer grammar",
            "share of the 12 prompts",
            &bands(&|p| p.repeater.malformed_rate),
        )?;
        panel(
            &panels[5],
            "mean next-token entropy on the chosen and rejected prefixes",
            "nats",
            &bands(&|p| p.entropy),
        )
    })
}
