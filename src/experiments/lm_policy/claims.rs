//! `lm_policy`'s claims, each counted per seed over the run's seeds, with the thresholds
//! that keep them above the seed-to-seed noise.

use super::{Policy, RegimeRun};
use crate::experiments::Claim;
use crate::experiments::comparison::{
    END_POSITION, Metric, count, log_prob, median_or_none, medians, nats, others_split,
    rejected_median, tokens,
};
use crate::experiments::lm_measures::{ColumnChange, Group, Snapshot, Source};
use crate::experiments::lm_world::{RISE_MARGIN, Regime};
use crate::language::Family;

/// The regimes of the comparison proper (the ablations are their causal check).
const COMPARED: [Regime; 3] = [Regime::OffPolicy, Regime::Spin, Regime::Online];

pub(super) fn prediction_claim(data: &Policy) -> Claim {
    let seeds: Vec<u64> = data.of(Regime::OffPolicy).map(|r| r.seed).collect();
    let pearson_of = |r: &RegimeRun| {
        let cells = &r.attribution.families;
        let predicted: Vec<f64> = cells.iter().map(|c| c.split.predicted).collect();
        let actual: Vec<f64> = cells.iter().map(|c| c.split.actual).collect();
        crate::stats::pearson(&predicted, &actual)
    };
    let k = count(&seeds, |&seed| {
        (data.runs.iter())
            .filter(|r| r.seed == seed)
            .all(|r| pearson_of(r) >= PEARSON)
    });
    let ratio = |r: &RegimeRun| Metric::FirstOrderErrorRatio.of(r);
    let per_regime: Vec<String> = (Regime::ALL.iter())
        .map(|&regime| {
            let (pearson, ratio) = (data.median(regime, pearson_of), data.median(regime, ratio));
            format!("{} {pearson:.3} (error/signal {ratio:.2})", regime.id())
        })
        .collect();
    let failing: Vec<String> = (Regime::ALL.iter())
        .filter_map(|&regime| {
            let runs: Vec<&RegimeRun> = data.of(regime).collect();
            let below = count(&runs, |r| pearson_of(r) < PEARSON);
            (below.k > 0).then(|| format!("{} on {below} seeds", regime.id()))
        })
        .collect();
    let cause = match failing.is_empty() {
        true => String::new(),
        false => format!(
            "; below it: {}. The cause is the accumulated second-order error, not one step: each update leaves an O(η²) error on every probe, which accrues over all the updates, while a probe's signal comes mostly from its own prompt's updates, so the error-to-signal ratio (the rms of actual − predicted over the cells over the spread of the actual changes) grows like η × entities",
            failing.join(", ")
        ),
    };
    Claim::counted(
        "prediction_tracks_actual",
        k,
        format!(
            "the accumulated first-order prediction tracks the actual change, Pearson ≥ {PEARSON} over family × position in every regime, on {k} seeds (median per regime: {}){cause}",
            per_regime.join(", ")
        ),
    )
}

/// The content positions of an answer: entity, copula and value.
fn content(m: usize) -> bool {
    m != END_POSITION
}

pub(super) fn others_claim(data: &Policy) -> Claim {
    let pairs = data.paired(Regime::OffPolicy, Regime::Online);
    let change = |r: &RegimeRun| Metric::OthersChange.of(r);
    let k = count(&pairs, |(off, on)| change(off) < change(on) - NATS_MARGIN);
    let (off, on) = medians(&pairs, change);
    Claim::counted(
        "others",
        k,
        format!(
            "off-policy DPO lowers the eight other families (all positions, the old measure) more than online DPO, by over {NATS_MARGIN} nat, on {k} seeds (median change {off:+.2} vs {on:+.2} nats)"
        ),
    )
}

