//! `lm_remedies`' claims: the practitioner's questions, each answered per arm and
//! counted per seed with `comparison::count`'s rule, every comparison paired with plain
//! DPO on the same seed.
//!
//! Thresholds: 1 nat between two arms' `Δ logps/chosen` (DPO's own change spreads over
//! about 2 nats across seeds; the pairing removes the seed's share of it), one pair in
//! eight of `rewards/accuracies`, half of DPO's `rewards/margins`, and for the
//! attribution a first-order account within 200% of the actual change
//! ([`End::first_order`]): the attribution splits a change by term only where the steps
//! stayed near first order.

use super::tables::End;
use super::{Config, Remedies, Remedy, RemedyRun};
use crate::experiments::Claim;
use crate::experiments::comparison::{Tally, count};
use crate::stats::median;

/// The margin between two arms' changes on a seed, in nats.
const NATS_MARGIN: f64 = 1.0;

/// One pair in eight (the world's training prompts): how much lower an arm's
/// `rewards/accuracies` may end than DPO's and still keep its margin.
const ACCURACY_SLACK: f64 = 0.125;

/// The share of DPO's `rewards/margins` an arm must keep.
const MARGIN_SHARE: f64 = 0.5;

/// Every claim, in order: one per remedy on `y⁺`, then the margin, the repeater, the
/// others, squeezing, and the updates.
pub fn all(data: &Remedies) -> Vec<Claim> {
    let arms = Arms::of(data);
    let data = &data.comparison;
    let mut claims: Vec<Claim> = (arms.remedies().iter())
        .map(|&r| keeps_chosen_claim(&arms, r))
        .collect();
    claims.extend([
        margin_claim(&arms),
        repeater_claim(&arms),
        others_claim(&arms),
        squeezing_claim(&arms),
        feeds_chosen_claim(&arms),
        Claim::new(
            "updates",
            data.all_updates_taken(),
            format!(
                "every arm took exactly {} updates on the same pairs on every seed",
                data.updates
            ),
        ),
    ]);
    claims
}

/// Every arm's end state, seed by seed, beside DPO's on the same seed.
struct Arms {
    /// `(remedy, [(dpo's end, the remedy's end)])`, arms in the run's order, DPO first.
    ends: Vec<(Remedy, Vec<(End, End)>)>,
    /// Each arm's parameters.
    config: Config,
}

impl Arms {
    fn of(data: &Remedies) -> Self {
        let end = |(d, r): (&RemedyRun, &RemedyRun)| (End::of(d), End::of(r));
        let runs = &data.comparison;
        let ends = (runs.labels().into_iter())
            .map(|label| {
                let pairs = runs.paired(Remedy::Dpo, label);
                (label, pairs.into_iter().map(end).collect())
            })
            .collect();
        Arms {
            ends,
            config: data.config,
        }
    }

    /// `remedy` as the claims name it, with its parameter.
    fn name(&self, remedy: Remedy) -> String {
        remedy.name(&self.config)
    }

    /// The arms other than DPO.
    fn remedies(&self) -> Vec<Remedy> {
        (self.ends.iter())
            .map(|e| e.0)
            .filter(|&r| r != Remedy::Dpo)
            .collect()
    }

    /// The seeds of `remedy`, each `(DPO's end, its end)`.
    fn pairs(&self, remedy: Remedy) -> &[(End, End)] {
        (self.ends.iter())
            .find(|e| e.0 == remedy)
            .map_or(&[][..], |e| &e.1)
    }

    /// How many seeds of `remedy` pass `test`.
    fn count(&self, remedy: Remedy, test: impl Fn(&End, &End) -> bool) -> Tally {
        count(self.pairs(remedy), |(d, r)| test(d, r))
    }

    /// The median over `remedy`'s seeds of `measure` of its end, and of DPO's.
    fn medians(&self, remedy: Remedy, measure: impl Fn(&End) -> f64) -> (f64, f64) {
        let pairs = self.pairs(remedy);
        let of = |side: fn(&(End, End)) -> &End| {
            median(&pairs.iter().map(|p| measure(side(p))).collect::<Vec<_>>())
        };
        (of(|p| &p.1), of(|p| &p.0))
    }

    /// Whether `remedy` keeps `y⁺` above DPO's by [`NATS_MARGIN`] on all seeds but one:
    /// its `keeps_chosen` claim.
    fn keeps_chosen(&self, remedy: Remedy) -> Tally {
        self.count(remedy, |d, r| r.chosen > d.chosen + NATS_MARGIN)
    }

    /// The anchored remedies whose rejected term pushes as DPO's does (`y⁻` falls at
    /// least half as far on most seeds) and whose steps stayed near first order on
    /// every seed: where the attribution by term can say what squeezing does.
    fn pushing_anchored(&self) -> Vec<Remedy> {
        (self.remedies().into_iter())
            .filter(|&r| r.anchored())
            .filter(|&r| self.count(r, pushes).holds)
            .filter(|&r| self.pairs(r).iter().all(|(_, e)| e.first_order()))
            .collect()
    }
}

