//! The figures of DPO runs compared side by side (regimes in `lm_policy`, losses in
//! `lm_losses`, arms in `lm_extend`; `lm_remedies` draws its own from these bands): every measure of a [`Snapshot`] per group of runs, as the median over
//! seeds with an interquartile band.

use std::ops::Range;
use std::path::Path;

use plotters::prelude::*;

use super::{
    Area, Swatch, em, headed, mesh, pt, record, role, save_png, text, tick, titled, with_key,
};
use crate::error::Result;
use crate::experiments::comparison::{Comparison, Label, Metric};
use crate::experiments::lm_extend::{Extend, LmExtend};
use crate::experiments::lm_losses::{LmLosses, Losses};
use crate::experiments::lm_measures::{Prefix, Snapshot};
use crate::experiments::lm_policy::LmPolicy;
use crate::experiments::lm_policy::Policy;
use crate::experiments::lm_sft_length::SftLength;
use crate::experiments::lm_world::Regime;
use crate::experiments::{Claim, Experiment};
use crate::language::{ANSWER_LEN, Family};
use crate::plot::squeezing::animate;
use crate::squeezing::{Role, Squeeze};
use crate::stats::quantile;

/// A group of runs, one per seed, drawn as one band: its name and its runs' snapshots.
pub struct Group<'a> {
    /// The legend entry.
    pub name: &'a str,
    /// Each seed's snapshots, all at the same steps.
    pub runs: Vec<&'a [Snapshot]>,
}

/// `(lower quartile, median, upper quartile)` over seeds.
type Quartiles = (f64, f64, f64);

/// `(x, lower quartile, median, upper quartile)` over seeds.
pub(super) type Band = Vec<(f64, f64, f64, f64)>;

/// The band over the seeds of `group` of `measure` at every tracking step of its
/// longest run; a run that ended short holds its last value.
pub(super) fn band(group: &Group<'_>, measure: &dyn Fn(&Snapshot) -> f64) -> Band {
    let longest = (group.runs.iter())
        .max_by_key(|r| r.len())
        .map_or(&[][..], |r| *r);
    longest
        .iter()
        .map(|point| {
            let at = |run: &[Snapshot]| {
                let last = run.iter().rev().find(|p| p.step <= point.step);
                measure(last.unwrap_or(&run[0]))
            };
            let values: Vec<f64> = group.runs.iter().map(|r| at(r)).collect();
            let q = |p| quantile(&values, p);
            (point.step as f64, q(0.25), q(0.5), q(0.75))
        })
        .collect()
}

/// The y range of some bands, padded.
pub(super) fn y_range<'a>(bands: impl Iterator<Item = &'a Band>) -> Range<f64> {
    let (lo, hi) = bands
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(p.1), h.max(p.3))
        });
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad)..(hi + pad)
}

/// One panel of a band per group against the DPO update.
fn panel(area: &Area<'_>, caption: &str, y_desc: &str, bands: &[(RGBColor, Band)]) -> Result<()> {
    let range = y_range(bands.iter().map(|b| &b.1));
    banded(area, (caption, y_desc), bands, range)
}

/// [`panel`] on the y range `range`: a band beyond it is drawn at its edge.
pub(super) fn banded(
    area: &Area<'_>,
    (caption, y_desc): (&str, &str),
    bands: &[(RGBColor, Band)],
    range: Range<f64>,
) -> Result<()> {
    let x_max = bands
        .iter()
        .flat_map(|b| b.1.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let clip = |v: f64| v.clamp(range.start, range.end);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, text(pt::PANEL))
        .margin(em(0.8))
        .x_label_area_size(em(3.2))
        .y_label_area_size(em(5.2))
        .build_cartesian_2d(0.0..x_max, range.clone())?;
    mesh(&mut chart.configure_mesh())
        .x_desc("DPO update")
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()?;
    record(&chart);
    for (c, band) in bands {
        let c = *c;
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|p| (p.0, clip(p.1)))
            .chain(band.iter().rev().map(|p| (p.0, clip(p.3))))
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(outline, c.mix(0.2).filled())))?;
        chart.draw_series(LineSeries::new(
            band.iter().map(|p| (p.0, clip(p.2))),
            c.stroke_width(3),
        ))?;
    }
    Ok(())
}