pub(super) fn others_content_claim(data: &Policy) -> Claim {
    let pairs = data.paired(Regime::OffPolicy, Regime::Online);
    let change = |r: &RegimeRun| Metric::OthersChangeContent.of(r);
    let k = count(&pairs, |(off, on)| change(off) < change(on) - NATS_MARGIN);
    let (off, on) = medians(&pairs, change);
    let (off_end, on_end) = medians(&pairs, |r| Metric::OthersChangeEnd.of(r));
    Claim::counted(
        "others_content",
        k,
        format!(
            "like for like (the seven others without rejected_rephrase, content positions): off-policy DPO lowers them more than online DPO, by over {NATS_MARGIN} nat, on {k} seeds (median change {off:+.2} vs {on:+.2} nats; at END {off_end:+.2} vs {on_end:+.2})"
        ),
    )
}

pub(super) fn rejected_term_claim(data: &Policy) -> Claim {
    let runs: Vec<&RegimeRun> = data.of(Regime::OffPolicy).collect();
    let share = |r: &RegimeRun| {
        let s = others_split(r, content);
        if s.predicted < 0.0 && s.rejected_term < 0.0 {
            s.rejected_term / s.predicted
        } else {
            0.0
        }
    };
    let k = count(&runs, |r| share(r) > MOST);
    let terms = |r: &RegimeRun| others_split(r, content);
    let chosen = data.median(Regime::OffPolicy, |r| terms(r).chosen_term);
    let rejected = data.median(Regime::OffPolicy, |r| terms(r).rejected_term);
    // The ablations' actual changes beside the attributed terms, seed by seed.
    let alone = |regime| data.median(regime, |r| others_split(r, content).actual);
    let pairs = data.paired(Regime::OffPolicy, Regime::OffPolicyRejectedOnly);
    let ratios: Vec<f64> = (pairs.iter())
        .filter(|(full, _)| terms(full).rejected_term < 0.0)
        .map(|(full, only)| terms(only).actual / terms(full).rejected_term)
        .collect();
    let ratio = median_or_none(&ratios, |v| format!("{v:.1}×"));
    Claim::counted(
        "rejected_term_drives_others",
        k,
        format!(
            "off-policy DPO: the rejected term accounts for most (over {MOST}) of the like-for-like others' predicted content-position fall (first-order, along the full-DPO trajectory) on {k} seeds (median share {:.2}; chosen term {chosen:+.2}, rejected term {rejected:+.2} nats); run alone, the rejected term changes them by {:+.2} ({ratio} its attributed term, median per seed: the attribution gives the direction, not the size of a term alone), the chosen term by {:+.2}",
            data.median(Regime::OffPolicy, share),
            alone(Regime::OffPolicyRejectedOnly),
            alone(Regime::OffPolicyChosenOnly)
        ),
    )
}

fn argmax(c: &ColumnChange) -> Option<f64> {
    Some(c.argmax)
}

pub(super) fn valley_claim(data: &Policy) -> Claim {
    let group = Group::VALLEY;
    let rises = |r: &RegimeRun| rejected_median(r, group, argmax).is_some_and(|v| v > 0.0);
    let of = |regime| data.squeezing_tally((regime, group), rises, (argmax, nats));
    let ((off, off_median), (spin, spin_median), (online, online_median)) =
        (of(Regime::OffPolicy), of(Regime::Spin), of(Regime::Online));
    let share = data.median(Regime::OffPolicy, |r| {
        let records = group.of(&r.squeezing);
        let rising = records
            .iter()
            .filter(|p| p.change(Source::RejectedTerm).argmax > 0.0);
        rising.count() as f64 / records.len().max(1) as f64
    });
    Claim::counted(
        "valley_argmax_rises",
        off,
        format!(
            "squeezing at y⁻'s valleys: off-policy DPO's rejected term raises the current argmax at y⁻'s value and END positions where y⁻'s token is not the argmax (first-order, at every update; median over the seed's instances > 0) on {off} seeds (median {off_median} nats per update, rising on a median {share:.2} of instances); SPIN {spin} ({spin_median}), online {online} ({online_median})"
        ),
    )
}

