//! The residual schematic's claims, each checked on one run's panels.

use super::{Case, Residuals};
use crate::experiments::Claim;

impl Residuals {
    pub(super) fn claims(&self) -> Vec<Claim> {
        let squeezing: Vec<Case> = self
            .panels
            .iter()
            .filter(|p| p.delta_p(self.argmax) > p.delta_p(p.chosen))
            .map(|p| p.id)
            .collect();
        let off = self.panel(Case::OffPolicyDpo);
        let on_policy: Vec<String> = Case::ON_POLICY
            .iter()
            .map(|&id| {
                let (before, after) = self.panel(id).entropy();
                format!("{} {before:.2} → {after:.2}", id.id())
            })
            .collect();
        let flattens = Case::ON_POLICY.iter().all(|&id| {
            let (before, after) = self.panel(id).entropy();
            after > before - ENTROPY_TOLERANCE
        });
        let sppo = self.panel(Case::SppoHard);
        let names: Vec<&str> = squeezing.iter().map(|o| o.id()).collect();
        let cosine = crate::stats::cosine(&off.g, &sppo.g);
        vec![
            Claim::new(
                "only_valleys_squeeze",
                squeezing == [Case::OffPolicyDpo, Case::SppoHard],
                format!(
                    "the argmax gains more mass than the pushed-up y⁺ only where y⁻ is pushed down in a valley, off-policy DPO (Δπ(argmax) {:+.3} vs Δπ(y⁺) {:+.3}) and SPPO (the paper's Fig. 2 expects off-policy DPO alone; see the SPPO claim); panels where it does: {}",
                    off.delta_p(self.argmax),
                    off.delta_p(off.chosen),
                    names.join(", ")
                ),
            ),
            Claim::new(
                "on_policy_flattens",
                flattens,
                format!(
                    "the on-policy panels raise the entropy or change it by less than {ENTROPY_TOLERANCE} nats: {}",
                    on_policy.join("; ")
                ),
            ),
            Claim::new(
                "sppo_first_step_is_dpos",
                (cosine - 1.0).abs() < 1e-9,
                format!(
                    "at its first step SPPO's residual points exactly where off-policy DPO's does (cosine {cosine:.6}: s⁺ = s⁻ while r± = 0), so it squeezes as much; the paper's \"two positive vectors\" reading of Fig. 2 holds only once r⁻ < −η_s/2"
                ),
            ),
        ]
    }
}

/// The entropy change below which a step counts as leaving the entropy unchanged.
const ENTROPY_TOLERANCE: f64 = 0.01;
