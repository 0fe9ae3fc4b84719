//! Sweeps: the grid's cells and their names, the shards' partition of the runs, identical
//! bytes whatever the number of jobs or the sharding, and runs that fail recorded without
//! stopping the sweep.

use std::path::Path;

use learning_dynamics::gallery::{Plan, Sweep};

use crate::common::{ldyn, ldyn_ok, ldyn_within, scratch};

fn sweep(name: &str, grids: &[&str], seeds: &str, shard: Option<&str>) -> Sweep {
    let plan: Plan = name.parse().unwrap();
    let grids: Vec<String> = grids.iter().map(|g| (*g).to_string()).collect();
    Sweep::new(plan, &grids, Some(seeds), shard).unwrap()
}

/// The cells are the Cartesian product of the grid keys, the first key slowest, named
/// `key=value` joined by `;`; without a grid there is one cell, `default`.
#[test]
fn the_grid_product_and_its_cell_names() {
    let s = sweep("residuals", &["beta=0.1,1", "step=1,2,4"], "0..3", None);
    assert_eq!(
        s.cells(),
        [
            "beta=0.1;step=1",
            "beta=0.1;step=2",
            "beta=0.1;step=4",
            "beta=1;step=1",
            "beta=1;step=2",
            "beta=1;step=4"
        ]
    );
    assert_eq!(s.runs().len(), 18);
    assert_eq!(sweep("residuals", &[], "5..7", None).cells(), ["default"]);
    // Each run's plan has its cell's values and its seed.
    let run = s.runs()[4];
    assert_eq!((run.cell, run.seed), (1, 1));
    let toml = s.plan(&run).unwrap().to_toml();
    assert!(
        toml.contains("\nbeta = 0.1 ") && toml.contains("\nstep = 2 "),
        "{toml}"
    );
    assert!(toml.contains("\nseed = 1 ") && toml.contains("\nrobustness_seeds = 0 "));
    // An experiment that covers several seeds per run covers one in a sweep.
    let policy = sweep("lm_policy", &[], "0..2", None);
    assert!(
        policy
            .plan(&policy.runs()[0])
            .unwrap()
            .to_toml()
            .contains("\nseeds = 1 ")
    );
}

/// Malformed or out-of-range grids, seeds and shards are refused with one line.
#[test]
fn bad_grids_seeds_and_shards_are_refused() {
    let plan: Plan = "residuals".parse().unwrap();
    let refused = |grids: &[&str], seeds: &str, shard: Option<&str>, needle: &str| {
        let grids: Vec<String> = grids.iter().map(|g| (*g).to_string()).collect();
        let e = Sweep::new(plan.clone(), &grids, Some(seeds), shard).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    };
    refused(&["beta=0.1,2000"], "0..2", None, "beta");
    refused(&["beta=0.1", "beta=1"], "0..2", None, "twice");
    refused(&["beta=0.1,0.1"], "0..2", None, "twice");
    refused(&["seed=1,2"], "0..2", None, "the sweep sets it");
    refused(&["nope=1"], "0..2", None, "unknown configuration key");
    refused(&[], "3..3", None, "--seeds expects A..B");
    refused(&[], "0..x", None, "--seeds expects A..B");
    refused(&[], "0..2", Some("3/3"), "--shard expects I/N");
    refused(&[], "0..200000", None, "more than 100000 runs");
}

/// The shards `I/N` partition the runs: every run is in exactly one, whatever N.
#[test]
fn shards_cover_every_run_exactly_once() {
    let all = sweep("residuals", &["beta=0.1,1", "step=1,2,4"], "10..17", None).runs();
    for n in [1, 2, 3, 7, 50] {
        let mut seen: Vec<u64> = (0..n)
            .flat_map(|i| {
                let shard = format!("{i}/{n}");
                sweep(
                    "residuals",
                    &["beta=0.1,1", "step=1,2,4"],
                    "10..17",
                    Some(&shard),
                )
                .runs()
            })
            .map(|r| r.index)
            .collect();
        seen.sort_unstable();
        let expected: Vec<u64> = all.iter().map(|r| r.index).collect();
        assert_eq!(seen, expected, "{n} shards");
    }
}