pub(super) fn squeezing_lowers_chosen_claim(data: &Policy) -> Claim {
    let group = Group::THIRD;
    let chosen = |c: &ColumnChange| c.chosen;
    let test = |r: &RegimeRun| {
        rejected_median(r, group, argmax).is_some_and(|v| v > 0.0)
            && rejected_median(r, group, chosen).is_some_and(|v| v < 0.0)
    };
    let of = |regime| data.squeezing_tally((regime, group), test, (chosen, nats));
    let ((off, off_chosen), (spin, _), (online, _)) =
        (of(Regime::OffPolicy), of(Regime::Spin), of(Regime::Online));
    let (_, off_argmax) = data.squeezing_tally((Regime::OffPolicy, group), test, (argmax, nats));
    Claim::counted(
        "squeezing_lowers_chosen",
        off,
        format!(
            "the paper's mechanism for the falling y⁺: where the argmax at y⁻'s value position is neither y⁺'s nor y⁻'s token, off-policy DPO's rejected term raises that argmax and lowers y⁺'s token (both medians over the seed's instances) on {off} seeds (median {off_argmax} and {off_chosen} nats per update); SPIN {spin}, online {online}"
        ),
    )
}

pub(super) fn deep_valley_claim(data: &Policy) -> Claim {
    let group = Group::THIRD;
    let rising = |c: &ColumnChange| Some(c.rising as f64);
    let depth = |regime| {
        let per_seed: Vec<f64> = data
            .with_instances(regime, group)
            .iter()
            .filter_map(|r| group.median(&r.squeezing, |p| Some(p.rejected_log_prob)))
            .collect();
        median_or_none(&per_seed, log_prob)
    };
    let one = |r: &RegimeRun| rejected_median(r, group, rising).is_some_and(|v| v <= 1.0);
    let more = |r: &RegimeRun| rejected_median(r, group, rising).is_some_and(|v| v > 1.0);
    let (off, off_n) = data.squeezing_tally((Regime::OffPolicy, group), one, (rising, tokens));
    let (spin, spin_n) = data.squeezing_tally((Regime::Spin, group), more, (rising, tokens));
    let (online, online_n) = data.squeezing_tally((Regime::Online, group), more, (rising, tokens));
    Claim::new(
        "deep_valley_one_token",
        off.holds && spin.holds && online.holds,
        format!(
            "the softmax lemma's shape in the network: at those value positions off-policy DPO's rejected term raises a median of at most one token (the argmax) on {off} seeds (median {off_n}; median log π(y⁻) there {}), while at SPIN's and online's shallower valleys more tokens rise, on {spin} and {online} seeds (medians {spin_n} and {online_n}; log π(y⁻) {} and {})",
            depth(Regime::OffPolicy),
            depth(Regime::Spin),
            depth(Regime::Online)
        ),
    )
}

pub(super) fn peak_claim(data: &Policy) -> Claim {
    let group = Group::PEAK;
    let entropy = |c: &ColumnChange| Some(c.entropy);
    let runner_up = |c: &ColumnChange| Some(c.runner_up);
    let flattens = |r: &RegimeRun| {
        rejected_median(r, group, entropy).is_some_and(|v| v > 0.0)
            && rejected_median(r, group, runner_up).is_some_and(|v| v > 0.0)
    };
    let of = |regime| {
        let (k, h) = data.squeezing_tally((regime, group), flattens, (entropy, nats));
        let (_, up) = data.squeezing_tally((regime, group), flattens, (runner_up, nats));
        let (_, top) = data.squeezing_tally((regime, group), flattens, (argmax, nats));
        (
            k,
            format!(
                "{} {k} (entropy {h}, runner-up {up}, argmax {top})",
                regime.id()
            ),
        )
    };
    let (spin, spin_text) = of(Regime::Spin);
    let others: Vec<String> = [Regime::OffPolicy, Regime::Online]
        .into_iter()
        .map(|regime| of(regime).1)
        .collect();
    Claim::counted(
        "peak_flattens",
        spin,
        format!(
            "where y⁻'s token is the argmax (a peak, at the copula and value positions), the rejected term flattens: it raises the entropy and the runner-up (medians over the seed's instances, nats per update; the argmax, y⁻'s own token, falls almost by construction): {spin_text}; {}",
            others.join("; ")
        ),
    )
}

