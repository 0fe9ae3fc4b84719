//! The squeezing effect: what one positive or negative gradient step does to a whole
//! softmax distribution (the paper's §3.3 and App. E).
//!
//! For softmax regression the step on a label `k` with size `c = η‖x‖² > 0` moves the
//! logits by
//!
//! `Δz = +c (π − e_k)` (negative gradient: `π_k` is pushed down) or
//! `Δz = −c (π − e_k)` (positive gradient: `π_k` is pulled up),
//!
//! and each class is rescaled by `π'_i / π_i = exp(Δz_i) / Z` with `Z = Σ_j π_j exp(Δz_j)`
//! (Lemma 1: exact, since `Δz` is). A negative gradient always lowers `π_k`
//! (every `i ≠ k` gains `c π_i > 0 > −c(1 − π_k)`, so `Z > exp(Δz_k)`) and always raises
//! `y* = argmax_{i≠k} π_i` (every exponent is at most `c π_{y*}`, so `Z < exp(Δz_{y*})`);
//! a class `i ≠ k` rises exactly when `π_i > log Z / c`, a threshold between
//! `‖π‖² − π_k` and `π_{y*}`; the freed mass is *squeezed* toward `y*`, more so the peakier
//! `π` and the smaller `π_k`. [`Squeeze`] records the distribution before and after
//! such a step, in the log domain so that nothing underflows.

use nalgebra::DMatrix;

use crate::error::{Error, Result, check_class, check_step};
use crate::numerics::{entropy_from_log, log_softmax_columns};

/// The direction of the gradient on the pushed class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Descent on `−log π(k)`: `π(k)` rises.
    Positive,
    /// Ascent on `−log π(k)`: `π(k)` falls.
    Negative,
}

impl std::str::FromStr for Direction {
    type Err = Error;

    /// Parses `positive` or `negative`.
    fn from_str(s: &str) -> Result<Self> {
        let directions = [
            ("positive", Direction::Positive),
            ("negative", Direction::Negative),
        ];
        crate::error::pick("direction", s, &directions)
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Positive => "positive",
            Direction::Negative => "negative",
        })
    }
}

/// The part a class plays in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The class receives a negative gradient.
    Negative,
    /// The class receives a positive gradient.
    Positive,
    /// Not pushed directly.
    Other,
}

impl Role {
    /// The name used in CSV files.
    pub fn name(self) -> &'static str {
        match self {
            Role::Negative => "negative",
            Role::Positive => "positive",
            Role::Other => "other",
        }
    }
}

/// A distribution before and after one step, as log-probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct Squeeze {
    /// `log π` before the step.
    pub log_p_before: Vec<f64>,
    /// `log π` after the step.
    pub log_p_after: Vec<f64>,
    /// What each class received.
    pub roles: Vec<Role>,
}

/// The per-step summary that the example and the CLI print.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Number of classes whose probability rose.
    pub rose: usize,
    /// Number of classes `V`.
    pub classes: usize,
    /// The pushed class (the negative one if there is one, else the positive one).
    pub pushed: usize,
    /// `y* = argmax` of the prior distribution over the classes that were not pushed.
    pub y_star: usize,
    /// `(log π_before, log π_after)` of the pushed class.
    pub pushed_log_p: (f64, f64),
    /// `(log π_before, log π_after)` of `y*`.
    pub y_star_log_p: (f64, f64),
    /// Entropy before and after, in nats.
    pub entropy: (f64, f64),
}

impl Squeeze {
    /// Applies `Δz = ±c (π − e_k)` to the logits `z` (see the module docs for the sign).
    ///
    /// ```
    /// use learning_dynamics::squeezing::{Direction, Squeeze};
    ///
    /// // A negative gradient on the unlikely class 3 squeezes its mass into the argmax 0.
    /// let s = Squeeze::from_logit_step(&[4.0, 2.0, 1.0, -6.0], 3, Direction::Negative, 2.0)?;
    /// assert_eq!(s.risen(), vec![0]);
    /// # Ok::<(), learning_dynamics::Error>(())
    /// ```
    ///
    /// # Errors
    /// Fewer than 2 classes, `class` out of range, non-finite logits, or `step` not
    /// finite and positive.
    pub fn from_logit_step(
        z: &[f64],
        class: usize,
        direction: Direction,
        step: f64,
    ) -> Result<Self> {
        check_class(class, z.len())?;
        check_step("step", step)?;
        if !z.iter().all(|v| v.is_finite()) {
            return Err(Error::NonFinite("logits"));
        }
        let (lo, hi) = z
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        if !(hi - lo).is_finite() {
            return Err(Error::InvalidArgument(
                "the logits span more than a double can hold (max − min overflows)".into(),
            ));
        }
        let before = log_softmax_columns(&DMatrix::from_column_slice(z.len(), 1, z));
        let sign = match direction {
            Direction::Negative => step,
            Direction::Positive => -step,
        };
        let dz: Vec<f64> = before
            .iter()
            .enumerate()
            .map(|(i, lp)| sign * (lp.exp() - f64::from(u8::from(i == class))))
            .collect();
        let mut roles = vec![Role::Other; z.len()];
        roles[class] = match direction {
            Direction::Negative => Role::Negative,
            Direction::Positive => Role::Positive,
        };
        Squeeze::from_logit_change(z, &dz, roles)
            .map_err(|_| Error::InvalidArgument(format!(
                "the step C = {step} is too large: the logits after it span more than a double can hold"
            )))
    }

