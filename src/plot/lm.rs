//! The language-model figures: the paper's Figs. 3, 4 and 9 from one
//! [`LmRun`], and the App. C influence heatmap.

use std::path::Path;

use nalgebra::DMatrix;
use plotters::prelude::*;

use super::{
    Area, Swatch, diverging, em, family as colour, headed, heatmap, key, key_height, mesh, noted,
    pt, record, save_png, text, tick, titled, with_key,
};
use crate::error::Result;
use crate::experiments::Claim;
use crate::experiments::lm_ches::Displacement;
use crate::experiments::lm_finetune::LmRun;
use crate::experiments::lm_influence::Influence;
use crate::experiments::lm_measures::{FamilyPoint, curve};
use crate::experiments::lm_world::Signal;
use crate::language::Family;
use crate::stats::quantile;

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

/// One panel of curves per family (with their interquartile bands, if over seeds); its
/// key is drawn outside it ([`family_key`]).
fn panel(
    area: &Area<'_>,
    (caption, y_desc): (&str, &str),
    series: &[(Family, Vec<Band>)],
    from_zero: bool,
) -> Result<()> {
    let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let x_max = xs.fold(1.0f64, f64::max);
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.1.iter().flat_map(|p| [p.1, p.3]))
        .chain(from_zero.then_some(0.0))
        .collect();
    let (lo, hi) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let lo = if from_zero && lo >= 0.0 {
        0.0
    } else {
        lo - pad
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, text(pt::PANEL))
        .margin(em(0.8))
        .x_label_area_size(em(3.2))
        .y_label_area_size(em(5.2))
        .build_cartesian_2d(0.0..x_max, lo..(hi + pad))?;
    mesh(&mut chart.configure_mesh())
        .x_desc("training step")
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()?;
    record(&chart);
    for (family, points) in series {
        let c = colour(*family);
        if points.iter().any(|p| p.1 < p.3) {
            let outline = (points.iter().map(|p| (p.0, p.3)))
                .chain(points.iter().rev().map(|p| (p.0, p.1)))
                .collect::<Vec<_>>();
            chart.draw_series([Polygon::new(outline, c.mix(0.18).filled())])?;
        }
        chart.draw_series(LineSeries::new(
            points.iter().map(|p| (p.0, p.2)),
            c.stroke_width(3),
        ))?;
    }
    Ok(())
}

