//! The command line's declarations: every command, flag and help text (clap). The
//! closed sets of names are parsed by the library's `FromStr` types.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use learning_dynamics::Result;
use learning_dynamics::bench::{LmWorkload, Workload};
use learning_dynamics::export::{ModelKind, Reference};
use learning_dynamics::gallery::Plan;
use learning_dynamics::io::parse_number_list;
use learning_dynamics::objective::{DpopForm, LmObjective, RpoWeighting};
use learning_dynamics::squeezing::Direction;

#[derive(Parser)]
#[command(
    name = "ldyn",
    version,
    about = "Exact learning dynamics of softmax models (Ren & Sutherland, ICLR 2025)"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Memory budget in GiB: a command that would need more refuses to start.
    #[arg(long, global = true, value_name = "GIB", default_value_t = 4.0)]
    pub(crate) max_memory: f64,
}

/// `ldyn explore --help`'s list of keys.
pub(crate) const EXPLORE_KEYS: &str = "Keys:
  ←/→ or h/l   select a class (▲)
  p / n        a positive / negative gradient step on the selected class
  c / r        mark the selected class as y⁺ (chosen) / y⁻ (rejected)
  s            an SFT step: positive on y⁺
  d            a DPO step on y⁺ and y⁻, against the reference (π at the last reset)
  + / -        double / halve the step size C
  0            reset to the loaded logits, which become DPO's reference
  ?            show / hide what every symbol on screen means
  q, Esc       quit";

