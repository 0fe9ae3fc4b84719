//! The lens's CSV tables: Fig. 8's per-step LBK, SignDelta and `‖K‖²_F`, the bound's gap
//! in its three factors, the kernels'
//! predictions against the actual change, the last layer's share, and when the frozen
//! kernel's error first crosses each threshold.

use super::{FROZEN_THRESHOLDS, Lens, SignalRun};
use crate::experiments::{Cell, Table};

impl Lens {
    /// Every number the figure draws, as CSV tables.
    pub(super) fn tables(&self) -> Vec<Table> {
        let fig8 = self.rows(
            |r| &r.steps,
            |r, s| {
                let (lbk, first) = (s.lbk, s.lbk_first_order);
                let (vocabulary, response) = (s.sign_delta_vocabulary, s.sign_delta_response);
                let (step, family, eta) = (s.step, s.family.id(), r.eta);
                crate::cells![
                    step,
                    family,
                    eta,
                    lbk,
                    first,
                    vocabulary,
                    response,
                    s.kernel_norm_sq
                ]
            },
        );
        let gap = (self.runs.iter())
            .flat_map(|r| {
                (r.steps.iter()).filter_map(move |s| {
                    let g = s.gap?;
                    let (kernel, adaptation, misalignment) =
                        (g.kernel, g.adaptation, g.misalignment);
                    Some(crate::cells![
                        r.signal.id(),
                        r.seed,
                        s.step,
                        s.family.id(),
                        kernel,
                        adaptation,
                        misalignment,
                        g.total()
                    ])
                })
            })
            .collect();
        let kernels = self.rows(
            |r| &r.kernels,
            |_, k| {
                let (step, kernel, family) = (k.step, k.kernel.id(), k.family.id());
                crate::cells![step, kernel, family, k.predicted, k.actual]
            },
        );
        let last_layer = self.rows(
            |r| &r.last_layer,
            |_, p| {
                let (full, last) = (p.kernel_norm_sq, p.last_layer_norm_sq);
                let (entries, diagonal) = (p.entry_spearman, p.diagonal_spearman);
                crate::cells![p.step, p.family.id(), full, last, entries, diagonal]
            },
        );
        let frozen = (self.runs.iter())
            .flat_map(|r| {
                FROZEN_THRESHOLDS
                    .iter()
                    .zip(r.frozen_exceeds)
                    .map(move |(t, s)| {
                        let step = s.map_or(Cell::from("never"), Cell::from);
                        vec![r.signal.id().into(), r.seed.into(), (*t).into(), step]
                    })
            })
            .collect();
        vec![
            Table::new(
                "lm_lens_fig8",
                "signal,seed,step,family,eta,lbk,lbk_first_order,sign_delta_vocabulary,sign_delta_response,kernel_norm_sq",
                fig8,
            ),
            Table::new(
                "lm_lens_gap",
                "signal,seed,step,family,kernel_factor,adaptation_factor,misalignment_factor,gap",
                gap,
            ),
            Table::new(
                "lm_lens_kernel",
                "signal,seed,step,kernel,family,predicted_change,actual_change",
                kernels,
            ),
            Table::new(
                "lm_lens_last_layer",
                "signal,seed,step,family,kernel_norm_sq,last_layer_norm_sq,entry_spearman,diagonal_spearman",
                last_layer,
            ),
            Table::new(
                "lm_lens_frozen",
                "signal,seed,relative_error,first_step",
                frozen,
            ),
        ]
    }

    /// One CSV row per item of every run, `signal,seed,` then what `row` writes.
    fn rows<T>(
        &self,
        items: impl Fn(&SignalRun) -> &[T],
        row: impl Fn(&SignalRun, &T) -> Vec<Cell>,
    ) -> Vec<Vec<Cell>> {
        let row = &row;
        (self.runs.iter())
            .flat_map(|r| {
                items(r).iter().map(move |item| {
                    let mut cells = crate::cells![r.signal.id(), r.seed];
                    cells.extend(row(r, item));
                    cells
                })
            })
            .collect()
    }
}
