//! The squeezing figure (the paper's App. E toy, and `ldyn squeeze --plot`).

use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{AFTER, Area, BEFORE, FONT, NEGATIVE, POSITIVE, save_gif, save_png, staircase, title};
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
    let rows: Vec<_> = data
        .panels
        .iter()
        .map(|p| (p.title.as_str(), &p.squeeze))
        .collect();
    figure(
        path,
        "One step under each objective's residual G, seen on the rejected prefix's distribution",
        &rows,
    )
}

/// The squeezing figure: one row per step, a linear panel (`π`) on the left and a
/// log panel (`log₁₀ π`) on the right; before in gray, after in blue, a triangle
/// above each pushed class (red: negative gradient, green: positive gradient) and a
/// circle on `y*`, the most likely class that was not pushed.
pub fn figure(path: &Path, heading: &str, rows: &[(&str, &Squeeze)]) -> Result<()> {
    let height = 90 + 300 * rows.len() as u32;
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
    let (top, body) = root.split_vertically(90);
    title(&top, heading, 30)?;
    draw_legend(&top, (20, 62), positive, log_floor.is_some())?;
    let panels = body.split_evenly((rows.len(), 2));
    for (r, (title, squeeze)) in rows.iter().enumerate() {
        let y_star = y_star(squeeze, log_floor.is_some());
        let linear = |lp: &[f64]| lp.iter().map(|v| v.exp()).collect::<Vec<_>>();
        let (b, a) = (&squeeze.log_p_before, &squeeze.log_p_after);
        distribution_panel(
            &panels[2 * r],
            &format!("{title} — linear"),
            "π",
            squeeze,
            (&linear(b), &linear(a), y_star),
            ((-0.05, 1.05, true), names),
        )?;
        let (before, after) = (log10(b), log10(a));
        let lo = log_floor.unwrap_or_else(|| floor_of(&[&before, &after]));
        distribution_panel(
            &panels[2 * r + 1],
            &format!("{title} — log scale"),
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
    let height = 90 + 300 * frames.first().map_or(0, Vec::len) as u32;
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
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(8)
        .x_label_area_size(if names.is_some() { 62 } else { 38 })
        .y_label_area_size(62)
        .build_cartesian_2d(x, y_lo..y_hi)?;
    let name_of = |x: &f64| match names {
        Some(name) if (x - x.round()).abs() < 1e-6 && *x >= 0.0 => name(x.round() as usize),
        Some(_) => String::new(),
        None => format!("{x:.0}"),
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(if names.is_some() {
        "next token"
    } else {
        "class index"
    })
    .x_label_formatter(&name_of)
    .y_desc(y_label)
    .label_style((FONT, 14))
    .axis_desc_style((FONT, 15))
    .light_line_style(WHITE.mix(0.0));
    if names.is_some() {
        // One label per token, turned upright so that every name fits.
        let upright = (FONT, 11).into_font().transform(FontTransform::Rotate90);
        mesh.x_label_style(upright);
    }
    mesh.draw()?;
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
        6,
        AFTER.stroke_width(2),
    )])?;
    let (side, anchor) = if (y_star as f64) < 0.75 * v {
        (1.0, HPos::Left)
    } else {
        (-1.0, HPos::Right)
    };
    chart.draw_series([Text::new(
        format!(
            "y* = {}",
            names.map_or(y_star.to_string(), |name| name(y_star))
        ),
        // Beside the circle, so that it stays inside the panel at the top; on the side
        // with more room, so that it stays inside at the edges.
        (y_star as f64 + side * 0.012 * v.max(50.0), after[y_star]),
        (FONT, 15)
            .into_font()
            .color(&AFTER)
            .pos(Pos::new(anchor, VPos::Center)),
    )])?;
    let marker_y = y_hi - 0.06 * (y_hi - y_lo);
    for (role, colour) in [(Role::Negative, NEGATIVE), (Role::Positive, POSITIVE)] {
        let classes = (0..squeeze.roles.len()).filter(|&i| squeeze.roles[i] == role);
        chart.draw_series(
            classes.map(|i| TriangleMarker::new((i as f64, marker_y), 9, colour.filled())),
        )?;
    }
    Ok(())
}

/// The shared legend of the squeezing figure, drawn once in the header at `(x, y)`.
/// The legend of the squeezing figures; without `positive`, no entry for a positive
/// gradient (the animation has none).
fn draw_legend(area: &Area<'_>, (x, y): (i32, i32), positive: bool, animated: bool) -> Result<()> {
    let font = (FONT, 18).into_font().color(&BLACK);
    let mut at = x;
    // An animation draws every frame against the first.
    let lines = if animated {
        [(BEFORE, "π at the start"), (AFTER, "π at this step")]
    } else {
        [(BEFORE, "π before the step"), (AFTER, "π after the step")]
    };
    for (colour, text) in lines {
        area.draw(&PathElement::new(
            vec![(at, y), (at + 34, y)],
            colour.stroke_width(4),
        ))?;
        area.draw_text(text, &font, (at + 42, y - 10))?;
        at += 240;
    }
    let pushes = [
        (NEGATIVE, "negative gradient (pushed down)"),
        (POSITIVE, "positive gradient (pulled up)"),
    ];
    for (colour, text) in &pushes[..if positive { 2 } else { 1 }] {
        area.draw(&TriangleMarker::new((at + 12, y), 9, colour.filled()))?;
        area.draw_text(text, &font, (at + 30, y - 10))?;
        at += 330;
    }
    area.draw(&Circle::new((at + 12, y), 6, AFTER.stroke_width(2)))?;
    area.draw_text(
        "y* = most likely class not pushed",
        &font,
        (at + 30, y - 10),
    )?;
    Ok(())
}