/// The update after which the cumulative rejected coefficient `Σ s⁻` of `r` first
/// reaches `target` (its last update if it never does).
fn update_at_push(r: &RegimeRun, target: f64) -> usize {
    let mut total = 0.0;
    for (k, u) in r.counts.records.iter().enumerate() {
        total += u.rejected_coefficient;
        if total >= target {
            return k + 1;
        }
    }
    r.counts.updates
}

pub(super) fn equal_push_claim(data: &Policy) -> Claim {
    let pairs = data.paired(Regime::OffPolicy, Regime::Online);
    let push = |r: &RegimeRun| Metric::RejectedCoefficientSum.of(r);
    let at_equal = |(off, on): &(&RegimeRun, &RegimeRun)| {
        let target = push(off).min(push(on));
        let change =
            |r: &RegimeRun| r.change_to(update_at_push(r, target), Snapshot::like_for_like_others);
        (change(off), change(on))
    };
    let k = count(&pairs, |p| {
        let (off, on) = at_equal(p);
        off < on - NATS_MARGIN
    });
    let (off, on) = medians(&pairs, push);
    let changes: Vec<(f64, f64)> = pairs.iter().map(at_equal).collect();
    let (c_off, c_on): (Vec<f64>, Vec<f64>) = changes.into_iter().unzip();
    Claim::counted(
        "others_at_equal_push",
        k,
        format!(
            "at an equal cumulative rejected coefficient Σs⁻ (the smaller run's total; median totals: off-policy {off:.2}, online {on:.2}), off-policy DPO lowers the seven like-for-like others more than online DPO, by over {NATS_MARGIN} nat, on {k} seeds (median change {:+.2} vs {:+.2} nats, at the last tracking point before it)",
            crate::stats::median(&c_off),
            crate::stats::median(&c_on)
        ),
    )
}

pub(super) fn degenerate_claim(data: &Policy) -> Claim {
    let pairs = data.paired(Regime::OffPolicy, Regime::Online);
    let rate = |r: &RegimeRun| Metric::DegenerateRateAfter.of(r);
    let k = count(&pairs, |(off, on)| rate(off) > rate(on));
    let (off, on) = medians(&pairs, rate);
    let ablation = |regime| data.median(regime, rate);
    Claim::counted(
        "degenerate",
        k,
        format!(
            "off-policy DPO leaves more greedy answers to training prompts degenerate (not well-formed) than online DPO on {k} seeds (median {off:.2} vs {on:.2}; {:.2} after SFT); the ablations: rejected term alone {:.2}, chosen term alone {:.2}",
            data.median(Regime::OffPolicy, |r| Metric::DegenerateRateBefore.of(r)),
            ablation(Regime::OffPolicyRejectedOnly),
            ablation(Regime::OffPolicyChosenOnly)
        ),
    )
}

pub(super) fn hallucination_claim(data: &Policy) -> Claim {
    let runs: Vec<&RegimeRun> = data.of(Regime::OffPolicy).collect();
    let before = |r: &RegimeRun| Metric::HallucinationRateBefore.of(r);
    let k = count(&runs, |r| before(r) >= HALLUCINATING);
    let after: Vec<String> = COMPARED
        .iter()
        .map(|&regime| {
            let rate = data.median(regime, |r| Metric::HallucinationRateAfter.of(r));
            format!("{} {rate:.2}", regime.id())
        })
        .collect();
    Claim::counted(
        "hallucination",
        k,
        format!(
            "hallucination, not the repeater: after SFT, at least {HALLUCINATING} of the greedy answers to held-out prompts are another entity's well-formed answer on {k} seeds (median {:.2}); after DPO: {}",
            data.median(Regime::OffPolicy, before),
            after.join(", ")
        ),
    )
}

