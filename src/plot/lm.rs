//! The language-model figures: the paper's Figs. 3, 4 and 9 from one
//! [`LmRun`], and the App. C influence heatmap.

use std::path::Path;

use nalgebra::DMatrix;
use plotters::prelude::*;

use super::{Area, FONT, diverging, header, heatmap, legend, save_png, tick, title};
use crate::error::Result;
use crate::experiments::Claim;
use crate::experiments::lm_ches::Displacement;
use crate::experiments::lm_finetune::LmRun;
use crate::experiments::lm_influence::Influence;
use crate::experiments::lm_measures::{FamilyPoint, curve};
use crate::experiments::lm_world::Signal;
use crate::language::Family;
use crate::stats::quantile;

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

/// A point of a curve over seeds: `(step, first quartile, median, third quartile)`; one
/// seed's curve has all three equal.
type Band = (f64, f64, f64, f64);

/// One seed's curve `(step, value)` as [`Band`]s.
fn single(points: Vec<(f64, f64)>) -> Vec<Band> {
    points.into_iter().map(|(x, y)| (x, y, y, y)).collect()
}

/// `family`'s curve over the runs of several seeds (the same steps in each): median and
/// interquartile range at every step.
fn band(seeds: &[&[FamilyPoint]], family: Family) -> Vec<Band> {
    let curves: Vec<Vec<(f64, f64)>> = seeds.iter().map(|points| curve(points, family)).collect();
    (0..curves.first().map_or(0, Vec::len))
        .map(|k| {
            let values: Vec<f64> = curves.iter().map(|c| c[k].1).collect();
            let q = |p: f64| quantile(&values, p);
            (curves[0][k].0, q(0.25), q(0.5), q(0.75))
        })
        .collect()
}

/// One panel of curves per family (with their interquartile bands, if over seeds), with
/// a legend.
fn panel(
    area: &Area<'_>,
    caption: &str,
    y_desc: &str,
    series: &[(Family, Vec<Band>)],
) -> Result<()> {
    panel_with(area, (caption, y_desc), series, true)
}

/// [`panel`], with its legend in its lower left corner or (without `legend`) none: a
/// figure whose panels share one legend draws it once beside them ([`family_legend`]).
fn panel_with(
    area: &Area<'_>,
    (caption, y_desc): (&str, &str),
    series: &[(Family, Vec<Band>)],
    with_legend: bool,
) -> Result<()> {
    let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let x_max = xs.fold(1.0f64, f64::max);
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.1.iter().flat_map(|p| [p.1, p.3]))
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
        if points.iter().any(|p| p.1 < p.3) {
            let outline = (points.iter().map(|p| (p.0, p.3)))
                .chain(points.iter().rev().map(|p| (p.0, p.1)))
                .collect::<Vec<_>>();
            chart.draw_series([Polygon::new(outline, c.mix(0.18).filled())])?;
        }
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.2)),
                c.stroke_width(3),
            ))?
            .label(family.id())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
    }
    if with_legend {
        legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    }
    Ok(())
}

/// One legend for `families`, a line of each one's colour and its id, from the top of
/// `area`.
fn family_legend(area: &Area<'_>, families: &[Family]) -> Result<()> {
    let font = (FONT, 15).into_font().color(&BLACK);
    for (i, &family) in families.iter().enumerate() {
        let y = 70 + 26 * i as i32;
        let c = colour(family);
        area.draw(&PathElement::new(vec![(10, y), (40, y)], c.stroke_width(3)))?;
        area.draw_text(family.id(), &font, (48, y - 8))?;
    }
    Ok(())
}

/// Fig. 3: the SFT curves of every family.
pub fn sft(run: &LmRun, path: &Path) -> Result<()> {
    let seeds: Vec<&[FamilyPoint]> = run.sft_seeds.iter().map(Vec::as_slice).collect();
    let heading = format!(
        "SFT: mean log π(y | χ) of each probe family on the training prompts, median and interquartile band over {} seeds",
        seeds.len()
    );
    let claims: Vec<Claim> = (run.sft_claims().into_iter())
        .filter(|c| c.id.starts_with("sft_"))
        .collect();
    curves(path, (&heading, &claims), &seeds)
}