/// Where `run` and `gallery` write by default: the repository's committed figures.
pub(crate) const COMMITTED_FIGURES: &str = "plots";

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run one experiment: its CSV tables, PNG figures and NAME.config.toml go to --out.
    Run {
        /// Experiment name or alias (see `ldyn list`).
        #[arg(value_name = "NAME")]
        plan: Plan,
        /// Random seed (default: the experiment's own, or the --config file's).
        #[arg(long)]
        seed: Option<u64>,
        /// A TOML configuration (as `ldyn config NAME` prints, or a run wrote).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override one key, `key=value` (dotted for nested keys); repeatable, applied in order.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Output directory: `plots/`, the committed figures, unless given (a terminal is
        /// warned when settings other than the seed would replace them).
        #[arg(long, default_value = COMMITTED_FIGURES)]
        out: PathBuf,
    },
    /// Run one experiment over a grid of settings and a range of seeds, in parallel, and
    /// count on how many seeds each claim holds per cell (`ldyn sweep merge DIR… --out D`
    /// pools the shards of a sharded sweep).
    Sweep {
        /// Experiment name or alias; or `merge`, followed by the shards' directories.
        #[arg(value_name = "NAME")]
        name: String,
        /// With `merge`: the directories the shards wrote.
        #[arg(value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Seeds A..B: A, A + 1, …, B − 1 (default: the experiment's seed and the 4 after it).
        #[arg(long, value_name = "A..B")]
        seeds: Option<String>,
        /// A key and its values, `KEY=V1,V2,…`; repeatable: the cells are every combination.
        #[arg(long = "grid", value_name = "KEY=V1,V2")]
        grids: Vec<String>,
        /// Override one key for every run, `key=value`; repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// A TOML configuration for every run.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output directory (default: sweeps/NAME; required with merge).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Runs at once (default: the number of cores).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
        jobs: Option<u64>,
        /// Only the runs whose number is I mod N.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
    /// Run every experiment with its defaults.
    Gallery {
        /// Output directory: `plots/`, the committed figures, unless given.
        #[arg(long, default_value = COMMITTED_FIGURES)]
        out: PathBuf,
    },
    /// List the experiments.
    List,
    /// Print an experiment's default configuration as TOML, one documented key a line.
    Config {
        /// Experiment name or alias.
        #[arg(value_name = "NAME")]
        plan: Plan,
    },
    /// Apply one gradient step Δz = ∓C·(π − e_K) to your own logits.
    Squeeze {
        /// Logits: a comma list (`2,1,0.5`) or a file (one number per line, or a JSON array).
        #[arg(long, allow_hyphen_values = true)]
        logits: String,
        /// The pushed class K.
        #[arg(long)]
        class: usize,
        /// `negative` (Δz = +C(π − e_K), π_K falls) or `positive` (Δz = −C(π − e_K)).
        #[arg(long)]
        direction: Direction,
        /// Step size C = η‖x‖² > 0.
        #[arg(long, allow_hyphen_values = true)]
        step: f64,
        /// Write `class,p_before,p_after,log_p_before,log_p_after` here.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Draw the before/after distribution here (PNG; a path ending in another suffix is
        /// refused).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Take gradient steps on a softmax interactively, in the terminal (q quits).
    #[command(after_help = EXPLORE_KEYS)]
    Explore {
        /// Your own logits: a comma list (`2,1,0.5`) or a file, as for `squeeze`.
        #[arg(long, allow_hyphen_values = true)]
        logits: Option<String>,
    },
    /// Benchmarks (build with --release).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Export A, K, G, the predicted and the actual Δlog π of one step as JSON.
    Akg {
        /// Model: linear, mlp or lm.
        #[arg(long)]
        model: ModelKind,
        /// Objective of the language model's step: sft, dpo, ipo, slic, sppo_hard, rpo or
        /// dpop (classifiers always use cross-entropy, `sft`). Against TRL's loss_type: dpo
        /// is TRL's sigmoid (accepted too); ipo and sppo_hard are TRL's; slic is SLiC-HF,
        /// max(0, δ − (lp⁺ − lp⁻)) − λ·lp⁺, which TRL lacks (TRL's hinge, max(0, 1 − β·m),
        /// is another loss and no alias here); rpo is DPO plus α times the token-mean NLL
        /// of y⁺ (TRL's rpo_alpha; sigmoid+sft is accepted for α = 1); dpop is DPO-Positive
        /// (Smaug), a penalty λ·max(0, ref⁺ − lp⁺) once y⁺ falls below the reference. IPO's
        /// τ, DPO's and SLiC's β are the world's β (0.1, as `lm_losses`' `ipo_tau`).
        #[arg(long, default_value = "sft")]
        objective: LmObjective,
        /// The language model's start and reference: sft (default: the world's SFT
        /// checkpoint is the reference, and the stepped model is one DPO step past it, so
        /// the margin is not zero) or self (the pre-trained model, its own reference).
        #[arg(long)]
        reference: Option<Reference>,
        /// SLiC's margin δ (--objective slic; default 1): a δ above the chosen-minus-rejected
        /// gap makes the hinge active.
        #[arg(long, allow_hyphen_values = true)]
        slic_delta: Option<f64>,
        /// RPO's weight α (--objective rpo; default 1, at least 0).
        #[arg(long, allow_hyphen_values = true)]
        rpo_alpha: Option<f64>,
        /// Which term RPO's α weighs (--objective rpo): v3 (default, TRL's: L_DPO + α·NLL)
        /// or v1 (the RPO paper's first version: α·L_DPO + NLL).
        #[arg(long)]
        rpo_weighting: Option<RpoWeighting>,
        /// DPOP's weight λ (--objective dpop; default 50, at least 0).
        #[arg(long, allow_hyphen_values = true)]
        dpop_lambda: Option<f64>,
        /// Where DPOP's penalty sits (--objective dpop): inside (default, the paper's Eq. 3:
        /// −log σ(β(r⁺ − r⁻ − λp))) or outside (the code posted for it: −log σ(β(r⁺ − r⁻)) + λp).
        #[arg(long)]
        dpop_form: Option<DpopForm>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Learning rate η > 0.
        #[arg(long, allow_hyphen_values = true)]
        eta: f64,
        /// Output file.
        #[arg(long)]
        json: PathBuf,
        /// Input dimension d (classifiers; default 4).
        #[arg(long)]
        inputs: Option<usize>,
        /// Hidden width (MLP only; default 8).
        #[arg(long)]
        hidden: Option<usize>,
        /// Number of hidden layers (MLP only; default 1).
        #[arg(long)]
        layers: Option<usize>,
        /// Number of classes V (classifiers; default 5).
        #[arg(long)]
        classes: Option<usize>,
    },
}

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Time the full (N, N, V, V) eNTK of a tanh MLP d → h → h → V against the pairwise baseline.
    Entk {
        #[command(flatten)]
        size: BenchSize,
    },
    /// Time one SFT step and one DPO step of the tiny LM, in scored tokens per second
    /// (or, with --jvp, the first-order change of log π along one direction).
    Lm {
        /// `gallery` (the gallery's LM and batch size) or `large` (V = 256, hidden 256,
        /// 64 SFT sequences and 32 DPO pairs of 16 tokens).
        #[arg(long, default_value = "large")]
        workload: LmWorkload,
        /// Timed runs (1 to 1000); the median is reported.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=1000))]
        reps: u64,
        /// Also write the workload (weights, batches, the crate's log-probabilities and
        /// gradients) as JSON here, for a peer implementation.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Time instead the JVP the attribution and the lens repeat: the first-order
        /// change of log π on the SFT sequences along the DPO step's direction, against a
        /// forward pass over the same sequences.
        #[arg(long)]
        jvp: bool,
    },
    /// Time the one-step decomposition on many observed inputs.
    OneStep {
        #[command(flatten)]
        size: BenchSize,
        /// Number of observed inputs (1 to 100000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        observed: u64,
    },
}

#[derive(clap::Args)]
pub(crate) struct BenchSize {
    /// Named workload: S (16, 64, 10, 32), M (32, 128, 50, 32) or L (64, 256, 100, 64).
    #[arg(long, default_value = "M")]
    workload: Workload,
    /// Explicit sizes `d,h,V,N` instead of a named workload.
    #[arg(long)]
    dims: Option<String>,
    /// Timed runs (1 to 1000); the median is reported.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) reps: u64,
}

impl BenchSize {
    /// The workload asked for, checked against the memory budget.
    pub(crate) fn workload(&self, budget: u64) -> Result<Workload> {
        let workload = match &self.dims {
            Some(dims) => Workload::from_dims(&parse_number_list(dims)?, dims)?,
            None => self.workload,
        };
        workload.check(budget)?;
        Ok(workload)
    }
}
