//! Figure 1's and Figure 7's claims, checked on one run's data, with the correlations
//! they rest on.

use nalgebra::DMatrix;

use super::{DigitsResult, UPDATE_CLASS};
use crate::digits::CLASSES;
use crate::experiments::Claim;
use crate::stats::{pearson, spearman};

/// Off-diagonal entries of a 10 × 10 matrix, row by row, with their `(row, column)`.
fn off_diagonal(m: &DMatrix<f64>) -> Vec<((usize, usize), f64)> {
    (0..CLASSES)
        .flat_map(|r| {
            (0..CLASSES)
                .filter(move |&c| c != r)
                .map(move |c| ((r, c), m[(r, c)]))
        })
        .collect()
}

/// The `n` cells with the largest values, as `(row, column, value)`.
fn largest(mut cells: Vec<((usize, usize), f64)>, n: usize) -> Vec<(usize, usize, f64)> {
    cells.sort_by(|a, b| b.1.total_cmp(&a.1));
    cells
        .into_iter()
        .take(n)
        .map(|((r, c), v)| (r, c, v))
        .collect()
}

impl DigitsResult {
    /// Correlation between the accumulated predicted and actual changes (all 1000 cells).
    pub fn accumulated_correlation(&self) -> f64 {
        pearson(&self.accumulated_predicted, &self.accumulated_actual)
    }

    /// Spearman correlation of the 90 off-diagonal class-pair eNTK norms between the
    /// first checkpoint after `early_step` and the final one.
    pub fn entk_ranking_correlation(&self) -> f64 {
        let early = self
            .entk
            .iter()
            .find(|(s, _)| *s >= self.config.early_step)
            .unwrap_or(&self.entk[0]);
        let last = self.entk.last().expect("at least one checkpoint");
        let values = |m: &DMatrix<f64>| {
            off_diagonal(m)
                .into_iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        spearman(&values(&early.1), &values(&last.1))
    }

    /// Spearman correlation between the final off-diagonal eNTK norms and the final
    /// off-diagonal heatmap cells (both symmetrised over the pair).
    pub fn entk_heatmap_correlation(&self) -> f64 {
        let k = &self.entk.last().expect("at least one checkpoint").1;
        let sym = |m: &DMatrix<f64>| (m + m.transpose()).scale(0.5);
        let (ks, hs) = (sym(k), sym(&self.heatmap_final));
        let upper = |m: &DMatrix<f64>| {
            off_diagonal(m)
                .into_iter()
                .filter(|((r, c), _)| r < c)
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        spearman(&upper(&ks), &upper(&hs))
    }

    /// The `n` largest off-diagonal cells of the final heatmap, `(true, predicted, mean π)`.
    pub fn top_confusions(&self, n: usize) -> Vec<(usize, usize, f64)> {
        largest(off_diagonal(&self.heatmap_final), n)
    }

    /// The `n` class pairs `u < o` with the largest final mean eNTK norm.
    pub fn top_entk_pairs(&self, n: usize) -> Vec<(usize, usize, f64)> {
        let k = &self.entk.last().expect("at least one checkpoint").1;
        largest(
            off_diagonal(k)
                .into_iter()
                .filter(|((r, c), _)| r < c)
                .collect(),
            n,
        )
    }

    /// Figure 1's claims, checked on this run.
    pub fn claims(&self) -> Vec<Claim> {
        let obs = &self.one_step.observed;
        let gain = |i: usize, k: usize| obs[i].observation.actual[k];
        let change = |i: usize| obs[i].observation.actual.norm();
        let (same, similar, dissimilar) = (0, 1, 2);
        let own = obs[similar].label;
        let r = self.accumulated_correlation();
        let rank = self.entk_ranking_correlation();
        let link = self.entk_heatmap_correlation();
        let fmt = |cells: Vec<(usize, usize, f64)>| {
            cells
                .iter()
                .map(|(a, b, v)| format!("{a}→{b} {v:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            Claim::new(
                "same_class_rises",
                gain(same, UPDATE_CLASS) > 0.0,
                format!(
                    "one step on a 4 raises log π(4) of another 4 by {:+.3}",
                    gain(same, UPDATE_CLASS)
                ),
            ),
            Claim::new(
                "similar_gains_on_update_label",
                gain(similar, UPDATE_CLASS) > 0.0
                    && gain(similar, UPDATE_CLASS) > gain(similar, own),
                format!(
                    "the most eNTK-similar other image (a {own}, ‖K‖_F {:.2}) gains on 4 ({:+.3}), not on its own label ({:+.3})",
                    obs[similar].k_fro,
                    gain(similar, UPDATE_CLASS),
                    gain(similar, own)
                ),
            ),
            Claim::new(
                "dissimilar_moves_least",
                change(dissimilar) < change(same).min(change(similar)),
                format!(
                    "the least similar image (a {}, ‖K‖_F {:.2}) moves least: ‖Δlog π‖ {:.4} vs {:.4} (same class) and {:.4} (similar)",
                    obs[dissimilar].label,
                    obs[dissimilar].k_fro,
                    change(dissimilar),
                    change(same),
                    change(similar)
                ),
            ),
            Claim::new(
                "accumulated_prediction",
                r > 0.9,
                format!(
                    "accumulated predicted vs actual Δlog π over {} steps: correlation {r:.4}",
                    self.steps
                ),
            ),
            Claim::new(
                "entk_ranking_stable",
                rank > 0.7,
                format!("eNTK class-pair ranking, early vs final checkpoint: Spearman {rank:.2}"),
            ),
            Claim::new(
                "entk_predicts_confusion",
                link > 0.0,
                format!(
                    "pairs with larger eNTK share more probability (Spearman {link:.2}); top eNTK pairs {}; top confusions {}; test accuracy {:.3}",
                    fmt(self.top_entk_pairs(3)),
                    fmt(self.top_confusions(3)),
                    self.test_accuracy
                ),
            ),
        ]
    }
}
