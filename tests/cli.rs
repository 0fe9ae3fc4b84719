//! The `ldyn` binary end to end: outputs, determinism, and one-line errors with exit
//! status 2 for every kind of bad input.

use std::path::Path;

use crate::common::{assert_fails, ldyn, ldyn_ok, scratch};

/// Runs `ldyn akg` with `args` plus `--json path` and returns the parsed document.
fn akg(args: &[&str], path: &Path) -> serde_json::Value {
    let mut all = vec!["akg"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", path.to_str().unwrap()]);
    ldyn_ok(&all);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The files in `dir`, without the tool's lock file.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != learning_dynamics::io::LOCK_FILE)
        .collect();
    names.sort();
    names
}

#[test]
fn run_writes_csv_and_png_and_is_deterministic() {
    let (a, b) = (scratch("run-a"), scratch("run-b"));
    for dir in [&a, &b] {
        let out = ldyn_ok(&["run", "squeezing", "--out", dir.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("squeezing: "), "{stdout}");
        assert!(
            out.stderr.is_empty(),
            "no progress when stderr is not a terminal"
        );
    }
    let files = [
        "squeezing.config.toml",
        "squeezing.csv",
        "squeezing.gif",
        "squeezing.png",
        "squeezing_cases.csv",
        "squeezing_frames.csv",
    ];
    assert_eq!(files_in(&a), files);
    for file in files {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file} differs"
        );
    }
    let csv = std::fs::read_to_string(a.join("squeezing.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("case,class,role,p_before,p_after,log_p_before,log_p_after")
    );
    // 6 cases with V = 50 and one with V = 1000.
    assert_eq!(lines.count(), 6 * 50 + 1000);
    let other_seed = scratch("run-c");
    assert!(
        ldyn(&[
            "run",
            "squeezing",
            "--seed",
            "1",
            "--out",
            other_seed.to_str().unwrap()
        ])
        .status
        .success()
    );
    assert_ne!(
        std::fs::read(other_seed.join("squeezing.csv")).unwrap(),
        csv.as_bytes()
    );
}

/// The robustness reruns' count of each claim is structured (`Claim::reruns`), and it is
/// the one the claim's line prints.
#[test]
fn claims_carry_their_rerun_counts() {
    let dir = scratch("rerun-counts");
    let mut plan = learning_dynamics::gallery::find("squeezing")
        .unwrap()
        .plan("squeezing")
        .unwrap();
    plan.set("robustness_seeds=3").unwrap();
    let report = plan.execute(&dir, &mut |_| {}).unwrap();
    for c in &report.claims {
        let t = c.reruns.expect("rerun on 3 seeds");
        assert_eq!(t.n, 3);
        assert!(c.text.ends_with(&format!("holds on {t}]")), "{}", c.text);
    }
}

/// The gallery's CSV and PNG files for the default configurations of every registered
/// experiment are the committed ones, byte for byte (the robustness reruns do not change
/// them, so they are skipped); and every claim has a name of its own.
#[test]
fn default_runs_reproduce_the_committed_figures() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("plots");
    let mut written = std::collections::HashMap::new();
    for entry in learning_dynamics::gallery::REGISTRY {
        let dir = scratch(&format!("golden-{}", entry.name));
        let mut plan = entry.plan(entry.name).unwrap();
        plan.set("robustness_seeds=0").unwrap();
        let report = plan.execute(&dir, &mut |_| {}).unwrap();
        // A claim decided per seed carries its count, and its verdict is the count's.
        for c in &report.claims {
            assert!(
                c.seeds
                    .is_none_or(|t| t.holds == c.holds && t.k <= t.n && (1..=5).contains(&t.n))
            );
            assert!(c.reruns.is_none(), "not rerun");
        }
        if entry.name == "lm_policy" || entry.name == "lm_lens" {
            assert!(report.claims.iter().filter(|c| c.seeds.is_some()).count() >= 8);
        }
        let mut ids: Vec<&str> = report.claims.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), report.claims.len(), "{}: claim ids", entry.name);
        for file in files_in(&dir) {
            if [".csv", ".png", ".gif"].iter().any(|e| file.ends_with(e)) {
                let ours = std::fs::read(dir.join(&file)).unwrap();
                let theirs = std::fs::read(committed.join(&file))
                    .unwrap_or_else(|_| panic!("{file} is not committed in plots/"));
                assert!(ours == theirs, "{file} differs from plots/{file}");
            }
        }
        written.insert(entry.name, files_in(&dir));
    }
    tutorial_chapters_end_with_a_command_that_draws_their_figure(&written);
}

