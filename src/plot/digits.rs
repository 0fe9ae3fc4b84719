//! The four figures of the digits experiment (the paper's Figure 1 b–d and Figure 7).
//! The statistics they print (correlations, accuracy) are the rows of `digits_summary.csv`.

use std::path::Path;

use nalgebra::{DMatrix, DVector};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    AFTER, Area, BEFORE, Swatch, blues, colourbar, diverging, em, heatmap, key, log_ticks, mesh,
    noted, pt, record, save_png, text, tick, titled,
};
use crate::digits::CLASSES;
use crate::error::Result;
use crate::experiments::digits::{DigitsResult, UPDATE_CLASS};

/// Colour of predicted (first-order) changes.
const PREDICTED: RGBColor = RGBColor(255, 127, 14);

/// An 8 × 8 image in gray levels (0 = white, 1 = black).
fn digit_image(area: &Area<'_>, caption: &str, pixels: &DVector<f64>) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, text(pt::PANEL))
        .margin(em(1.2))
        .build_cartesian_2d(0.0..8.0, 0.0..8.0)?;
    chart.draw_series((0..64).map(|i| {
        let (r, c) = ((i / 8) as f64, (i % 8) as f64);
        let g = (255.0 * (1.0 - pixels[i])).round() as u8;
        Rectangle::new(
            [(c, 7.0 - r), (c + 1.0, 8.0 - r)],
            RGBColor(g, g, g).filled(),
        )
    }))?;
    Ok(())
}

/// Two bars per class (`a` left, `b` right), with their key under the chart.
fn paired_bars(
    area: &Area<'_>,
    caption: &str,
    y_desc: &str,
    (a, a_label, a_colour): (&[f64], &str, RGBColor),
    (b, b_label, b_colour): (&[f64], &str, RGBColor),
    y_range: (f64, f64),
) -> Result<()> {
    let (area, strip) = area.split_vertically(area.dim_in_pixel().1 - em(2.0));
    key(
        &strip,
        &[
            (Swatch::Bar(a_colour), a_label),
            (Swatch::Bar(b_colour), b_label),
        ],
    )?;
    let mut chart = ChartBuilder::on(&area)
        .caption(caption, text(pt::PANEL))
        .margin(em(0.6))
        .x_label_area_size(em(3.0))
        .y_label_area_size(em(4.4))
        .build_cartesian_2d(-0.5..CLASSES as f64 - 0.5, y_range.0..y_range.1)?;
    mesh(&mut chart.configure_mesh())
        .disable_x_mesh()
        .x_labels(CLASSES)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("class")
        .y_label_formatter(&tick)
        .y_desc(y_desc)
        .draw()?;
    record(&chart);
    for (values, colour, offset) in [(a, a_colour, -0.2), (b, b_colour, 0.2)] {
        chart.draw_series(values.iter().enumerate().map(|(k, &v)| {
            let x = k as f64 + offset;
            Rectangle::new([(x - 0.18, 0.0), (x + 0.18, v)], colour.filled())
        }))?;
    }
    Ok(())
}

fn column(m: &DMatrix<f64>) -> Vec<f64> {
    m.iter().copied().collect()
}

