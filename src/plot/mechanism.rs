//! The mechanism row of a comparison's figure (`lm_policy`, `lm_losses`): what made the
//! other families fall, split by DPO's two terms; squeezing at `y⁻`'s own positions, by
//! what the argmax is there; and where `y⁻` sat under the model when it was pushed. Every
//! panel draws a table the comparison writes (`NAME_attribution.csv`,
//! `NAME_squeezing.csv`, `NAME_negatives.csv`).

use plotters::prelude::*;

use super::{
    Area, Chart, Swatch, em, key, key_height, mesh, pt, quantile_box, record, role, text, tick,
};
use crate::error::Result;
use crate::experiments::comparison::{Comparison, END_POSITION, Label, others_split};
use crate::experiments::lm_measures::{ColumnChange, DpoRun, Group, Source, Split};
use crate::stats::{median, quantile};
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The chosen term's colour (a pull), the rejected term's (a push), and the actual change's.
const CHOSEN: RGBColor = RGBColor(44, 160, 44);
const REJECTED: RGBColor = RGBColor(214, 39, 40);
/// The anchor's colour, stacked on the chosen term's bar.
const ANCHOR: RGBColor = RGBColor(0, 139, 139);
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
                anchor_term: of(|s| s.anchor_term),
            };
            (label.id(), split)
        })
        .collect()
}

