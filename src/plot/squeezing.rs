//! The squeezing figure (the paper's App. E toy, and `ldyn squeeze --plot`).

use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{
    AFTER, Area, BEFORE, NEGATIVE, POSITIVE, Swatch, em, mesh, noted_at, pt, record, save_gif,
    save_png, staircase, text, titled, with_key,
};
use crate::error::Result;
use crate::experiments::residuals::Residuals;
use crate::experiments::squeezing::SqueezingResult;
use crate::squeezing::{Role, Squeeze};

/// The gallery's squeezing figure: every case of the toy, one row each.
pub fn draw(result: &SqueezingResult, path: &Path) -> Result<()> {
    let rows: Vec<_> = result
        .cases
        .iter()
        .map(|c| (c.title.as_str(), &c.squeeze))
        .collect();
    figure(path, HEADING, &rows)
}

/// The heading of the squeezing figures.
pub const HEADING: &str = "Squeezing effect: one gradient step on a linear softmax model";

/// The residual schematic (Fig. 2): one row per objective.
pub fn residuals(data: &Residuals, path: &Path) -> Result<()> {
    // Each step is rescaled to the same largest logit move: the title says by how much.
    let titles: Vec<String> = (data.panels.iter())
        .map(|p| {
            let max = p.g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            format!("{}; max |g| {max:.3}", p.title)
        })
        .collect();
    let rows: Vec<_> = (titles.iter().zip(&data.panels))
        .map(|(t, p)| (t.as_str(), &p.squeeze))
        .collect();
    figure(
        path,
        "One step under each objective's residual g on the rejected prefix's distribution: Δz = −c·g / max|g|, every step rescaled to the same largest logit move c, so rows whose g points the same way look alike",
        &rows,
    )
}

/// The squeezing figure: one row per step, a linear panel (`π`) on the left and a
/// log panel (`log₁₀ π`) on the right; before in gray, after in blue, a triangle
/// above each pushed class (red: negative gradient, green: positive gradient) and a
/// circle on `y*`, the most likely class that was not pushed.
pub fn figure(path: &Path, heading: &str, rows: &[(&str, &Squeeze)]) -> Result<()> {
    let height = 150 + 380 * rows.len() as u32;
    let positive = (rows.iter()).any(|(_, s)| s.roles.contains(&Role::Positive));
    save_png(path, (1500, height), |root| {
        draw_rows(root, (heading, positive), rows, (None, None))
    })
}

/// The rows of [`figure`] on `root`; the log panels' lower limit is `log_floor` (in
/// `log₁₀ π`) if given, else each row's own.
/// Names for the x axis of a distribution: a class's label (`None`: its index).
pub type Names<'a> = Option<&'a dyn Fn(usize) -> String>;

