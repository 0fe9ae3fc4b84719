//! `ldyn explore`: an interactive squeezing explorer in the terminal.
//!
//! A distribution `π = softmax(z)` is shown as bars, linear and log (the log panel reaches
//! down to the smallest `π` on screen, 1e-300 at most), each beside a gray ghost of `π`
//! before the last step; the status line names the classes that rose, and `?` opens an
//! overlay that explains every symbol. The learner picks a class and takes gradient steps
//! on the logits, as in [`crate::squeezing`]:
//!
//! * a positive or negative step on the selected class, `Δz = ∓C(π − e_k)`;
//! * an SFT step, positive on the marked `y⁺`;
//! * a DPO step on the marked `y⁺` and `y⁻`, `Δz = −(C/β)(ρ G⁺ + G⁻)`, with the residuals of
//!   [`Pairwise`] against the reference distribution (the one at the last reset), and the
//!   chosen context at similarity `ρ` = [`SIMILARITY`] to the rejected one, as in
//!   `ldyn run residuals` (with `ρ = 1`, DPO's `π` terms would cancel).
//!
//! The state and its transitions are a plain struct, [`Explorer`], tested without a
//! terminal (this module); [`draw`] renders one frame (`draw.rs`); [`run`] owns the
//! terminal (raw mode, the alternate screen, the key loop, signals and hang-ups) and
//! restores it on every exit (`terminal.rs`).

mod draw;
mod terminal;

pub use draw::{HELP, SYMBOLS, draw, probability};
pub use terminal::{require_terminal, run};

use crate::error::{Error, Result};
use crate::numerics::{entropy_from_log, log_softmax};
use crate::objective::{PairLoss, Pairwise};
use crate::squeezing::{Direction, Role, Squeeze};

/// The relative similarity `K(χ⁻, χ⁺)/K(χ⁻, χ⁻)` of the DPO step's two contexts.
pub const SIMILARITY: f64 = 0.5;

/// The logits shown when none are given: a peaky distribution over 12 classes.
pub const DEFAULT_LOGITS: [f64; 12] = [
    1.0, 2.5, 4.0, 2.0, 1.5, 0.5, 0.0, -0.5, -1.0, -2.0, -3.0, -4.0,
];

/// What a key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Select the class to the left.
    Left,
    /// Select the class to the right.
    Right,
    /// A positive step on the selected class.
    Positive,
    /// A negative step on the selected class.
    Negative,
    /// Mark the selected class as `y⁺`.
    MarkChosen,
    /// Mark the selected class as `y⁻`.
    MarkRejected,
    /// An SFT step: positive on `y⁺`.
    Sft,
    /// A DPO step on `y⁺` and `y⁻`.
    Dpo,
    /// Double the step size.
    Larger,
    /// Halve the step size.
    Smaller,
    /// Back to the loaded logits, which also become DPO's reference.
    Reset,
    /// Show or hide the help overlay that explains every symbol on screen.
    Help,
}

/// The explorer's state.
#[derive(Clone, Debug)]
pub struct Explorer {
    loaded: Vec<f64>,
    logits: Vec<f64>,
    reference: Vec<f64>,
    /// The class the cursor is on.
    pub selected: usize,
    /// DPO's and SFT's `y⁺`.
    pub chosen: usize,
    /// DPO's `y⁻`.
    pub rejected: usize,
    /// The step size `C`.
    pub step: f64,
    /// DPO's β.
    pub beta: f64,
    last: Option<Squeeze>,
    /// A one-line note on the last key (an error, or what happened).
    pub message: String,
    /// Whether the help overlay is shown.
    pub help: bool,
}

impl Explorer {
    /// An explorer of `logits`, with the cursor on the argmax, `y⁺` the second most likely
    /// class and `y⁻` the least likely.
    ///
    /// # Errors
    /// Fewer than 2 logits, or a non-finite one.
    pub fn new(logits: Vec<f64>) -> Result<Self> {
        if logits.len() < 2 {
            return Err(Error::InvalidArgument(
                "explore needs at least 2 logits".into(),
            ));
        }
        if !logits.iter().all(|z| z.is_finite()) {
            return Err(Error::NonFinite("logits"));
        }
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let reference = log_pi(&logits);
        // y⁺ is the runner-up and y⁻ the least likely class; with two classes, the two.
        let last = order.len() - 1;
        Ok(Explorer {
            selected: order[0],
            chosen: order[1.min(last - 1)],
            rejected: order[last],
            loaded: logits.clone(),
            logits,
            reference,
            step: 2.0,
            beta: 0.1,
            last: None,
            message: String::new(),
            help: false,
        })
    }

    /// `log π` now.
    pub fn log_pi(&self) -> Vec<f64> {
        log_pi(&self.logits)
    }