/// Whether an arm's `y⁻` fell at least half as far as DPO's on the seed.
fn pushes(dpo: &End, arm: &End) -> bool {
    arm.rejected <= 0.5 * dpo.rejected
}

/// The claim id of each remedy's `keeps_chosen` claim.
fn keeps_chosen_id(remedy: Remedy) -> &'static str {
    match remedy {
        Remedy::Dpo => "dpo_keeps_chosen",
        Remedy::Rpo => "rpo_keeps_chosen",
        Remedy::RpoSmall => "rpo_small_keeps_chosen",
        Remedy::Dpop => "dpop_keeps_chosen",
        Remedy::DpopSmall => "dpop_small_keeps_chosen",
        Remedy::Ipo => "ipo_keeps_chosen",
        Remedy::Slic => "slic_keeps_chosen",
        Remedy::Extend => "extend_keeps_chosen",
    }
}

fn keeps_chosen_claim(arms: &Arms, remedy: Remedy) -> Claim {
    let k = arms.keeps_chosen(remedy);
    let rises = arms.count(remedy, |_, r| r.chosen > 0.0);
    let (r, d) = arms.medians(remedy, |e| e.chosen);
    let missed = arms.count(remedy, |_, r| !r.first_order());
    let beyond = match missed.k {
        0 => String::new(),
        _ => format!(
            "; its first-order account of y⁺'s change misses the actual by over 200% on {missed} seeds: its steps left the first-order regime"
        ),
    };
    Claim::counted(
        keeps_chosen_id(remedy),
        k,
        format!(
            "{remedy} keeps y⁺ from falling: logps/chosen ends above DPO's by over {NATS_MARGIN} nat on {k} seeds (median change {r:+.2} vs DPO's {d:+.2} nats; above its own start on {rises}){beyond}",
            remedy = arms.name(remedy)
        ),
    )
}

/// Whether an arm keeps DPO's margin on a seed: `rewards/accuracies` within one pair in
/// eight, and at least half of `rewards/margins`.
fn keeps_margin(dpo: &End, arm: &End) -> bool {
    arm.accuracy >= dpo.accuracy - ACCURACY_SLACK - 1e-12 && arm.margin >= MARGIN_SHARE * dpo.margin
}

