//! `ldyn`: the command-line front door. Declarations and dispatch only: every closed set
//! of names is parsed by the library's `FromStr` types, every computation is a library
//! call. Every error ends with a one-line message on stderr and exit status 2; a closed
//! output pipe ends the command quietly with status 141; nothing panics on a failing
//! stream.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use learning_dynamics::bench::{
    LmWorkload, Workload, bench_entk, bench_jvp, bench_lm, bench_one_step,
};
use learning_dynamics::error::quote;
use learning_dynamics::export::{LmFlags, ModelKind, Reference, SizeFlags, akg};
use learning_dynamics::gallery::{Plan, REGISTRY};
use learning_dynamics::io::{
    check_outputs, load_numbers, lock_output_dirs, parse_number_list, write_atomic, write_csv,
};
use learning_dynamics::objective::LmObjective;
use learning_dynamics::squeezing::{Direction, Squeeze};
use learning_dynamics::{Error, Result, plot, progress};
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
    /// Memory budget in GiB: a command that would need more refuses to start.
    #[arg(long, global = true, value_name = "GIB", default_value_t = 4.0)]
    max_memory: f64,
}

/// `ldyn explore --help`'s list of keys.
const EXPLORE_KEYS: &str = "Keys:
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
const COMMITTED_FIGURES: &str = "plots";

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
        /// Objective of the language model's step: sft, dpo, ipo, slic or sppo_hard
        /// (classifiers always use cross-entropy, `sft`). Against TRL's loss_type: dpo is
        /// TRL's sigmoid (accepted too); ipo and sppo_hard are TRL's; slic is SLiC-HF,
        /// max(0, δ − (lp⁺ − lp⁻)) − λ·lp⁺, which TRL lacks (TRL's hinge, max(0, 1 − β·m),
        /// is another loss and no alias here). IPO's τ, DPO's and SLiC's β are the world's β
        /// (0.1, as `lm_losses`' `ipo_tau`).
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
enum BenchCommand {
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
struct BenchSize {
    /// Named workload: S (16, 64, 10, 32), M (32, 128, 50, 32) or L (64, 256, 100, 64).
    #[arg(long, default_value = "M")]
    workload: Workload,
    /// Explicit sizes `d,h,V,N` instead of a named workload.
    #[arg(long)]
    dims: Option<String>,
    /// Timed runs (1 to 1000); the median is reported.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=1000))]
    reps: u64,
}

impl BenchSize {
    /// The workload asked for, checked against the memory budget.
    fn workload(&self, budget: u64) -> Result<Workload> {
        let workload = match &self.dims {
            Some(dims) => Workload::from_dims(&parse_number_list(dims)?, dims)?,
            None => self.workload,
        };
        workload.check(budget)?;
        Ok(workload)
    }
}

/// The exit status of a command stopped by a closed output pipe (128 + SIGPIPE).
const BROKEN_PIPE: u8 = 141;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let budget = match memory_budget(cli.max_memory) {
        Ok(b) => b,
        Err(e) => return fail(&e.to_string()),
    };
    match execute(cli.command, budget) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::BrokenPipe) => ExitCode::from(BROKEN_PIPE),
        Err(Error::Signal(number)) => ExitCode::from(128u8.saturating_add(number as u8)),
        Err(e @ Error::RunsFailed { .. }) => {
            fail(&e.to_string());
            ExitCode::from(1)
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Prints `error: message` as one line on stderr (a failing stderr is ignored: the
/// status still says it) and returns exit status 2.
fn fail(message: &str) -> ExitCode {
    let line = learning_dynamics::error::quote_line(message);
    let _ = writeln!(std::io::stderr(), "error: {line}");
    ExitCode::from(2)
}

/// Help and version go to stdout with status 0; every other clap error (including a
/// missing subcommand, which clap answers with the help text) is one `error:` line that
/// names what is wrong, with the usage, and status 2.
fn clap_exit(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => match emit(&e.render().to_string()) {
            Err(Error::BrokenPipe) => ExitCode::from(BROKEN_PIPE),
            Err(err) => fail(&err.to_string()),
            Ok(()) => ExitCode::SUCCESS,
        },
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let usage = e.render().to_string();
            let usage = usage
                .lines()
                .find(|l| l.starts_with("Usage:"))
                .unwrap_or("Usage: ldyn <COMMAND>");
            fail(&format!("a command is required; {usage} (see ldyn --help)"))
        }
        _ => {
            let text = e.render().to_string();
            let words: Vec<&str> = text
                .lines()
                .map(str::trim)
                // clap's "tip:" repeats the user's text: the line says it once.
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("For more information")
                        && !l.starts_with("tip:")
                })
                .collect();
            // Values clap quotes ('…') are user text: each is shown cut and escaped.
            let line = words.join(" ");
            let shown: Vec<String> = line
                .split('\'')
                .enumerate()
                .map(|(i, part)| {
                    if i % 2 == 1 {
                        quote(part)
                    } else {
                        part.to_string()
                    }
                })
                .collect();
            fail(shown.join("'").trim_start_matches("error: "))
        }
    }
}