/// Each tutorial chapter ends with `ldyn run NAME` in a code block, and the run of `NAME`
/// (in `written`, the files each experiment's default run wrote) draws the figure that
/// `src/tutorial.rs` embeds after the chapter.
fn tutorial_chapters_end_with_a_command_that_draws_their_figure(
    written: &std::collections::HashMap<&str, Vec<String>>,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let index = std::fs::read_to_string(root.join("src/tutorial.rs")).unwrap();
    let quoted = |line: &str, from: &str| {
        let rest = &line[line.find(from).unwrap() + from.len()..];
        rest[..rest.find('"').unwrap()].to_string()
    };
    let chapters: Vec<String> = (index.lines())
        .filter(|l| l.contains("include_str!(\"tutorial/"))
        .map(|l| quoted(l, "include_str!(\""))
        .collect();
    let figures: Vec<String> = (index.lines())
        .filter(|l| l.contains("OUT_DIR"))
        .map(|l| quoted(l, "\"/").replace(".md", ".png"))
        .collect();
    assert_eq!(chapters.len(), 9, "{chapters:?}");
    assert_eq!(chapters.len(), figures.len());
    for (chapter, figure) in chapters.iter().zip(&figures) {
        let text = std::fs::read_to_string(root.join("src").join(chapter)).unwrap();
        let last = text.trim_end().rsplit("```text").next().unwrap();
        let command = last.trim().trim_end_matches("```").trim();
        let name = command
            .strip_prefix("ldyn run ")
            .unwrap_or_else(|| panic!("{chapter} ends with `{command}`, not `ldyn run NAME`"));
        let files = written
            .get(name)
            .unwrap_or_else(|| panic!("{chapter}: {name} is not an experiment"));
        assert!(
            files.contains(figure),
            "{chapter}: `ldyn run {name}` does not draw {figure}"
        );
    }
}