pub(super) fn chosen_claim(data: &Policy) -> Claim {
    let pairs = data.paired(Regime::OffPolicy, Regime::Online);
    let change = |r: &RegimeRun| Metric::ChosenChange.of(r);
    let k = count(&pairs, |(off, on)| change(off) < change(on) - NATS_MARGIN);
    let (off, on) = medians(&pairs, change);
    Claim::counted(
        "chosen",
        k,
        format!(
            "off-policy DPO lowers chosen more than online DPO, by over {NATS_MARGIN} nat, on {k} seeds (median change {off:+.2} vs {on:+.2} nats)"
        ),
    )
}

pub(super) fn rise_and_fall_claim(data: &Policy) -> Claim {
    let runs: Vec<&RegimeRun> = data.of(Regime::OffPolicy).collect();
    let shape = |r: &RegimeRun| {
        let chosen: Vec<f64> = r.points.iter().map(|p| p.family(Family::Chosen)).collect();
        let peak = chosen.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (peak - chosen[0], peak - chosen[chosen.len() - 1])
    };
    let k = count(&runs, |r| {
        let (rise, fall) = shape(r);
        rise > RISE_MARGIN && fall > RISE_MARGIN
    });
    let rise = data.median(Regime::OffPolicy, |r| shape(r).0);
    Claim::counted(
        "rise_and_fall",
        k,
        format!(
            "off-policy DPO: chosen first rises, then falls, each by over {RISE_MARGIN} nats, on {k} seeds (median rise {rise:+.2} nats)"
        ),
    )
}

pub(super) fn spin_claim(data: &Policy) -> Claim {
    let pairs = data.paired(Regime::Spin, Regime::OffPolicy);
    let change = |r: &RegimeRun| Metric::ChosenChange.of(r);
    let k = count(&pairs, |(spin, _)| change(spin) > RISE_MARGIN);
    let (spin, off) = medians(&pairs, change);
    Claim::counted(
        "spin",
        k,
        format!(
            "SPIN (the same y⁺, an on-policy y⁻): chosen rises by over {RISE_MARGIN} nats on {k} seeds (median {spin:+.2} nats; off-policy {off:+.2})"
        ),
    )
}

pub(super) fn updates_claim(data: &Policy) -> Claim {
    let redraws = |regime| data.median(regime, |r| Metric::Redraws.of(r));
    let short: Vec<String> = (data.runs.iter())
        .filter(|r| r.counts.updates < data.updates)
        .map(|r| format!("{} seed {}: {}", r.label.id(), r.seed, r.counts.updates))
        .collect();
    let text = if short.is_empty() {
        format!(
            "every regime took exactly {} updates on every seed (median redraws: SPIN {}, online {})",
            data.updates,
            redraws(Regime::Spin),
            redraws(Regime::Online)
        )
    } else {
        format!(
            "not every run took its {} updates: a pass over the prompts found no usable pair after max_redraws redraws each, and the run ended there ({}); raise max_redraws",
            data.updates,
            short.join(", ")
        )
    };
    Claim::new("updates", data.all_updates_taken(), text)
}

/// The margin by which one regime must beat another on a seed, in nats, for the other
/// families and for chosen. It is above the seed-to-seed noise: over seeds 0–14 of the
/// default configuration, the interquartile range across seeds of online DPO's
/// `others_change` is 0.48 nats (−3.83 to −3.36), and that of its chosen change 0.79
/// nats (−0.88 to −0.09).
const NATS_MARGIN: f64 = 1.0;
/// The least Pearson correlation of the accumulated prediction with the actual change
/// (the threshold; the default seeds' per-run values lie between 0.95 and 1.0).
const PEARSON: f64 = 0.9;
/// "Most": the share of a fall that one term must account for, more than the other term.
/// The default seeds' off-policy shares lie between 1.2 and 2.1, far from it.
const MOST: f64 = 0.5;
/// The share of held-out answers about another entity that counts as hallucinating: a
/// majority of the 4 held-out prompts (the default seeds give 0.75 on every seed).
const HALLUCINATING: f64 = 0.5;
