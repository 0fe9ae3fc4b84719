//! # learning-dynamics
//!
//! Exact, tested reproductions of *Learning Dynamics of LLM Finetuning*
//! (Ren & Sutherland, ICLR 2025) on models small enough for a laptop CPU.
//!
//! The paper explains finetuning with a one-step decomposition: learning an example
//! `x_u` changes the log-probabilities on another example `x_o` by
//!
//! `Δ log π(x_o) = −η · A(x_o) · K(x_o, x_u) · G(x_u) + O(η²)`
//!
//! * `A = I − 1πᵀ` — the Jacobian of log-softmax at `x_o` ([`numerics`]);
//! * `K = J(x_o) J(x_u)ᵀ` — the empirical NTK of the logits ([`entk`]);
//! * `G = ∂L/∂z(x_u)` — the loss residual, with the sign of the objective ([`objective`]).
//!
//! Every model here has hand-written analytic gradients, so `A`, `K` and `G` are exact.
//!
//! ## Architecture
//!
//! Data flows one way: **model → decomposition → experiment results → CSV + plot**.
//!
//! | module | owns |
//! |---|---|
//! | [`numerics`] | log-sum-exp, (log-)softmax per column, log-sigmoid, the adaptation matrix `A` |
//! | [`model`] | the [`Model`](model::Model) trait: logits, backprop `Jᵀg`, forward-mode `J dθ`, Jacobian, parameters, SGD |
//! | [`mlp`] | linear softmax classifiers and MLPs (tanh, ReLU) implementing the trait |
//! | [`lm`] | `TinyLm`: an autoregressive MLP language model over `χ = [x; y]`, teacher-forced, with sampling |
//! | [`language`] | the synthetic language (facts, synonyms, format) and its probe-response families |
//! | [`entk`] | the eNTK two ways: explicit Jacobians and the layer-wise structured formula |
//! | [`objective`] | losses as residuals `G` with their signs (cross-entropy, positive and negative gradients) |
//! | [`bench`] | `ldyn bench`: medians of the eNTK engine and the decomposition against same-process baselines |
//! | [`decomposition`] | one SGD step: prediction `−ηAKG` next to the actual change |
//! | [`trainer`] | the SGD loop; observers see the model before and after each step and record probes |
//! | [`digits`] | the embedded UCI handwritten digits, with a seeded stratified split |
//! | [`stats`] | Pearson and Spearman correlation for claims |
//! | [`squeezing`] | the squeezing effect of a negative gradient (the paper's App. E toy) |
//! | [`experiments`] | the registry of figures: run by name with a seed, write CSV and PNG |
//! | [`export`] | `ldyn akg`: every term of one step as JSON, for checking with other tools |
//! | [`plot`] | figures as PNG files (embedded font, atomic writes) |
//! | [`io`] | writing files whole or not at all, and reading user input files |
//! | [`error`] | the crate's one error type |
//!
//! The `ldyn` binary (`src/main.rs`) and the examples are thin shells over this library.
//!
//! ## Conventions
//!
//! * Logits of one input are a `V × L` matrix, one column per scored position
//!   (`L = 1` for classifiers).
//! * A *positive gradient* on `y` is descent on `−log π(y)`: `G = π − e_y`. A *negative
//!   gradient* is ascent: `G = −(π − e_y)`. Residuals always carry their sign.
//! * Randomness comes from one named, portable generator ([`Rng64`]) seeded with
//!   `seed_from_u64`, so the same seed gives the same bytes everywhere.

pub mod bench;
pub mod decomposition;
pub mod digits;
pub mod entk;
pub mod error;
pub mod experiments;
pub mod export;
pub mod io;
pub mod language;
pub mod lm;
pub mod mlp;
pub mod model;
pub mod numerics;
pub mod objective;
pub mod plot;
pub mod squeezing;
pub mod stats;
pub mod trainer;

pub use error::{Error, Result};

/// The crate's random generator: portable across platforms and `rand` versions.
pub type Rng64 = rand::rngs::Xoshiro256PlusPlus;