fn draw_rows(
    root: &Area<'_>,
    (heading, positive): (&str, bool),
    rows: &[(&str, &Squeeze)],
    (log_floor, names): (Option<f64>, Names<'_>),
) -> Result<()> {
    // Only an animation fixes the log panels' floor across its frames.
    let body = titled(root, heading)?;
    let body = draw_key(&body, positive, log_floor.is_some())?;
    let row_areas = body.split_evenly((rows.len(), 1));
    for (row, (title, squeeze)) in row_areas.iter().zip(rows) {
        // The row's title across both panels, in the panel captions' size.
        let row = noted_at(row, title, pt::PANEL)?;
        let panels = row.split_evenly((1, 2));
        let y_star = y_star(squeeze, log_floor.is_some());
        let linear = |lp: &[f64]| lp.iter().map(|v| v.exp()).collect::<Vec<_>>();
        let (b, a) = (&squeeze.log_p_before, &squeeze.log_p_after);
        distribution_panel(
            &panels[0],
            "linear",
            "π",
            squeeze,
            (&linear(b), &linear(a), y_star),
            ((-0.05, 1.05, true), names),
        )?;
        let (before, after) = (log10(b), log10(a));
        let lo = log_floor.unwrap_or_else(|| floor_of(&[&before, &after]));
        distribution_panel(
            &panels[1],
            "log scale",
            "log₁₀ π",
            squeeze,
            (&before, &after, y_star),
            ((lo, 0.8, false), names),
        )?;
    }
    Ok(())
}

/// From how many classes a linear panel draws stems rather than a staircase.
const STEMS_FROM: usize = 200;

/// The x axis of a distribution: class `i` at `i` on `−0.5..V − 0.5`, labelled at `ticks`.
struct ClassAxis {
    range: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for ClassAxis {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn range(&self) -> std::ops::Range<f64> {
        self.range.range()
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.range.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }
}

/// The classes whose index labels a distribution's x axis: every class up to 20, else
/// every `step`-th from 0 with `step` the first of 2, 5, 10, 20, 50, … that leaves at most
/// 11 labels, so that a label never spans two classes or collides with the next.
pub fn class_ticks(classes: usize) -> Vec<usize> {
    let step = if classes <= 20 {
        1
    } else {
        (0..)
            .flat_map(|e| [2, 5, 10].map(|m| m * 10usize.pow(e)))
            .find(|&step| classes.div_ceil(step) <= 11)
            .expect("some step leaves at most 11 labels")
    };
    (0..classes).step_by(step).collect()
}

/// The class a panel circles as `y*`, the most likely class that is not pushed: in the
/// distribution before the step for one step (the theory's `y*`), and in the drawn one,
/// `log_p_after`, for an animation frame, whose `roles` mark the class the next step
/// pushes.
pub fn y_star(squeeze: &Squeeze, animated: bool) -> usize {
    if !animated {
        return squeeze.summary().y_star;
    }
    let lp = &squeeze.log_p_after;
    (0..lp.len())
        .filter(|&i| squeeze.roles[i] == Role::Other)
        .max_by(|&a, &b| lp[a].total_cmp(&lp[b]))
        .unwrap_or(0)
}

fn log10(lp: &[f64]) -> Vec<f64> {
    lp.iter().map(|v| v / std::f64::consts::LN_10).collect()
}

/// A round lower limit below every finite value of `series`.
fn floor_of(series: &[&[f64]]) -> f64 {
    let lo = series
        .iter()
        .flat_map(|s| s.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::min);
    lo.floor() - 0.5
}

/// `plots/squeezing.gif`: the repeated steps of the animation, frame by frame, each case
/// a row (linear and log), the first distribution in gray and the current one in blue.
pub fn animation(result: &SqueezingResult, path: &Path) -> Result<()> {
    let frames = result.animation.first().map_or(0, |c| c.frames.len());
    let rows: Vec<Vec<(String, Squeeze)>> = (0..frames)
        .map(|k| {
            result
                .animation
                .iter()
                .map(|c| {
                    (
                        format!("{}: step {k}/{}", c.title, frames - 1),
                        c.frames[k].clone(),
                    )
                })
                .collect()
        })
        .collect();
    let heading = "Repeated negative steps: a valley squeezes π, the argmax flattens it";
    animate(path, heading, &rows, None)
}

/// An animation of squeezing rows, 1200 pixels wide: frame `k` draws `frames[k]`, the log
/// panels sharing one lower limit across frames; the x axis names the classes by `names`.
pub fn animate(
    path: &Path,
    heading: &str,
    frames: &[Vec<(String, Squeeze)>],
    names: Names<'_>,
) -> Result<()> {
    let floor = floor_of(
        &frames
            .iter()
            .flatten()
            .map(|(_, s)| log10(&s.log_p_after))
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice)
            .collect::<Vec<_>>(),
    );
    let positive = frames
        .iter()
        .flatten()
        .any(|(_, s)| s.roles.contains(&Role::Positive));
    let height = 150 + 380 * frames.first().map_or(0, Vec::len) as u32;
    save_gif(
        path,
        (1200, height),
        frames.len(),
        ANIMATION_DELAY_MS,
        |k, root| {
            let rows: Vec<(&str, &Squeeze)> =
                frames[k].iter().map(|(t, s)| (t.as_str(), s)).collect();
            draw_rows(root, (heading, positive), &rows, (Some(floor), names))
        },
    )
}

/// How long each frame of an animation shows, in milliseconds.
const ANIMATION_DELAY_MS: u32 = 250;

fn distribution_panel(
    area: &Area<'_>,
    title: &str,
    y_label: &str,
    squeeze: &Squeeze,
    (before, after, y_star): (&[f64], &[f64], usize),
    ((y_lo, y_hi, linear), names): ((f64, f64, bool), Names<'_>),
) -> Result<()> {
    let v = before.len() as f64;
    let ticks = if names.is_some() {
        (0..before.len()).collect()
    } else {
        class_ticks(before.len())
    };
    let x = ClassAxis {
        range: (-0.5..v - 0.5).into(),
        ticks: ticks.into_iter().map(|i| i as f64).collect(),
    };
    let star = names.map_or(y_star.to_string(), |name| name(y_star));
    let caption = format!("{title} (○ y* = {star})");
    let mut chart = ChartBuilder::on(area)
        .caption(caption, text(pt::PANEL))
        .margin(em(0.6))
        .x_label_area_size(if names.is_some() { em(4.5) } else { em(3.0) })
        .y_label_area_size(em(4.6))
        .build_cartesian_2d(x, y_lo..y_hi)?;
    let name_of = |x: &f64| match names {
        Some(name) if (x - x.round()).abs() < 1e-6 && *x >= 0.0 => name(x.round() as usize),
        Some(_) => String::new(),
        None => format!("{x:.0}"),
    };
    let mut style = chart.configure_mesh();
    mesh(&mut style)
        .x_desc(if names.is_some() {
            "next token"
        } else {
            "class index"
        })
        .x_label_formatter(&name_of)
        .y_desc(y_label);
    if names.is_some() {
        // One label per token, turned upright so that every name fits.
        let upright = text(pt::TEXT).transform(FontTransform::Rotate90);
        style.x_label_style(upright);
    }
    style.draw()?;
    record(&chart);
    if linear && before.len() > STEMS_FROM {
        // A class is narrower than a pixel: one stem per class, so that a lone tall
        // class shows (the log panel's staircase shows them all).
        for (values, colour) in [(before, BEFORE), (after, AFTER)] {
            chart.draw_series(values.iter().enumerate().map(|(i, &p)| {
                PathElement::new(vec![(i as f64, 0.0), (i as f64, p)], colour.stroke_width(2))
            }))?;
        }
    } else {
        chart.draw_series(LineSeries::new(staircase(before), BEFORE.stroke_width(2)))?;
        chart.draw_series(LineSeries::new(staircase(after), AFTER.stroke_width(2)))?;
    }
    chart.draw_series([Circle::new(
        (y_star as f64, after[y_star]),
        em(0.45),
        AFTER.stroke_width(2),
    )])?;
    // Each pushed class's marker sits just above its column, before or after the step.
    let lift = 0.07 * (y_hi - y_lo);
    for (role, colour) in [(Role::Negative, NEGATIVE), (Role::Positive, POSITIVE)] {
        let classes = (0..squeeze.roles.len()).filter(|&i| squeeze.roles[i] == role);
        chart.draw_series(classes.map(|i| {
            let top = before[i].max(after[i]).max(y_lo);
            let y = (top + lift).min(y_hi - 0.3 * lift);
            TriangleMarker::new((i as f64, y), em(0.5), colour.filled())
        }))?;
    }
    Ok(())
}

/// The key of the squeezing figures, in `area`; without `positive`, no entry for a
/// positive gradient (the animation has none).
fn draw_key<'a>(area: &Area<'a>, positive: bool, animated: bool) -> Result<Area<'a>> {
    // An animation draws every frame against the first.
    let (before, after) = match animated {
        true => ("π at the start", "π at this step"),
        false => ("π before the step", "π after the step"),
    };
    let mut entries = vec![
        (Swatch::Line(BEFORE), before),
        (Swatch::Line(AFTER), after),
        (
            Swatch::Triangle(NEGATIVE),
            "negative gradient (pushed down)",
        ),
    ];
    if positive {
        entries.push((Swatch::Triangle(POSITIVE), "positive gradient (pulled up)"));
    }
    entries.push((Swatch::Ring(AFTER), "y* = most likely class not pushed"));
    with_key(area, &entries, true)
}
