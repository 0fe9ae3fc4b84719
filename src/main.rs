//! `ldyn`: the command-line front door. A thin shell over the library: parse
//! arguments, call one library function, print what it did. Every error ends with a
//! one-line message on stderr and exit status 2.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use learning_dynamics::bench::{Workload, bench_entk, bench_one_step};
use learning_dynamics::experiments::{self, EXPERIMENTS, Report};
use learning_dynamics::export::{ClassifierSpec, akg_json, lm_akg_json};
use learning_dynamics::io::{parse_number_list, read_numbers, write_atomic, write_csv};
use learning_dynamics::squeezing::{Direction, Squeeze};
use learning_dynamics::{Error, Result, plot};

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
    /// Run one experiment and write its CSV and PNG files.
    Run {
        /// Experiment name (see `ldyn list`).
        name: String,
        /// Random seed (default: the experiment's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory.
        #[arg(long, default_value = "plots")]
        out: PathBuf,
    },
    /// Run every experiment with its default seed.
    Gallery {
        /// Output directory.
        #[arg(long, default_value = "plots")]
        out: PathBuf,
    },
    /// List the experiments.
    List,
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
        direction: String,
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
        /// Model kind.
        #[arg(long, value_enum)]
        model: ModelKind,
        /// Objective of the language model's step: sft, dpo, ipo, slic or sppo_hard
        /// (classifiers always use cross-entropy, `sft`).
        #[arg(long, default_value = "sft")]
        objective: String,
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
    workload: String,
    /// Explicit sizes `d,h,V,N` instead of a named workload.
    #[arg(long)]
    dims: Option<String>,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 7)]
    reps: usize,
}

impl BenchSize {
    fn workload(&self) -> Result<Workload> {
        let Some(dims) = &self.dims else {
            return Workload::named(&self.workload);
        };
        let values = parse_number_list(dims)?;
        let whole: Vec<usize> = values
            .iter()
            .filter(|v| v.fract() == 0.0 && **v >= 1.0)
            .map(|v| *v as usize)
            .collect();
        match whole[..] {
            [inputs, hidden, classes, n] if values.len() == 4 => {
                if classes < 2 {
                    return Err(Error::TooFewClasses(classes));
                }
                Ok(Workload {
                    inputs,
                    hidden,
                    classes,
                    n,
                })
            }
            _ => Err(Error::InvalidArgument(format!(
                "--dims needs four whole numbers d,h,V,N >= 1, got '{dims}'"
            ))),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelKind {
    Linear,
    Mlp,
    Lm,
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
        Command::Run { name, seed, out } => {
            let experiment = experiments::find(&name)?;
            print_report(experiment.name, &experiment.run(seed, &out)?);
            Ok(())
        }
        Command::Gallery { out } => {
            for experiment in EXPERIMENTS {
                print_report(experiment.name, &experiment.run(None, &out)?);
            }
            Ok(())
        }
        Command::List => {
            for e in EXPERIMENTS {
                println!("{:<12} seed {:<6} {}", e.name, e.default_seed, e.about);
            }
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
            let z = load_logits(&logits)?;
            let squeeze = Squeeze::from_logit_step(&z, class, Direction::parse(&direction)?, step)?;
            println!("{}", squeeze.summary());
            if let Some(path) = csv {
                let rows = squeeze.csv_rows(false);
                write_csv(
                    &path,
                    "class,p_before,p_after,log_p_before,log_p_after",
                    rows,
                )?;
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
            let doc = match model {
                ModelKind::Lm => lm_akg_json(&objective, seed, eta)?,
                ModelKind::Linear | ModelKind::Mlp => {
                    if objective != "sft" {
                        return Err(Error::InvalidArgument(
                            "--objective applies to --model lm only (classifiers use cross-entropy)".into(),
                        ));
                    }
                    let linear = matches!(model, ModelKind::Linear);
                    akg_json(
                        &ClassifierSpec {
                            linear,
                            inputs,
                            hidden,
                            layers,
                            classes,
                        },
                        seed,
                        eta,
                    )?
                }
            };
            let text = serde_json::to_string_pretty(&doc)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            write_atomic(&json, text.as_bytes())?;
            println!("wrote {}", json.display());
            Ok(())
        }
    }
}

/// A comma list of numbers, or else the path of a file holding them.
fn load_logits(arg: &str) -> Result<Vec<f64>> {
    parse_number_list(arg).or_else(|list_err| {
        let path = Path::new(arg);
        if path.exists() || !arg.contains(',') {
            read_numbers(path)
        } else {
            Err(list_err)
        }
    })
}

fn print_report(name: &str, report: &Report) {
    print!("{}", report.render(name));
}