    /// The entropy of `π`, in nats.
    pub fn entropy(&self) -> f64 {
        entropy_from_log(&self.log_pi())
    }

    /// `y*`: the most likely class that a step on the selected class `k` does not push,
    /// `argmax_{i≠k} π_i`, as everywhere else in the crate (the squeezing theorems,
    /// `ldyn squeeze`).
    pub fn y_star(&self) -> usize {
        let lp = self.log_pi();
        (0..lp.len())
            .filter(|&i| i != self.selected)
            .max_by(|&a, &b| lp[a].total_cmp(&lp[b]))
            .unwrap_or(0)
    }

    /// How many classes rose on the last step (`None` before the first).
    pub fn rose(&self) -> Option<usize> {
        self.last.as_ref().map(|s| s.risen().len())
    }

    /// The classes that rose on the last step (empty before the first).
    pub fn risen(&self) -> Vec<usize> {
        self.last.as_ref().map_or_else(Vec::new, Squeeze::risen)
    }

    /// `log π` before the last step (the ghost on screen), if there was one.
    pub fn previous(&self) -> Option<&[f64]> {
        self.last.as_ref().map(|s| s.log_p_before.as_slice())
    }

    /// The log panel's lower limit in `log₁₀ π`: a tenth below the smallest `π` on screen
    /// (now or in the ghost), so that its bar still shows, at most −1 and at least −330,
    /// so that `π` down to 1e-300 is drawn.
    pub fn log_floor(&self) -> f64 {
        let smallest = (self.log_pi().iter())
            .chain(self.previous().into_iter().flatten())
            .map(|l| l / std::f64::consts::LN_10)
            .fold(0.0, f64::min);
        (1.1 * smallest.max(-300.0)).floor().min(-1.0)
    }

    /// Applies one key's action. A step that cannot be taken (too large for a double)
    /// leaves the state as it was and says why in [`Explorer::message`].
    pub fn apply(&mut self, action: Action) {
        let v = self.logits.len();
        self.message.clear();
        let stepped = match action {
            Action::Left => {
                self.selected = (self.selected + v - 1) % v;
                Ok(None)
            }
            Action::Right => {
                self.selected = (self.selected + 1) % v;
                Ok(None)
            }
            Action::MarkChosen | Action::MarkRejected => {
                let other = if action == Action::MarkChosen {
                    self.rejected
                } else {
                    self.chosen
                };
                if self.selected == other {
                    self.message = "y⁺ and y⁻ must differ".into();
                } else if action == Action::MarkChosen {
                    self.chosen = self.selected;
                } else {
                    self.rejected = self.selected;
                }
                Ok(None)
            }
            Action::Larger => {
                self.step = (self.step * 2.0).min(1024.0);
                Ok(None)
            }
            Action::Smaller => {
                self.step = (self.step / 2.0).max(1.0 / 1024.0);
                Ok(None)
            }
            Action::Help => {
                self.help = !self.help;
                Ok(None)
            }
            Action::Reset => {
                self.logits = self.loaded.clone();
                self.reference = log_pi(&self.logits);
                self.last = None;
                self.message = "reset: this distribution is DPO's reference".into();
                Ok(None)
            }
            Action::Positive => self.push(self.selected, Direction::Positive).map(Some),
            Action::Negative => self.push(self.selected, Direction::Negative).map(Some),
            Action::Sft => self.push(self.chosen, Direction::Positive).map(Some),
            Action::Dpo => self.dpo().map(Some),
        };
        match stepped {
            Ok(Some(squeeze)) => {
                self.logits = squeeze.log_p_after.clone();
                self.last = Some(squeeze);
            }
            Ok(None) => {}
            Err(e) => self.message = e.to_string(),
        }
    }

    fn push(&self, class: usize, direction: Direction) -> Result<Squeeze> {
        Squeeze::from_logit_step(&self.logits, class, direction, self.step)
    }

    fn dpo(&self) -> Result<Squeeze> {
        let v = self.logits.len();
        let z = nalgebra::DMatrix::from_column_slice(v, 1, &self.logits);
        let pair = Pairwise::classes(
            PairLoss::Dpo,
            self.beta,
            (self.chosen, self.rejected),
            &self.reference,
        );
        let dz: Vec<f64> = pair
            .shared_residual(&z, SIMILARITY)
            .iter()
            .map(|g| -self.step / self.beta * g)
            .collect();
        let mut roles = vec![Role::Other; v];
        roles[self.chosen] = Role::Positive;
        roles[self.rejected] = Role::Negative;
        Squeeze::from_logit_change(&self.logits, &dz, roles)
    }
}

fn log_pi(logits: &[f64]) -> Vec<f64> {
    log_softmax(nalgebra::DVector::from_column_slice(logits).as_view())
        .iter()
        .copied()
        .collect()
}