/// Every file under `dir`, relative, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                if !name.ends_with(learning_dynamics::io::LOCK_FILE) {
                    out.push((name, std::fs::read(&path).unwrap()));
                }
            }
        }
    }
    out.sort();
    out
}

/// One sweep on one thread, on two, and as three shards merged: the same bytes, run
/// folders and pooled files alike.
#[test]
fn jobs_and_shards_give_the_same_bytes() {
    let dir = scratch("sweep-bytes");
    let path = |name: &str| dir.join(name).display().to_string();
    let args = |out: &str| {
        vec![
            "sweep".to_string(),
            "squeezing".into(),
            "--seeds".into(),
            "3..6".into(),
            "--grid".into(),
            "vocab=10,30".into(),
            "--set".into(),
            "frames=2".into(),
            "--out".into(),
            out.to_string(),
        ]
    };
    let run = |extra: &[&str], out: &str| {
        let mut all = args(out);
        all.extend(extra.iter().map(|s| (*s).to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        ldyn_ok(&all);
    };
    run(&["--jobs", "1"], &path("one"));
    run(&["--jobs", "2"], &path("two"));
    let one = files(&dir.join("one"));
    assert!(one.iter().any(|(n, _)| n == "sweep_claims.csv"));
    assert!(one.iter().any(|(n, _)| n == "vocab=30/seed-5/claims.csv"));
    assert_eq!(one, files(&dir.join("two")), "--jobs 1 and --jobs 2");
    for i in 0..3 {
        run(&["--shard", &format!("{i}/3")], &path(&format!("shard{i}")));
    }
    let (s0, s1, s2, merged) = (
        path("shard0"),
        path("shard1"),
        path("shard2"),
        path("merged"),
    );
    ldyn_ok(&["sweep", "merge", &s0, &s1, &s2, "--out", &merged]);
    let pooled = |d: &str| -> Vec<(String, Vec<u8>)> {
        files(&dir.join(d))
            .into_iter()
            .filter(|(n, _)| n.starts_with("sweep"))
            .collect()
    };
    assert_eq!(pooled("one").len(), 3, "claims, figure and record");
    assert_eq!(pooled("one"), pooled("merged"), "three shards merged");
    // A shard alone is not the sweep; shards of different sweeps are refused.
    let out = ldyn(&["sweep", "merge", &s0, &s1, "--out", &path("part")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no shard holds run"));
    run(&["--shard", "2/3", "--set", "inputs=3"], &path("other"));
    let out = ldyn(&[
        "sweep",
        "merge",
        &s0,
        &s1,
        &path("other"),
        "--out",
        &path("mixed"),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds another sweep"));
}

/// A run that fails (a learning rate past its bound) is recorded with its message; the
/// sweep runs the others, writes the pooled files, and exits 1 with the count.
#[test]
fn a_failing_run_is_recorded_and_the_sweep_goes_on() {
    let dir = scratch("sweep-failing");
    let out = dir.join("out");
    let result = ldyn(&[
        "sweep",
        "lm_losses",
        "--seeds",
        "0..2",
        "--grid",
        "beta=0.1,1000",
        "--set",
        "model.hidden=4",
        "--set",
        "pretrain.steps=20",
        "--set",
        "dpo_updates=4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.starts_with("error: 2 of 4 runs failed"), "{stderr}");
    let claims = std::fs::read_to_string(out.join("sweep_claims.csv")).unwrap();
    let rows: Vec<&str> = claims.lines().collect();
    assert!(
        rows.iter()
            .any(|r| r.starts_with("beta=0.1,") && r.contains(",2,0,")),
        "{claims}"
    );
    let failed: Vec<&&str> = rows
        .iter()
        .filter(|r| r.starts_with("beta=1000,"))
        .collect();
    assert!(!failed.is_empty());
    for row in failed {
        assert!(
            row.contains(",0,0,2,\"") && row.contains("learning rate"),
            "{row}"
        );
    }
    assert!(out.join("beta=1000/seed-1/error.txt").exists());
    assert!(out.join("sweep.png").exists() && out.join("sweep.toml").exists());
}

/// `--jobs` runs at once must fit the memory budget together: the sweep refuses before
/// it runs anything, naming the jobs and the estimate.
#[test]
fn jobs_that_would_not_fit_in_memory_are_refused() {
    // One default lm_policy run is estimated at about 2.4 MB (4,772 parameters × 512
    // bytes, `LmConfig::memory_bytes`): 0.003 GiB (3.2 MB) holds one run, not two.
    let out = scratch("sweep-memory").join("out");
    let args = |jobs: &'static str| {
        vec![
            "--max-memory",
            "0.003",
            "sweep",
            "lm_policy",
            "--seeds",
            "0..2",
            "--jobs",
            jobs,
            "--out",
        ]
    };
    let mut two = args("2");
    two.push(out.to_str().unwrap());
    crate::common::assert_fails(&ldyn(&two), "--jobs 2 runs at once");
    assert!(!out.exists(), "nothing is written");
}

/// On a terminal one progress bar counts the runs; the runs show no progress of their
/// own, and the bar is cleared before the report.
#[test]
fn a_sweep_shows_one_progress_bar_on_a_terminal() {
    if !crate::common::has_script() {
        return;
    }
    let dir = scratch("sweep-progress");
    let command = format!(
        "{} sweep squeezing --seeds 0..3 --set frames=2 --jobs 1 --out {}",
        env!("CARGO_BIN_EXE_ldyn"),
        dir.join("out").display()
    );
    let (success, screen) = crate::common::on_a_terminal(&command, &dir.join("typescript"));
    assert!(success, "{screen}");
    assert!(
        screen.contains("sweep squeezing [") && screen.contains("/3 runs"),
        "{screen}"
    );
    assert!(!screen.contains("robustness seed"), "{screen}");
    assert!(screen.contains("sweep: 1 cell ->"), "{screen}");
}

/// `sweep merge` takes only directories and `--out`; a sweep takes one name.
#[test]
fn sweep_flags_that_do_not_apply_are_refused() {
    let dir = scratch("sweep-flags");
    let d = dir.display().to_string();
    crate::common::assert_fails(
        &ldyn(&["sweep", "merge", &d, "--seeds", "0..2", "--out", &d]),
        "--seeds does not apply to sweep merge",
    );
    crate::common::assert_fails(&ldyn(&["sweep", "merge", &d]), "sweep merge needs --out");
    crate::common::assert_fails(
        &ldyn(&["sweep", "residuals", &d, "--out", &d]),
        "is one too many (did you mean sweep merge?)",
    );
    crate::common::assert_fails(
        &ldyn(&[
            "sweep",
            "merge",
            &d,
            "--out",
            &dir.join("x").display().to_string(),
        ]),
        "sweep.toml",
    );
}

/// `ldyn ARGS` within 120 s; its status code and stderr.
fn within(args: &[&str]) -> (Option<i32>, String) {
    let out = ldyn_within(120, args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A two-seed `residuals` sweep into `dir`, and a copy of it at `copy` to damage.
fn two_runs(dir: &Path, copy: &str) -> std::path::PathBuf {
    let original = dir.join("original");
    if !original.exists() {
        let out = original.to_str().unwrap();
        ldyn_ok(&[
            "sweep",
            "residuals",
            "--seeds",
            "0..2",
            "--jobs",
            "1",
            "--out",
            out,
        ]);
    }
    let target = dir.join(copy);
    let status = std::process::Command::new("cp")
        .args(["-r", original.to_str().unwrap(), target.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    target
}

/// A damaged copy's name, the damage done to it, and what merge's refusal says.
type Damage<'a> = (&'a str, &'a dyn Fn(&Path), &'a str);

/// `sweep merge` checks what it pools as strictly as the sweep wrote it: a `sweep.toml`
/// whose shard, seeds or keys the command line would refuse (with the file and a line
/// number), an edited setting that the runs' own configurations contradict, and every
/// damaged run record; and it exits 1 when a pooled run failed, as the sweep does.
#[test]
fn merge_refuses_damaged_records_and_reports_failed_runs() {
    let dir = scratch("merge-records");
    let merge = |from: &Path, name: &str| {
        let out = dir.join(name);
        within(&[
            "sweep",
            "merge",
            from.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let edit = |path: &Path, f: &dyn Fn(String) -> String| {
        let text = std::fs::read_to_string(path).unwrap();
        std::fs::write(path, f(text)).unwrap();
    };
    let cases: [Damage; 14] = [
        (
            "shard-zero",
            &|d| edit(&d.join("sweep.toml"), &|t| format!("shard = [0, 0]\n{t}")),
            "sweep.toml:1: --shard expects I/N",
        ),
        (
            "shard-past",
            &|d| edit(&d.join("sweep.toml"), &|t| format!("shard = [3, 2]\n{t}")),
            "--shard expects I/N",
        ),
        (
            "shard-three",
            &|d| {
                edit(&d.join("sweep.toml"), &|t| {
                    format!("shard = [0, 2, 5]\n{t}")
                })
            },
            "shard must be [I, N]",
        ),
        (
            "seeds-three",
            &|d| {
                edit(&d.join("sweep.toml"), &|t| {
                    t.replace("seeds = \"0..2\"", "seeds = [0, 2, 9]")
                })
            },
            "sweep.toml:1: --seeds expects A..B",
        ),
        (
            "unknown-key",
            &|d| edit(&d.join("sweep.toml"), &|t| format!("{t}colour = 1\n")),
            "unknown field `colour`",
        ),
        (
            "edited-setting",
            &|d| {
                edit(&d.join("sweep.toml"), &|t| {
                    t.replace("\nstep = 2.0", "\nstep = 0.5")
                })
            },
            "is not the configuration this sweep gives its run",
        ),
        (
            "empty-claims",
            &|d| std::fs::write(d.join("default/seed-1/claims.csv"), "").unwrap(),
            "claims.csv:1",
        ),
        (
            "header-only",
            &|d| {
                std::fs::write(
                    d.join("default/seed-1/claims.csv"),
                    "experiment,claim_id,holds,text\n",
                )
                .unwrap()
            },
            "it lists no claim",
        ),
        (
            "duplicated-row",
            &|d| {
                edit(&d.join("default/seed-0/claims.csv"), &|t| {
                    let row = t.lines().nth(1).unwrap().to_string();
                    format!("{t}{row}\n")
                })
            },
            "a claim is listed twice",
        ),
        (
            "nan-id",
            &|d| {
                edit(&d.join("default/seed-0/claims.csv"), &|t| {
                    let mut lines: Vec<String> = t.lines().map(String::from).collect();
                    let mut fields = lines[1].splitn(3, ',');
                    let experiment = fields.next().unwrap().to_string();
                    let rest = fields.nth(1).unwrap().to_string();
                    lines[1] = format!("{experiment},NaN,{rest}");
                    lines.join("\n") + "\n"
                })
            },
            "a claim is id,holds,text",
        ),
        (
            "another-experiment",
            &|d| {
                edit(&d.join("default/seed-0/claims.csv"), &|t| {
                    t.replace("\nresiduals,", "\nlm_policy,")
                })
            },
            "the claim is not one of residuals's",
        ),
        (
            "truncated",
            &|d| {
                edit(&d.join("default/seed-1/claims.csv"), &|t| {
                    let half = (t.len() / 2..).find(|&i| t.is_char_boundary(i)).unwrap();
                    t[..half].to_string()
                })
            },
            "claims.csv",
        ),
        (
            "both-records",
            &|d| std::fs::write(d.join("default/seed-0/error.txt"), "boom\n").unwrap(),
            "also has a claims.csv",
        ),
        (
            "missing-row",
            &|d| {
                edit(&d.join("default/seed-1/claims.csv"), &|t| {
                    let lines: Vec<&str> = t.lines().collect();
                    lines[..lines.len() - 1].join("\n") + "\n"
                })
            },
            "states other claims than the sweep's other runs",
        ),
    ];
    for (name, damage, needle) in cases {
        let copy = two_runs(&dir, name);
        damage(&copy);
        let (code, stderr) = merge(&copy, &format!("{name}-merged"));
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
    }
    // An empty error, and another experiment's run record.
    let copy = two_runs(&dir, "empty-error");
    std::fs::remove_file(copy.join("default/seed-1/claims.csv")).unwrap();
    std::fs::write(copy.join("default/seed-1/error.txt"), "\n").unwrap();
    let (code, stderr) = merge(&copy, "empty-error-merged");
    assert!(
        code == Some(2) && stderr.contains("one non-empty line"),
        "{stderr}"
    );
    // The seeds are recorded as written; a record from before that change (`[A, B]`)
    // merges to the same bytes.
    let copy = two_runs(&dir, "old-record");
    let record = std::fs::read_to_string(copy.join("sweep.toml")).unwrap();
    assert!(record.contains("\nseeds = \"0..2\"\n"), "{record}");
    edit(&copy.join("sweep.toml"), &|t| {
        t.replace("seeds = \"0..2\"", "seeds = [0, 2]")
    });
    let (code, stderr) = merge(&copy, "old-record-merged");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = merge(&dir.join("original"), "new-record-merged");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        files(&dir.join("old-record-merged")),
        files(&dir.join("new-record-merged"))
    );
    // A failed run pooled: the merge writes the pooled files and exits 1.
    let copy = two_runs(&dir, "failed-run");
    std::fs::remove_file(copy.join("default/seed-1/claims.csv")).unwrap();
    std::fs::write(copy.join("default/seed-1/error.txt"), "boom\n").unwrap();
    let (code, stderr) = merge(&copy, "failed-merged");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("1 of 2 runs failed"), "{stderr}");
    assert!(dir.join("failed-merged/sweep_claims.csv").exists());
}

/// A sweep that stops midway leaves no `sweep.toml`, so no merge pools its new runs
/// under the old settings; a run folder another process holds locked is not touched;
/// the pooled outputs' paths are checked before the first run.
#[test]
fn a_sweep_never_leaves_old_settings_beside_new_runs() {
    let dir = scratch("sweep-midway");
    let out = dir.join("g");
    let g = out.to_str().unwrap();
    ldyn_ok(&[
        "sweep",
        "residuals",
        "--seeds",
        "0..3",
        "--jobs",
        "1",
        "--out",
        g,
    ]);
    // A regular file where the third run's folder goes: the sweep stops there.
    std::fs::remove_dir_all(out.join("default/seed-2")).unwrap();
    std::fs::write(out.join("default/seed-2"), "not a folder").unwrap();
    let args = [
        "sweep",
        "residuals",
        "--seeds",
        "0..3",
        "--jobs",
        "1",
        "--set",
        "step=0.5",
    ];
    let (code, stderr) = within(&[&args[..], &["--out", g]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!out.join("sweep.toml").exists() && !out.join("sweep_claims.csv").exists());
    let merged = dir.join("merged");
    let (code, stderr) = within(&["sweep", "merge", g, "--out", merged.to_str().unwrap()]);
    assert!(code == Some(2) && stderr.contains("sweep.toml"), "{stderr}");
    // A run folder locked by another process: the sweep stops, its files untouched.
    std::fs::remove_file(out.join("default/seed-2")).unwrap();
    let seed_0 = out.join("default/seed-0");
    let before = std::fs::read(seed_0.join("claims.csv")).unwrap();
    let lock = seed_0.join(".ldyn.lock");
    let mut holder = std::process::Command::new("flock")
        .args([lock.to_str().unwrap(), "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, stderr) = within(&[&args[..], &["--out", g]].concat());
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(
        code == Some(2) && stderr.contains("another ldyn run"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(seed_0.join("claims.csv")).unwrap(), before);
    // A folder where a pooled file goes: refused before any run.
    let k = dir.join("k");
    std::fs::create_dir_all(k.join("sweep.png")).unwrap();
    let k_arg = k.to_str().unwrap();
    let (code, stderr) = within(&["sweep", "residuals", "--seeds", "0..3", "--out", k_arg]);
    assert!(code == Some(2) && stderr.contains("sweep.png"), "{stderr}");
    assert!(!k.join("default").exists(), "no run ran");
}

/// One setting spelled two ways is one value; the keys the sweep sets itself are refused
/// with `--set` as with `--grid`; a cell name too long for a folder, and a control
/// character in a grid, are refused before anything runs.
#[test]
fn grid_values_and_sets_a_sweep_cannot_honour_are_refused() {
    let dir = scratch("sweep-refusals");
    let out = dir.join("s");
    let out = out.to_str().unwrap();
    let long = format!("step=1.{}", "0".repeat(260));
    let cases: [(&[&str], &str); 9] = [
        (&["--grid", "beta=0.1,1e-1"], "the same value"),
        (&["--grid", "beta=0.1,0.10"], "the same value"),
        (&["--grid", "beta=0.1,+0.1"], "the same value"),
        (&["--grid", "world=human,\"human\""], "the same value"),
        (&["--set", "seed=7"], "the sweep sets it"),
        (&["--set", "robustness_seeds=3"], "the sweep sets it"),
        (&["--set", "seeds=7"], "the sweep sets it"),
        (&["--grid", "beta=0.1,\t0.2"], "control character"),
        (&["--grid", &long], "more than the 255"),
    ];
    for (flags, needle) in cases {
        let experiment = if flags
            .iter()
            .any(|f| f.contains("world") || f.contains("seeds=7"))
        {
            "lm_policy"
        } else {
            "residuals"
        };
        let args = [
            &["sweep", experiment, "--seeds", "0..1"][..],
            flags,
            &["--out", out],
        ]
        .concat();
        let (code, stderr) = within(&args);
        assert!(
            code == Some(2) && stderr.contains(needle),
            "{flags:?}: {stderr}"
        );
        assert!(!Path::new(out).exists(), "{flags:?}: nothing ran");
    }
}

/// A plan computed without files (what the Python package's `run` does) has the claims and
/// the tables of the run that writes them: the tables render to the CSV files' bytes.
#[test]
fn a_plan_computes_without_files_what_it_writes() {
    let dir = scratch("compute");
    let plan: Plan = "residuals".parse().unwrap();
    let written = plan.execute(&dir, &mut |_| {}).unwrap();
    let computed = plan.compute(&mut |_| {}).unwrap();
    assert!(computed.files.is_empty());
    assert_eq!(computed.claims, written.claims);
    assert_eq!(computed.tables.len(), written.tables.len());
    for table in &computed.tables {
        let mut csv = table.header();
        table
            .rows()
            .iter()
            .for_each(|row| csv.push_str(&format!("\n{row}")));
        csv.push('\n');
        let file = std::fs::read_to_string(dir.join(format!("{}.csv", table.name))).unwrap();
        assert_eq!(csv, file, "{}", table.name);
    }
}
