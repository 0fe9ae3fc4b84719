//! The mechanism row of a comparison's figure (`lm_policy`, `lm_losses`): what made the
//! other families fall, split by DPO's two terms; what each term did to the SFT model's
//! argmax at `y⁻`'s valley; and where `y⁻` sat under the model when it was pushed. Every
//! panel draws a table the comparison writes (`NAME_attribution.csv`,
//! `NAME_negatives.csv`).

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{Area, FONT, legend, tick};
use crate::error::Result;
use crate::experiments::comparison::{Comparison, END_POSITION, Label, others_split};
use crate::experiments::lm_measures::{DpoRun, Prefix, Split, VALUE_POSITION};
use crate::stats::quantile;

/// The chosen term's colour (a pull), the rejected term's (a push), and the actual change's.
const CHOSEN: RGBColor = RGBColor(44, 160, 44);
const REJECTED: RGBColor = RGBColor(214, 39, 40);

/// Per label, the mean over seeds of a split measured on each run (`None` skipped).
fn mean_splits<L: Label>(
    data: &Comparison<L>,
    measure: impl Fn(&DpoRun<L>) -> Option<Split>,
) -> Vec<(&'static str, Split)> {
    data.drawn()
        .into_iter()
        .map(|label| {
            let splits: Vec<Split> = data.of(label).filter_map(&measure).collect();
            let mean = Split::mean(&splits);
            (label.id(), mean)
        })
        .collect()
}

/// A chart of one category per name along x, `y` on the y axis, with a zero line.
fn categories<'a>(
    area: &Area<'a>,
    (caption, y_desc): (&str, &str),
    names: &[&str],
    y: std::ops::Range<f64>,
) -> Result<Chart<'a>> {
    let n = names.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), y)?;
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let k = x.round();
            if (x - k).abs() < 1e-6 && (0.0..n as f64).contains(&k) {
                names[k as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .y_label_formatter(&tick)
        .x_label_style((FONT, 11))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
        BLACK.mix(0.5),
    ))?;
    Ok(chart)
}

/// A chart on a bitmap with `f64` axes.
type Chart<'a> = ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Bars per label: the chosen and the rejected term side by side, their sum (the
/// first-order prediction) as a black bar across both, and the actual change as a black
/// triangle.
fn term_bars(
    area: &Area<'_>,
    (caption, y_desc): (&str, &str),
    rows: &[(&str, Split)],
) -> Result<()> {
    let values = rows
        .iter()
        .flat_map(|(_, s)| [0.0, s.chosen_term, s.rejected_term, s.predicted, s.actual]);
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    let pad = ((hi - lo) * 0.1).max(1e-3);
    let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    // Room below the bars for the legend.
    let y = (lo - 4.0 * pad)..(hi + pad);
    let mut chart = categories(area, (caption, y_desc), &names, y)?;
    let (w, gap) = (0.3, 0.02);
    let bar = |x0: f64, x1: f64, y: f64, c: RGBColor| {
        Rectangle::new([(x0, 0.0), (x1, y)], c.mix(0.8).filled())
    };
    let at = |k: usize| k as f64;
    chart
        .draw_series(
            (rows.iter().enumerate())
                .map(|(k, (_, s))| bar(at(k) - w, at(k) - gap, s.chosen_term, CHOSEN)),
        )?
        .label("chosen term (the pull on y⁺)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], CHOSEN.filled()));
    chart
        .draw_series(
            (rows.iter().enumerate())
                .map(|(k, (_, s))| bar(at(k) + gap, at(k) + w, s.rejected_term, REJECTED)),
        )?
        .label("rejected term (the push on y⁻)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], REJECTED.filled()));
    chart
        .draw_series((rows.iter().enumerate()).map(|(k, (_, s))| {
            PathElement::new(
                vec![(at(k) - w, s.predicted), (at(k) + w, s.predicted)],
                BLACK.stroke_width(3),
            )
        }))?
        .label("their sum: the first-order prediction")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(3)));
    chart
        .draw_series(
            (rows.iter().enumerate())
                .map(|(k, (_, s))| TriangleMarker::new((at(k), s.actual), 8, BLACK.filled())),
        )?
        .label("actual change")
        .legend(|(x, y)| TriangleMarker::new((x + 8, y), 8, BLACK.filled()));
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// Per label, boxes of `log π(y⁻)` at the moment of every update over every seed: the
/// interquartile box, the median line, and whiskers from the 5th to the 95th percentile.
fn negatives<L: Label>(area: &Area<'_>, data: &Comparison<L>) -> Result<()> {
    let rows: Vec<(&str, [f64; 5])> = data
        .drawn()
        .into_iter()
        .map(|label| {
            let values: Vec<f64> = data
                .of(label)
                .flat_map(|r| r.counts.records.iter().map(|u| u.rejected_log_prob))
                .collect();
            let q = [0.05, 0.25, 0.5, 0.75, 0.95].map(|p| quantile(&values, p));
            (label.id(), q)
        })
        .collect();
    let finite = rows.iter().flat_map(|r| r.1).filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo, hi.max(lo + 1e-3))
    } else {
        (-1.0, 0.0)
    };
    let pad = (hi - lo) * 0.08;
    let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let caption = (
        "where y⁻ sat when it was pushed (all updates and seeds)",
        "log π(y⁻) under the model at the update (nats)",
    );
    let mut chart = categories(area, caption, &names, (lo - pad)..(hi + pad))?;
    for (k, (_, q)) in rows.iter().enumerate() {
        if !q.iter().all(|v| v.is_finite()) {
            continue;
        }
        let x = k as f64;
        let c = REJECTED;
        chart.draw_series([
            PathElement::new(vec![(x, q[0]), (x, q[4])], BLACK.stroke_width(2)),
            PathElement::new(
                vec![(x - 0.25, q[2]), (x + 0.25, q[2])],
                BLACK.stroke_width(3),
            ),
        ])?;
        chart.draw_series([Rectangle::new(
            [(x - 0.25, q[1]), (x + 0.25, q[3])],
            c.mix(0.5).filled(),
        )])?;
    }
    Ok(())
}

/// The three panels of the mechanism row, left to right (see the module docs).
pub fn row<L: Label>(areas: &[Area<'_>], data: &Comparison<L>) -> Result<()> {
    let content = |m: usize| m != END_POSITION;
    let others = mean_splits(data, |r| Some(others_split(r, content)));
    term_bars(
        &areas[0],
        (
            "what lowered the 7 other families (content positions): DPO's two terms",
            "Δ mean log π over DPO, mean over seeds (nats)",
        ),
        &others,
    )?;
    let valley = mean_splits(data, |r| {
        (r.attribution)
            .fixed_not_chosen(Prefix::Rejected, VALUE_POSITION)
            .map(|c| c.split)
    });
    term_bars(
        &areas[1],
        (
            "the SFT argmax at y⁻'s valley (where it is not y⁺'s token), by term",
            "Δ log π of the fixed argmax, mean over seeds (nats)",
        ),
        &valley,
    )?;
    negatives(&areas[2], data)
}
