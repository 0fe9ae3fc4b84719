//! The lens's claims, each decided per seed (`comparison::count`'s rule: on all seeds but
//! one) and printed with its count, beside the pooled medians.

use super::{Kernel, KernelPoint, LastLayerPoint, Lens, SignalRun, StepLens};
use crate::experiments::Claim;
use crate::experiments::comparison::{Tally, count};
use crate::experiments::lm_world::Signal;
use crate::language::Family;
use crate::stats::{median, quantile, spearman};

/// The families under DPO whose response must fall, summed over the run, on a seed: all
/// but two of the ten (`chosen` rises by design, and one more may be `y⁺`'s rephrase).
const DPO_NEGATIVE: f64 = 8.0;

impl Lens {
    /// The per-step Spearman correlations, across families, of LBK and of `‖K‖²_F`, of
    /// one run.
    pub fn proxy_spearman(run: &SignalRun) -> Vec<(usize, f64)> {
        let families = Family::sequences().count();
        run.steps
            .chunks(families)
            .map(|c| {
                let lbk: Vec<f64> = c.iter().map(|s| s.lbk).collect();
                let k: Vec<f64> = c.iter().map(|s| s.kernel_norm_sq).collect();
                (c[0].step, spearman(&lbk, &k))
            })
            .collect()
    }

    /// The runs of each seed, in seed order, as lenses of their own.
    fn seeds(&self) -> Vec<Lens> {
        let mut seeds: Vec<u64> = self.runs.iter().map(|r| r.seed).collect();
        seeds.dedup();
        (seeds.into_iter())
            .map(|seed| Lens {
                runs: self
                    .runs
                    .iter()
                    .filter(|r| r.seed == seed)
                    .cloned()
                    .collect(),
            })
            .collect()
    }

    /// How many of the seeds pass `test`.
    fn tally(&self, test: impl Fn(&Lens) -> bool) -> Tally {
        count(&self.seeds(), test)
    }

    /// `(family-steps within η²‖K‖²_F, above it, all)`: the first-order LBK against its
    /// bound, and the paper's LBK from the actual change against it.
    fn bound(&self) -> (usize, usize, usize) {
        let (mut within, mut above, mut all) = (0, 0, 0);
        for r in &self.runs {
            for s in &r.steps {
                let bound = r.eta * r.eta * s.kernel_norm_sq;
                within += usize::from(s.lbk_first_order <= bound * (1.0 + 1e-9));
                above += usize::from(s.lbk > bound);
                all += 1;
            }
        }
        (within, above, all)
    }

    /// Every step's Spearman correlation of LBK and `‖K‖²_F` across families (where it
    /// is defined).
    fn proxy(&self) -> Vec<f64> {
        (self.runs.iter())
            .flat_map(|r| Self::proxy_spearman(r).into_iter().map(|p| p.1))
            .filter(|x| x.is_finite())
            .collect()
    }

    /// Per signal run of at least two epochs, the Spearman correlation of the families'
    /// mean `‖K‖²_F` over the first epoch and over the last.
    fn stability(&self) -> Vec<f64> {
        let families = Family::sequences().count();
        (self.runs.iter())
            .filter(|r| r.steps.len() >= 2 * families * r.epoch)
            .map(|r| {
                // Every epoch pairs the families with the same update prompts, so only
                // the kernel differs.
                let span = families * r.epoch;
                let mean = |c: &[StepLens]| -> Vec<f64> {
                    Family::sequences()
                        .map(|f| {
                            (c.iter().filter(|s| s.family == f))
                                .map(|s| s.kernel_norm_sq)
                                .sum()
                        })
                        .collect()
                };
                spearman(
                    &mean(&r.steps[..span]),
                    &mean(&r.steps[r.steps.len() - span..]),
                )
            })
            .collect()
    }

