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
//! * `K = J(x_o) J(x_u)ᵀ` — the empirical NTK of the logits ([`entk`], and structured
//!   beside each model);
//! * `G = ∂L/∂z(x_u)` — the loss residual, with the sign of the objective ([`objective`]).
//!
//! Every model here has hand-written analytic gradients, so `A`, `K` and `G` are exact.
//!
//! For sequences (the paper's Eq. 5) the logits of `χ = [x; y]` are a `V × L` matrix and the
//! same formula holds per response position `m`:
//! `Δ log π_m(χ_o) = −η A_m Σ_l K_{m,l}(χ_o, χ_u) G_l(χ_u) + O(η²)`. Nothing in the
//! decomposition is specific to classifiers: a pairwise loss such as DPO simply reads two
//! update sequences and returns one signed residual for each.
//!
//! **New here?** The [`tutorial`] teaches the theory in six short chapters of code that
//! runs, from one step of a softmax by hand to off-policy DPO's repeater.
//!
//! ## How one step is decomposed
//!
//! [`decomposition::one_step`] computes `G` and `∇_θ L = Jᵀ G` (one backward pass), takes
//! the SGD step on a copy of the model, and for each observed input computes the prediction
//! `A (J_o Δθ)` with one forward-mode pass, so `K` is never formed; the actual change comes
//! from the stepped copy. [`trainer::Trainer`] runs the same step in a loop and hands each
//! observer the model before and after, so experiments record predictions and actual
//! changes without owning a training loop. [`entk`] forms `K` when a figure needs it, either
//! explicitly (`J_o J_uᵀ`) or from the network's structure, and the two are tested equal.
//!
//! ## Example
//!
//! One SGD step on `(x_u, y = 2)` of a small tanh MLP, observed on another input: the
//! first-order prediction `−η A K G` and the actual change differ by `O(η²)`.
//!
//! ```
//! use learning_dynamics::decomposition::one_step;
//! use learning_dynamics::mlp::{Activation, Mlp};
//! use learning_dynamics::objective::CrossEntropy;
//! use learning_dynamics::Rng64;
//! use nalgebra::DVector;
//! use rand::SeedableRng;
//!
//! let mut rng = Rng64::seed_from_u64(0);
//! let model = Mlp::random(&[3, 8, 4], Activation::Tanh, true, &mut rng)?;
//! let x_u = DVector::from_vec(vec![0.5, -1.0, 2.0]);
//! let x_o = DVector::from_vec(vec![0.4, -0.8, 1.5]);
//! let step = one_step(&model, &[x_u], &CrossEntropy::positive(2), &[x_o], 1e-3)?;
//! let seen = &step.observed[0];
//! assert!(seen.predicted[2] > 0.0, "learning label 2 on x_u raises it on the similar x_o");
//! assert!(seen.residual().amax() < 1e-2 * seen.actual.amax());
//! # Ok::<(), learning_dynamics::Error>(())
//! ```
//!
//! ## Architecture
//!
//! The crate is four layers. A module imports only from its own layer or the layers below
//! it (a test, `tests/layers.rs`, checks every `crate::` path). Sideways, within the
//! experiments layer, an experiment imports only the layer's shared modules (listed
//! below), never another experiment; the same test checks that, also inside an experiment
//! that is a directory (its `mod.rs` runs it; its observers, claims and tables sit beside
//! it). So data flows one way:
//! **model → decomposition → experiment data → tables, figures and reports**.
//! A module holds one concept; a file that grows past 480 lines is split by concept into a
//! folder (`mod.rs` the concept's centre, its parts beside it), or says in its `//!` why
//! it is one. No modules of one folder import each other in a loop, and within the
//! outputs `io` comes first, then `plot` and `export`, then `explore` and `bench`, then
//! `gallery` (the same test checks both).
//!
//! **Core: the theory, for any model.**
//!
//! | module | owns |
//! |---|---|
//! | [`error`] | the crate's one error type |
//! | [`numerics`] | log-sum-exp, (log-)softmax per column, log-sigmoid, sequence log-probabilities, the adaptation matrix `A` (and `log π` with `A v` in place), the finiteness check of a step |
//! | [`vecmath`] | `exp` (≤ 1 ulp) and `tanh` (≤ 2 ulp) over slices, written to vectorise (eight, four or two lanes, as the processor has them), with the same bits on every machine; `clear_upper`, the `vzeroupper` every faer product is followed by |
//! | [`model`] | the [`Model`](model::Model) trait: logits, backprop `Jᵀg`, forward-mode `J dθ`, Jacobian, parameters, SGD |
//! | [`objective`] | losses as residuals `G` with their signs: cross-entropy (positive and negative gradients, SFT); [`objective::pairwise`]: DPO, IPO, SLiC, SPPO, and the remedies RPO and DPOP, each split into DPO's chosen term, its rejected term and an anchor on `y⁺` |
//! | [`decomposition`] | one SGD step: prediction `−ηAKG` next to the actual change |
//! | [`entk`] | the eNTK `J_o J_uᵀ` of any model from explicit Jacobians: the reference every structured kernel is tested against |
//! | [`lens`] | the paper's proxies for `K` (App. C.2): the LBK ratio and SignDelta, and the first-order change they bound |
//! | [`trainer`] | the SGD loop and its epochs; observers see the model before and after each step and record probes |
//! | [`progress`] | the stage a long run has reached (pre-training, SFT, DPO regime and update), for a terminal that watches; a caller's request to stop, honoured at every training step ([`Error::Interrupted`]) |
//! | [`squeezing`] | the squeezing effect of one step on a distribution (the paper's App. E) |
//! | [`stats`] | Pearson and Spearman correlation, quantiles and cosines for claims |
//!
//! **Models: concrete networks, their structured kernels, their updates and their data.**
//!
//! | module | owns |
//! |---|---|
//! | [`mlp`] | linear softmax classifiers and MLPs (tanh, ReLU) implementing the trait; [`mlp::kernel`]: their layer-wise eNTK and the batched full kernel of many inputs |
//! | [`lm`] | `TinyLm`: an autoregressive MLP language model over `χ = [x; y]`, teacher-forced, with sampling; [`lm::kernel`]: its structured eNTK, from kernel factors computed once per set of positions and shared by every kernel they enter; [`lm::step`]: its training step's forward pass (`mod`), gradient (`backward`) and JVPs (`tangent`), the first layer folded into the embeddings for large batches (`folded`), on faer with reused buffers (`buffers`); [`lm::update`]: its SFT and pairwise preference updates (the one place a preference update with a frozen reference is built) |
//! | [`language`] | the synthetic language (its grammar, facts, synonyms and instruction data) and, in `probes`, its probe-response [`Family`](language::Family)s |
//! | [`digits`] | the embedded UCI handwritten digits, with a seeded stratified split |
//!
//! **Experiments: one computation per figure group, configuration and seed in, data out.**
//!
//! | module | owns |
//! |---|---|
//! | [`experiments`] | the [`Experiment`](experiments::Experiment) trait (a [`Valid`](experiments::Valid) config, `run`, named `claims` with their counts as data, `tables` of typed columns: [`Table`](experiments::Table)), [`Settings`](experiments::Settings) with documented, range-checked keys, and the experiments: `squeezing`, `residuals`, `digits`, `lm_finetune`, `lm_influence`, `lm_lens`, `lm_policy`, `lm_losses`, `lm_sft_length`, `lm_extend`, `lm_remedies`, `lm_ches`; [`Pooled`](experiments::Pooled): a sweep's claims counted per cell, which the gallery pools and the plots draw |
//! | shared by the experiments | `settings`, `toys` (the linear softmax toys), `lm_world` (`config`; `world`: the world, its pre-trained models and SFT checkpoints shared per seed; `preference`: the pairwise update and the DPO rule of every regime), `lm_measures` (`families`, `answers`: greedy answers and the repeater, `attribution`: every update's change split by DPO's two terms, first-order, `squeezing`: squeezing at `y⁻`'s own positions at every update, by class of position and by term, `runs`: snapshots and updates of DPO runs), `comparison` (typed [`Metric`](experiments::comparison::Metric)s in `metric`, and the one [`Comparison`](experiments::comparison::Comparison) that owns the tables (`tables`) of `lm_policy`, `lm_losses`, `lm_extend` and `lm_remedies`, and trains their contenders seed by seed (`train`)) |
//!
//! **Outputs: everything that touches files, streams or the clock.**
//!
//! | module | owns |
//! |---|---|
//! | [`gallery`] | the registry, plans (configurations as TOML, `--config`, `--set`; the type-erased runner they run through), the runner (file naming, CSV tables, figures, robustness reruns), reports, and sweeps (`sweep`: the plan of a grid times a seed range; `sweep::run`: on threads or shards, claims pooled per cell; `sweep::merge`: `sweep.toml` and the merge of shards) |
//! | [`plot`] | figures as PNG files (embedded font, atomic writes), one `draw(&Data, path)` per figure; `plot::mechanism` the attribution row of the DPO comparisons |
//! | [`explore`] | `ldyn explore`: the interactive squeezing explorer, with the `cli` feature (default; off, the library carries no terminal crate) (its state machine in `mod`, one frame's rendering in `draw`, the terminal, keys and signals in `terminal`) |
//! | [`export`] | `ldyn akg`: every term of one step as JSON, for checking with other tools ([`export::classifier`], [`export::lm`]: with the reference, hyperparameters, loss and coefficients) |
//! | [`mod@bench`] | `ldyn bench`: medians against baselines run in the same command, per workload family: [`bench::mlp`] (the eNTK engine against the GEMM rate, the decomposition), [`bench::lm`] (the tiny LM's training steps, with a JSON export for peers) |
//! | [`io`] | writing files whole or not at all (temporary file and rename; devices written in place; links followed), checking outputs before the first write, the output directory's lock (`lock`), and reading user input files (`input`) |
//!
//! The `ldyn` binary (`src/bin/ldyn/`: `commands` the argument declarations, `handlers` the dispatch, `progress_line` the terminal's progress line) sits on top.
//! Beside it, the Python package (`python/`, a workspace member: `learning_dynamics`, built on
//! this library without the `cli` feature) maps each Python function onto an item here
//! (`one_step` onto [`decomposition::one_step`], `run` onto [`gallery::Plan`], …) and owns only
//! the conversions, the GIL and Ctrl-C; `docs/PYTHON.md` describes it.
//! The [`tutorial`] is documentation only: chapters whose code is tested with the crate.
//!
//! ## Conventions
//!
//! * Logits of one input are a `V × L` matrix, one column per scored position
//!   (`L = 1` for classifiers).
//! * A *positive gradient* on `y` is descent on `−log π(y)`: `G = π − e_y`. A *negative
//!   gradient* is ascent: `G = −(π − e_y)`. Residuals always carry their sign.
//! * Randomness comes from one named, portable generator ([`Rng64`]) seeded with
//!   `seed_from_u64`, so the same seed gives the same bytes everywhere.

#![warn(missing_docs)]

// Core: the theory, for any model.
pub mod decomposition;
pub mod error;
pub mod lens;
pub mod model;
pub mod numerics;
pub mod objective;
pub mod progress;
pub mod squeezing;
pub mod stats;
pub mod trainer;
pub mod vecmath;

// Models: concrete networks, their kernels and their data.
pub mod digits;
pub mod entk;
pub mod language;
pub mod lm;
pub mod mlp;

// Experiments: configuration and seed in, data out.
pub mod experiments;

// Outputs: files, figures, streams and timings.
pub mod bench;
#[cfg(feature = "cli")]
pub mod explore;
pub mod export;
pub mod gallery;
pub mod io;
pub mod plot;

// Documentation: the guided tour.
pub mod tutorial;

pub use error::{Error, Result};

/// The crate's random generator: portable across platforms and `rand` versions.
pub type Rng64 = rand::rngs::Xoshiro256PlusPlus;