    /// The distribution of the logits `z` before and after they move by `dz`, with the
    /// classes' `roles`.
    ///
    /// # Errors
    /// If the logits after the move span more than a double can hold.
    pub fn from_logit_change(z: &[f64], dz: &[f64], roles: Vec<Role>) -> Result<Self> {
        let after: Vec<f64> = z.iter().zip(dz).map(|(a, b)| a + b).collect();
        let (lo, hi) = after
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        if !(hi - lo).is_finite() {
            return Err(Error::InvalidArgument(
                "the logits after the step span more than a double can hold".into(),
            ));
        }
        let log_p = |v: &[f64]| {
            log_softmax_columns(&DMatrix::from_column_slice(v.len(), 1, v))
                .as_slice()
                .to_vec()
        };
        Ok(Squeeze {
            log_p_before: log_p(z),
            log_p_after: log_p(&after),
            roles,
        })
    }

    /// Indices of the classes whose probability rose (compared in the log domain).
    pub fn risen(&self) -> Vec<usize> {
        (0..self.log_p_before.len())
            .filter(|&i| self.log_p_after[i] > self.log_p_before[i])
            .collect()
    }

    /// The class whose log-probability fell the most, if any fell.
    pub fn largest_fall(&self) -> Option<usize> {
        (0..self.log_p_before.len())
            .map(|i| (i, self.log_p_after[i] - self.log_p_before[i]))
            .filter(|&(_, d)| d < 0.0)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// How many classes rose, the pushed class and `y*`, and the entropies.
    pub fn summary(&self) -> Summary {
        let pushed = self
            .roles
            .iter()
            .position(|r| *r == Role::Negative)
            .or_else(|| self.roles.iter().position(|r| *r == Role::Positive))
            .unwrap_or(0);
        let y_star = (0..self.roles.len())
            .filter(|&i| self.roles[i] == Role::Other)
            .max_by(|&a, &b| self.log_p_before[a].total_cmp(&self.log_p_before[b]))
            .unwrap_or(pushed);
        let pair = |i: usize| (self.log_p_before[i], self.log_p_after[i]);
        Summary {
            rose: self.risen().len(),
            classes: self.roles.len(),
            pushed,
            y_star,
            pushed_log_p: pair(pushed),
            y_star_log_p: pair(y_star),
            entropy: (
                entropy_from_log(&self.log_p_before),
                entropy_from_log(&self.log_p_after),
            ),
        }
    }

    /// CSV rows `class,[role,]p_before,p_after,log_p_before,log_p_after` (no header).
    /// The log columns keep the values that underflow to 0 in the linear ones.
    pub fn csv_rows(&self, with_role: bool) -> impl Iterator<Item = String> + '_ {
        (0..self.roles.len()).map(move |i| {
            let (b, a) = (self.log_p_before[i], self.log_p_after[i]);
            let role = if with_role {
                format!("{},", self.roles[i].name())
            } else {
                String::new()
            };
            format!("{i},{role}{},{},{b},{a}", b.exp(), a.exp())
        })
    }
}

impl std::fmt::Display for Summary {
    /// One line: how many classes rose, the pushed class, `y*`, and the entropies.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (pb, pa) = self.pushed_log_p;
        let (sb, sa) = self.y_star_log_p;
        write!(
            f,
            "{}/{} classes rose; pushed class {}: p {:.3e} -> {:.3e} (Δlog p {:+.3}); y* = {}: p {:.3e} -> {:.3e} (Δlog p {:+.3}); entropy {:.3} -> {:.3} nats",
            self.rose,
            self.classes,
            self.pushed,
            pb.exp(),
            pa.exp(),
            pa - pb,
            self.y_star,
            sb.exp(),
            sa.exp(),
            sa - sb,
            self.entropy.0,
            self.entropy.1
        )
    }
}
