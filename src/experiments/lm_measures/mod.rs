//! What the LM experiments measure: the probe families' log-probabilities and
//! peakiness, the greedy statistics per prefix and position, the repeater, squeezing at
//! `y⁻`'s own positions, and the [`Snapshot`] of all of them that DPO runs record over training ([`DpoRun`]).

//!
//! | module | owns |
//! |---|---|
//! | `families` | [`FamilyPoint`], [`PositionPoint`], [`Tracker`], [`curve`] |
//! | `answers` | [`greedy_answers`], [`Repeater`] |
//! | `attribution` | [`Attribution`]: every family's change split by DPO's two terms, [`AttributionTracker`] |
//! | `lens` | [`LensPoint`]: the paper's LBK proxy and SignDelta of one update next to the exact kernel |
//! | `squeezing` | [`PositionRecord`]: squeezing at `y⁻`'s own positions at every update, by [`Class`] and [`Source`], [`SqueezingTracker`], the aggregate [`Group`]s |
//! | `runs` | [`Snapshot`], [`SnapshotTracker`], [`SftPhase`], [`DpoRun`], [`DpoCounts`], [`UpdateRecord`] |

mod answers;
mod attribution;
mod families;
mod lens;
mod runs;
mod squeezing;

pub use answers::*;
pub use attribution::*;
pub use families::*;
pub use lens::*;
pub use runs::*;
pub use squeezing::*;

#[cfg(doc)]
use crate::lm::TinyLm;

/// The centred hidden-embedding similarity of a preference pair (Razin et al., 2024),
/// `CHES = ⟨h⁺, h⁻⟩ − ‖h⁺‖²`, from the response representations `h±`
/// ([`TinyLm::response_hidden_sum`]). A large CHES means `y⁻` looks like `y⁺` to the
/// network, and predicts that DPO displaces `y⁺`'s likelihood the most.
pub fn ches(h_plus: &[f64], h_minus: &[f64]) -> f64 {
    h_plus.iter().zip(h_minus).map(|(p, m)| p * m - p * p).sum()
}
