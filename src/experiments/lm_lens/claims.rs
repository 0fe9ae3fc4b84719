//! The lens's claims, each checked on the run's seeds pooled.

use super::{Kernel, KernelPoint, LastLayerPoint, Lens, SignalRun, StepLens};
use crate::experiments::Claim;
use crate::experiments::lm_world::Signal;
use crate::language::Family;
use crate::stats::{median, spearman};

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

    /// The figure's claims, each checked on this run's numbers.
    pub(super) fn claims(&self) -> Vec<Claim> {
        let families = Family::sequences().count();
        let points: Vec<&StepLens> = self.runs.iter().flat_map(|r| &r.steps).collect();
        let bound = |s: &StepLens, r: &SignalRun| r.eta * r.eta * s.kernel_norm_sq;
        let (mut within, mut above) = (0usize, 0usize);
        for r in &self.runs {
            for s in &r.steps {
                within += usize::from(s.lbk_first_order <= bound(s, r) * (1.0 + 1e-9));
                above += usize::from(s.lbk > bound(s, r));
            }
        }
        let proxy: Vec<f64> = (self.runs.iter())
            .flat_map(|r| Self::proxy_spearman(r).into_iter().map(|p| p.1))
            .filter(|x| x.is_finite())
            .collect();
        let stability: Vec<f64> = (self.runs.iter())
            .filter(|r| r.steps.len() >= 2 * families * r.epoch)
            .map(|r| {
                // Mean ‖K‖²_F per family over an epoch's updates: every epoch pairs the
                // families with the same update prompts, so only the kernel differs.
                let span = families * r.epoch;
                let mean = |c: &[StepLens]| -> Vec<f64> {
                    Family::sequences()
                        .map(|f| {
                            c.iter()
                                .filter(|s| s.family == f)
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
            .collect();
        let negative: Vec<f64> = (self.runs.iter())
            .filter(|r| r.signal == Signal::Dpo)
            .map(|r| {
                let fams = Family::sequences();
                fams.filter(|&f| {
                    let deltas: Vec<f64> = r
                        .steps
                        .iter()
                        .filter(|s| s.family == f)
                        .map(|s| s.sign_delta)
                        .collect();
                    deltas.iter().sum::<f64>() < 0.0
                })
                .count() as f64
            })
            .collect();
        // `None` when the actual change is zero (at a vanishing learning rate), where a
        // relative error has no meaning.
        let error = |kernel: Kernel| -> Option<f64> {
            let last: Vec<&KernelPoint> = (self.runs.iter())
                .flat_map(|r| {
                    let end = r.kernels.last().map_or(0, |k| k.step);
                    r.kernels
                        .iter()
                        .filter(move |k| k.step == end && k.kernel == kernel)
                })
                .collect();
            let num: f64 = last.iter().map(|k| (k.predicted - k.actual).powi(2)).sum();
            let den: f64 = last.iter().map(|k| k.actual.powi(2)).sum();
            let relative = (num / den).sqrt();
            (den > 0.0 && relative.is_finite()).then_some(relative)
        };
        let shown =
            |e: Option<f64>| e.map_or("undefined, no actual change".into(), |e| format!("{e:.2}"));
        let families_of = |r: &SignalRun| -> Vec<f64> {
            (r.last_layer.chunks(families))
                .map(|c| {
                    let full: Vec<f64> = c.iter().map(|p| p.kernel_norm_sq).collect();
                    let last: Vec<f64> = c.iter().map(|p| p.last_layer_norm_sq).collect();
                    spearman(&full, &last)
                })
                .collect()
        };
        let norm_ranks: Vec<f64> = self.runs.iter().flat_map(families_of).collect();
        let of_points = |f: fn(&LastLayerPoint) -> f64| -> Vec<f64> {
            (self.runs.iter())
                .flat_map(|r| r.last_layer.iter().map(f))
                .collect()
        };
        let (entry_ranks, diagonal_ranks) = (
            of_points(|p| p.entry_spearman),
            of_points(|p| p.diagonal_spearman),
        );
        let never = |k: usize| {
            self.runs
                .iter()
                .filter(|r| r.frozen_exceeds[k].is_none())
                .count()
        };
        let runs = self.runs.len();
        let proxy_median = median(&proxy);
        let stable_median = median(&stability);
        let dpo_negative = median(&negative);
        let (full, last_layer, frozen) = (
            error(Kernel::Full),
            error(Kernel::LastLayer),
            error(Kernel::Frozen),
        );
        vec![
            Claim::new(
                "first_order_bound",
                within == points.len(),
                format!(
                    "the LBK of the first-order change is at most η²‖K‖²_F at {within}/{} family-steps; the paper's LBK, from the actual change, exceeds η²‖K‖²_F at {above}",
                    points.len()
                ),
            ),
            match proxy.len() {
                0 => Claim::new(
                    "proxy_ranks",
                    false,
                    "whether LBK ranks the families as ‖K‖²_F does: undefined (no update separates the families)".into(),
                ),
                n => Claim::new(
                    "proxy_ranks",
                    proxy_median >= 0.5,
                    format!(
                        "LBK ranks the families as ‖K‖²_F does, Spearman ≥ 0.5 per step (median over {n} steps {proxy_median:.2}; quartiles {:.2} to {:.2})",
                        crate::stats::quantile(&proxy, 0.25),
                        crate::stats::quantile(&proxy, 0.75)
                    ),
                ),
            },
            match stability.len() {
                0 => Claim::new(
                    "kernel_stable",
                    false,
                    "the paper's premise, that the families' ranking by ‖K‖²_F is stable: undefined (every signal trained for fewer than two epochs)".into(),
                ),
                n => Claim::new(
                    "kernel_stable",
                    stable_median >= 0.8,
                    format!(
                        "the paper's premise: the families' ranking by mean ‖K‖²_F over the first epoch matches the last epoch's, Spearman ≥ 0.8 (median over {n} signal runs {stable_median:.2})"
                    ),
                ),
            },
            Claim::new(
                "dpo_sign_delta",
                dpo_negative >= 8.0,
                format!(
                    "under DPO almost every family has a negative SignDelta summed over the run: at least 8 of {families} (median {dpo_negative:.0})"
                ),
            ),
            Claim::new(
                "last_layer",
                last_layer.is_some_and(|e| e <= 0.5),
                format!(
                    "the last-layer kernel predicts the accumulated change within 50% (relative error {}; the full kernel {}, the frozen kernel {})",
                    shown(last_layer),
                    shown(full),
                    shown(frozen)
                ),
            ),
            Claim::new(
                "last_layer_ranks_sizes",
                median(&norm_ranks) >= 0.5,
                format!(
                    "the last-layer kernel ranks the families by ‖K‖²_F as the full kernel does, Spearman ≥ 0.5 at an epoch's end (median over {} epoch ends {:.2}; first probe of each family)",
                    norm_ranks.len(),
                    median(&norm_ranks)
                ),
            ),
            Claim::new(
                "last_layer_entries",
                median(&entry_ranks) >= 0.5,
                format!(
                    "the last-layer kernel's entries rank as the full kernel's, Spearman ≥ 0.5 (median over {} probe kernels {:.2}, quartiles {:.2} to {:.2}; it is (h·h' + 1)·I per position pair, and over those token-diagonal entries alone the median is {:.2})",
                    entry_ranks.len(),
                    median(&entry_ranks),
                    crate::stats::quantile(&entry_ranks, 0.25),
                    crate::stats::quantile(&entry_ranks, 0.75),
                    median(&diagonal_ranks)
                ),
            ),
            Claim::new(
                "frozen_stays",
                never(1) * 5 >= runs * 4,
                format!(
                    "a frozen eNTK keeps the accumulated prediction within 25% of the exact one for the whole run on at least 4/5 of the signal runs ({}/{runs}; within 10%: {}, within 50%: {})",
                    never(1),
                    never(0),
                    never(2)
                ),
            ),
        ]
    }
}