/// Writes `text` to stdout; a closed pipe is [`Error::BrokenPipe`], any other failure an
/// error that names standard output.
fn emit(text: &str) -> Result<()> {
    if let Some(why) = stdout::unusable() {
        return Err(Error::InvalidArgument(format!(
            "standard output {why}: nothing can be printed"
        )));
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Error::BrokenPipe,
            _ => Error::io("write", Path::new("standard output"), e),
        })
}

/// Whether standard output can be written, told apart from what Rust's runtime does to
/// it: a closed fd 1 is replaced by `/dev/null` before `main`, and writes to an fd open
/// only for reading fail with `EBADF`, which Rust's stdout takes for success. Both would
/// lose every line silently. A `/dev/null` the parent opened on purpose (`> /dev/null`,
/// `1<> /dev/null`, Python's `subprocess.DEVNULL`) is a usable stdout.
mod stdout {
    #[cfg(target_os = "linux")]
    mod probe {
        use std::sync::atomic::{AtomicBool, Ordering};

        static CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

        unsafe extern "C" {
            fn fcntl(fd: i32, cmd: i32, ...) -> i32;
        }
        const F_GETFD: i32 = 1;
        const F_GETFL: i32 = 3;
        const O_ACCMODE: i32 = 0o3;
        const O_RDONLY: i32 = 0;

        /// Runs before `main`, so before the runtime replaces a closed fd 1.
        extern "C" fn at_start() {
            // SAFETY: F_GETFD on fd 1 reads its flags and touches no memory.
            if unsafe { fcntl(1, F_GETFD) } == -1 {
                CLOSED_AT_START.store(true, Ordering::Relaxed);
            }
        }

        #[used]
        #[unsafe(link_section = ".init_array")]
        static AT_START: extern "C" fn() = at_start;

        pub fn closed_at_start() -> bool {
            CLOSED_AT_START.load(Ordering::Relaxed)
        }

        pub fn read_only() -> bool {
            // SAFETY: F_GETFL on fd 1 reads its status flags and touches no memory.
            let flags = unsafe { fcntl(1, F_GETFL) };
            flags != -1 && flags & O_ACCMODE == O_RDONLY
        }
    }

    /// Why standard output cannot be written (`None`: it can, as far as can be told
    /// before writing; elsewhere than Linux, always `None`).
    pub fn unusable() -> Option<&'static str> {
        #[cfg(target_os = "linux")]
        {
            if probe::closed_at_start() {
                return Some("is closed");
            }
            if probe::read_only() {
                return Some("is open only for reading");
            }
        }
        None
    }
}

/// Reports a sweep's (or a merge's) pooled result: the report, or, when runs failed, where
/// their errors are and the failure itself (exit status 1).
fn finish_sweep(
    result: Result<learning_dynamics::experiments::Pooled>,
    name: &str,
    out: &Path,
) -> Result<()> {
    match result {
        Ok(pooled) => emit(&sweep_report(&pooled, out)),
        Err(Error::RunsFailed { failed, total }) => {
            let pooled_path = out.join("sweep_claims.csv");
            emit(&format!("sweep {name}: see {}\n", pooled_path.display()))?;
            Err(Error::RunsFailed { failed, total })
        }
        Err(e) => Err(e),
    }
}

