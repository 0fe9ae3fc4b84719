//! The mechanism row of a comparison's figure (`lm_policy`, `lm_losses`): what made the
//! other families fall, split by DPO's two terms; squeezing at `y⁻`'s own positions, by
//! what the argmax is there; and where `y⁻` sat under the model when it was pushed. Every
//! panel draws a table the comparison writes (`NAME_attribution.csv`,
//! `NAME_squeezing.csv`, `NAME_negatives.csv`).

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{Area, FONT, legend, tick};
use crate::error::Result;
use crate::experiments::comparison::{Comparison, END_POSITION, Label, others_split};
use crate::experiments::lm_measures::{ColumnChange, DpoRun, Group, Source, Split};
use crate::stats::{median, quantile};
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The chosen term's colour (a pull), the rejected term's (a push), and the actual change's.
const CHOSEN: RGBColor = RGBColor(44, 160, 44);
const REJECTED: RGBColor = RGBColor(214, 39, 40);
/// The current argmax's colour, and the rest of the mass's, in the squeezing panel.
const ARGMAX: RGBColor = RGBColor(40, 40, 40);
const REST: RGBColor = RGBColor(160, 160, 160);

/// Per label, the median over seeds of each number of a split measured on each run (the
/// statistic the claims quote).
fn median_splits<L: Label>(
    data: &Comparison<L>,
    measure: impl Fn(&DpoRun<L>) -> Split,
) -> Vec<(&'static str, Split)> {
    data.drawn()
        .into_iter()
        .map(|label| {
            let splits: Vec<Split> = data.of(label).map(&measure).collect();
            let of = |f: fn(&Split) -> f64| median(&splits.iter().map(f).collect::<Vec<_>>());
            let split = Split {
                chosen_term: of(|s| s.chosen_term),
                rejected_term: of(|s| s.rejected_term),
                predicted: of(|s| s.predicted),
                actual: of(|s| s.actual),
            };
            (label.id(), split)
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

/// Bars per label: the chosen and the rejected term side by side, the step's first-order
/// prediction as a black bar across both, and the actual change as a black triangle.
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
        .label("the step's first-order prediction")
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

/// The median over a label's seeds of the per-seed median of the rejected term's
/// `measure` over `group`'s instances (`None` without instances).
fn rejected_median<L: Label>(
    data: &Comparison<L>,
    (label, group): (L, Group),
    measure: Measure,
) -> Option<f64> {
    let per_seed: Vec<f64> = (data.of(label))
        .filter_map(|r| group.median(&r.squeezing, |p| measure(p.change(Source::RejectedTerm))))
        .collect();
    (!per_seed.is_empty()).then(|| median(&per_seed))
}

/// One measure of a column's change, where it has one.
type Measure = fn(&ColumnChange) -> Option<f64>;

/// Squeezing where the theory puts it (`NAME_squeezing.csv`): per class of `y⁻`'s own
/// positions and per label, the rejected term's change per update of the current argmax,
/// of `y⁺`'s token and of the rest of the mass, each the median over seeds of the
/// per-seed median over the update's instances.
fn squeezing<L: Label>(area: &Area<'_>, data: &Comparison<L>) -> Result<()> {
    let classes = [
        ("third (value)", Group::THIRD),
        ("chosen (value)", Group::CHOSEN),
        ("peak (copula, value)", Group::PEAK),
    ];
    let measures: [(&str, RGBColor, Measure); 3] = [
        ("the current argmax", ARGMAX, |c| Some(c.argmax)),
        ("y⁺'s token", CHOSEN, |c| c.chosen),
        ("the rest of the mass", REST, |c| Some(c.rest)),
    ];
    let labels = data.drawn();
    let mut names = Vec::new();
    let mut bars = Vec::new();
    for (_, group) in classes {
        for &label in &labels {
            bars.push(measures.map(|(_, _, f)| rejected_median(data, (label, group), f)));
            names.push(label.id());
        }
    }
    let values = bars.iter().flatten().flatten().copied();
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    let pad = ((hi - lo) * 0.1).max(1e-4);
    let caption = (
        "squeezing at y⁻'s own positions, by what the argmax is: the rejected term",
        "Δ log π per update, median over seeds (nats)",
    );
    // Room above for the class names, below for the legend.
    let y = (lo - 5.0 * pad)..(hi + 2.0 * pad);
    let mut chart = categories(area, caption, &names, y)?;
    let w = 0.27;
    for (j, (name, colour, _)) in measures.iter().enumerate() {
        let x0 = |k: usize| k as f64 - 1.5 * w + j as f64 * w;
        let rects = (bars.iter().enumerate())
            .filter_map(|(k, b)| b[j].map(|v| (k, v)))
            .map(|(k, v)| {
                Rectangle::new(
                    [(x0(k), 0.0), (x0(k) + w * 0.9, v)],
                    colour.mix(0.85).filled(),
                )
            });
        let colour = *colour;
        chart
            .draw_series(rects)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], colour.filled()));
    }
    let n = labels.len();
    for (c, (name, _)) in classes.iter().enumerate() {
        let centre = (c * n) as f64 + (n as f64 - 1.0) / 2.0;
        let style = (FONT, 14)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        chart.draw_series([Text::new(name.to_string(), (centre, hi + 1.8 * pad), style)])?;
        if c > 0 {
            let x = (c * n) as f64 - 0.5;
            let line = vec![(x, lo - 5.0 * pad), (x, hi + 2.0 * pad)];
            chart.draw_series([PathElement::new(line, BLACK.mix(0.4))])?;
        }
    }
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
    let others = median_splits(data, |r| others_split(r, content));
    term_bars(
        &areas[0],
        (
            "what lowered the 7 other families (content positions), first-order, by term",
            "Δ mean log π over DPO, median over seeds (nats)",
        ),
        &others,
    )?;
    squeezing(&areas[1], data)?;
    negatives(&areas[2], data)
}