/// Figure 1(b): the update image, then one row per observed image.
pub fn one_step(result: &DigitsResult, path: &Path) -> Result<()> {
    let fig = &result.one_step;
    save_png(path, (1500, 1500), |root| {
        let body = titled(
            root,
            &format!(
                "One SGD step on a \u{201c}{UPDATE_CLASS}\u{201d} (cross-entropy, η = {}), seen on three held-out images",
                fig.eta
            ),
        )?;
        let rows = body.split_evenly((1 + fig.observed.len(), 3));
        digit_image(
            &rows[0],
            &format!("update example x_u (label {UPDATE_CLASS})"),
            &fig.update_image,
        )?;
        paired_bars(
            &rows[1],
            "π(x_u) before and after the step",
            "probability",
            (&fig.update_pi.0, "before", BEFORE),
            (&fig.update_pi.1, "after", AFTER),
            (0.0, 1.05),
        )?;
        for (k, (line, colour)) in [
            ("Rows below: x_o, its π before/after,", BLACK),
            ("and Δlog π(x_o): orange the predicted", BLACK),
            ("−η A(x_o) K(x_o, x_u) G(x_u),", PREDICTED),
            ("blue the actual change after the step.", AFTER),
        ]
        .into_iter()
        .enumerate()
        {
            let y = em(2.0 + 1.5 * k as f64) as i32;
            rows[2].draw_text(line, &text(pt::TEXT).color(&colour), (em(0.5) as i32, y))?;
        }
        let changes: Vec<f64> = fig
            .observed
            .iter()
            .flat_map(|o| {
                o.observation
                    .predicted
                    .iter()
                    .chain(o.observation.actual.iter())
                    .copied()
            })
            .collect();
        let span = changes.iter().fold(1e-6f64, |m, v| m.max(v.abs())) * 1.15;
        for (r, o) in fig.observed.iter().enumerate() {
            let cells = &rows[3 * (r + 1)..3 * (r + 2)];
            let obs = &o.observation;
            digit_image(
                &cells[0],
                &format!(
                    "{}: a {} (‖K(x_o, x_u)‖_F = {:.2})",
                    o.kind, o.label, o.k_fro
                ),
                &o.image,
            )?;
            let before: Vec<f64> = obs.log_pi.iter().map(|v| v.exp()).collect();
            let after: Vec<f64> = (&obs.log_pi + &obs.actual)
                .iter()
                .map(|v| v.exp())
                .collect();
            paired_bars(
                &cells[1],
                &format!("π(x_o), true label {}", o.label),
                "probability",
                (&before, "before", BEFORE),
                (&after, "after", AFTER),
                (0.0, 1.05),
            )?;
            paired_bars(
                &cells[2],
                "Δlog π(x_o): predicted vs actual",
                "Δ log π",
                (&column(&obs.predicted), "predicted −ηAKG", PREDICTED),
                (&column(&obs.actual), "actual", AFTER),
                (-span, span),
            )?;
        }
        Ok(())
    })
}

/// Figure 1(c): accumulated influence on images of classes 4 and 9, predicted vs actual.
pub fn accumulated(result: &DigitsResult, path: &Path) -> Result<()> {
    let observed = [4usize, 9];
    let slice = |values: &[f64], o: usize| {
        DMatrix::from_fn(CLASSES, CLASSES, |u, k| {
            values[(u * CLASSES + o) * CLASSES + k]
        })
    };
    let mats: Vec<(usize, DMatrix<f64>, DMatrix<f64>)> = observed
        .iter()
        .map(|&o| {
            (
                o,
                slice(&result.accumulated_predicted, o),
                slice(&result.accumulated_actual, o),
            )
        })
        .collect();
    let max = mats
        .iter()
        .flat_map(|(_, p, a)| p.iter().chain(a.iter()))
        .fold(1e-9f64, |m, v| m.max(v.abs()));
    let colour = move |v: f64| diverging(v / max);
    save_png(path, (1500, 1400), |root| {
        let body = titled(
            root,
            &format!(
                "Accumulated influence over {} SGD steps, by class of the update example",
                result.steps
            ),
        )?;
        let body = noted(
            &body,
            &format!(
                "Cell (u, k): summed change of log π(k) on held-out images of the observed class, from steps on images of class u; predicted vs actual: correlation {:.4} over all 1000 cells",
                result.accumulated_correlation()
            ),
        )?;
        let (grid, bar) = body.split_horizontally(1500 - em(8.0));
        let panels = grid.split_evenly((mats.len(), 2));
        // Ten columns a panel leave no room for numbers at 7 pt: the colours carry the
        // pattern, the numbers are in digits_accumulated.csv.
        for (r, (o, p, a)) in mats.iter().enumerate() {
            let axes = ("predicted class k", "update class u");
            heatmap(
                &panels[2 * r],
                &format!("images of {o}: predicted Σ −ηAKG"),
                axes,
                (None, None),
                p,
                &colour,
                None,
            )?;
            heatmap(
                &panels[2 * r + 1],
                &format!("images of {o}: actual Σ Δlog π"),
                axes,
                (None, None),
                a,
                &colour,
                None,
            )?;
        }
        colourbar(&bar, (-max, max), &colour, "accumulated Δ log π")
    })
}

