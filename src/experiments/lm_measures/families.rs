//! The probe families' log-probabilities and `‖A‖²_F`, the greedy statistics per prefix
//! and position, and the [`Tracker`] that records them at every training step.

use nalgebra::DMatrix;

use crate::error::Result;
use crate::language::{ANSWER_LEN, Family, Greedy, Probe};
use crate::lm::{Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::{adaptation_fro_sq, log_softmax_columns, log_sum_exp};
use crate::trainer::{Observer, StepEvent};

/// Mean statistics of one family at one tracking point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FamilyPoint {
    /// Training step (0 = before the first step).
    pub step: usize,
    /// The family.
    pub family: Family,
    /// Mean over probes of `log π(y | χ)` (for the argmax families: `Σ_m log max π_m`,
    /// and `Σ_m log(1 − max π_m)` for the except-argmax ones, on their prefixes).
    pub log_prob: f64,
    /// Mean over probes and positions of `‖A_m‖²_F = V − 2 + V‖π_m‖²`.
    pub a_fro_sq: f64,
}

/// The family's statistic from one column of log-probabilities at a response position
/// whose token is `token`.
fn position_log_prob(family: Family, log_pi: &[f64], token: usize) -> f64 {
    match family.greedy() {
        Some(greedy) => greedy_log_prob(greedy, log_pi),
        None => log_pi[token],
    }
}

/// `log max π` or `log(1 − max π)` of one column of log-probabilities.
fn greedy_log_prob(greedy: Greedy, log_pi: &[f64]) -> f64 {
    let best = log_pi
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |b| b.0);
    match greedy {
        Greedy::Argmax => log_pi[best],
        Greedy::ExceptArgmax => {
            let rest: Vec<f64> = log_pi
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != best)
                .map(|(_, v)| *v)
                .collect();
            log_sum_exp(&rest)
        }
    }
}

/// The statistics of every family for `model`, at `step`.
pub fn family_points(model: &TinyLm, probes: &[Probe], step: usize) -> Vec<FamilyPoint> {
    let n = probes.len() as f64;
    let mut points: Vec<FamilyPoint> = Family::ALL
        .iter()
        .map(|&family| FamilyPoint {
            step,
            family,
            log_prob: 0.0,
            a_fro_sq: 0.0,
        })
        .collect();
    for probe in probes {
        let seqs: Vec<Sequence> = probe.responses.iter().map(|r| r.1.clone()).collect();
        let logits = model.logits_batch(&seqs);
        for ((point, (family, seq)), z) in points.iter_mut().zip(&probe.responses).zip(&logits) {
            let log_pi = log_softmax_columns(z);
            let lp: f64 = log_pi
                .column_iter()
                .zip(seq.response())
                .map(|(c, &t)| position_log_prob(*family, c.as_slice(), t))
                .sum();
            let a = log_pi
                .column_iter()
                .map(|c| adaptation_fro_sq(c.map(f64::exp).as_view()))
                .sum::<f64>()
                / log_pi.ncols() as f64;
            point.log_prob += lp / n;
            point.a_fro_sq += a / n;
        }
    }
    points
}

/// Which answer's prefixes a per-position statistic is read on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// The prefixes of `y⁺`.
    Chosen,
    /// The prefixes of `y⁻`, where its valley is.
    Rejected,
}

impl Prefix {
    /// Both prefixes, in CSV order.
    pub const ALL: [Prefix; 2] = [Prefix::Chosen, Prefix::Rejected];

    /// The prefix's id in CSV files.
    pub fn id(self) -> &'static str {
        match self {
            Prefix::Chosen => "chosen",
            Prefix::Rejected => "rejected",
        }
    }

    /// The family whose answer this prefix is.
    pub fn family(self) -> Family {
        match self {
            Prefix::Chosen => Family::Chosen,
            Prefix::Rejected => Family::Rejected,
        }
    }
}

/// The argmax of the start of DPO at every position of one probe's chosen and rejected
/// prefix, and whether it is `y⁺`'s token there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedArgmax {
    /// `tokens[prefix][m]`: the greedy token (prefixes in [`Prefix::ALL`] order).
    pub tokens: [[usize; ANSWER_LEN]; 2],
    /// `is_chosen[prefix][m]`: whether it is `y⁺`'s token at `m`.
    pub is_chosen: [[bool; ANSWER_LEN]; 2],
}