/// Refuses a `--plot` path whose suffix names another format than the PNG it would get
/// (`.svg`, `.pdf`, …); a path without a suffix (a device, a stream) is written as PNG.
fn refuse_other_than_png(path: &Path) -> Result<()> {
    match path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
    {
        Some(ext) if ext != "png" => Err(Error::InvalidArgument(format!(
            "--plot writes PNG, and {} names a .{ext} file: give a path ending in .png",
            quote(&path.display().to_string())
        ))),
        _ => Ok(()),
    }
}

/// `--max-memory` in bytes.
fn memory_budget(gib: f64) -> Result<u64> {
    if gib.is_finite() && gib > 0.0 && gib <= 1e9 {
        Ok((gib * (1u64 << 30) as f64) as u64)
    } else {
        Err(Error::InvalidArgument(format!(
            "--max-memory must be a number of GiB in (0, 1e9], got {gib}"
        )))
    }
}

fn execute(command: Command, budget: u64) -> Result<()> {
    match command {
        Command::Run {
            mut plan,
            seed,
            config,
            sets,
            out,
        } => {
            let mut defaults = plan.clone();
            if let Some(path) = config {
                plan.load(&path)?;
            }
            sets.iter().try_for_each(|s| plan.set(s))?;
            if let Some(seed) = seed {
                plan.set_seed(seed)?;
            }
            defaults.set_seed(plan.seed())?;
            if out == Path::new(COMMITTED_FIGURES)
                && plan.to_toml() != defaults.to_toml()
                && std::io::stderr().is_terminal()
            {
                eprintln!(
                    "warning: these settings are not the defaults of {}, and --out is {COMMITTED_FIGURES}/, which holds the committed figures: this run replaces them (give --out DIR to keep them)",
                    plan.name()
                );
            }
            plan.set_memory_budget(budget);
            emit(&run_with_progress(&plan, &out)?.to_string())
        }
        Command::Sweep {
            name,
            dirs,
            seeds,
            grids,
            sets,
            config,
            out,
            jobs,
            shard,
        } => {
            if name == "merge" {
                let sweep_only = [
                    ("--seeds", seeds.is_some()),
                    ("--grid", !grids.is_empty()),
                    ("--set", !sets.is_empty()),
                    ("--config", config.is_some()),
                    ("--jobs", jobs.is_some()),
                    ("--shard", shard.is_some()),
                ];
                if let Some((flag, _)) = sweep_only.iter().find(|f| f.1) {
                    return Err(Error::InvalidArgument(format!(
                        "{flag} does not apply to sweep merge, which reads every setting from the shards' sweep.toml"
                    )));
                }
                let out = out.ok_or_else(|| {
                    Error::InvalidArgument(
                        "sweep merge needs --out DIR for the pooled files".into(),
                    )
                })?;
                let merged = learning_dynamics::gallery::merge(&dirs, &out);
                return finish_sweep(merged, "merge", &out);
            }
            if let Some(dir) = dirs.first() {
                return Err(Error::InvalidArgument(format!(
                    "sweep takes one experiment name; '{}' is one too many (did you mean sweep merge?)",
                    quote(&dir.display().to_string())
                )));
            }
            let mut plan: Plan = name.parse()?;
            if let Some(path) = config {
                plan.load(&path)?;
            }
            sets.iter()
                .try_for_each(|s| learning_dynamics::gallery::check_set(s))?;
            sets.iter().try_for_each(|s| plan.set(s))?;
            plan.set_memory_budget(budget);
            let out = out.unwrap_or_else(|| Path::new("sweeps").join(plan.name()));
            let sweep = learning_dynamics::gallery::Sweep::new(
                plan,
                &grids,
                seeds.as_deref(),
                shard.as_deref(),
            )?;
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let jobs = jobs.map_or(cores, |j| j as usize);
            let bar = std::io::stderr().is_terminal().then(|| {
                let bar = indicatif::ProgressBar::new(sweep.runs().len() as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {pos}/{len} runs, {elapsed} so far, about {eta} left",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(format!("sweep {}", sweep.name()));
                bar.tick();
                bar
            });
            let progress = |done: usize, _total: usize| {
                if let Some(bar) = &bar {
                    bar.set_position(done as u64);
                }
            };
            let result = sweep.execute(&out, jobs, &progress);
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            finish_sweep(result, sweep.name(), &out)
        }
        Command::Gallery { out } => {
            for entry in REGISTRY {
                let mut plan = entry.plan(entry.name)?;
                plan.set_memory_budget(budget);
                emit(&run_with_progress(&plan, &out)?.to_string())?;
            }
            Ok(())
        }
        Command::List => {
            // One column per field, as wide as its longest entry.
            let width = REGISTRY.iter().map(|e| e.name.len()).max().unwrap_or(0);
            let seeds = REGISTRY.iter().map(|e| e.default_seed.to_string().len());
            let seed_width = seeds.max().unwrap_or(0);
            for e in REGISTRY {
                let aliases = match e.aliases {
                    [] => String::new(),
                    names => format!(" (also: {})", names.join(", ")),
                };
                emit(&format!(
                    "{:<width$}  seed {:<seed_width$}  {}{aliases}\n",
                    e.name, e.default_seed, e.about
                ))?;
            }
            Ok(())
        }
        Command::Config { plan } => emit(&plan.to_toml()),
        Command::Explore { logits } => {
            learning_dynamics::explore::require_terminal()?;
            let logits = match logits {
                Some(source) => load_numbers(&source)?,
                None => learning_dynamics::explore::DEFAULT_LOGITS.to_vec(),
            };
            learning_dynamics::explore::run(logits)
        }
        Command::Squeeze {
            logits,
            class,
            direction,
            step,
            csv,
            plot: png,
        } => {
            if let Some(path) = &png {
                refuse_other_than_png(path)?;
            }
            let outputs: Vec<&Path> = csv.iter().chain(&png).map(PathBuf::as_path).collect();
            check_outputs(&outputs, &[Path::new(&logits)])?;
            let logits = load_numbers(&logits)?;
            // The step keeps about a dozen vectors of the logits' length, and the CSV.
            let bytes = 16 * 8 * logits.len() as u128;
            learning_dynamics::error::check_memory("--logits", Some(bytes), budget)?;
            let squeeze = Squeeze::from_logit_step(&logits, class, direction, step)?;
            let _locks = lock_output_dirs(&outputs)?;
            let mut report = format!("{}\n", squeeze.summary());
            if let Some(path) = csv {
                let header = "class,p_before,p_after,log_p_before,log_p_after";
                write_csv(&path, header, squeeze.csv_rows(false))?;
                report.push_str(&format!("wrote {}\n", path.display()));
            }
            if let Some(path) = png {
                let title = format!("{direction} gradient on class {class}, step C = {step}");
                plot::squeezing::figure(&path, plot::squeezing::HEADING, &[(&title, &squeeze)])?;
                report.push_str(&format!("wrote {}\n", path.display()));
            }
            emit(&report)
        }
        Command::Bench { what } => {
            match what {
                BenchCommand::Entk { size } => {
                    let workload = size.workload(budget)?;
                    emit(&format!("{}\n", bench_entk(workload, size.reps as usize)?))?
                }
                BenchCommand::OneStep { size, observed } => {
                    let workload = size.workload(budget)?;
                    let observed = observed as usize;
                    learning_dynamics::error::check_memory(
                        "--observed and the workload",
                        workload.one_step_memory_bytes(observed),
                        budget,
                    )?;
                    let report = bench_one_step(workload, observed, size.reps as usize)?;
                    emit(&format!("{report}\n"))?
                }
                BenchCommand::Lm {
                    workload,
                    reps,
                    export,
                    jvp,
                } => {
                    if let Some(path) = export {
                        check_outputs(&[&path], &[])?;
                        write_json(&path, &workload.build()?.to_json()?)?;
                    }
                    let report = if jvp {
                        bench_jvp(workload, reps as usize)?.to_string()
                    } else {
                        bench_lm(workload, reps as usize)?.to_string()
                    };
                    emit(&report)?
                }
            }
            Ok(())
        }
        Command::Akg {
            model,
            objective,
            reference,
            slic_delta,
            seed,
            eta,
            json,
            inputs,
            hidden,
            layers,
            classes,
        } => {
            let sizes = SizeFlags {
                inputs,
                hidden,
                layers,
                classes,
            };
            let step = LmFlags {
                objective,
                reference,
                slic_delta,
            };
            check_outputs(&[&json], &[])?;
            write_json(&json, &akg(model, step, sizes, seed, eta, budget)?)
        }
    }
}

/// Writes a JSON document atomically, holding its directory's lock, and says so.
fn write_json(path: &Path, doc: &serde_json::Value) -> Result<()> {
    let text =
        serde_json::to_string_pretty(doc).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let _locks = lock_output_dirs(&[path])?;
    write_atomic(path, text.as_bytes())?;
    emit(&format!("wrote {}\n", path.display()))
}

/// What a sweep pooled, one line per cell and claim: `k/n` seeds.
fn sweep_report(pooled: &learning_dynamics::experiments::Pooled, out: &Path) -> String {
    let cells = match pooled.cells.len() {
        1 => "1 cell".to_string(),
        n => format!("{n} cells"),
    };
    let mut text = format!(
        "sweep: {cells} -> {}\n",
        out.join("sweep_claims.csv").display()
    );
    for (c, cell) in pooled.cells.iter().enumerate() {
        let failed = match pooled.failed[c].0 {
            0 => String::new(),
            n => format!(" ({n} runs failed)"),
        };
        text.push_str(&format!("{cell}{failed}\n"));
        for (k, claim) in pooled.claims.iter().enumerate() {
            text.push_str(&format!(
                "  {}/{} {claim}\n",
                pooled.holds[c][k], pooled.seeds[c]
            ));
        }
    }
    text
}

/// Executes `plan`, showing on stderr, if it is a terminal, which run is going and the
/// stage it has reached (pre-training, SFT, DPO regime k/n, update i/N: [`progress`]).
fn run_with_progress(plan: &Plan, out: &Path) -> Result<learning_dynamics::gallery::Report> {
    if !std::io::stderr().is_terminal() {
        return plan.execute(out, &mut |_| {});
    }
    let status = std::sync::Arc::new(std::sync::Mutex::new(Status::default()));
    let watcher = {
        let status = status.clone();
        move |level: usize, message: &str| {
            let mut status = status
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let stages = status
                .stages
                .entry(std::thread::current().id())
                .or_default();
            stages.truncate(level);
            stages.push(message.to_string());
            status.latest = Some(std::thread::current().id());
            // The outer stages always show; the inner ones (updates) ten times a second.
            status.show(level == 0);
        }
    };
    let mut progress = |message: &str| {
        let mut status = status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        status.run = message.to_string();
        status.stages.clear();
        status.show(true);
    };
    let report = progress::watched(watcher, || plan.execute(out, &mut progress));
    let _ = write!(std::io::stderr(), "\r\x1b[K");
    report
}

/// What the progress line shows: the run, and the stages of the thread that reported last.
#[derive(Default)]
struct Status {
    run: String,
    stages: std::collections::HashMap<std::thread::ThreadId, Vec<String>>,
    latest: Option<std::thread::ThreadId>,
    shown: Option<std::time::Instant>,
}

impl Status {
    /// Rewrites the progress line, cut to the terminal's width, if `now` or if it was
    /// last shown over 100 ms ago.
    fn show(&mut self, now: bool) {
        let due = self.shown.is_none_or(|t| t.elapsed().as_millis() >= 100);
        if !(now || due) {
            return;
        }
        self.shown = Some(std::time::Instant::now());
        let mut line = self.run.clone();
        if let Some(stages) = self.latest.and_then(|t| self.stages.get(&t)) {
            stages
                .iter()
                .for_each(|s| line.push_str(&format!(" · {s}")));
        }
        // A pseudo-terminal may report no size at all.
        let width = match ratatui::crossterm::terminal::size() {
            Ok((w, _)) if w >= 20 => usize::from(w),
            _ => 80,
        };
        let line: String = line.chars().take(width.saturating_sub(1)).collect();
        let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
    }
}
