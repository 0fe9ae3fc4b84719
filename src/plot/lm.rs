//! The language-model figures (the paper's Figs. 3, 4, 8-extra heatmap and 9).

use std::path::Path;

use nalgebra::DMatrix;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{Area, FONT, diverging, heatmap, plot_err, save_png, tick};
use crate::error::Result;
use crate::experiments::lm::{FamilyPoint, Influence, LmRun, SIGNALS, curve};
use crate::language::FAMILIES;

/// A distinct colour per family (tab10 and two extra).
fn colour(family: &str) -> RGBColor {
    const PALETTE: [RGBColor; 12] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 0),
        RGBColor(90, 90, 90),
    ];
    PALETTE[FAMILIES.iter().position(|f| *f == family).unwrap_or(0)]
}

/// One panel of curves `(step, value)` per family, with a legend.
fn panel(
    area: &Area<'_>,
    caption: &str,
    y_desc: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<()> {
    let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let x_max = xs.fold(1.0f64, f64::max);
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .collect();
    let (lo, hi) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(plot_err)?;
    for (family, points) in series {
        let c = colour(family);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(3)))
            .map_err(plot_err)?
            .label(*family)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(plot_err)
}

fn title(area: &Area<'_>, text: &str) -> Result<()> {
    area.titled(text, (FONT, 24).into_font().style(FontStyle::Bold))
        .map_err(plot_err)?;
    Ok(())
}

/// Figs. 3 and 4: three panels of family curves.
pub fn curves(path: &Path, heading: &str, points: &[FamilyPoint]) -> Result<()> {
    let group = |families: &[&'static str]| {
        families
            .iter()
            .map(|&f| (f, curve(points, f)))
            .collect::<Vec<_>>()
    };
    save_png(path, (1800, 620), |root| {
        let (top, body) = root.split_vertically(50);
        title(&top, heading)?;
        let panels = body.split_evenly((1, 3));
        panel(
            &panels[0],
            "answers to this prompt",
            "mean log π(y | χ) (nats)",
            &group(&["chosen", "chosen_rephrase", "rejected", "rejected_rephrase"]),
        )?;
        panel(
            &panels[1],
            "other responses",
            "mean log π(y | χ) (nats)",
            &group(&[
                "chosen_format",
                "other_prompt",
                "test_prompt",
                "random_sentence",
                "shuffled_chosen",
                "random_tokens",
            ]),
        )?;
        panel(
            &panels[2],
            "greedy y* on the chosen prefixes",
            "Σ_m log max π_m  /  Σ_m log(1 − max π_m)",
            &group(&["argmax", "except_argmax"]),
        )
    })
}

/// Fig. 9: peakiness ‖A‖²_F during SFT, and argmax vs except_argmax in SFT and DPO.
pub fn peakiness(path: &Path, run: &LmRun) -> Result<()> {
    let a_series: Vec<(&str, Vec<(f64, f64)>)> = FAMILIES
        .iter()
        .filter(|f| !f.contains("argmax"))
        .map(|&f| {
            (
                f,
                run.sft
                    .iter()
                    .filter(|p| p.family == f)
                    .map(|p| (p.step as f64, p.a_fro_sq))
                    .collect(),
            )
        })
        .collect();
    let arg = |points: &[FamilyPoint]| {
        ["argmax", "except_argmax"]
            .iter()
            .map(|&f| (f, curve(points, f)))
            .collect::<Vec<_>>()
    };
    save_png(path, (1800, 620), |root| {
        let (top, body) = root.split_vertically(50);
        title(
            &top,
            "Peakiness: the model grows more confident (SFT), and DPO squeezes mass into the argmax",
        )?;
        let panels = body.split_evenly((1, 3));
        panel(
            &panels[0],
            "SFT: mean ‖A_m‖²_F = V − 2 + V‖π_m‖² per family",
            "‖A‖²_F",
            &a_series,
        )?;
        panel(
            &panels[1],
            "SFT: argmax vs except_argmax",
            "nats",
            &arg(&run.sft),
        )?;
        panel(
            &panels[2],
            "DPO: argmax vs except_argmax",
            "nats",
            &arg(&run.dpo),
        )
    })
}

/// The accumulated-influence heatmap: observed families × training signals, each column
/// normalised by its largest magnitude, on a diverging colour map centred at 0.
pub fn influence(path: &Path, result: &Influence) -> Result<()> {
    let families: Vec<&str> = FAMILIES
        .iter()
        .copied()
        .filter(|f| !f.contains("argmax"))
        .collect();
    let normalised = result.normalised();
    let m = DMatrix::from_fn(families.len(), SIGNALS.len(), |r, c| {
        normalised
            .iter()
            .find(|x| x.0 == SIGNALS[c] && x.1 == families[r])
            .map_or(0.0, |x| x.2)
    });
    save_png(path, (1300, 900), |root| {
        let (top, body) = root.split_vertically(80);
        title(
            &top,
            "Accumulated influence: Σ over steps of the predicted mean Δlog π(y | χ)",
        )?;
        top.draw_text(
            "rows: observed family on the training prompts; columns: training signal (SFT from the base model, DPO from the SFT model); each column divided by its largest |value|",
            &(FONT, 14).into_font().color(&BLACK),
            (10, 55),
        )
        .map_err(plot_err)?;
        let label = |v: f64| format!("{v:+.2}");
        heatmap(
            &body,
            "",
            ("training signal", "observed family"),
            (Some(&families), Some(&SIGNALS)),
            &m,
            &|v| diverging(v),
            Some(&label),
        )?;
        Ok(())
    })
}
