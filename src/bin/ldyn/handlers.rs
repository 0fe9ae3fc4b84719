//! Each command's handler: its checks of the flags together, then library calls, then
//! what it prints.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use learning_dynamics::bench::{bench_entk, bench_jvp, bench_lm, bench_one_step};
use learning_dynamics::error::quote;
use learning_dynamics::export::{LmFlags, SizeFlags, akg};
use learning_dynamics::gallery::{Plan, REGISTRY};
use learning_dynamics::io::{
    check_outputs, load_numbers, lock_output_dirs, write_atomic, write_csv,
};
use learning_dynamics::squeezing::Squeeze;
use learning_dynamics::{Error, Result, plot};

use crate::commands::{BenchCommand, COMMITTED_FIGURES, Command};
use crate::emit;
use crate::progress_line::run_with_progress;

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

pub(crate) fn execute(command: Command, budget: u64) -> Result<()> {
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
            rpo_alpha,
            rpo_weighting,
            dpop_lambda,
            dpop_form,
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
                rpo_alpha,
                rpo_weighting,
                dpop_lambda,
                dpop_form,
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
