//! `ldyn`: the command-line front door. Declarations and dispatch only: every closed set
//! of names is parsed by the library's `FromStr` types, every computation is a library
//! call. Every error ends with a one-line message on stderr and exit status 2.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use learning_dynamics::bench::{LmWorkload, Workload, bench_entk, bench_lm, bench_one_step};
use learning_dynamics::export::{ClassifierSpec, ModelKind, akg};
use learning_dynamics::gallery::{Plan, REGISTRY};
use learning_dynamics::io::{load_numbers, parse_number_list, write_atomic, write_csv};
use learning_dynamics::objective::LmObjective;
use learning_dynamics::squeezing::{Direction, Squeeze};
use learning_dynamics::{Error, Result, plot};
use mimalloc::MiMalloc;

/// mimalloc keeps freed pages for reuse, so the large matrices a training step allocates
/// do not fault in fresh pages on every step (glibc returns them to the system).
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(
    name = "ldyn",
    version,
    about = "Exact learning dynamics of softmax models (Ren & Sutherland, ICLR 2025)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// Output directory.
        #[arg(long, default_value = "plots")]
        out: PathBuf,
    },
    /// Run every experiment with its defaults.
    Gallery {
        /// Output directory.
        #[arg(long, default_value = "plots")]
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
        /// Draw the before/after distribution here (PNG).
        #[arg(long)]
        plot: Option<PathBuf>,
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
        /// Objective of the language model's step: sft, dpo, ipo, slic or sppo_hard
        /// (classifiers always use cross-entropy, `sft`).
        #[arg(long, default_value = "sft")]
        objective: LmObjective,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Learning rate η > 0.
        #[arg(long, allow_hyphen_values = true)]
        eta: f64,
        /// Output file.
        #[arg(long)]
        json: PathBuf,
        /// Input dimension d.
        #[arg(long, default_value_t = 4)]
        inputs: usize,
        /// Hidden width (MLP only).
        #[arg(long, default_value_t = 8)]
        hidden: usize,
        /// Number of hidden layers (MLP only).
        #[arg(long, default_value_t = 1)]
        layers: usize,
        /// Number of classes V.
        #[arg(long, default_value_t = 5)]
        classes: usize,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time the full (N, N, V, V) eNTK of a tanh MLP d → h → h → V against the pairwise baseline.
    Entk {
        #[command(flatten)]
        size: BenchSize,
    },
    /// Time one SFT step and one DPO step of the tiny LM, in scored tokens per second.
    Lm {
        /// `gallery` (the gallery's LM and batch size) or `large` (V = 256, hidden 256,
        /// 64 SFT sequences and 32 DPO pairs of 16 tokens).
        #[arg(long, default_value = "large")]
        workload: LmWorkload,
        /// Timed runs; the median is reported.
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// Also write the workload (weights, batches, the crate's log-probabilities and
        /// gradients) as JSON here, for a peer implementation.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Time the one-step decomposition on many observed inputs.
    OneStep {
        #[command(flatten)]
        size: BenchSize,
        /// Number of observed inputs.
        #[arg(long, default_value_t = 1000)]
        observed: usize,
    },
}

#[derive(clap::Args)]
struct BenchSize {
    /// Named workload: S (16, 64, 10, 32), M (32, 128, 50, 32) or L (64, 256, 100, 64).
    #[arg(long, default_value = "M")]
    workload: Workload,
    /// Explicit sizes `d,h,V,N` instead of a named workload.
    #[arg(long)]
    dims: Option<String>,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 7)]
    reps: usize,
}

impl BenchSize {
    fn workload(&self) -> Result<Workload> {
        match &self.dims {
            Some(dims) => Workload::from_dims(&parse_number_list(dims)?, dims),
            None => Ok(self.workload),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!(
                "{}",
                text.lines().next().unwrap_or("error: invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn execute(command: Command) -> Result<()> {
    match command {
        Command::Run {
            mut plan,
            seed,
            config,
            sets,
            out,
        } => {
            if let Some(path) = config {
                plan.load(&path)?;
            }
            sets.iter().try_for_each(|s| plan.set(s))?;
            if let Some(seed) = seed {
                plan.set_seed(seed)?;
            }
            print!("{}", run_with_progress(&plan, &out)?);
            Ok(())
        }
        Command::Gallery { out } => {
            for entry in REGISTRY {
                print!("{}", run_with_progress(&entry.plan(entry.name)?, &out)?);
            }
            Ok(())
        }
        Command::List => {
            for e in REGISTRY {
                let aliases = match e.aliases {
                    [] => String::new(),
                    names => format!(" (also: {})", names.join(", ")),
                };
                println!(
                    "{:<12} seed {:<6} {}{aliases}",
                    e.name, e.default_seed, e.about
                );
            }
            Ok(())
        }
        Command::Config { plan } => {
            print!("{}", plan.to_toml());
            Ok(())
        }
        Command::Squeeze {
            logits,
            class,
            direction,
            step,
            csv,
            plot: png,
        } => {
            let squeeze =
                Squeeze::from_logit_step(&load_numbers(&logits)?, class, direction, step)?;
            println!("{}", squeeze.summary());
            if let Some(path) = csv {
                let header = "class,p_before,p_after,log_p_before,log_p_after";
                write_csv(&path, header, squeeze.csv_rows(false))?;
                println!("wrote {}", path.display());
            }
            if let Some(path) = png {
                let title = format!("{direction} gradient on class {class}, step C = {step}");
                plot::squeezing::figure(&path, &[(&title, &squeeze)])?;
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Bench { what } => {
            match what {
                BenchCommand::Entk { size } => {
                    println!("{}", bench_entk(size.workload()?, size.reps)?)
                }
                BenchCommand::OneStep { size, observed } => {
                    println!("{}", bench_one_step(size.workload()?, observed, size.reps)?)
                }
                BenchCommand::Lm {
                    workload,
                    reps,
                    export,
                } => {
                    if let Some(path) = export {
                        write_json(&path, &workload.build()?.to_json()?)?;
                    }
                    print!("{}", bench_lm(workload, reps)?)
                }
            }
            Ok(())
        }
        Command::Akg {
            model,
            objective,
            seed,
            eta,
            json,
            inputs,
            hidden,
            layers,
            classes,
        } => {
            let shape = ClassifierSpec {
                linear: false,
                inputs,
                hidden,
                layers,
                classes,
            };
            write_json(&json, &akg(model, objective, shape, seed, eta)?)
        }
    }
}

/// Writes a JSON document atomically and says so.
fn write_json(path: &Path, doc: &serde_json::Value) -> Result<()> {
    let text =
        serde_json::to_string_pretty(doc).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    write_atomic(path, text.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Executes `plan`, showing each run on stderr while it works if stderr is a terminal.
fn run_with_progress(plan: &Plan, out: &Path) -> Result<learning_dynamics::gallery::Report> {
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |message: &str| {
        if terminal {
            eprint!("\r\x1b[K{message}");
        }
    };
    let report = plan.execute(out, &mut progress);
    if terminal {
        eprint!("\r\x1b[K");
    }
    report
}