/// Per response position on the rejected prefixes: the change over DPO of `log max π`,
/// median over seeds with an interquartile bar, one marker per regime.
fn positions(area: &Area<'_>, groups: &[Group<'_>]) -> Result<()> {
    let changes: Vec<(&str, Vec<Quartiles>)> = groups
        .iter()
        .map(|group| {
            let per_position = (0..ANSWER_LEN)
                .map(|m| {
                    let at = |p: &Snapshot| p.position(Prefix::Rejected, m).argmax;
                    let values: Vec<f64> = group
                        .runs
                        .iter()
                        .map(|r| at(&r[r.len() - 1]) - at(&r[0]))
                        .collect();
                    let q = |p| quantile(&values, p);
                    (q(0.25), q(0.5), q(0.75))
                })
                .collect();
            (group.name, per_position)
        })
        .collect();
    let (lo, hi) = changes
        .iter()
        .flat_map(|c| c.1.iter())
        .fold((0.0f64, 0.0f64), |(l, h), p| (l.min(p.0), h.max(p.2)));
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Δ log max π per position, rejected prefixes",
            text(pt::PANEL),
        )
        .margin(em(0.8))
        .x_label_area_size(em(3.2))
        .y_label_area_size(em(5.2))
        .build_cartesian_2d(-0.5..(ANSWER_LEN as f64 - 0.5), (lo - pad)..(hi + pad))?;
    let names = ["entity", "copula", "value", "END"];
    mesh(&mut chart.configure_mesh())
        .x_desc("response position of y⁻")
        .y_desc("Δ log max π over DPO (nats)")
        .x_labels(ANSWER_LEN)
        .x_label_formatter(&|x| {
            let m = x.round();
            if (x - m).abs() < 1e-6 && (0.0..ANSWER_LEN as f64).contains(&m) {
                names[m as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&tick)
        .draw()?;
    record(&chart);
    chart.draw_series(LineSeries::new(
        [(-0.5, 0.0), (ANSWER_LEN as f64 - 0.5, 0.0)],
        BLACK.mix(0.5),
    ))?;
    let spread = 0.6 / changes.len() as f64;
    for (k, (name, per_position)) in changes.iter().enumerate() {
        let c = role(name);
        let x = |m: usize| m as f64 + (k as f64 - (changes.len() as f64 - 1.0) / 2.0) * spread;
        chart.draw_series(
            per_position
                .iter()
                .enumerate()
                .map(|(m, p)| PathElement::new(vec![(x(m), p.0), (x(m), p.2)], c.stroke_width(3))),
        )?;
        chart.draw_series(
            per_position
                .iter()
                .enumerate()
                .map(|(m, p)| Circle::new((x(m), p.1), em(0.45), c.filled())),
        )?;
    }
    Ok(())
}

/// `plots/lm_policy.png`: the comparison figure under `lm_policy`'s claims.
pub fn policy(data: &Policy, path: &Path) -> Result<()> {
    comparison(data, path, &LmPolicy::claims(data))
}

/// `plots/lm_losses.png`: the comparison figure under `lm_losses`' claims.
pub fn losses(data: &Losses, path: &Path) -> Result<()> {
    comparison(data, path, &LmLosses::claims(data))
}

/// `plots/lm_extend.png`: the comparison figure under `lm_extend`'s claims.
pub fn extend(data: &Extend, path: &Path) -> Result<()> {
    comparison(data, path, &LmExtend::claims(data))
}

/// `plots/NAME.png` of a comparison (`lm_policy`, `lm_losses`, `lm_extend`): the panels
/// of [`figure`], one group per label, under the comparison's heading and the ids of its
/// `claims` that fail ([`header`]). Every panel draws a table the comparison writes
/// ([`Comparison::tables`]).
fn comparison<L: Label>(data: &Comparison<L>, path: &Path, claims: &[Claim]) -> Result<()> {
    let groups: Vec<Group<'_>> = data
        .drawn()
        .into_iter()
        .map(|label| Group {
            name: label.id(),
            runs: data.of(label).map(|r| r.points.as_slice()).collect(),
        })
        .collect();
    if !data.layout.mechanism {
        return figure(path, (&data.heading(), claims), &groups);
    }
    save_png(path, (1800, 2060), |root| {
        let body = headed(root, &data.heading(), claims)?;
        let (measures, mechanism) = body.split_vertically(1160);
        panels(&measures, &groups)?;
        super::mechanism::row(&mechanism, data)
    })
}

/// Six panels of `groups`: chosen, the other families, rejected, the argmax per position
/// on the rejected prefixes, the repeater and the entropy.
pub fn figure(
    path: &Path,
    (heading, claims): (&str, &[Claim]),
    groups: &[Group<'_>],
) -> Result<()> {
    save_png(path, (1800, 1240), |root| {
        let body = headed(root, heading, claims)?;
        panels(&body, groups)
    })
}

/// The six panels of [`figure`] on `body`, under one key of the groups (a line over
/// its interquartile band; a dot with its interquartile bar in the positions panel).
fn panels(body: &Area<'_>, groups: &[Group<'_>]) -> Result<()> {
    let bands = |measure: &dyn Fn(&Snapshot) -> f64| {
        groups
            .iter()
            .map(|group| (role(group.name), band(group, measure)))
            .collect::<Vec<_>>()
    };
    let entries: Vec<(Swatch, &str)> = (groups.iter())
        .map(|g| (Swatch::Band(role(g.name)), g.name))
        .collect();
    let body = with_key(body, &entries, true)?;
    let nats = "mean log π(y | χ) (nats)";
    let panels = body.split_evenly((2, 3));
    panel(
        &panels[0],
        "chosen y⁺",
        nats,
        &bands(&|p| p.family(Family::Chosen)),
    )?;
    panel(
        &panels[1],
        "mean of the other families: they fall",
        nats,
        &bands(&Snapshot::others),
    )?;
    panel(
        &panels[2],
        "the dataset's y⁻",
        nats,
        &bands(&|p| p.family(Family::Rejected)),
    )?;
    positions(&panels[3], groups)?;
    panel(
        &panels[4],
        "repeater: degenerate greedy answers",
        "share of the 8 training prompts",
        &bands(&|p| p.repeater.degenerate_rate),
    )?;
    panel(
        &panels[5],
        "next-token entropy, both prefixes",
        "nats",
        &bands(&|p| p.entropy),
    )
}

/// One panel of a sweep: at each x position (labelled), the median over seeds with an
/// interquartile bar; with `from_zero`, the y axis includes 0 (where a ratio is the
/// message, as peakiness).
fn sweep_panel(
    area: &Area<'_>,
    (caption, x_desc, y_desc): (&str, &str, &str),
    columns: &[(String, Vec<f64>)],
    from_zero: bool,
) -> Result<()> {
    let quartiles: Vec<Quartiles> = columns
        .iter()
        .map(|(_, v)| (quantile(v, 0.25), quantile(v, 0.5), quantile(v, 0.75)))
        .collect();
    let (lo, hi) = quartiles
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), q| {
            (l.min(q.0), h.max(q.2))
        });
    let (lo, hi) = if from_zero {
        (lo.min(0.0), hi.max(0.0))
    } else {
        (lo, hi)
    };
    let pad = ((hi - lo) * 0.1).max(1e-3);
    let floor = if from_zero && lo >= 0.0 {
        0.0
    } else {
        lo - pad
    };
    let n = columns.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, text(pt::PANEL))
        .margin(em(0.8))
        .x_label_area_size(em(3.2))
        .y_label_area_size(em(5.2))
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), floor..(hi + pad))?;
    mesh(&mut chart.configure_mesh())
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(n)
        .x_label_formatter(&|x| {
            let k = x.round();
            if (x - k).abs() < 1e-6 && (0.0..n as f64).contains(&k) {
                columns[k as usize].0.clone()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&tick)
        .draw()?;
    record(&chart);
    let c = role("dpo");
    chart.draw_series(quartiles.iter().enumerate().map(|(k, q)| {
        PathElement::new(vec![(k as f64, q.0), (k as f64, q.2)], c.stroke_width(3))
    }))?;
    chart.draw_series(LineSeries::new(
        quartiles.iter().enumerate().map(|(k, q)| (k as f64, q.1)),
        c.stroke_width(2),
    ))?;
    chart.draw_series(
        quartiles
            .iter()
            .enumerate()
            .map(|(k, q)| Circle::new((k as f64, q.1), em(0.45), c.filled())),
    )?;
    Ok(())
}

/// `plots/lm_sft_length.png`: each metric against the SFT length.
pub fn sft_length(data: &SftLength, path: &Path) -> Result<()> {
    use crate::experiments::lm_sft_length::LmSftLength;
    let seeds = data.runs.len() / data.lengths.len().max(1);
    let claims = LmSftLength::claims(data);
    let verdict = |id: &str| {
        let holds = claims.iter().any(|c| c.id == id && c.holds);
        if holds {
            "reproduced"
        } else {
            "NOT reproduced"
        }
    };
    let heading = format!(
        "Longer SFT before the same off-policy DPO (median and IQR over {seeds} seeds): peakier, {}; the other families fall more, {}",
        verdict("peakier"),
        verdict("others_fall_more")
    );
    let panels = [
        (
            Metric::PeakinessAtDpoStart,
            "peakiness at DPO's start (from 0)",
            "mean ‖A_m‖²_F",
        ),
        (
            Metric::ChosenChange,
            "chosen: Δ over DPO",
            "Δ mean log π (nats)",
        ),
        (
            Metric::OthersChange,
            "other families: Δ over DPO",
            "Δ mean log π (nats)",
        ),
        (
            Metric::ExceptArgmaxRejectedPrefixChange,
            "mass off the argmax (y⁻ prefixes)",
            "Δ Σ_m log(1 − max π_m)",
        ),
    ];
    save_png(path, (1800, 640), |root| {
        let body = titled(root, &heading)?;
        for (area, (metric, caption, y_desc)) in body.split_evenly((1, 4)).iter().zip(panels) {
            let columns: Vec<(String, Vec<f64>)> = data
                .lengths
                .iter()
                .map(|&e| (e.to_string(), data.values(e, metric)))
                .collect();
            let from_zero = metric == Metric::PeakinessAtDpoStart;
            sweep_panel(area, (caption, "SFT epochs", y_desc), &columns, from_zero)?;
        }
        Ok(())
    })
}

/// `plots/lm_policy.gif`: the next-token distribution at `y⁻`'s valley on the rejected
/// prefix of the probe whose valley context is `y⁻`'s own
/// ([`valley_probe`](crate::experiments::lm_measures::valley_probe)), frame by frame
/// through off-policy and online DPO (first seed), the distribution at the SFT checkpoint
/// in gray, every token named.
pub fn policy_animation(data: &Policy, path: &Path) -> Result<()> {
    let runs: Vec<_> = [Regime::OffPolicy, Regime::Online]
        .into_iter()
        .filter_map(|regime| data.of(regime).find(|r| r.seed == data.seed))
        .collect();
    let frames = runs.iter().map(|r| r.points.len()).min().unwrap_or(0);
    let rows: Vec<Vec<(String, Squeeze)>> = (0..frames)
        .map(|k| {
            runs.iter()
                .map(|run| {
                    let (first, point) = (&run.points[0], &run.points[k]);
                    let mut roles = vec![Role::Other; point.valley.len()];
                    roles[point.valley_token] = Role::Negative;
                    let squeeze = Squeeze {
                        log_p_before: first.valley.clone(),
                        log_p_after: point.valley.clone(),
                        roles,
                    };
                    let title = format!(
                        "{}, update {}/{}, after [ASK e{e} e{e} {}]",
                        run.label.id(),
                        point.step,
                        data.updates,
                        data.sizes.token_name(point.valley_copula),
                        e = point.valley_entity,
                    );
                    (title, squeeze)
                })
                .collect()
        })
        .collect();
    let heading = format!(
        "Where y⁻'s wrong value {} sits (its own context, seed {}): off-policy vs online DPO",
        runs.first().map_or(String::new(), |r| data
            .sizes
            .token_name(r.points[0].valley_token)),
        data.seed
    );
    animate(path, &heading, &rows, Some(&|t| data.sizes.token_name(t)))
}