/// `--set` overrides a key and the run writes its whole configuration; running again
/// from that file reproduces every file byte for byte.
#[test]
fn a_run_is_reproduced_from_the_configuration_it_wrote() {
    let (d, e) = (scratch("config-d"), scratch("config-e"));
    let quick = [
        "--set",
        "pretrain.steps=300",
        "--set",
        "sft.epochs=1",
        "--set",
        "dpo_updates=16",
        "--set",
        "robustness_seeds=1",
    ];
    let mut args = vec!["run", "lm_dpo", "--set", "beta=0.5"];
    args.extend(quick);
    args.extend(["--out", d.to_str().unwrap()]);
    ldyn_ok(&args);
    // An alias writes the experiment's configuration, under the experiment's name.
    assert!(!d.join("lm_dpo.config.toml").exists());
    let config = d.join("lm_finetune.config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("beta = 0.5  #")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("seed = 1024  #")),
        "{text}"
    );
    ldyn_ok(&[
        "run",
        "lm_dpo",
        "--config",
        config.to_str().unwrap(),
        "--out",
        e.to_str().unwrap(),
    ]);
    assert_eq!(files_in(&d), files_in(&e));
    for file in files_in(&d) {
        assert!(
            std::fs::read(d.join(&file)).unwrap() == std::fs::read(e.join(&file)).unwrap(),
            "{file} differs"
        );
    }
    // Precedence: the file, then --set, then --seed.
    let f = scratch("config-f");
    ldyn_ok(&[
        "run",
        "lm_dpo",
        "--config",
        config.to_str().unwrap(),
        "--set",
        "beta=0.25",
        "--seed",
        "3",
        "--out",
        f.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(f.join("lm_finetune.config.toml")).unwrap();
    assert!(
        text.contains("\nbeta = 0.25  #") && text.contains("\nseed = 3  #"),
        "{text}"
    );
    assert!(text.contains("\ndpo_updates = 16  #"), "{text}");
}

/// `ldyn run lm_policy --seed S` covers seeds S..S+4 in every table, and the summary's
/// regimes all took the updates asked for.
#[test]
fn lm_policy_runs_five_seeds_from_any_seed() {
    let dir = scratch("lm-policy");
    let out = dir.to_str().unwrap();
    ldyn_ok(&[
        "run",
        "lm_policy",
        "--seed",
        "77",
        "--set",
        "pretrain.steps=1000",
        "--set",
        "dpo_updates=12",
        "--set",
        "track_every=6",
        "--out",
        out,
    ]);
    for table in ["lm_policy", "lm_policy_positions", "lm_policy_repeater"] {
        let text = std::fs::read_to_string(dir.join(format!("{table}.csv"))).unwrap();
        let seeds: std::collections::BTreeSet<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap())
            .collect();
        assert_eq!(seeds, ["77", "78", "79", "80", "81"].into(), "{table}");
    }
    let summary = std::fs::read_to_string(dir.join("lm_policy_summary.csv")).unwrap();
    assert!(summary.starts_with("regime,metric,value\n"));
    for regime in ["off_policy", "spin", "online"] {
        assert!(
            summary.contains(&format!("{regime},updates,12\n")),
            "{summary}"
        );
    }
    assert!(dir.join("lm_policy.png").exists());
}

#[test]
fn config_prints_every_documented_key() {
    let out = ldyn_ok(&["config", "lm_influence"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "seed",
        "robustness_seeds",
        "model.hidden",
        "beta",
        "epochs",
        "eta_scale",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in {text}"));
        assert!(line.contains("  # "), "undocumented: {line}");
    }
    let parsed: toml::Table = toml::from_str(&text).expect("valid TOML");
    // 64: the default hidden width of the LM world (`LmConfig::default`).
    // 64: the default hidden width of the LM world (`LmConfig::default`).
    assert_eq!(parsed["model"]["hidden"].as_integer(), Some(64));
}

#[test]
fn bad_configuration_keys_and_values_fail_with_one_line() {
    let dir = scratch("bad-config");
    let out = dir.to_str().unwrap();
    let run = |set: &str| ldyn(&["run", "squeezing", "--set", set, "--out", out]);
    assert_fails(&run("vocabb=3"), "unknown configuration key 'vocabb'");
    assert_fails(
        &run("vocab=3"),
        "vocab must be an integer in 10..=10000, got 3",
    );
    assert_fails(&run("vocab=50.5"), "vocab must be an integer");
    assert_fails(&run("vocab"), "--set expects key=value");
    assert_fails(
        &run("vocab=abc"),
        "vocab must be an integer in 10..=10000, got \"abc\"",
    );
    assert_fails(&run("vocab=a b"), "'a b', is neither a number nor a name");
    let lm = |set: &str| ldyn(&["run", "lm_dpo", "--set", set, "--out", out]);
    assert_fails(
        &lm("world=martian"),
        "world must be one of canonical, human, got \"martian\"",
    );
    assert_fails(
        &lm("world=3"),
        "world must be one of canonical, human, got 3",
    );
    assert_fails(
        &ldyn(&["run", "lm_dpo", "--set", "beta=-1", "--out", out]),
        "beta must be a number in (0, 1000], got -1",
    );
    let file = dir.join("bad.toml");
    let from_file = |contents: &str| {
        std::fs::write(&file, contents).unwrap();
        let path = file.to_str().unwrap();
        ldyn(&["run", "squeezing", "--config", path, "--out", out])
    };
    assert_fails(&from_file("seed = 1\nnot_a_key = 2\n"), "not_a_key");
    assert_fails(&from_file("seed = = 1\n"), "bad.toml:1");
    assert_eq!(
        files_in(&dir),
        ["bad.toml"],
        "nothing is written by a refused run"
    );
}

#[test]
fn unknown_names_and_unwritable_outputs_fail_cleanly() {
    assert_fails(
        &ldyn(&["run", "no-such-figure"]),
        "unknown experiment 'no-such-figure'",
    );
    assert_fails(&ldyn(&["frobnicate"]), "frobnicate");
    assert_fails(
        &ldyn(&["run", "squeezing", "--out", "/dev/null/plots"]),
        "/dev/null/plots",
    );
    assert_fails(&ldyn(&["run", "squeezing", "--seed", "-3"]), "-3");
}

#[test]
fn squeeze_summarises_and_writes_files() {
    let dir = scratch("squeeze");
    let csv = dir.join("s.csv");
    let png = dir.join("s.png");
    let out = ldyn_ok(&[
        "squeeze",
        "--logits",
        "5,1,0,-1,-8",
        "--class",
        "4",
        "--direction",
        "negative",
        "--step",
        "2",
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        png.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("/5 classes rose; pushed class 4") && stdout.contains("y* = 0"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("class,p_before,p_after,log_p_before,log_p_after\n0,"));
    assert_eq!(text.lines().count(), 6);
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    assert_eq!(
        files_in(&dir),
        ["s.csv", "s.png"],
        "no temporary files left behind"
    );
}

#[test]
fn squeeze_reads_logit_files() {
    let dir = scratch("files");
    let lines = dir.join("z.txt");
    std::fs::write(&lines, "1000\n\n-1000\n0\n").unwrap();
    let json = dir.join("z.json");
    std::fs::write(&json, "[1000, -1000, 0]").unwrap();
    let mut summaries = Vec::new();
    for file in [&lines, &json] {
        let out = ldyn_ok(&[
            "squeeze",
            "--logits",
            file.to_str().unwrap(),
            "--class",
            "1",
            "--direction",
            "positive",
            "--step",
            "1",
        ]);
        summaries.push(out.stdout);
    }
    assert_eq!(summaries[0], summaries[1]);
    let bad = dir.join("bad.txt");
    std::fs::write(&bad, "1.0\n2.0\nthree\n").unwrap();
    let args = |f: &str| {
        ldyn(&[
            "squeeze",
            "--logits",
            f,
            "--class",
            "0",
            "--direction",
            "negative",
            "--step",
            "1",
        ])
    };
    assert_fails(&args(bad.to_str().unwrap()), ":3: 'three' is not a number");
    let bad_json = dir.join("bad.json");
    std::fs::write(&bad_json, "[1.0, \"x\"]").unwrap();
    assert_fails(&args(bad_json.to_str().unwrap()), "JSON array of numbers");
    assert_fails(
        &args(dir.join("missing.txt").to_str().unwrap()),
        "missing.txt",
    );
}

#[test]
fn squeeze_rejects_bad_numbers() {
    let run = |logits: &str, class: &str, direction: &str, step: &str| {
        ldyn(&[
            "squeeze",
            "--logits",
            logits,
            "--class",
            class,
            "--direction",
            direction,
            "--step",
            step,
        ])
    };
    for step in ["0", "-1", "inf"] {
        assert_fails(
            &run("1,2,3", "0", "negative", step),
            "step must be finite and > 0",
        );
    }
    assert_fails(
        &run("1,2,3", "3", "negative", "1"),
        "class 3 is out of range",
    );
    assert_fails(&run("1", "0", "negative", "1"), "need at least 2 classes");
    assert_fails(
        &run("1,inf,3", "0", "negative", "1"),
        "logits must be finite",
    );
    assert_fails(&run("1,2,3", "0", "up", "1"), "unknown direction 'up'");
    assert_fails(
        &run("1,x,3", "0", "negative", "1"),
        "item 2 of the list, 'x', is not a number",
    );
    let dir = scratch("unwritable");
    let blocked = dir.join("file");
    std::fs::write(&blocked, "").unwrap();
    let target = blocked.join("out.csv");
    let out = ldyn(&[
        "squeeze",
        "--logits",
        "1,2",
        "--class",
        "0",
        "--direction",
        "negative",
        "--step",
        "1",
        "--csv",
        target.to_str().unwrap(),
    ]);
    assert_fails(&out, "cannot create directory");
    assert_eq!(files_in(&dir), ["file"]);
}

#[test]
fn akg_exports_a_checkable_decomposition() {
    let dir = scratch("akg");
    for model in ["linear", "mlp"] {
        let path = dir.join(format!("{model}.json"));
        let doc = akg(&["--model", model, "--seed", "3", "--eta", "0.001"], &path);
        assert_eq!(doc["model"]["kind"], model);
        let v = doc["update"]["G"].as_array().unwrap().len();
        assert_eq!(v, 5);
        let x_u: Vec<f64> = serde_json::from_value(doc["update"]["x"].clone()).unwrap();
        let observed = doc["observed"].as_array().unwrap();
        assert_eq!(observed.len(), 4);
        for o in observed {
            let pred: Vec<f64> =
                serde_json::from_value(o["predicted_delta_log_pi"].clone()).unwrap();
            let act: Vec<f64> = serde_json::from_value(o["actual_delta_log_pi"].clone()).unwrap();
            let k: Vec<Vec<f64>> = serde_json::from_value(o["K"].clone()).unwrap();
            let a: Vec<Vec<f64>> = serde_json::from_value(o["A"].clone()).unwrap();
            assert_eq!((k.len(), a.len(), k[0].len()), (v, v, v));
            // η = 1e-3: the O(η²) remainder is tiny next to the O(η) change.
            let err: f64 = pred
                .iter()
                .zip(&act)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max);
            let size: f64 = act.iter().map(|q| q.abs()).fold(0.0, f64::max);
            assert!(err <= 1e-2 * size, "{model}: {err} vs {size}");
            if model == "linear" {
                let x: Vec<f64> = serde_json::from_value(o["x"].clone()).unwrap();
                let dot: f64 = x.iter().zip(&x_u).map(|(p, q)| p * q).sum::<f64>() + 1.0;
                for (i, row) in k.iter().enumerate() {
                    for (j, kij) in row.iter().enumerate() {
                        let expected = if i == j { dot } else { 0.0 };
                        assert!((kij - expected).abs() < 1e-12);
                    }
                }
            }
        }
    }
    let path = dir.join("x.json");
    let p = path.to_str().unwrap();
    assert_fails(
        &ldyn(&["akg", "--model", "linear", "--eta", "0", "--json", p]),
        "eta must be finite and > 0",
    );
    assert_fails(
        &ldyn(&["akg", "--model", "linear", "--eta", "nan", "--json", p]),
        "eta must be finite",
    );
    assert_fails(
        &ldyn(&["akg", "--model", "transformer", "--eta", "0.1", "--json", p]),
        "transformer",
    );
    assert_fails(
        &ldyn(&[
            "akg",
            "--model",
            "mlp",
            "--eta",
            "0.1",
            "--classes",
            "1",
            "--json",
            p,
        ]),
        "need at least 2 classes",
    );
    assert!(!path.exists());
}

#[test]
fn bench_commands_run_on_tiny_sizes_and_reject_bad_ones() {
    let out = ldyn_ok(&["bench", "entk", "--dims", "3,4,2,5", "--reps", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("GFLOP/s") && text.contains("pairwise baseline") && text.contains("checksum"),
        "{text}"
    );
    ldyn_ok(&[
        "bench",
        "one-step",
        "--dims",
        "3,4,2,5",
        "--observed",
        "10",
        "--reps",
        "1",
    ]);
    assert_fails(
        &ldyn(&["bench", "entk", "--workload", "XL"]),
        "unknown workload 'XL'",
    );
    assert_fails(
        &ldyn(&["bench", "entk", "--dims", "3,4,1,5"]),
        "need at least 2 classes",
    );
    assert_fails(
        &ldyn(&["bench", "entk", "--dims", "3,4.5,2,5"]),
        "four whole numbers",
    );
}

/// The entk bench reports executed FLOPs against a GEMM rate it measured, not a constant.
#[test]
fn bench_entk_reports_efficiency_against_a_measured_gemm_rate() {
    let out = ldyn_ok(&["bench", "entk", "--dims", "3,4,2,5", "--reps", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("executed = "), "{text}");
    assert!(text.contains("measured 2-thread GEMM rate"), "{text}");
    assert!(
        text.contains("dense f64 GEMM 1024×1024, measured now"),
        "{text}"
    );
}

/// `ldyn bench lm` times both steps and exports what a peer needs to check itself.
#[test]
fn bench_lm_times_both_steps_and_exports_a_checkable_workload() {
    let dir = scratch("bench-lm");
    let path = dir.join("gallery.json");
    let bench = |extra: &[&str]| {
        let args = [
            &["bench", "lm", "--workload", "gallery", "--reps", "1"],
            extra,
        ]
        .concat();
        String::from_utf8_lossy(&ldyn_ok(&args).stdout).into_owned()
    };
    let text = bench(&["--export", path.to_str().unwrap()]);
    assert!(
        text.contains("SFT step") && text.contains("DPO step"),
        "{text}"
    );
    assert!(text.contains("tokens/s"), "{text}");
    // The executed rate of the products, against a GEMM rate measured in the same run.
    assert!(text.contains("% of the GEMM rate"), "{text}");
    assert!(text.contains("measured between the steps"), "{text}");
    // The crate's activations against libm's, on the step's own logits.
    assert!(text.contains("faster than libm"), "{text}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["model"]["vocab"], 36);
    assert_eq!(doc["sft"].as_array().unwrap().len(), 1);
    assert_eq!(doc["pairs"].as_array().unwrap().len(), 1);
    // The gallery's LM: token and slot embeddings (V = 36, window 4, d = 8), then the
    // MLP 32 → 64 → 36 with biases.
    let params = 36 * 8 + 4 * 8 + (64 * 32 + 64) + (36 * 64 + 36);
    assert_eq!(
        doc["check"]["sft"]["grad"].as_array().unwrap().len(),
        params
    );
    assert_eq!(
        doc["check"]["dpo"]["grad"].as_array().unwrap().len(),
        params
    );
    assert!(doc["check"]["sft"]["loss"].as_f64().unwrap() > 0.0);
    // One JVP value per SFT sequence, for the peer's check.
    assert_eq!(doc["check"]["jvp"].as_array().unwrap().len(), 1);
    let text = bench(&["--jvp"]);
    assert!(
        text.contains("the JVP costs") && text.contains("forward passes"),
        "{text}"
    );
    // What the attribution's terms pay: a second direction in the same call.
    assert!(
        text.contains("two directions in one call") && text.contains("each further direction adds"),
        "{text}"
    );
    // The JVP's executed rate, and the direction's products at the GEMM rate measured
    // beside it: the least any direction adds.
    assert!(
        text.contains("the JVP executes") && text.contains("% of the GEMM rate"),
        "{text}"
    );
    assert!(text.contains("the least a direction can add"), "{text}");
    // Against the faster of the crate's two forward passes.
    assert!(
        text.contains("the faster of predict along no direction"),
        "{text}"
    );
    assert!(text.contains("measured beside the JVP"), "{text}");
    assert_fails(
        &ldyn(&["bench", "lm", "--workload", "huge"]),
        "unknown LM workload 'huge'",
    );
}

#[test]
fn akg_exports_the_sequence_decomposition_for_every_objective() {
    let dir = scratch("akg-lm");
    // The largest |predicted − actual| over all observed positions and classes.
    let residual = |objective: &str, eta: &str| {
        let path = dir.join(format!("{objective}-{eta}.json"));
        let doc = akg(
            &[
                "--model",
                "lm",
                "--objective",
                objective,
                "--seed",
                "2",
                "--eta",
                eta,
            ],
            &path,
        );
        assert_eq!(doc["model"]["kind"], "lm");
        assert_eq!(doc["objective"], objective);
        let vocab = doc["model"]["vocab"].as_u64().unwrap() as usize;
        // The full weights and architecture, to rebuild the model elsewhere.
        let weights = &doc["weights"];
        assert_eq!(weights["embed"].as_array().unwrap().len(), vocab);
        assert_eq!(weights["layers"].as_array().unwrap().len(), 2);
        assert_eq!(weights["activation"], "tanh");
        let sequences = doc["update"]["sequences"].as_array().unwrap();
        assert_eq!(sequences.len(), if objective == "sft" { 1 } else { 2 });
        assert_eq!(sequences[0]["role"], "chosen");
        assert_eq!(
            sequences[0]["G"][0].as_array().unwrap().len(),
            doc["model"]["vocab"].as_u64().unwrap() as usize
        );
        let observed = doc["observed"].as_array().unwrap();
        assert_eq!(observed[0]["family"], "chosen");
        let mut worst = 0.0f64;
        for o in observed {
            let pred: Vec<Vec<f64>> =
                serde_json::from_value(o["predicted_delta_log_pi"].clone()).unwrap();
            let act: Vec<Vec<f64>> =
                serde_json::from_value(o["actual_delta_log_pi"].clone()).unwrap();
            let tokens =
                o["tokens"].as_array().unwrap().len() - o["prompt_len"].as_u64().unwrap() as usize;
            assert_eq!((pred.len(), pred[0].len()), (tokens, vocab));
            worst = pred
                .iter()
                .flatten()
                .zip(act.iter().flatten())
                .map(|(p, a)| (p - a).abs())
                .fold(worst, f64::max);
        }
        worst
    };
    // Eq. 5 is first order: dividing η by 10 divides the remainder by about 100.
    for objective in ["sft", "dpo", "ipo", "slic", "sppo_hard"] {
        let slope = (residual(objective, "0.001") / residual(objective, "0.0001")).log10();
        assert!((slope - 2.0).abs() <= 0.3, "{objective}: slope {slope}");
    }
    let p = dir.join("x.json");
    // KTO is not implemented; TRL's hinge, max(0, 1 − βm), is not SLiC-HF, so no alias.
    for unknown in ["kto", "hinge"] {
        assert_fails(
            &ldyn(&[
                "akg",
                "--model",
                "lm",
                "--objective",
                unknown,
                "--eta",
                "0.1",
                "--json",
                p.to_str().unwrap(),
            ]),
            &format!("unknown objective '{unknown}'"),
        );
    }
    let p = p.to_str().unwrap();
    let mlp_dpo = [
        "akg",
        "--model",
        "mlp",
        "--objective",
        "dpo",
        "--eta",
        "0.1",
        "--json",
        p,
    ];
    assert_fails(&ldyn(&mlp_dpo), "--model lm only");
}

/// On a terminal, a run shows its progress on stderr (and clears it); `script` gives the
/// run a pseudo-terminal (it fails where `script` is missing, unless marked as lacking).
#[test]
fn progress_shows_on_a_terminal() {
    let dir = scratch("progress");
    let command = format!(
        "{} run squeezing --set robustness_seeds=2 --out {}",
        env!("CARGO_BIN_EXE_ldyn"),
        dir.join("out").display()
    );
    if !crate::common::has_script() {
        return;
    }
    let (success, screen) = crate::common::on_a_terminal(&command, &dir.join("typescript"));
    assert!(success, "{screen}");
    // The second rerun shows an estimate of the time left.
    assert!(
        screen.contains("squeezing: robustness seed 2/2 (about "),
        "{screen}"
    );
    assert!(
        screen.contains("\r\x1b[K"),
        "the progress line is cleared: {screen}"
    );
    assert!(screen.contains("squeezing: 6/6 claims hold"), "{screen}");
}

/// On a terminal, a long run shows the stage it has reached inside the run: the seed's
/// pre-training, SFT, the DPO regime k/n and its update i/N; not on a pipe.
#[test]
fn a_long_run_shows_its_stage_on_a_terminal() {
    let dir = scratch("stages");
    let args = format!(
        "run lm_policy --set pretrain.steps=300 --set sft.epochs=1 --set seeds=1 --out {}",
        dir.join("out").display()
    );
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_ldyn"));
    if crate::common::has_script() {
        let (success, screen) = crate::common::on_a_terminal(&command, &dir.join("typescript"));
        assert!(success, "{screen}");
        for stage in [
            "seed 1024: pre-training",
            "seed 1024: SFT",
            "seed 1024: DPO regime 1/5 (off_policy)",
            "DPO regime 5/5 (off_policy_rejected_only)",
            "/320", // an update of the world's default 320
        ] {
            assert!(screen.contains(stage), "{stage}: {screen}");
        }
    }
    let args: Vec<&str> = args.split(' ').collect();
    let out = crate::common::ldyn_ok(&args);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// For every registered experiment, the documented keys (`ldyn config NAME`) are exactly
/// the fields of its configuration, in order, after the plan's own two; and each default
/// value lies in its key's range.
#[test]
fn every_experiment_documents_exactly_its_configuration_fields() {
    for entry in learning_dynamics::gallery::REGISTRY {
        let keys = entry.keys();
        let documented: Vec<&str> = keys.iter().map(|k| k.path).collect();
        let defaults = entry.defaults().unwrap();
        let fields: Vec<&str> = defaults.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            documented[..2],
            ["seed", "robustness_seeds"],
            "{}",
            entry.name
        );
        assert_eq!(documented[2..], fields, "{}", entry.name);
        for (key, (_, value)) in keys[2..].iter().zip(&defaults) {
            key.check(value).unwrap();
        }
    }
}

/// `ldyn akg --help` names the objectives against TRL's `loss_type` (that `hinge` is
/// refused is checked with the sequence export above).
#[test]
fn akg_help_maps_the_objectives_to_trl_names() {
    let help = String::from_utf8(ldyn_ok(&["akg", "--help"]).stdout).unwrap();
    assert!(
        help.contains("TRL's sigmoid") && help.contains("TRL's hinge"),
        "{help}"
    );
}

/// On a terminal, a run whose settings differ from the defaults (other than the seed) and
/// that writes into the default `plots/` is warned that it replaces the committed figures;
/// a run with the defaults and another seed is not. (The scratch working directory's
/// `plots/` stands in for the repository's.)
#[test]
fn a_what_if_run_into_plots_is_warned_on_a_terminal() {
    if !crate::common::has_script() {
        return;
    }
    let dir = scratch("what-if");
    let ldyn = env!("CARGO_BIN_EXE_ldyn");
    let cd = format!("cd {} && ", dir.display());
    let what_if = format!("{cd}{ldyn} run residuals --set step=0.5");
    let (success, screen) = crate::common::on_a_terminal(&what_if, &dir.join("t1"));
    assert!(success, "{screen}");
    assert!(
        screen.contains("warning: these settings are not the defaults of residuals"),
        "{screen}"
    );
    assert!(dir.join("plots/residuals.png").exists());
    for quiet in [
        format!("{cd}{ldyn} run residuals --seed 7"),
        format!("{cd}{ldyn} run residuals --set step=0.5 --out elsewhere"),
    ] {
        let (success, screen) = crate::common::on_a_terminal(&quiet, &dir.join("t2"));
        assert!(success && !screen.contains("warning"), "{quiet}: {screen}");
    }
}

/// The README's configuration recipe runs as written: a run with `--set`s, then a run
/// from the configuration file it wrote, give the same bytes (an alias writes its
/// experiment's configuration).
#[test]
fn the_readmes_config_recipe_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let recipe: Vec<&str> = (readme.lines())
        .filter(|l| l.starts_with("ldyn run lm_dpo "))
        .collect();
    assert_eq!(recipe.len(), 2, "the recipe's two runs: {recipe:?}");
    let dir = scratch("readme-recipe");
    let (d, e) = (dir.join("D"), dir.join("E"));
    for line in &recipe {
        let command = line.split('#').next().unwrap();
        let args: Vec<String> = (command.split_whitespace().skip(1))
            .map(|w| match w {
                "D" => d.display().to_string(),
                "E" => e.display().to_string(),
                w => match w.strip_prefix("D/") {
                    Some(file) => d.join(file).display().to_string(),
                    None => w.to_string(),
                },
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ldyn_ok(&args);
    }
    let (ours, theirs) = (files_in(&d), files_in(&e));
    assert_eq!(ours, theirs);
    for file in ours.iter().filter(|f| !f.starts_with('.')) {
        let same = std::fs::read(d.join(file)).unwrap() == std::fs::read(e.join(file)).unwrap();
        assert!(same, "{file} differs");
    }
}

/// `ldyn list` aligns its columns whatever the names' lengths, and `squeeze --plot`
/// refuses a suffix it cannot write (it draws PNG) before writing anything.
#[test]
fn list_is_aligned_and_plot_suffixes_are_checked() {
    let out = ldyn_ok(&["list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let columns: Vec<usize> = text.lines().map(|l| l.find(" seed ").unwrap()).collect();
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "{text}");
    let abouts: Vec<usize> = (text.lines())
        .map(|l| {
            let seed = l.find(" seed ").unwrap() + 6;
            let padded = seed + l[seed..].find(' ').unwrap();
            padded + l[padded..].find(|c: char| c != ' ').unwrap()
        })
        .collect();
    let first = text.lines().next().unwrap();
    assert!(abouts.windows(2).all(|w| w[0] == w[1]), "{text}");
    assert!(first[abouts[0]..].starts_with("App. E"), "{first}");
    let dir = scratch("plot-suffix");
    let svg = dir.join("step.svg");
    let args = [
        "squeeze",
        "--logits",
        "2,1,0",
        "--class",
        "2",
        "--direction",
        "negative",
        "--step",
        "1",
        "--plot",
        svg.to_str().unwrap(),
    ];
    assert_fails(&ldyn(&args), "--plot writes PNG");
    assert!(!svg.exists());
}

/// A claim line says what each count counts: the verdict names the run's seeds (one seed,
/// or the seed set an LM comparison trains in one run), the tag the robustness reruns'.
#[test]
fn claim_lines_name_the_seeds_they_count() {
    let dir = scratch("claim-lines");
    let out = dir.display().to_string();
    let text = |args: &[&str]| String::from_utf8_lossy(&ldyn_ok(args).stdout).into_owned();
    let claims = |t: &str| -> Vec<String> {
        (t.lines().filter(|l| l.starts_with("  [")))
            .map(str::to_string)
            .collect()
    };
    let one = text(&[
        "run",
        "squeezing",
        "--seed",
        "7",
        "--set",
        "robustness_seeds=3",
        "--out",
        &out,
    ]);
    let lines = claims(&one);
    assert!(!lines.is_empty(), "{one}");
    for line in &lines {
        assert!(
            line.starts_with("  [holds at seed 7] ") || line.starts_with("  [FAILS at seed 7] "),
            "{line}"
        );
        let tag = line
            .rsplit_once(" [rerun on seeds 0–2: holds on ")
            .map(|(_, t)| t);
        let k: usize = tag
            .and_then(|t| t.strip_suffix("/3]"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(k <= 3, "{line}");
    }
    let set = text(&["run", "lm_ches", "--set", "seeds=2", "--out", &out]);
    for line in claims(&set) {
        assert!(line.contains(" at seeds 1024–1025] "), "{line}");
        assert!(line.ends_with(" [not rerun on other seeds]"), "{line}");
    }
}