/// Fig. 4: the DPO curves of every family.
pub fn dpo(run: &LmRun, path: &Path) -> Result<()> {
    let heading = "Off-policy DPO from the SFT model: mean log π(y | χ) of each probe family";
    let claims: Vec<Claim> = (run.dpo_claims().into_iter())
        .filter(|c| c.id.starts_with("dpo_"))
        .collect();
    curves(path, (heading, &claims), &[&run.dpo])
}

/// Three panels of family curves over the runs of `seeds` (one or more), under `heading`
/// and the claims it draws that fail ([`header`]).
fn curves(
    path: &Path,
    (heading, claims): (&str, &[Claim]),
    seeds: &[&[FamilyPoint]],
) -> Result<()> {
    let group = |families: &[Family]| {
        families
            .iter()
            .map(|&f| (f, band(seeds, f)))
            .collect::<Vec<_>>()
    };
    save_png(path, (1800, 620), |root| {
        let (top, body) = root.split_vertically(50);
        header(&top, heading, 22, claims)?;
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
    let a_series = |points: &[FamilyPoint]| -> Vec<(Family, Vec<Band>)> {
        Family::sequences()
            .map(|f| {
                let series = (points.iter())
                    .filter(|p| p.family == f)
                    .map(|p| (p.step as f64, p.a_fro_sq))
                    .collect();
                (f, single(series))
            })
            .collect()
    };
    save_png(path, (1800, 620), |root| {
        let (top, body) = root.split_vertically(50);
        title(
            &top,
            "Peakiness: ‖A_m‖²_F = V − 2 + V‖π_m‖² grows as π gets peakier (SFT), then DPO moves it family by family",
            22,
        )?;
        let (panels, key) = body.split_horizontally(1560);
        let panels = panels.split_evenly((1, 2));
        panel_with(
            &panels[0],
            ("SFT: mean ‖A_m‖²_F per family", "‖A‖²_F"),
            &a_series(&run.sft),
            false,
        )?;
        panel_with(
            &panels[1],
            ("off-policy DPO: mean ‖A_m‖²_F per family", "‖A‖²_F"),
            &a_series(&run.dpo),
            false,
        )?;
        family_legend(&key, &Family::sequences().collect::<Vec<_>>())
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
    // The y axis spans the points within 3 interquartile ranges of the quartiles; a pair
    // beyond is drawn on the edge as a triangle with its value, so that it cannot squash
    // the others.
    let changes: Vec<f64> = data.pairs.iter().map(|p| p.chosen_change).collect();
    let (q1, q3) = (quantile(&changes, 0.25), quantile(&changes, 0.75));
    let fence = (q1 - 3.0 * (q3 - q1), q3 + 3.0 * (q3 - q1));
    let inside = |y: f64| y >= fence.0 && y <= fence.1;
    let ys = range(changes.iter().copied().filter(|&y| inside(y)).collect());
    let (y_lo, y_hi) = (ys.start, ys.end);
    let nudge = (xs.end - xs.start) * 0.012;
    let mut seeds: Vec<u64> = data.pairs.iter().map(|p| p.seed).collect();
    seeds.dedup();
    use crate::experiments::{Experiment, lm_ches::LmChes};
    let reproduced = LmChes::claims(data).iter().all(|c| c.holds);
    let heading = format!(
        "Likelihood displacement against CHES (Razin et al.): Spearman {:.2} over {} pairs, {}",
        Displacement::rho(&data.pairs),
        data.pairs.len(),
        if reproduced {
            "as predicted (below −0.3)"
        } else {
            "NOT reproduced (predicted below −0.3)"
        }
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
                        .filter(|p| p.seed == *seed && inside(p.chosen_change))
                        .map(|p| Circle::new((p.ches, p.chosen_change), 6, c.filled())),
                )?
                .label(format!("seed {seed}"))
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, c.filled()));
            for p in data
                .pairs
                .iter()
                .filter(|p| p.seed == *seed && !inside(p.chosen_change))
            {
                let below = p.chosen_change < fence.0;
                let edge =
                    if below { y_lo } else { y_hi } * 0.98 + if below { y_hi } else { y_lo } * 0.02;
                chart.draw_series([TriangleMarker::new((p.ches, edge), 8, c.filled())])?;
                chart.draw_series([Text::new(
                    format!("{} {:.1}", if below { "↓" } else { "↑" }, p.chosen_change),
                    (p.ches + nudge, edge),
                    (FONT, 14)
                        .into_font()
                        .color(&c)
                        .pos(plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Left,
                            plotters::style::text_anchor::VPos::Center,
                        )),
                )])?;
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}