/// Figure 1(d): mean π per true class, early and final.
pub fn mean_pi(result: &DigitsResult, path: &Path) -> Result<()> {
    save_png(path, (1500, 860), |root| {
        let body = titled(
            root,
            "Where the probability mass goes: mean π(y | x) per true class on held-out digits",
        )?;
        let (grid, bar) = body.split_horizontally(1500 - em(8.0));
        let panels = grid.split_evenly((1, 2));
        let label = |v: f64| format!("{v:.2}");
        let axes = ("predicting class", "observing (true) class");
        heatmap(
            &panels[0],
            &format!("early (after {} steps)", result.config.early_step),
            axes,
            (None, None),
            &result.heatmap_early,
            &blues,
            Some(&label),
        )?;
        heatmap(
            &panels[1],
            &format!("final (after {} steps)", result.steps),
            axes,
            (None, None),
            &result.heatmap_final,
            &blues,
            Some(&label),
        )?;
        colourbar(&bar, (0.0, 1.0), &blues, "mean predicting probability")
    })
}

/// Figure 7: class-pair eNTK norms over training, and how their ranking relates to the
/// early checkpoint and to the final confusions.
pub fn entk(result: &DigitsResult, path: &Path) -> Result<()> {
    let pairs_top = result.top_entk_pairs(3);
    let all_pairs = result.top_entk_pairs(CLASSES * (CLASSES - 1) / 2);
    let pairs_bottom: Vec<_> = all_pairs.iter().rev().take(3).copied().collect();
    let series = |u: usize, o: usize| {
        result
            .entk
            .iter()
            .map(|(s, m)| (*s as f64, 0.5 * (m[(u, o)] + m[(o, u)])))
            .collect::<Vec<_>>()
    };
    let mean_series: Vec<(f64, f64)> = result
        .entk
        .iter()
        .map(|(s, m)| {
            (
                *s as f64,
                (m.sum() - m.trace()) / (CLASSES * (CLASSES - 1)) as f64,
            )
        })
        .collect();
    let values: Vec<f64> = result
        .entk
        .iter()
        .flat_map(|(_, m)| m.iter().copied())
        .collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    let last_step = result.entk.last().map_or(1, |t| t.0) as f64;
    let reds = [
        RGBColor(178, 24, 43),
        RGBColor(214, 96, 77),
        RGBColor(244, 165, 130),
    ];
    let greens = [
        RGBColor(27, 120, 55),
        RGBColor(90, 174, 97),
        RGBColor(166, 219, 160),
    ];
    // The pairs drawn as lines are the pairs named in the scatter, in the same colours.
    let named: Vec<(usize, usize, RGBColor, &str)> = (pairs_top.iter().zip(reds))
        .map(|(&(u, o, _), c)| (u, o, c, "most similar"))
        .chain((pairs_bottom.iter().zip(greens)).map(|(&(u, o, _), c)| (u, o, c, "least similar")))
        .collect();
    let names: Vec<String> = (named.iter())
        .map(|(u, o, _, kind)| format!("{u}&{o} ({kind})"))
        .collect();
    save_png(path, (1500, 760), |root| {
        let body = titled(
            root,
            "eNTK between classes during training: norms drift, ranking stays",
        )?;
        let (body, strip) = body.split_vertically(body.dim_in_pixel().1 - em(3.4));
        let mut entries: Vec<(Swatch, &str)> = (named.iter().zip(&names))
            .map(|((_, _, c, _), name)| (Swatch::Line(*c), name.as_str()))
            .collect();
        entries.push((Swatch::Line(BLACK), "mean over all pairs"));
        key(&strip, &entries)?;
        let panels = body.split_evenly((1, 2));
        let mut chart = ChartBuilder::on(&panels[0])
            .caption(
                "mean ‖K(x_o, x_u)‖_F per class pair (log scale)",
                text(pt::PANEL),
            )
            .margin(em(0.8))
            .x_label_area_size(em(3.2))
            .y_label_area_size(em(4.6))
            .build_cartesian_2d(
                0.0..last_step,
                (lo * 0.8..hi * 1.25)
                    .log_scale()
                    .with_key_points(log_ticks(lo * 0.8, hi * 1.25)),
            )?;
        mesh(&mut chart.configure_mesh())
            .x_desc("SGD step")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .y_desc("mean ‖K‖_F")
            .draw()?;
        record(&chart);
        for &(u, o, colour, _) in &named {
            chart.draw_series(LineSeries::new(series(u, o), colour.stroke_width(3)))?;
        }
        chart.draw_series(LineSeries::new(mean_series, BLACK.stroke_width(2)))?;
        scatter_entk_vs_confusion(&panels[1], result, &named)
    })
}