    /// Per DPO run, how many families have a negative SignDelta summed over the run, as
    /// `measure` reads it.
    fn dpo_negative(&self, measure: fn(&StepLens) -> f64) -> Vec<f64> {
        (self.runs.iter())
            .filter(|r| r.signal == Signal::Dpo)
            .map(|r| {
                let negative = |f: Family| {
                    let sum: f64 = r.steps.iter().filter(|s| s.family == f).map(measure).sum();
                    sum < 0.0
                };
                Family::sequences().filter(|&f| negative(f)).count() as f64
            })
            .collect()
    }

    /// The relative error of `kernel`'s accumulated prediction at every run's end, over
    /// every family (`None` when the actual change is zero, where it has no meaning).
    fn error(&self, kernel: Kernel) -> Option<f64> {
        let last: Vec<&KernelPoint> = (self.runs.iter())
            .flat_map(|r| {
                let end = r.kernels.last().map_or(0, |k| k.step);
                (r.kernels.iter()).filter(move |k| k.step == end && k.kernel == kernel)
            })
            .collect();
        let num: f64 = last.iter().map(|k| (k.predicted - k.actual).powi(2)).sum();
        let den: f64 = last.iter().map(|k| k.actual.powi(2)).sum();
        let relative = (num / den).sqrt();
        (den > 0.0 && relative.is_finite()).then_some(relative)
    }

    /// Per epoch end, the Spearman correlation across families of the full and the
    /// last-layer kernel's `‖K‖²_F`.
    fn norm_ranks(&self) -> Vec<f64> {
        let families = Family::sequences().count();
        (self.runs.iter())
            .flat_map(|r| {
                (r.last_layer.chunks(families)).map(|c| {
                    let full: Vec<f64> = c.iter().map(|p| p.kernel_norm_sq).collect();
                    let last: Vec<f64> = c.iter().map(|p| p.last_layer_norm_sq).collect();
                    spearman(&full, &last)
                })
            })
            .collect()
    }

    /// `f` of every last-layer point.
    fn last_layer_points(&self, f: fn(&LastLayerPoint) -> f64) -> Vec<f64> {
        (self.runs.iter())
            .flat_map(|r| r.last_layer.iter().map(f))
            .collect()
    }

    /// The signal runs whose frozen kernel never left the `k`-th threshold.
    fn frozen_within(&self, k: usize) -> usize {
        (self.runs.iter())
            .filter(|r| r.frozen_exceeds[k].is_none())
            .count()
    }

