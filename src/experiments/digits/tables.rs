//! The CSV tables of the digits run: their headers (the CSV contract) and rows.

use super::{DigitsResult, UPDATE_CLASS};
use crate::digits::CLASSES;
use crate::experiments::Cell;

/// The CSV header of `digits_heatmap.csv`.
pub const HEATMAP_HEADER: &str = "stage,observed_class,predicted_class,mean_prob";
/// The CSV header of `digits_entk.csv`.
pub const ENTK_HEADER: &str = "step,class_u,class_o,mean_k_fro";
/// The CSV header of `digits_one_step.csv`: one row per class of every image of Figure
/// 1(b) (`update`, `same class`, `similar`, `dissimilar`); the Δ columns are empty for
/// the update image.
pub const ONE_STEP_HEADER: &str =
    "image,label,k_fro,class,p_before,p_after,predicted_delta_log_pi,actual_delta_log_pi";
/// The CSV header of `digits_one_step_pixels.csv` (gray level in `[0, 1]`).
pub const PIXELS_HEADER: &str = "image,row,col,value";
/// The CSV header of `digits_accumulated.csv` (Figure 1c: 1000 cells).
pub const ACCUMULATED_HEADER: &str = "update_class,observed_class,class,predicted,actual";

impl DigitsResult {
    pub(super) fn heatmap_rows(&self) -> Vec<Vec<Cell>> {
        let mut rows = Vec::new();
        for (stage, m) in [
            ("early", &self.heatmap_early),
            ("final", &self.heatmap_final),
        ] {
            for (r, c) in (0..CLASSES).flat_map(|r| (0..CLASSES).map(move |c| (r, c))) {
                rows.push(crate::cells![stage, r, c, m[(r, c)]]);
            }
        }
        rows
    }

    pub(super) fn entk_rows(&self) -> Vec<Vec<Cell>> {
        self.entk
            .iter()
            .flat_map(|(step, m)| {
                (0..CLASSES).flat_map(move |u| {
                    (0..CLASSES).map(move |o| crate::cells![*step, u, o, m[(u, o)]])
                })
            })
            .collect()
    }

    pub(super) fn one_step_rows(&self) -> Vec<Vec<Cell>> {
        let fig = &self.one_step;
        let mut rows: Vec<Vec<Cell>> = (0..CLASSES)
            .map(|k| {
                crate::cells![
                    "update",
                    UPDATE_CLASS,
                    None,
                    k,
                    fig.update_pi.0[k],
                    fig.update_pi.1[k],
                    None,
                    None
                ]
            })
            .collect();
        for o in &fig.observed {
            let obs = &o.observation;
            for k in 0..CLASSES {
                rows.push(crate::cells![
                    o.kind,
                    o.label,
                    o.k_fro,
                    k,
                    obs.log_pi[k].exp(),
                    (obs.log_pi[k] + obs.actual[k]).exp(),
                    obs.predicted[k],
                    obs.actual[k]
                ]);
            }
        }
        rows
    }

    pub(super) fn pixel_rows(&self) -> Vec<Vec<Cell>> {
        let fig = &self.one_step;
        let images = std::iter::once(("update", &fig.update_image))
            .chain(fig.observed.iter().map(|o| (o.kind, &o.image)));
        images
            .flat_map(|(kind, image)| {
                (0..64).map(move |i| crate::cells![kind, i / 8, i % 8, image[i]])
            })
            .collect()
    }

    pub(super) fn accumulated_rows(&self) -> Vec<Vec<Cell>> {
        (0..CLASSES.pow(3))
            .map(|i| {
                let (u, o, k) = (i / (CLASSES * CLASSES), i / CLASSES % CLASSES, i % CLASSES);
                crate::cells![
                    u,
                    o,
                    k,
                    self.accumulated_predicted[i],
                    self.accumulated_actual[i]
                ]
            })
            .collect()
    }

    pub(super) fn summary_rows(&self) -> Vec<Vec<Cell>> {
        [
            ("steps", self.steps as f64),
            ("early_step", self.config.early_step as f64),
            ("one_step_eta", self.one_step.eta),
            ("test_accuracy", self.test_accuracy),
            ("accumulated_correlation", self.accumulated_correlation()),
            ("entk_ranking_spearman", self.entk_ranking_correlation()),
            ("entk_confusion_spearman", self.entk_heatmap_correlation()),
        ]
        .iter()
        .map(|&(metric, value)| crate::cells![metric, value])
        .collect()
    }
}
