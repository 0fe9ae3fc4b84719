//! The squeezing figure's claims, each checked on one run's cases.

use super::{Case, SqueezingResult};
use crate::experiments::Claim;

impl SqueezingResult {
    /// The figure's qualitative claims, each checked on this run's numbers.
    pub fn claims(&self) -> Vec<Claim> {
        let claim = |id: &'static str, holds: bool, text: String| Claim::new(id, holds, text);
        let s = |id| self.case(id).summary();
        let p = |lp: f64| lp.exp();
        let (pos, flat, valley) = (
            s(Case::Positive),
            s(Case::NegativeFlat),
            s(Case::NegativeValley),
        );
        let (side, mixed, large, on_max) = (
            s(Case::NegativePeakSide),
            s(Case::NegativeValleyWithPositive),
            s(Case::NegativeLargeVocab),
            s(Case::NegativeOnArgmax),
        );
        let v = |id| self.case(id).roles.len();
        let valley_gain = valley.y_star_log_p.1 - valley.y_star_log_p.0;
        let mixed_gain = mixed.y_star_log_p.1 - mixed.y_star_log_p.0;
        vec![
            claim(
                "positive_raises_target_alone",
                pos.rose == 1
                    && pos.pushed_log_p.1 > pos.pushed_log_p.0
                    && pos.entropy.1 < pos.entropy.0,
                format!(
                    "positive gradient (the paper's case A): {}/{} classes rose, the target alone; the old argmax falls (p {:.3} -> {:.3}) and the entropy with it ({:.2} -> {:.2} nats)",
                    pos.rose,
                    v(Case::Positive),
                    p(pos.y_star_log_p.0),
                    p(pos.y_star_log_p.1),
                    pos.entropy.0,
                    pos.entropy.1
                ),
            ),
            claim(
                "flat_spreads",
                flat.rose + 1 >= v(Case::NegativeFlat) * 9 / 10,
                format!(
                    "negative gradient on flat π spreads mass: {}/{} classes rose",
                    flat.rose,
                    v(Case::NegativeFlat)
                ),
            ),
            claim(
                "peaky_squeezes_into_argmax",
                side.rose == 1
                    && valley.rose == 1
                    && self.case(Case::NegativeValley).risen() == [valley.y_star],
                format!(
                    "negative gradient on a peaky π squeezes into y*: side bump {} rose, valley {} rose; p(y*) {:.3} -> {:.3}",
                    side.rose,
                    valley.rose,
                    p(valley.y_star_log_p.0),
                    p(valley.y_star_log_p.1)
                ),
            ),
            claim(
                "positive_cancels_squeezing",
                mixed.rose == 1 && mixed_gain.abs() < 0.1 * valley_gain,
                format!(
                    "adding a positive gradient cancels squeezing: {} class rose; Δlog p(y*) = {mixed_gain:+.3} instead of {valley_gain:+.3}",
                    mixed.rose
                ),
            ),
            claim(
                "large_vocab_falls",
                large.pushed_log_p.1 - large.pushed_log_p.0 < -10.0 * std::f64::consts::LN_10,
                format!(
                    "V = {}: the unlikely class falls {:.0} orders of magnitude; p(y*) {:.3} -> {:.3}",
                    v(Case::NegativeLargeVocab),
                    (large.pushed_log_p.0 - large.pushed_log_p.1) / std::f64::consts::LN_10,
                    p(large.y_star_log_p.0),
                    p(large.y_star_log_p.1)
                ),
            ),
            claim(
                "on_argmax_flattens",
                on_max.rose == v(Case::NegativeOnArgmax) - 1 && on_max.entropy.1 > on_max.entropy.0,
                format!(
                    "negative gradient on the argmax (on-policy) raises all {} others; entropy {:.2} -> {:.2} nats",
                    on_max.rose, on_max.entropy.0, on_max.entropy.1
                ),
            ),
        ]
    }
}