/// `id k/n (median …)` for every remedy, with `measure`'s medians.
fn per_arm(
    arms: &Arms,
    test: impl Fn(&End, &End) -> bool + Copy,
    measure: impl Fn(&End) -> f64 + Copy,
) -> String {
    (arms.remedies().into_iter())
        .map(|r| {
            let (m, _) = arms.medians(r, measure);
            format!("{} {} ({m:.2})", arms.name(r), arms.count(r, test))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn margin_claim(arms: &Arms) -> Claim {
    let anchored = arms.pushing_anchored();
    let holds = (anchored.iter()).all(|&r| arms.count(r, keeps_margin).holds);
    let (_, dpo) = arms.medians(Remedy::Dpo, |e| e.margin);
    Claim::new(
        "margin_kept",
        holds && !anchored.is_empty(),
        format!(
            "the anchored remedies keep DPO's margin, since an anchor pulls on y⁺ and leaves DPO's push on y⁻: rewards/accuracies no more than one pair in eight below DPO's and rewards/margins at least half DPO's (median {dpo:.2}) under those that push y⁻ down at least half as far as DPO and stay near first order ({}); every arm: {} (median rewards/margins)",
            names(arms, &anchored),
            per_arm(arms, keeps_margin, |e| e.margin)
        ),
    )
}

fn repeater_claim(arms: &Arms) -> Claim {
    let anchored = arms.pushing_anchored();
    let stops = |_: &End, r: &End| r.degenerate <= r.degenerate_before;
    let holds = (anchored.iter()).all(|&r| arms.count(r, stops).holds);
    let dpo = arms.count(Remedy::Dpo, |_, r| r.degenerate > r.degenerate_before);
    Claim::new(
        "repeater_stopped",
        holds && !anchored.is_empty(),
        format!(
            "the anchored remedies stop the repeater: no more degenerate greedy answers to training prompts at the end than at the start (DPO has more on {dpo} seeds) under those that push y⁻ down at least half as far as DPO and stay near first order ({}); every arm: {} (median share degenerate at the end)",
            names(arms, &anchored),
            per_arm(arms, stops, |e| e.degenerate)
        ),
    )
}

fn others_claim(arms: &Arms) -> Claim {
    let pushing: Vec<Remedy> = (arms.remedies().into_iter())
        .filter(|&r| arms.count(r, pushes).holds)
        .filter(|&r| arms.pairs(r).iter().all(|(_, e)| e.first_order()))
        .collect();
    let rejected_part = |_: &End, e: &End| {
        let s = e.others_split;
        s.rejected_term < 0.0 && s.rejected_term.abs() > s.anchor_term.abs()
    };
    let holds = pushing.iter().all(|&r| arms.count(r, rejected_part).holds);
    let costs: Vec<String> = (arms.remedies().into_iter())
        .map(|r| {
            let (e, d) = arms.medians(r, |e| e.others);
            format!("{} {e:+.2} (DPO {d:+.2})", arms.name(r))
        })
        .collect();
    let parts: Vec<String> = (pushing.iter())
        .map(|&r| {
            let (rej, _) = arms.medians(r, |e| e.others_split.rejected_term);
            let (anc, _) = arms.medians(r, |e| e.others_split.anchor_term);
            let k = arms.count(r, rejected_part);
            format!(
                "{} {k} (rejected term {rej:+.2}, anchor {anc:+.2})",
                arms.name(r)
            )
        })
        .collect();
    Claim::new(
        "others_fall_by_rejected_term",
        holds && !pushing.is_empty(),
        format!(
            "what each costs in the other families (median change {}): under every arm that pushes y⁻ down at least half as far as DPO and stays near first order, the others' fall is the rejected term's, not the anchor's (its part negative and larger than the anchor's) on: {}",
            costs.join(", "),
            parts.join(", ")
        ),
    )
}

fn squeezing_claim(arms: &Arms) -> Claim {
    let anchored = arms.pushing_anchored();
    let squeezes = |_: &End, e: &End| e.valley_argmax.is_some_and(|v| v > 0.0);
    let outweighed = |_: &End, e: &End| {
        let s = e.chosen_split;
        s.rejected_term + s.anchor_term > 0.0
    };
    let holds = anchored.iter().all(|&r| arms.count(r, squeezes).holds);
    let parts: Vec<String> = (anchored.iter())
        .map(|&r| {
            let (rej, _) = arms.medians(r, |e| e.chosen_split.rejected_term);
            let (anc, _) = arms.medians(r, |e| e.chosen_split.anchor_term);
            format!(
                "{} squeezes on {}; on y⁺ the anchor's part outweighs the rejected term's on {} (rejected term {rej:+.2}, anchor {anc:+.2} nats)",
                arms.name(r),
                arms.count(r, squeezes),
                arms.count(r, outweighed)
            )
        })
        .collect();
    let argmax = |e: &End| e.valley_argmax.unwrap_or(0.0);
    let weaker: Vec<String> = (arms.remedies().into_iter())
        .filter(|&r| !arms.count(r, pushes).holds)
        .map(|r| {
            let (e, d) = arms.medians(r, |e| e.rejected);
            let (a, da) = arms.medians(r, argmax);
            format!(
                "{} (Δ logps/rejected {e:+.1} vs DPO's {d:+.1} nats; argmax rise at the valleys {a:+.4} vs {da:+.4} nats per update)",
                arms.name(r)
            )
        })
        .collect();
    Claim::new(
        "squeezing_still_acts",
        holds && !anchored.is_empty(),
        format!(
            "an anchor adds a pull on y⁺ and removes no push on y⁻, so squeezing still acts under it: the rejected term still raises the current argmax at y⁻'s valleys (median over the seed's instances > 0) under every anchored arm that pushes y⁻ down at least half as far as DPO and stays near first order: {}; where the push on y⁻ is weaker, so is squeezing: {}",
            or_none(&parts),
            or_none(&weaker)
        ),
    )
}

fn feeds_chosen_claim(arms: &Arms) -> Claim {
    let anchored = arms.pushing_anchored();
    let share = |e: &End| e.chosen_argmax_share.unwrap_or(0.0);
    let more = |d: &End, e: &End| share(e) > share(d);
    let less = |d: &End, e: &End| e.chosen_split.rejected_term > d.chosen_split.rejected_term;
    let holds = (anchored.iter()).all(|&r| arms.count(r, more).holds && arms.count(r, less).holds);
    let parts: Vec<String> = (anchored.iter())
        .map(|&r| {
            let (s, ds) = arms.medians(r, share);
            let (rej, drej) = arms.medians(r, |e| e.chosen_split.rejected_term);
            format!(
                "{}: y⁺'s token the argmax at more pushes on {} (median share {s:.2} vs {ds:.2}), the rejected term's part of y⁺'s change higher on {} ({rej:+.2} vs {drej:+.2} nats)",
                arms.name(r),
                arms.count(r, more),
                arms.count(r, less)
            )
        })
        .collect();
    Claim::new(
        "squeezing_feeds_chosen",
        holds && !anchored.is_empty(),
        format!(
            "why the rejected term hurts y⁺ less under an anchor: the anchor makes y⁺'s token the argmax at more of y⁻'s valleys than under DPO, so the mass squeezing frees goes to y⁺: {}",
            or_none(&parts)
        ),
    )
}

/// The names of `remedies`, or `none`.
fn names(arms: &Arms, remedies: &[Remedy]) -> String {
    let names: Vec<String> = remedies.iter().map(|&r| arms.name(r)).collect();
    or_none(&names)
}

/// `parts` joined, or `none`.
fn or_none(parts: &[String]) -> String {
    match parts.is_empty() {
        true => "none".to_string(),
        false => parts.join("; "),
    }
}
