//! The language-model figures: the paper's Figs. 3, 4 and 9 from one
//! [`LmRun`], and the App. C influence heatmap.

use std::path::Path;

use nalgebra::DMatrix;
use plotters::prelude::*;

use super::{Area, FONT, diverging, heatmap, legend, save_png, tick, title};
use crate::error::Result;
use crate::experiments::lm_ches::Displacement;
use crate::experiments::lm_finetune::LmRun;
use crate::experiments::lm_influence::Influence;
use crate::experiments::lm_measures::{FamilyPoint, curve};
use crate::experiments::lm_world::Signal;
use crate::language::Family;

/// A distinct colour per family (tab10, then four more): one arm per family, so a new
/// family cannot be drawn without a colour.
fn colour(family: Family) -> RGBColor {
    match family {
        Family::Chosen => RGBColor(31, 119, 180),
        Family::Rejected => RGBColor(214, 39, 40),
        Family::ChosenRephrase => RGBColor(44, 160, 44),
        Family::ChosenFormat => RGBColor(148, 103, 189),
        Family::RejectedRephrase => RGBColor(255, 127, 14),
        Family::OtherPrompt => RGBColor(140, 86, 75),
        Family::TestPrompt => RGBColor(227, 119, 194),
        Family::RandomSentence => RGBColor(127, 127, 127),
        Family::ShuffledChosen => RGBColor(188, 189, 34),
        Family::RandomTokens => RGBColor(23, 190, 207),
        Family::Argmax => RGBColor(0, 0, 0),
        Family::ExceptArgmax => RGBColor(90, 90, 90),
        Family::ArgmaxRejectedPrefix => RGBColor(120, 0, 60),
        Family::ExceptArgmaxRejectedPrefix => RGBColor(200, 150, 170),
    }
}

/// One panel of curves `(step, value)` per family, with a legend.
fn panel(
    area: &Area<'_>,
    caption: &str,
    y_desc: &str,
    series: &[(Family, Vec<(f64, f64)>)],
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
        .build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    for (family, points) in series {
        let c = colour(*family);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(3)))?
            .label(family.id())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)
}

/// Fig. 3: the SFT curves of every family.
pub fn sft(run: &LmRun, path: &Path) -> Result<()> {
    let heading = "SFT: mean log π(y | χ) of each probe family on the training prompts";
    curves(path, heading, &run.sft)
}

/// Fig. 4: the DPO curves of every family.
pub fn dpo(run: &LmRun, path: &Path) -> Result<()> {
    let heading = "Off-policy DPO from the SFT model: mean log π(y | χ) of each probe family";
    curves(path, heading, &run.dpo)
}

/// Three panels of family curves.
fn curves(path: &Path, heading: &str, points: &[FamilyPoint]) -> Result<()> {
    let group = |families: &[Family]| {
        families
            .iter()
            .map(|&f| (f, curve(points, f)))
            .collect::<Vec<_>>()
    };
    save_png(path, (1800, 620), |root| {
        let (top, body) = root.split_vertically(50);
        title(&top, heading, 24)?;
        let panels = body.split_evenly((1, 3));
        panel(
            &panels[0],
            "answers to this prompt",
            "mean log π(y | χ) (nats)",
            &group(&[
                Family::Chosen,
                Family::ChosenRephrase,
                Family::Rejected,
                Family::RejectedRephrase,
            ]),
        )?;
        panel(
            &panels[1],
            "other responses",
            "mean log π(y | χ) (nats)",
            &group(&[
                Family::ChosenFormat,
                Family::OtherPrompt,
                Family::TestPrompt,
                Family::RandomSentence,
                Family::ShuffledChosen,
                Family::RandomTokens,
            ]),
        )?;
        panel(
            &panels[2],
            "greedy y* on the chosen prefixes",
            "Σ_m log max π_m  /  Σ_m log(1 − max π_m)",
            &group(&[Family::Argmax, Family::ExceptArgmax]),
        )
    })
}