/// The answer of `prefix` among a probe's responses.
pub fn prefix_sequence(probe: &Probe, prefix: Prefix) -> &Sequence {
    probe
        .responses
        .iter()
        .find(|r| r.0 == prefix.family())
        .map(|r| &r.1)
        .expect("every probe has a chosen and a rejected answer")
}

/// The [`FixedArgmax`] of every probe under `model`.
pub fn fixed_argmax(model: &TinyLm, probes: &[Probe]) -> Vec<FixedArgmax> {
    probes
        .iter()
        .map(|probe| {
            let chosen = prefix_sequence(probe, Prefix::Chosen).response().to_vec();
            let mut fixed = FixedArgmax {
                tokens: [[0; ANSWER_LEN]; 2],
                is_chosen: [[false; ANSWER_LEN]; 2],
            };
            for (k, prefix) in Prefix::ALL.into_iter().enumerate() {
                let z = model.logits(prefix_sequence(probe, prefix));
                for (m, column) in z.column_iter().enumerate() {
                    let token = column.argmax().0;
                    fixed.tokens[k][m] = token;
                    fixed.is_chosen[k][m] = token == chosen[m];
                }
            }
            fixed
        })
        .collect()
}

/// The next-token distribution at one response position of one prefix, averaged over
/// the probe prompts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PositionPoint {
    /// The answer whose prefix conditions the distribution.
    pub prefix: Prefix,
    /// The response position `m` (0: the entity, 1: the copula, 2: the value, 3: `END`).
    pub position: usize,
    /// Mean `log max π_m`.
    pub argmax: f64,
    /// Mean `log(1 − max π_m)`.
    pub except_argmax: f64,
    /// Mean entropy `−Σ π_m log π_m`, in nats.
    pub entropy: f64,
}

/// `log π` at every response position of each probe's chosen and rejected answer
/// (prefixes in [`Prefix::ALL`] order): what [`position_points`] and [`fixed_points`]
/// read, computed once.
pub fn prefix_log_pi(model: &TinyLm, probes: &[Probe]) -> Vec<[DMatrix<f64>; 2]> {
    probes
        .iter()
        .map(|p| {
            Prefix::ALL.map(|prefix| log_softmax_columns(&model.logits(prefix_sequence(p, prefix))))
        })
        .collect()
}

/// The [`PositionPoint`]s on the chosen and the rejected prefixes, from every probe's
/// [`prefix_log_pi`].
pub fn position_points(prefixes: &[[DMatrix<f64>; 2]]) -> Vec<PositionPoint> {
    let n = prefixes.len() as f64;
    let mut points: Vec<PositionPoint> = Prefix::ALL
        .iter()
        .flat_map(|&prefix| {
            (0..ANSWER_LEN).map(move |position| PositionPoint {
                prefix,
                position,
                argmax: 0.0,
                except_argmax: 0.0,
                entropy: 0.0,
            })
        })
        .collect();
    for probe in prefixes {
        for (k, log_pi) in probe.iter().enumerate() {
            for (point, column) in points[k * ANSWER_LEN..]
                .iter_mut()
                .zip(log_pi.column_iter())
            {
                let column = column.as_slice();
                point.argmax += greedy_log_prob(Greedy::Argmax, column) / n;
                point.except_argmax += greedy_log_prob(Greedy::ExceptArgmax, column) / n;
                point.entropy -= column.iter().map(|l| l.exp() * l).sum::<f64>() / n;
            }
        }
    }
    points
}

/// The greedy statistics at one response position of one prefix on the probes whose
/// fixed argmax ([`FixedArgmax`]: the greedy token at the start of DPO) is, or is not,
/// `y⁺`'s token there; every value a mean over those probes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FixedPoint {
    /// The answer whose prefix conditions the distribution.
    pub prefix: Prefix,
    /// The response position `m`.
    pub position: usize,
    /// Whether the fixed argmax is `y⁺`'s token on these probes.
    pub argmax_is_chosen: bool,
    /// How many probes.
    pub n_probes: usize,
    /// Mean `log max π_m` (the argmax picked again now).
    pub argmax: f64,
    /// Mean `log(1 − max π_m)`.
    pub except_argmax: f64,
    /// Mean `log π_m` of the fixed argmax.
    pub fixed_argmax: f64,
    /// Mean log of the mass on every token but the fixed argmax and `y⁺`'s token (one
    /// token when they are the same), by log-sum-exp: no subtraction from 1.
    pub rest: f64,
}