    /// The figure's claims, each decided per seed.
    pub(super) fn claims(&self) -> Vec<Claim> {
        let families = Family::sequences().count();
        let at_least = |values: Vec<f64>, threshold: f64| -> bool {
            !values.is_empty() && median(&values) >= threshold
        };
        let (within, above, all) = self.bound();
        let k_bound = self.tally(|l| {
            let (within, _, all) = l.bound();
            within == all
        });
        let proxy = self.proxy();
        let k_proxy = self.tally(|l| at_least(l.proxy(), 0.5));
        let stability = self.stability();
        let k_stable = self.tally(|l| at_least(l.stability(), 0.8));
        let response = |s: &StepLens| s.sign_delta_response;
        let vocabulary = |s: &StepLens| s.sign_delta_vocabulary;
        let k_sign = self.tally(|l| at_least(l.dpo_negative(response), DPO_NEGATIVE));
        let k_sign_vocabulary = self.tally(|l| at_least(l.dpo_negative(vocabulary), DPO_NEGATIVE));
        let k_last = self.tally(|l| l.error(Kernel::LastLayer).is_some_and(|e| e <= 0.5));
        let k_norms = self.tally(|l| at_least(l.norm_ranks(), 0.5));
        let entries = self.last_layer_points(|p| p.entry_spearman);
        let k_entries = self.tally(|l| at_least(l.last_layer_points(|p| p.entry_spearman), 0.5));
        // A seed holds when all its signal runs but one stay within 25%.
        let k_frozen = self.tally(|l| l.frozen_within(1) + 1 >= l.runs.len());
        let runs = self.runs.len();
        let shown =
            |e: Option<f64>| e.map_or("undefined, no actual change".into(), |e| format!("{e:.2}"));
        let median_or = |v: &[f64]| match v.is_empty() {
            true => "undefined".to_string(),
            false => format!("{:.2}", median(v)),
        };
        let negative = |m: fn(&StepLens) -> f64| format!("{}", median(&self.dpo_negative(m)));
        vec![
            Claim::counted(
                "first_order_bound",
                k_bound,
                format!(
                    "the LBK of the first-order change is at most η²‖K‖²_F at every family-step on {k_bound} seeds ({within}/{all} family-steps); the paper's LBK, from the actual change, exceeds η²‖K‖²_F at {above}"
                ),
            ),
            Claim::counted(
                "proxy_ranks",
                k_proxy,
                format!(
                    "LBK ranks the families as ‖K‖²_F does, the median per-step Spearman ≥ 0.5 on {k_proxy} seeds (pooled over {} steps: {})",
                    proxy.len(),
                    spread(&proxy)
                ),
            ),
            Claim::counted(
                "kernel_stable",
                k_stable,
                format!(
                    "the paper's premise: the families' ranking by mean ‖K‖²_F over the first epoch matches the last epoch's, the median Spearman over a seed's signal runs ≥ 0.8 on {k_stable} seeds (pooled median over {} signal runs {})",
                    stability.len(),
                    median_or(&stability)
                ),
            ),
            Claim::counted(
                "dpo_sign_delta",
                k_sign,
                format!(
                    "under DPO almost every family's response falls: SignDelta on the response (Δ log π(y | χ) summed over its tokens, as the authors' code measures it), summed over the run, is negative for at least {DPO_NEGATIVE:.0} of {families} families on {k_sign} seeds (median {}); SignDelta over the vocabulary, as the paper's equation writes it, on {k_sign_vocabulary} (median {})",
                    negative(response),
                    negative(vocabulary)
                ),
            ),
            Claim::counted(
                "last_layer",
                k_last,
                format!(
                    "the last-layer kernel predicts the accumulated change within 50% on {k_last} seeds (pooled relative error {}; the full kernel {}, the frozen kernel {})",
                    shown(self.error(Kernel::LastLayer)),
                    shown(self.error(Kernel::Full)),
                    shown(self.error(Kernel::Frozen))
                ),
            ),
            Claim::counted(
                "last_layer_ranks_sizes",
                k_norms,
                format!(
                    "the last-layer kernel ranks the families by ‖K‖²_F as the full kernel does, the median Spearman at an epoch's end ≥ 0.5 on {k_norms} seeds (pooled median over {} epoch ends {}; first probe of each family)",
                    self.norm_ranks().len(),
                    median_or(&self.norm_ranks())
                ),
            ),
            Claim::counted(
                "last_layer_entries",
                k_entries,
                format!(
                    "the last-layer kernel's entries rank as the full kernel's, the median Spearman ≥ 0.5 on {k_entries} seeds (pooled over {} probe kernels: {}; it is (h·h' + 1)·I per position pair, and over those token-diagonal entries alone the median is {})",
                    entries.len(),
                    spread(&entries),
                    median_or(&self.last_layer_points(|p| p.diagonal_spearman))
                ),
            ),
            Claim::counted(
                "frozen_stays",
                k_frozen,
                format!(
                    "a frozen eNTK keeps the accumulated prediction within 25% of the exact one for the whole run on all of a seed's signal runs but one, on {k_frozen} seeds ({}/{runs} signal runs; within 10%: {}, within 50%: {})",
                    self.frozen_within(1),
                    self.frozen_within(0),
                    self.frozen_within(2)
                ),
            ),
        ]
    }
}

/// `median M, quartiles A to B` of `values`, or `undefined` for none.
fn spread(values: &[f64]) -> String {
    match values.is_empty() {
        true => "undefined".to_string(),
        false => format!(
            "median {:.2}, quartiles {:.2} to {:.2}",
            median(values),
            quantile(values, 0.25),
            quantile(values, 0.75)
        ),
    }
}