/// Fig. 9: peakiness ‖A‖²_F during SFT, and argmax vs except_argmax in SFT and DPO.
pub fn peakiness(run: &LmRun, path: &Path) -> Result<()> {
    let a_series: Vec<(Family, Vec<(f64, f64)>)> = Family::sequences()
        .map(|f| {
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
        [Family::Argmax, Family::ExceptArgmax]
            .iter()
            .map(|&f| (f, curve(points, f)))
            .collect::<Vec<_>>()
    };
    save_png(path, (1800, 620), |root| {
        let (top, body) = root.split_vertically(50);
        title(
            &top,
            "Peakiness: SFT makes the model more confident; in DPO the mass off the argmax (except_argmax) falls",
            24,
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
pub fn influence(result: &Influence, path: &Path) -> Result<()> {
    let families: Vec<Family> = Family::sequences().collect();
    let normalised = result.normalised();
    let m = DMatrix::from_fn(families.len(), Signal::HEATMAP.len(), |r, c| {
        normalised
            .iter()
            .find(|x| x.0 == Signal::HEATMAP[c] && x.1 == families[r])
            .map_or(0.0, |x| x.2)
    });
    let family_ids: Vec<&str> = families.iter().map(|f| f.id()).collect();
    let signal_ids: Vec<&str> = Signal::HEATMAP.iter().map(|s| s.id()).collect();
    save_png(path, (1300, 900), |root| {
        let (top, body) = root.split_vertically(80);
        title(
            &top,
            "Accumulated influence: Σ over steps of the predicted mean Δlog π(y | χ)",
            24,
        )?;
        top.draw_text(
            "rows: observed family on the training prompts; columns: training signal (SFT from the base model, DPO from the SFT model); each column divided by its largest |value|",
            &(FONT, 14).into_font().color(&BLACK),
            (10, 55),
        )?;
        let label = |v: f64| format!("{v:+.2}");
        heatmap(
            &body,
            "",
            ("training signal", "observed family"),
            (Some(&family_ids), Some(&signal_ids)),
            &m,
            &|v| diverging(v),
            Some(&label),
        )?;
        Ok(())
    })
}

/// Likelihood displacement against CHES: one point per preference pair, coloured by seed.
pub fn ches(data: &Displacement, path: &Path) -> Result<()> {
    const SEED_COLOURS: [RGBColor; 5] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
    ];
    let range = |v: Vec<f64>| {
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        let pad = ((hi - lo) * 0.08).max(1e-3);
        (lo - pad)..(hi + pad)
    };
    let xs = range(data.pairs.iter().map(|p| p.ches).collect());
    let ys = range(data.pairs.iter().map(|p| p.chosen_change).collect());
    let mut seeds: Vec<u64> = data.pairs.iter().map(|p| p.seed).collect();
    seeds.dedup();
    let heading = format!(
        "Likelihood displacement in off-policy DPO against CHES (Razin et al.): Spearman {:.2} over {} pairs",
        Displacement::rho(&data.pairs),
        data.pairs.len()
    );
    save_png(path, (1100, 760), |root| {
        let (top, body) = root.split_vertically(50);
        title(&top, &heading, 20)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(xs, ys)?;
        chart
            .configure_mesh()
            .x_desc("CHES = ⟨h⁺, h⁻⟩ − ‖h⁺‖² under the SFT model")
            .y_desc("Δ log π(y⁺ | x) over DPO (nats)")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        for (k, seed) in seeds.iter().enumerate() {
            let c = SEED_COLOURS[k % SEED_COLOURS.len()];
            chart
                .draw_series(
                    data.pairs
                        .iter()
                        .filter(|p| p.seed == *seed)
                        .map(|p| Circle::new((p.ches, p.chosen_change), 6, c.filled())),
                )?
                .label(format!("seed {seed}"))
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}