/// `log Σ_{v ∉ excluded} π_v` of one column of log-probabilities, by log-sum-exp.
pub fn log_mass_except(log_pi: &[f64], excluded: &[usize]) -> f64 {
    let rest: Vec<f64> = (log_pi.iter().enumerate())
        .filter(|(v, _)| !excluded.contains(v))
        .map(|(_, l)| *l)
        .collect();
    log_sum_exp(&rest)
}

/// The [`FixedPoint`]s on both prefixes of `probes` (their [`prefix_log_pi`]), whose
/// fixed argmax is `fixed` (one per probe); groups without probes are left out.
pub fn fixed_points(
    probes: &[Probe],
    prefixes: &[[DMatrix<f64>; 2]],
    fixed: &[FixedArgmax],
) -> Vec<FixedPoint> {
    let mut points = Vec::new();
    for prefix in Prefix::ALL {
        let k = prefix as usize;
        for position in 0..ANSWER_LEN {
            for argmax_is_chosen in [true, false] {
                let members: Vec<usize> = (0..probes.len())
                    .filter(|&i| fixed[i].is_chosen[k][position] == argmax_is_chosen)
                    .collect();
                if members.is_empty() {
                    continue;
                }
                let n = members.len() as f64;
                let mut point = FixedPoint {
                    prefix,
                    position,
                    argmax_is_chosen,
                    n_probes: members.len(),
                    argmax: 0.0,
                    except_argmax: 0.0,
                    fixed_argmax: 0.0,
                    rest: 0.0,
                };
                for &i in &members {
                    let column = prefixes[i][k].column(position);
                    let log_pi = column.as_slice();
                    let token = fixed[i].tokens[k][position];
                    let chosen = prefix_sequence(&probes[i], Prefix::Chosen).response()[position];
                    point.argmax += greedy_log_prob(Greedy::Argmax, log_pi) / n;
                    point.except_argmax += greedy_log_prob(Greedy::ExceptArgmax, log_pi) / n;
                    point.fixed_argmax += log_pi[token] / n;
                    point.rest += log_mass_except(log_pi, &[token, chosen]) / n;
                }
                points.push(point);
            }
        }
    }
    points
}

/// Records [`family_points`] at step 0, every `every` steps and at the phase's end
/// ([`Tracker::finish`]), and counts the scored tokens of every update it sees.
pub struct Tracker<'a> {
    probes: &'a [Probe],
    every: usize,
    /// The points recorded so far.
    pub points: Vec<FamilyPoint>,
    /// The response tokens of every update so far: the token budget actually spent.
    pub token_updates: usize,
}

impl<'a> Tracker<'a> {
    /// A tracker of `probes` every `every` steps.
    pub fn new(probes: &'a [Probe], every: usize) -> Self {
        Tracker {
            probes,
            every,
            points: Vec::new(),
            token_updates: 0,
        }
    }
}

impl Tracker<'_> {
    /// Records the last step of a phase, `steps`, unless it is recorded already: a phase
    /// whose length is not a multiple of `every` still ends with its last step.
    pub fn finish(&mut self, model: &TinyLm, steps: usize) {
        if self.points.last().is_none_or(|p| p.step != steps) {
            self.points.extend(family_points(model, self.probes, steps));
        }
    }
}

impl Observer<TinyLm> for Tracker<'_> {
    fn start(&mut self, model: &TinyLm) -> Result<()> {
        self.points.extend(family_points(model, self.probes, 0));
        Ok(())
    }

    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        self.token_updates += e.update.iter().map(|x| x.response().len()).sum::<usize>();
        if (e.step + 1).is_multiple_of(self.every) {
            self.points
                .extend(family_points(e.after, self.probes, e.step + 1));
        }
        Ok(())
    }
}

/// The curve of one family: `(step, mean log π)`.
pub fn curve(points: &[FamilyPoint], family: Family) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.family == family)
        .map(|p| (p.step as f64, p.log_prob))
        .collect()
}