/// The key entries of `families`: a line of each one's colour (over its band when
/// `band`) and its name (the argmax families with what they sum).
fn family_entries(families: &[Family], band: bool) -> Vec<(Swatch, &'static str)> {
    (families.iter())
        .map(|&f| {
            let name = match f {
                Family::Argmax => "argmax: Σ_m log max π_m",
                Family::ExceptArgmax => "except_argmax: Σ_m log(1 − max π_m)",
                f => f.id(),
            };
            match band {
                true => (Swatch::Band(colour(f)), name),
                false => (Swatch::Line(colour(f)), name),
            }
        })
        .collect()
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
    let seeds: Vec<&[FamilyPoint]> = run.dpo_seeds.iter().map(Vec::as_slice).collect();
    let heading = format!(
        "Off-policy DPO from the SFT model: mean log π(y | χ) of each probe family, median and interquartile band over {} seeds",
        seeds.len()
    );
    let claims: Vec<Claim> = (run.dpo_claims().into_iter())
        .filter(|c| c.id.starts_with("dpo_"))
        .collect();
    curves(path, (&heading, &claims), &seeds)
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
    let columns: [(&str, &str, &[Family]); 3] = [
        (
            "answers to this prompt",
            "mean log π(y | χ) (nats)",
            &[
                Family::Chosen,
                Family::ChosenRephrase,
                Family::Rejected,
                Family::RejectedRephrase,
            ],
        ),
        (
            "other responses",
            "mean log π(y | χ) (nats)",
            &[
                Family::ChosenFormat,
                Family::OtherPrompt,
                Family::TestPrompt,
                Family::RandomSentence,
                Family::ShuffledChosen,
                Family::RandomTokens,
            ],
        ),
        (
            "greedy y* on the chosen prefixes",
            "summed log-probability (nats)",
            &[Family::Argmax, Family::ExceptArgmax],
        ),
    ];
    save_png(path, (1800, 760), |root| {
        let body = headed(root, heading, claims)?;
        let band = seeds.len() > 1;
        let third = body.dim_in_pixel().0 / 3;
        let strip = (columns.iter())
            .map(|c| key_height(&family_entries(c.2, band), third))
            .max()
            .unwrap_or(0);
        let (body, keys) = body.split_vertically(body.dim_in_pixel().1 - strip);
        let panels = body.split_evenly((1, 3));
        let keys = keys.split_evenly((1, 3));
        for ((area, strip), (caption, y_desc, families)) in panels.iter().zip(&keys).zip(columns) {
            panel(area, (caption, y_desc), &group(families), false)?;
            key(strip, &family_entries(families, band))?;
        }
        Ok(())
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
    save_png(path, (1800, 720), |root| {
        let body = titled(
            root,
            "Peakiness ‖A_m‖²_F = V − 2 + V‖π_m‖², axes from 0: it grows as π gets peakier in SFT, then DPO moves it family by family",
        )?;
        let families: Vec<Family> = Family::sequences().collect();
        let panels = with_key(&body, &family_entries(&families, false), false)?;
        let panels = panels.split_evenly((1, 2));
        panel(
            &panels[0],
            ("SFT: mean ‖A_m‖²_F per family", "‖A‖²_F"),
            &a_series(&run.sft),
            true,
        )?;
        panel(
            &panels[1],
            ("off-policy DPO: mean ‖A_m‖²_F per family", "‖A‖²_F"),
            &a_series(&run.dpo),
            true,
        )?;
        Ok(())
    })
}

/// The accumulated-influence heatmaps: observed families × training signals, the
/// predicted change (left) beside the actual one (right), each column of each divided by
/// the largest |predicted| of the column, on a diverging colour map centred at 0; the
/// title gives their correlation over the cells.
pub fn influence(result: &Influence, path: &Path) -> Result<()> {
    let families: Vec<Family> = Family::sequences().collect();
    let scale = |signal: Signal| {
        (result.cells.iter())
            .filter(|c| c.signal == signal)
            .map(|c| c.predicted.abs())
            .fold(1e-300, f64::max)
    };
    let matrix = |value: fn(&crate::experiments::lm_influence::Cell) -> f64| {
        DMatrix::from_fn(families.len(), Signal::HEATMAP.len(), |r, c| {
            let signal = Signal::HEATMAP[c];
            (result.cells.iter())
                .find(|x| x.signal == signal && x.family == families[r])
                .map_or(0.0, |x| value(x) / scale(signal))
        })
    };
    let (predicted, actual) = (matrix(|c| c.predicted), matrix(|c| c.actual));
    let pairs: (Vec<f64>, Vec<f64>) = result.cells.iter().map(|c| (c.predicted, c.actual)).unzip();
    let r = crate::stats::pearson(&pairs.0, &pairs.1);
    let family_ids: Vec<&str> = families.iter().map(|f| f.id()).collect();
    // Short column names, so that they fit side by side.
    let signal_ids: Vec<&str> = (Signal::HEATMAP.iter())
        .map(|s| match s {
            Signal::SftChosen => "SFT y⁺",
            Signal::SftRejected => "SFT y⁻",
            Signal::SftChosenRephrase => "SFT y⁺ reph.",
            Signal::SftRejectedRephrase => "SFT y⁻ reph.",
            Signal::SftShuffledChosen => "SFT shuffled",
            Signal::Dpo => "DPO",
        })
        .collect();
    let blank = vec![""; families.len()];
    save_png(path, (1800, 1000), |root| {
        let body = titled(
            root,
            &format!(
                "Accumulated influence, Σ over steps of the mean Δlog π(y | χ): predicted (first order) and actual, Pearson {r:.2} over the cells"
            ),
        )?;
        let body = noted(
            &body,
            "rows: observed family; columns: training signal (SFT on y⁺, y⁻, their rephrases or y⁺ shuffled, from the base model; DPO from the SFT model); both panels divided by each column's largest |predicted|",
        )?;
        let label = |v: f64| format!("{v:+.2}");
        let panels = body.split_evenly((1, 2));
        for (area, (caption, m, names)) in panels.iter().zip([
            ("predicted", &predicted, Some(&family_ids[..])),
            ("actual", &actual, Some(&blank[..])),
        ]) {
            heatmap(
                area,
                caption,
                (
                    "training signal",
                    if names.is_some() {
                        "observed family"
                    } else {
                        ""
                    },
                ),
                (names, Some(&signal_ids)),
                m,
                &|v| diverging(v),
                Some(&label),
            )?;
        }
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
    save_png(path, (1300, 900), |root| {
        let body = titled(root, &heading)?;
        let (body, strip) = body.split_vertically(body.dim_in_pixel().1 - em(2.2));
        let entries: Vec<String> = seeds.iter().map(|s| format!("seed {s}")).collect();
        let swatches: Vec<(Swatch, &str)> = (entries.iter().enumerate())
            .map(|(k, e)| {
                (
                    Swatch::Dot(SEED_COLOURS[k % SEED_COLOURS.len()]),
                    e.as_str(),
                )
            })
            .collect();
        key(&strip, &swatches)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(em(1.0))
            .x_label_area_size(em(3.2))
            .y_label_area_size(em(5.2))
            .build_cartesian_2d(xs, ys)?;
        mesh(&mut chart.configure_mesh())
            .x_desc("CHES = ⟨h⁺, h⁻⟩ − ‖h⁺‖² under the SFT model")
            .y_desc("Δ log π(y⁺ | x) over DPO (nats)")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()?;
        record(&chart);
        for (k, seed) in seeds.iter().enumerate() {
            let c = SEED_COLOURS[k % SEED_COLOURS.len()];
            chart.draw_series(
                data.pairs
                    .iter()
                    .filter(|p| p.seed == *seed && inside(p.chosen_change))
                    .map(|p| Circle::new((p.ches, p.chosen_change), em(0.4), c.filled())),
            )?;
            for p in data
                .pairs
                .iter()
                .filter(|p| p.seed == *seed && !inside(p.chosen_change))
            {
                let below = p.chosen_change < fence.0;
                let edge =
                    if below { y_lo } else { y_hi } * 0.98 + if below { y_hi } else { y_lo } * 0.02;
                chart.draw_series([TriangleMarker::new((p.ches, edge), em(0.5), c.filled())])?;
                chart.draw_series([Text::new(
                    format!("{} {:.1}", if below { "↓" } else { "↑" }, p.chosen_change),
                    (p.ches + nudge, edge),
                    text(pt::TEXT)
                        .color(&c)
                        .pos(plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Left,
                            plotters::style::text_anchor::VPos::Center,
                        )),
                )])?;
            }
        }
        Ok(())
    })
}