/// A chart of one category per name along x (the names written upwards with
/// `upright`), `y` on the y axis, with a zero line.
fn categories<'a>(
    area: &Area<'a>,
    (caption, y_desc): (&str, &str),
    (names, upright): (&[&str], bool),
    y: std::ops::Range<f64>,
) -> Result<Chart<'a>> {
    let n = names.len();
    let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let below = if upright {
        em(0.6 * longest as f64 + 1.5)
    } else {
        em(2.2)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, text(pt::PANEL))
        .margin(em(0.8))
        .x_label_area_size(below)
        .y_label_area_size(em(5.2))
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), y)?;
    let x_style = match upright {
        true => text(pt::TEXT).transform(FontTransform::Rotate270),
        false => text(pt::TEXT),
    };
    mesh(&mut chart.configure_mesh())
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
        .x_label_style(x_style)
        .draw()?;
    record(&chart);
    chart.draw_series(LineSeries::new(
        [(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
        BLACK.mix(0.5),
    ))?;
    Ok(chart)
}

/// Bars per label: the chosen and the rejected term side by side, the step's first-order
/// prediction as a black bar across both, and the actual change as a black triangle.
fn term_bars(
    (area, strip): (&Area<'_>, &Area<'_>),
    (caption, y_desc): (&str, &str),
    rows: &[(&str, Split)],
) -> Result<()> {
    let values = rows.iter().flat_map(|(_, s)| {
        let stacked = s.chosen_term + s.anchor_term;
        [
            0.0,
            s.chosen_term,
            stacked,
            s.rejected_term,
            s.predicted,
            s.actual,
        ]
    });
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    let pad = ((hi - lo) * 0.1).max(1e-3);
    let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    key(strip, &term_key(has_anchor(rows)))?;
    let y = (lo - pad)..(hi + pad);
    let mut chart = categories(area, (caption, y_desc), (&names, false), y)?;
    let (w, gap) = (0.3, 0.02);
    let bar = |x0: f64, x1: f64, y: f64, c: RGBColor| {
        Rectangle::new([(x0, 0.0), (x1, y)], c.mix(0.8).filled())
    };
    let at = |k: usize| k as f64;
    chart.draw_series(
        (rows.iter().enumerate())
            .map(|(k, (_, s))| bar(at(k) - w, at(k) - gap, s.chosen_term, CHOSEN)),
    )?;
    chart.draw_series(
        (rows.iter().enumerate())
            .map(|(k, (_, s))| bar(at(k) + gap, at(k) + w, s.rejected_term, REJECTED)),
    )?;
    // The anchor stacked on the chosen term: together, the whole pull on y⁺.
    chart.draw_series((rows.iter().enumerate()).map(|(k, (_, s))| {
        let (x0, x1) = (at(k) - w, at(k) - gap);
        let top = s.chosen_term + s.anchor_term;
        Rectangle::new([(x0, s.chosen_term), (x1, top)], ANCHOR.mix(0.8).filled())
    }))?;
    chart.draw_series((rows.iter().enumerate()).map(|(k, (_, s))| {
        PathElement::new(
            vec![(at(k) - w, s.predicted), (at(k) + w, s.predicted)],
            BLACK.stroke_width(4),
        )
    }))?;
    chart.draw_series(
        (rows.iter().enumerate())
            .map(|(k, (_, s))| TriangleMarker::new((at(k), s.actual), em(0.55), BLACK.filled())),
    )?;
    Ok(())
}

/// The key of [`term_bars`]; with `anchor`, an entry for the anchor on `y⁺`.
fn term_key(anchor: bool) -> Vec<(Swatch, &'static str)> {
    let mut key = vec![
        (Swatch::Bar(CHOSEN), "chosen term (pull on y⁺)"),
        (Swatch::Bar(REJECTED), "rejected term (push on y⁻)"),
        (Swatch::Mark(BLACK), "first-order prediction"),
        (Swatch::Triangle(BLACK), "actual change"),
    ];
    if anchor {
        key.insert(2, (Swatch::Bar(ANCHOR), "anchor on y⁺ (stacked)"));
    }
    key
}

/// Whether any label's split has an anchor term.
fn has_anchor(rows: &[(&str, Split)]) -> bool {
    rows.iter().any(|(_, s)| s.anchor_term != 0.0)
}

/// The measures of [`squeezing`]: a name, a colour, and the measure.
const MEASURES: [(&str, RGBColor, Measure); 3] = [
    ("the current argmax", ARGMAX, |c| Some(c.argmax)),
    ("y⁺'s token", CHOSEN, |c| c.chosen),
    ("the rest of the mass", REST, |c| Some(c.rest)),
];

/// The key of [`squeezing`].
fn squeezing_key() -> Vec<(Swatch, &'static str)> {
    (MEASURES.iter())
        .map(|(name, colour, _)| (Swatch::Bar(*colour), *name))
        .collect()
}

/// A label's id, short enough to stand under one bar of many (`off_policy` → `off`).
fn short(id: &str) -> &str {
    match id {
        "off_policy" => "off",
        "online" => "onl",
        "baseline" => "base",
        "extend" => "ext",
        "sppo_hard" => "sppo",
        id => id,
    }
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
fn squeezing<L: Label>((area, strip): (&Area<'_>, &Area<'_>), data: &Comparison<L>) -> Result<()> {
    let classes = [
        ("third", Group::THIRD),
        ("chosen", Group::CHOSEN),
        ("peak", Group::PEAK),
    ];
    let measures = MEASURES;
    let labels = data.drawn();
    let mut names = Vec::new();
    let mut bars = Vec::new();
    for (_, group) in classes {
        for &label in &labels {
            bars.push(measures.map(|(_, _, f)| rejected_median(data, (label, group), f)));
            names.push(short(label.id()));
        }
    }
    let values = bars.iter().flatten().flatten().copied();
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    let pad = ((hi - lo) * 0.1).max(1e-4);
    let caption = (
        "squeezing at y⁻'s positions: rejected term",
        "Δ log π per update (nats)",
    );
    key(strip, &squeezing_key())?;
    // Room above for the class names.
    let y = (lo - pad)..(hi + 3.0 * pad);
    let upright = names.len() > 9;
    let mut chart = categories(area, caption, (&names, upright), y)?;
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
        let _ = name;
        chart.draw_series(rects)?;
    }
    let n = labels.len();
    for (c, (name, _)) in classes.iter().enumerate() {
        let centre = (c * n) as f64 + (n as f64 - 1.0) / 2.0;
        let style = text(pt::TEXT)
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        chart.draw_series([Text::new(name.to_string(), (centre, hi + 2.8 * pad), style)])?;
        if c > 0 {
            let x = (c * n) as f64 - 0.5;
            let line = vec![(x, lo - pad), (x, hi + 3.0 * pad)];
            chart.draw_series([PathElement::new(line, BLACK.mix(0.4))])?;
        }
    }
    Ok(())
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
        "where y⁻ sat when it was pushed",
        "log π(y⁻) at the update, all seeds (nats)",
    );
    let mut chart = categories(area, caption, (&names, false), (lo - pad)..(hi + pad))?;
    for (k, (name, q)) in rows.iter().enumerate() {
        if !q.iter().all(|v| v.is_finite()) {
            continue;
        }
        quantile_box(&mut chart, k as f64, *q, role(name))?;
    }
    Ok(())
}

/// The three panels of the mechanism row on `area`, left to right (see the module
/// docs), the middle one wider; their keys under them in one strip's height, so that
/// their x axes line up.
pub fn row<L: Label>(area: &Area<'_>, data: &Comparison<L>) -> Result<()> {
    let width = area.dim_in_pixel().0;
    let (left, rest) = area.split_horizontally(width * 3 / 10);
    let (middle, right) = rest.split_horizontally(width * 4 / 10);
    let content = |m: usize| m != END_POSITION;
    let others = median_splits(data, |r| others_split(r, content));
    let strip = key_height(&term_key(has_anchor(&others)), left.dim_in_pixel().0)
        .max(key_height(&squeezing_key(), middle.dim_in_pixel().0));
    fn split<'a>(a: &Area<'a>, strip: u32) -> (Area<'a>, Area<'a>) {
        a.split_vertically(a.dim_in_pixel().1.saturating_sub(strip))
    }
    let (left, left_key) = split(&left, strip);
    term_bars(
        (&left, &left_key),
        (
            "what lowered the others, by term",
            "Δ mean log π over DPO (nats)",
        ),
        &others,
    )?;
    let (middle, middle_key) = split(&middle, strip);
    squeezing((&middle, &middle_key), data)?;
    negatives(&split(&right, strip).0, data)
}