/// Each unordered class pair: final eNTK norm against the final heatmap mass the two
/// classes put on each other; the pairs of `named` (the left panel's lines) are named
/// and drawn in their colours.
fn scatter_entk_vs_confusion(
    area: &Area<'_>,
    result: &DigitsResult,
    named: &[(usize, usize, RGBColor, &str)],
) -> Result<()> {
    let k = &result.entk.last().expect("a checkpoint").1;
    let h = &result.heatmap_final;
    let points: Vec<(f64, f64, usize, usize)> = (0..CLASSES)
        .flat_map(|u| ((u + 1)..CLASSES).map(move |o| (u, o)))
        .map(|(u, o)| {
            (
                0.5 * (k[(u, o)] + k[(o, u)]),
                (0.5 * (h[(u, o)] + h[(o, u)])).max(1e-6),
                u,
                o,
            )
        })
        .collect();
    let (xl, xh) = points.iter().fold((f64::INFINITY, 0.0f64), |(l, hh), p| {
        (l.min(p.0), hh.max(p.0))
    });
    let (yl, yh) = points.iter().fold((f64::INFINITY, 0.0f64), |(l, hh), p| {
        (l.min(p.1), hh.max(p.1))
    });
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "pairs: eNTK vs confusion, Spearman {:.2}; early→final rank {:.2}",
                result.entk_heatmap_correlation(),
                result.entk_ranking_correlation()
            ),
            text(pt::PANEL),
        )
        .margin(em(0.8))
        .x_label_area_size(em(3.2))
        .y_label_area_size(em(5.6))
        .build_cartesian_2d(
            (xl * 0.8..xh * 1.25)
                .log_scale()
                .with_key_points(log_ticks(xl * 0.8, xh * 1.25)),
            (yl * 0.5..yh * 2.0)
                .log_scale()
                .with_key_points(log_ticks(yl * 0.5, yh * 2.0)),
        )?;
    mesh(&mut chart.configure_mesh())
        .x_desc("final mean ‖K‖_F of the pair")
        .x_label_formatter(&tick)
        .y_label_formatter(&|y| format!("{y:e}"))
        .y_desc("mean π the pair's classes give each other")
        .draw()?;
    record(&chart);
    chart.draw_series(
        points
            .iter()
            .map(|&(x, y, _, _)| Circle::new((x, y), em(0.3), AFTER.mix(0.6).filled())),
    )?;
    // The named pairs, right of their point, or left of it when the right is taken by a
    // label placed before (in log units: a label spans about 0.1 decades of x and 0.15
    // of y).
    let mut placed: Vec<(f64, f64)> = Vec::new();
    for &(u, o, colour, _) in named {
        let Some(&(x, y, _, _)) = points.iter().find(|p| (p.2, p.3) == (u.min(o), u.max(o))) else {
            continue;
        };
        chart.draw_series([Circle::new((x, y), em(0.4), colour.filled())])?;
        let (lx, ly) = (x.log10(), y.log10());
        let clashes = |cx: f64| {
            (placed.iter()).any(|&(px, py)| (px - cx).abs() < 0.1 && (py - ly).abs() < 0.15)
        };
        let (label, anchor, cx) = if clashes(lx + 0.05) {
            (format!("{u}&{o} "), HPos::Right, lx - 0.05)
        } else {
            (format!(" {u}&{o}"), HPos::Left, lx + 0.05)
        };
        placed.push((cx, ly));
        let style = text(pt::TEXT)
            .color(&BLACK)
            .pos(Pos::new(anchor, VPos::Center));
        chart.draw_series([Text::new(label, (x, y), style)])?;
    }
    Ok(())
}
