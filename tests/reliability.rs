//! Hostile input through the binary, one test per class of defect: sizes, non-finite
//! results, failing streams, file-system targets, messages and flags that do not apply.
//! Every refusal is one `error:` line with status 2, and nothing panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proptest::prelude::*;

use crate::common::{
    assert_fails, config, has_root, ldyn, ldyn_command, ldyn_within, requires, scratch,
};

/// A character device made with mknod in `dir` (null: 1,3; full: 1,7); `None` only where
/// [`has_root`] allows the test to go without root.
fn device(dir: &Path, name: &str, minor: &str) -> Option<PathBuf> {
    if !has_root() {
        return None;
    }
    let path = dir.join(name);
    let made = Command::new("mknod")
        .args([path.to_str().unwrap(), "c", "1", minor])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        made,
        "mknod {} failed although running as root",
        path.display()
    );
    Some(path)
}

#[test]
fn sizes_are_checked_before_allocating() {
    let json = scratch("sizes").join("x.json");
    let json = json.to_str().unwrap();
    assert_fails(
        &ldyn(&[
            "bench",
            "entk",
            "--dims",
            "4294967296,4294967296,2,1",
            "--reps",
            "1",
        ]),
        "above the limit of 4.000 GiB",
    );
    assert_fails(
        &ldyn(&[
            "akg",
            "--model",
            "mlp",
            "--inputs",
            "2",
            "--hidden",
            "9223372036854775808",
            "--eta",
            "0.1",
            "--json",
            json,
        ]),
        "--hidden",
    );
    assert_fails(
        &ldyn(&[
            "akg",
            "--model",
            "linear",
            "--eta",
            "0.1",
            "--classes",
            "100000",
            "--json",
            json,
        ]),
        "--classes would need about",
    );
    assert_fails(
        &ldyn(&["bench", "entk", "--reps", "18446744073709551615"]),
        "--reps",
    );
    assert_fails(
        &ldyn(&["bench", "entk", "--reps", "0"]),
        "0 is not in 1..=1000",
    );
    assert_fails(
        &ldyn(&["bench", "one-step", "--observed", "0"]),
        "--observed",
    );
    assert_fails(
        &ldyn(&[
            "akg", "--model", "mlp", "--hidden", "0", "--eta", "0.1", "--json", json,
        ]),
        "--hidden must be at least 1",
    );
    let refused = scratch("sizes-out");
    assert_fails(
        &ldyn(&[
            "run",
            "lm_dpo",
            "--set",
            "model.hidden=4096",
            "--set",
            "model.embed=1024",
            "--set",
            "model.window=64",
            "--out",
            refused.to_str().unwrap(),
        ]),
        "model.window, model.embed and model.hidden would need about",
    );
    // Refused before the output directory is locked: not even the lock file is made.
    assert!(std::fs::read_dir(&refused).unwrap().next().is_none());
    assert_fails(
        &ldyn(&["--max-memory", "0", "list"]),
        "--max-memory must be a number of GiB",
    );
}

#[test]
fn results_are_finite_or_an_error_that_names_the_cause() {
    let dir = scratch("finite");
    let csv = dir.join("b.csv");
    assert_fails(
        &ldyn(&[
            "squeeze",
            "--logits",
            "1e308,-1e308",
            "--class",
            "0",
            "--direction",
            "negative",
            "--step",
            "2",
            "--csv",
            csv.to_str().unwrap(),
        ]),
        "the logits span more than a double can hold",
    );
    assert_fails(
        &ldyn(&[
            "squeeze",
            "--logits",
            "1e307,0",
            "--class",
            "1",
            "--direction",
            "negative",
            "--step",
            "1e308",
        ]),
        "the step C = ",
    );
    for model in ["mlp", "linear"] {
        let json = dir.join(format!("{model}.json"));
        assert_fails(
            &ldyn(&[
                "akg",
                "--model",
                model,
                "--eta",
                "1e308",
                "--json",
                json.to_str().unwrap(),
            ]),
            "the step η·‖g‖",
        );
    }
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn failing_and_closed_output_streams_end_cleanly() {
    let dir = scratch("streams");
    if let Some(full) = device(&dir, "full", "7") {
        for args in [vec!["list"], vec!["config", "squeezing"]] {
            let out = ldyn_command()
                .args(&args)
                .stdout(std::fs::File::create(&full).unwrap())
                .output()
                .unwrap();
            assert_fails(&out, "cannot write standard output");
        }
        // A failing stderr: still status 2, no panic.
        let out = ldyn_command()
            .args(["run", "no-such-figure"])
            .stderr(std::fs::File::create(&full).unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
    }
    // A reader that has gone away: quiet, non-zero, no panic.
    let out_dir = dir.join("out");
    let mut child = ldyn_command()
        .args([
            "run",
            "squeezing",
            "--set",
            "robustness_seeds=0",
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    // The README promises 141, as a shell reports a command ended by SIGPIPE.
    assert_eq!(out.status.code(), Some(141));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One negative step on three logits: the smallest command that writes a file.
const ONE_SQUEEZE: [&str; 9] = [
    "squeeze",
    "--logits",
    "2,1,0",
    "--class",
    "2",
    "--direction",
    "negative",
    "--step",
    "1",
];

#[test]
fn targets_are_written_whole_and_nothing_else_is_touched() {
    let dir = scratch("files");
    let squeeze = |extra: &[&str]| {
        let mut args = ONE_SQUEEZE.to_vec();
        args.extend_from_slice(extra);
        ldyn(&args)
    };
    // A device is written to, never replaced.
    if let Some(null) = device(&dir, "null", "3") {
        assert!(squeeze(&["--csv", null.to_str().unwrap()]).status.success());
        let meta = std::fs::metadata(&null).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &meta.file_type()
        ));
    }
    // A link is followed: its target is replaced and keeps its mode; the link stays.
    let real = dir.join("real.csv");
    std::fs::write(&real, "old").unwrap();
    std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let link = dir.join("link.csv");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert!(squeeze(&["--csv", link.to_str().unwrap()]).status.success());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&real)
            .unwrap()
            .starts_with("class,")
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&real).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // An output that is an input, or two outputs that are one file: refused, untouched.
    let input = dir.join("in.txt");
    std::fs::write(&input, "1\n2\n3\n").unwrap();
    let out = ldyn(&[
        "squeeze",
        "--logits",
        input.to_str().unwrap(),
        "--class",
        "0",
        "--direction",
        "negative",
        "--step",
        "1",
        "--csv",
        input.to_str().unwrap(),
    ]);
    assert_fails(&out, "is the input");
    assert_eq!(std::fs::read_to_string(&input).unwrap(), "1\n2\n3\n");
    let same = dir.join("same.png");
    assert_fails(
        &squeeze(&[
            "--csv",
            same.to_str().unwrap(),
            "--plot",
            same.to_str().unwrap(),
        ]),
        "two outputs are the same file",
    );
    assert!(!same.exists());
    // A 250-byte name is accepted: temporary names do not grow with it.
    let long = dir.join(format!("{}.csv", "n".repeat(246)));
    assert!(squeeze(&["--csv", long.to_str().unwrap()]).status.success());
    // Nothing but the outputs: no temporary file is left.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with(learning_dynamics::io::TEMP_PREFIX)),
        "{names:?}"
    );
}

#[test]
fn an_output_directory_is_locked_and_cleaned_of_leftovers() {
    use learning_dynamics::io::{TEMP_PREFIX, TEMP_SUFFIX};
    let dir = scratch("lock");
    let leftover = dir.join(format!("{TEMP_PREFIX}abcdef123456{TEMP_SUFFIX}"));
    std::fs::write(&leftover, "half").unwrap();
    // A user's file that merely starts with the prefix is not the tool's.
    let input = dir.join(format!("{TEMP_PREFIX}my-logits.txt"));
    std::fs::write(&input, "1,2").unwrap();
    let held = learning_dynamics::io::DirLock::acquire(&dir).unwrap();
    assert!(
        !leftover.exists(),
        "a killed run's temporary file is removed"
    );
    assert!(input.exists(), "a user's file is kept");
    assert_fails(
        &ldyn(&["run", "squeezing", "--out", dir.to_str().unwrap()]),
        "another ldyn run is writing to",
    );
    drop(held);
    assert!(
        ldyn(&[
            "run",
            "squeezing",
            "--set",
            "robustness_seeds=0",
            "--out",
            dir.to_str().unwrap()
        ])
        .status
        .success()
    );
}

#[test]
fn messages_are_one_escaped_line() {
    assert_fails(&ldyn(&["run", "bad\nname"]), "bad\\nname");
    let long = "x".repeat(5000);
    let out = ldyn(&[
        "squeeze",
        "--logits",
        &format!("1,{long}"),
        "--class",
        "0",
        "--direction",
        "negative",
        "--step",
        "1",
    ]);
    assert_fails(&out, "is not a number");
    // The 5000-character item is cut to 200 characters; the rest of the line is under 100.
    assert!(
        out.stderr.len() < 600,
        "the input is cut: {} bytes",
        out.stderr.len()
    );
    assert_fails(&ldyn(&[]), "a command is required");
    assert_fails(&ldyn(&["bench"]), "a command is required");
    assert_fails(&ldyn(&["akg", "--model", "lm"]), "--eta");
}

#[test]
fn flags_that_do_not_apply_are_errors() {
    let json = scratch("flags").join("x.json");
    let json = json.to_str().unwrap();
    assert_fails(
        &ldyn(&[
            "akg", "--model", "linear", "--hidden", "3", "--eta", "0.1", "--json", json,
        ]),
        "--hidden does not apply to --model linear",
    );
    assert_fails(
        &ldyn(&[
            "akg", "--model", "linear", "--layers", "2", "--eta", "0.1", "--json", json,
        ]),
        "--layers does not apply",
    );
    assert_fails(
        &ldyn(&[
            "akg",
            "--model",
            "lm",
            "--classes",
            "0",
            "--eta",
            "0.1",
            "--json",
            json,
        ]),
        "--classes does not apply to --model lm",
    );
    assert_fails(
        &ldyn(&[
            "akg", "--model", "lm", "--inputs", "3", "--eta", "0.1", "--json", json,
        ]),
        "--inputs does not apply",
    );
    assert_fails(
        &ldyn(&[
            "akg",
            "--model",
            "mlp",
            "--objective",
            "dpo",
            "--eta",
            "0.1",
            "--json",
            json,
        ]),
        "--objective applies to --model lm only",
    );
}

proptest! {
    #![proptest_config(config(200))]

    /// The logits parser and `squeeze` on random strings: an error, never a panic.
    #[test]
    fn the_logits_parser_never_panics(text in ".{0,40}") {
        match learning_dynamics::io::parse_number_list(&text) {
            // One number per comma-separated item, each the item's own parse.
            Ok(values) => {
                let items: Vec<&str> = text.split(',').collect();
                prop_assert_eq!(values.len(), items.len());
                for (v, item) in values.iter().zip(&items) {
                    let parsed: f64 = item.trim().parse().unwrap();
                    prop_assert!(v.to_bits() == parsed.to_bits());
                }
            }
            // Otherwise an item is named as not a number, on one line.
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains("is not a number"), "{}", message);
                prop_assert!(!message.contains('\n'), "{}", message);
                prop_assert!(text.split(',').any(|i| i.trim().parse::<f64>().is_err()));
            }
        }
    }

    /// `squeeze` on random, extreme floats: finite probabilities summing to 1, or an error.
    #[test]
    fn squeeze_is_finite_or_an_error(
        logits in proptest::collection::vec(prop_oneof![
            any::<f64>(),
            -1e3f64..1e3,
            Just(f64::MAX),
            Just(-f64::MAX),
            Just(f64::MIN_POSITIVE),
        ], 2..8),
        class in 0usize..8,
        step in prop_oneof![any::<f64>(), 1e-300f64..1e300],
        negative in any::<bool>(),
    ) {
        use learning_dynamics::squeezing::{Direction, Squeeze};
        let direction = if negative { Direction::Negative } else { Direction::Positive };
        if let Ok(s) = Squeeze::from_logit_step(&logits, class, direction, step) {
            for lp in [&s.log_p_before, &s.log_p_after] {
                prop_assert!(lp.iter().all(|v| v.is_finite()));
                let total: f64 = lp.iter().map(|v| v.exp()).sum();
                prop_assert!((total - 1.0).abs() < 1e-9, "sums to {}", total);
            }
        }
    }
}

/// Inputs are read with a bound: a device that never ends, a FIFO that no one writes,
/// a directory and a file past the 64 MiB limit are each refused with one line, at
/// once, as a configuration and as logits (for `squeeze` and `explore`).
#[test]
fn inputs_are_read_with_a_bound_and_never_block() {
    let dir = scratch("bounded-inputs");
    let fifo = dir.join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success(),
        "mkfifo"
    );
    let big = dir.join("big.txt");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(learning_dynamics::io::MAX_INPUT_BYTES + 1)
        .unwrap();
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let inputs = [
        ("/dev/zero", "not a regular file"),
        (fifo.to_str().unwrap(), "not a regular file"),
        (dir.to_str().unwrap(), "not a regular file"),
        (big.to_str().unwrap(), "more than the 64 MiB"),
    ];
    for (input, why) in inputs {
        let config = ["run", "squeezing", "--config", input, "--out", out];
        assert_fails(&ldyn_within(10, &config), why);
        let squeeze = [
            "squeeze",
            "--logits",
            input,
            "--class",
            "0",
            "--direction",
            "negative",
            "--step",
            "1",
        ];
        assert_fails(&ldyn_within(10, &squeeze), why);
    }
    // `explore` says it needs a terminal before it reads anything.
    let explore = ["explore", "--logits", fifo.to_str().unwrap()];
    assert_fails(&ldyn_within(10, &explore), "needs a terminal");
}

/// A closed stdout (`ldyn list >&-`) and one open only for reading (`1</dev/null`, where
/// every write fails and Rust's stdout would report success) are errors with status 2, as
/// the README promises; a stdout sent to `/dev/null` on purpose is not, whether opened
/// write-only (`>/dev/null`), read-write (`1<>/dev/null`) or by Python's
/// `subprocess.DEVNULL`, the natural way to script a sweep.
#[test]
fn a_closed_or_read_only_stdout_exits_2_and_dev_null_works() {
    let ldyn = env!("CARGO_BIN_EXE_ldyn");
    let shell = |command: &str, redirect: &str| {
        let script = format!("timeout 60 '{ldyn}' {command} {redirect}");
        Command::new("bash").args(["-c", &script]).output().unwrap()
    };
    assert_fails(&shell("list", ">&-"), "standard output is closed");
    assert_fails(&shell("list", "1</dev/null"), "open only for reading");
    let file = scratch("read-only-stdout").join("input");
    std::fs::write(&file, "x").unwrap();
    let config = shell("config residuals", &format!("1<'{}'", file.display()));
    assert_fails(&config, "open only for reading");
    assert!(shell("list", ">/dev/null").status.success());
    assert!(shell("list", "1<>/dev/null").status.success());
    // A run writes its files and exits 0 with its report sent to /dev/null read-write.
    let out = scratch("dev-null-stdout").join("out");
    let run = shell(
        &format!(
            "run squeezing --set robustness_seeds=0 --out '{}'",
            out.display()
        ),
        "1<>/dev/null",
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.join("squeezing.png").exists());
    let python = Command::new("python3").arg("--version").output();
    if requires("python3", python.is_ok_and(|o| o.status.success())) {
        let script = format!(
            "import subprocess, sys\nr = subprocess.run([{ldyn:?}, 'list'], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)\nsys.stderr.buffer.write(r.stderr)\nsys.exit(r.returncode)"
        );
        let py = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            py.status.success(),
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
        assert!(
            py.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
    }
}

/// User text in a message is one line that reads as written: a newline in a `--set` value
/// is refused (it would drop what follows), bidirectional overrides and byte-order marks
/// are escaped, and an over-long value is cut to 200 characters.
#[test]
fn user_text_in_messages_is_escaped_and_cut() {
    let out = scratch("escaped").join("out");
    let out = out.to_str().unwrap();
    let newline = [
        "run",
        "squeezing",
        "--set",
        "frames=3\nrobustness_seeds=1",
        "--out",
        out,
    ];
    assert_fails(&ldyn_within(20, &newline), "without control characters");
    let bidi = ldyn(&["run", "bad\u{202e}name\u{feff}"]);
    assert_fails(&bidi, "bad\\u{202e}name\\u{feff}");
    let long = format!("frames={}", "9".repeat(100_000));
    let over = ldyn(&["run", "squeezing", "--set", &long, "--out", out]);
    assert_fails(&over, "frames must be an integer");
    assert!(over.stderr.len() < 600, "{} bytes", over.stderr.len());
}

/// The lock file is only ever a regular file the tool made: a symbolic link there (which
/// would create a file outside the directory) and a FIFO (which would block) are refused.
#[test]
fn a_lock_that_is_a_link_or_a_fifo_is_refused() {
    let dir = scratch("bad-lock");
    let outside = dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    for kind in ["link", "fifo"] {
        let out = dir.join(kind);
        std::fs::create_dir(&out).unwrap();
        let lock = out.join(learning_dynamics::io::LOCK_FILE);
        if kind == "link" {
            std::os::unix::fs::symlink(outside.join("made-here"), &lock).unwrap();
        } else {
            assert!(
                Command::new("mkfifo")
                    .arg(&lock)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let args = [
            "run",
            "squeezing",
            "--set",
            "robustness_seeds=0",
            "--out",
            out.to_str().unwrap(),
        ];
        assert_fails(
            &ldyn_within(20, &args),
            "is not a regular file the tool made",
        );
        assert!(
            !outside.join("made-here").exists(),
            "{kind}: nothing made outside"
        );
    }
}

/// `/dev/stdout` is written in place, with no lock: into a pipe, and into a file opened
/// for appending (`>>`), whose earlier lines are kept.
#[test]
fn the_standard_output_is_written_in_place() {
    let dir = scratch("stdout-target");
    let appended = dir.join("out.txt");
    std::fs::write(&appended, "earlier line\n").unwrap();
    let squeeze = format!(
        "'{}' squeeze --logits 1,2 --class 0 --direction negative --step 1 --csv /dev/stdout",
        env!("CARGO_BIN_EXE_ldyn")
    );
    let piped = Command::new("sh")
        .args(["-c", &format!("{squeeze} | cat")])
        .output()
        .unwrap();
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert!(String::from_utf8_lossy(&piped.stdout).starts_with("class,p_before"));
    let redirect = format!("{squeeze} >> '{}'", appended.display());
    assert!(
        Command::new("sh")
            .args(["-c", &redirect])
            .status()
            .unwrap()
            .success()
    );
    let text = std::fs::read_to_string(&appended).unwrap();
    assert!(text.starts_with("earlier line\nclass,p_before"), "{text}");
}

/// `akg` takes its directory's lock: it refuses a directory another run holds.
#[test]
fn akg_takes_the_directory_lock() {
    let dir = scratch("akg-lock");
    let held = learning_dynamics::io::DirLock::acquire(&dir).unwrap();
    let json = dir.join("a.json");
    let args = [
        "akg",
        "--model",
        "linear",
        "--eta",
        "0.1",
        "--json",
        json.to_str().unwrap(),
    ];
    assert_fails(&ldyn(&args), "another ldyn run is writing to");
    assert!(!json.exists());
    drop(held);
    crate::common::ldyn_ok(&args);
    assert!(json.exists());
}

/// A `NAME.config.toml` describes its whole set: after a run that fails midway (here at
/// its figure, whose link leads into a directory that does not exist), the old
/// configuration is gone, so the directory cannot claim that the new CSVs came from it.
#[test]
fn a_failed_run_leaves_no_configuration_beside_a_partial_set() {
    let dir = scratch("partial-set");
    let args = [
        "run",
        "squeezing",
        "--set",
        "robustness_seeds=0",
        "--out",
        dir.to_str().unwrap(),
    ];
    crate::common::ldyn_ok(&args);
    let config = dir.join("squeezing.config.toml");
    assert!(config.exists());
    let figure = dir.join("squeezing.png");
    std::fs::remove_file(&figure).unwrap();
    std::os::unix::fs::symlink(dir.join("no-such-dir/squeezing.png"), &figure).unwrap();
    let failed = ldyn(&[
        "run",
        "squeezing",
        "--set",
        "robustness_seeds=0",
        "--set",
        "frames=3",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(
        failed.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert!(
        !config.exists(),
        "the old configuration no longer describes the set"
    );
}

/// Settings that would mislead are refused or made honest: keys that must fall inside a
/// run are checked against its length (with both in the message), and tracking always
/// ends at the last step of each phase, whatever `track_every` is.
#[test]
fn settings_that_would_mislead_are_refused_or_made_honest() {
    let dir = scratch("mislead");
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let digits = |key: &str| ldyn(&["run", "digits", "--set", key, "--out", out]);
    assert_fails(
        &digits("early_step=999999"),
        "is not before the end of the run's",
    );
    assert_fails(&digits("entk_every=6000"), "leaves no eNTK checkpoint");
    assert_fails(
        &digits("probes_per_class=1"),
        "probes_per_class must be an integer in 2..=50",
    );
    let quick = [
        "run",
        "lm_finetune",
        "--out",
        out,
        "--set",
        "robustness_seeds=0",
        "--set",
        "pretrain.steps=200",
        "--set",
        "sft.epochs=1",
        "--set",
        "dpo_updates=10",
        "--set",
        "track_every=7",
    ];
    crate::common::ldyn_ok(&quick);
    let last_step = |file: &str| {
        let text = std::fs::read_to_string(Path::new(out).join(file)).unwrap();
        let last = text.lines().last().unwrap().to_string();
        last.split(',').next().unwrap().parse::<usize>().unwrap()
    };
    // SFT: 1 epoch of the 8 training prompts; DPO: 10 updates; neither a multiple of 7.
    assert_eq!(last_step("lm_sft.csv"), 8);
    assert_eq!(last_step("lm_dpo.csv"), 10);
}

/// A benchmark's cost follows the request: a thousand repetitions of a tiny kernel
/// measure the GEMM baseline a bounded number of times, and end in seconds.
#[test]
fn a_tiny_benchmark_with_many_repetitions_ends_quickly() {
    let out = ldyn_within(
        60,
        &["bench", "entk", "--dims", "1,1,2,1", "--reps", "1000"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Under a memory limit (`ulimit -v`), a command that does not fit is one error line
/// with status 2, never an abort with a backtrace; one that fits runs.
#[test]
fn a_memory_limit_gives_an_error_not_an_abort() {
    // 300,000 KiB of address space: enough for a small run, not for the full eNTK of
    // workload L (328 MB), 100,000 observed inputs (about 2.9 GB by the estimate) or 15
    // million logits (a 30 MB file, under the 64 MiB input limit, about 1.8 GB to step),
    // nor for digits' eNTK at width 1024 with faer's workspace.
    let dir = scratch("ulimit");
    let many = dir.join("many.txt");
    std::fs::write(&many, "1\n".repeat(15_000_000)).unwrap();
    let out = dir.join("out");
    let commands = [
        "bench entk --workload L --reps 1".to_string(),
        "bench one-step --workload M --observed 100000 --reps 1".to_string(),
        format!(
            "squeeze --logits {} --class 0 --direction negative --step 1",
            many.display()
        ),
        format!(
            "run squeezing --set robustness_seeds=1 --out {}",
            out.display()
        ),
        format!(
            "akg --model mlp --eta 0.1 --json {}",
            dir.join("a.json").display()
        ),
        // faer's GEMM packing workspace (64 MiB a thread) at this width.
        format!(
            "run digits --set hidden=1024 --set epochs=1 --set robustness_seeds=0 --out {}",
            out.display()
        ),
    ];
    for command in &commands {
        let script = format!(
            "ulimit -v 300000; '{}' {command}",
            env!("CARGO_BIN_EXE_ldyn")
        );
        let result = Command::new("sh").args(["-c", &script]).output().unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(
            !stderr.contains("memory allocation of"),
            "{command}: {stderr}"
        );
        let code = result.status.code();
        assert!(
            code == Some(0) || code == Some(2),
            "{command}: {code:?} {stderr}"
        );
        if code == Some(2) {
            assert!(
                stderr.starts_with("error: ") && stderr.lines().count() == 1,
                "{command}: {stderr}"
            );
        }
    }
}

/// `akg` and a `run` into one directory never mix: whichever holds the directory, the
/// other is refused at once with the lock's message (the run too, if an `akg` holds it
/// at the moment it starts); otherwise each writes its files whole. No call fails any
/// other way.
#[test]
fn concurrent_akg_and_run_never_mix_their_files() {
    let dir = scratch("concurrent");
    let run = ldyn_command()
        .args([
            "run",
            "squeezing",
            "--set",
            "robustness_seeds=30",
            "--out",
            dir.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let json = dir.join("a.json");
    let args = [
        "akg",
        "--model",
        "mlp",
        "--eta",
        "0.1",
        "--json",
        json.to_str().unwrap(),
    ];
    let mut refused = 0;
    for _ in 0..20 {
        let out = ldyn(&args);
        if !out.status.success() {
            assert_fails(&out, "another ldyn run is writing to");
            refused += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let run = run.wait_with_output().unwrap();
    if run.status.success() {
        assert!(
            dir.join("squeezing.config.toml").exists(),
            "the run's whole set"
        );
    } else {
        assert_fails(&run, "another ldyn run is writing to");
    }
    assert!(
        refused > 0 || !run.status.success(),
        "the two met: one of them was refused"
    );
    crate::common::ldyn_ok(&args);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["model"]["kind"], "mlp");
}

/// Range-end values that cannot train are refused up front with the keys and the reason:
/// `lm_losses` derives each loss's learning rate from β, and a β at either end of its
/// range would give one that is not a number or that overflows the model.
#[test]
fn range_ends_that_cannot_train_are_refused_with_their_reason() {
    let out = scratch("losses-ends").join("out");
    for (beta, why) in [
        ("1000", "learning rate of"),
        (
            "5e-324",
            "beta = 5e-324 makes DPO's first-step coefficient β/2 round to 0",
        ),
    ] {
        let set = format!("beta={beta}");
        let args = [
            "run",
            "lm_losses",
            "--set",
            &set,
            "--out",
            out.to_str().unwrap(),
        ];
        let result = ldyn_within(60, &args);
        assert_fails(&result, why);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(
            !stderr.contains("NaN") && !stderr.contains("inf"),
            "{stderr}"
        );
    }
}

/// An output that is a FIFO nobody reads is refused in one line instead of waiting for
/// ever (`squeeze --csv FIFO`); a FIFO where a sweep's pooled file goes does not block
/// the sweep (the pooled files of an earlier sweep are removed before the first run); a
/// FIFO with a reader is written in place.
#[test]
fn fifos_without_a_reader_never_block() {
    let dir = scratch("fifo-outputs");
    let fifo = dir.join("f");
    let mkfifo = |p: &Path| {
        let made = Command::new("mkfifo").arg(p).status().unwrap();
        assert!(made.success());
    };
    mkfifo(&fifo);
    let squeeze = [&ONE_SQUEEZE[..], &["--csv", fifo.to_str().unwrap()]].concat();
    assert_fails(&ldyn_within(20, &squeeze), "no process reads");
    let reader = Command::new("cat")
        .arg(&fifo)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(ldyn_within(20, &squeeze).status.success());
    let read = reader.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&read.stdout).starts_with("class,"));
    let out = dir.join("sweep");
    std::fs::create_dir_all(&out).unwrap();
    mkfifo(&out.join("sweep_claims.csv"));
    let sweep = [
        "sweep",
        "residuals",
        "--seeds",
        "0..2",
        "--jobs",
        "1",
        "--out",
    ];
    let done = ldyn_within(120, &[&sweep[..], &[out.to_str().unwrap()]].concat());
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        std::fs::metadata(out.join("sweep_claims.csv"))
            .unwrap()
            .is_file()
    );
}

/// Messages stay readable at the extremes: an unknown flag of 3,000 characters and a
/// `--dims` of 3,000 numbers give one short line; a tiny number reads as itself
/// (`1e-300`), never as zeros, and so does a tiny memory estimate or limit; `residuals`
/// has a memory estimate that `--max-memory` checks.
#[test]
fn messages_stay_short_and_show_tiny_numbers() {
    let out = scratch("messages").join("out");
    let out = out.to_str().unwrap();
    let flag = format!("--{}", "x".repeat(3000));
    let dims = format!("1,1{}", ",1".repeat(3000));
    for args in [
        vec!["run", "squeezing", flag.as_str()],
        vec!["bench", "entk", "--dims", dims.as_str()],
    ] {
        let result = ldyn_within(60, &args);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.len() < 1000 && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
    let tiny = ldyn_within(
        60,
        &["run", "residuals", "--set", "beta=1e-300", "--out", out],
    );
    assert_fails(&tiny, "beta must be a number in [1e-6, 1000], got 1e-300");
    let budget = ["--max-memory", "1e-300", "run", "residuals", "--out", out];
    assert_fails(&ldyn_within(60, &budget), "above the limit of 0 bytes");
    let sizes = [
        "--max-memory",
        "0.01",
        "run",
        "residuals",
        "--set",
        "vocab=10000",
        "--set",
        "inputs=1000",
        "--out",
        out,
    ];
    assert_fails(
        &ldyn_within(60, &sizes),
        "vocab and inputs would need about",
    );
    assert!(
        !Path::new(out).exists(),
        "refused before anything was written"
    );
}

/// The time rule, one key at a time: reruns are capped where a run and its reruns would
/// keep two cores busy for more than a few minutes (20 for `digits` and the language-model
/// experiments, 10,000 for the millisecond toys), and so are the language's entities (48).
#[test]
fn reruns_and_world_sizes_stop_where_a_run_would_take_minutes() {
    let out = scratch("time-rule").join("out");
    let out = out.to_str().unwrap();
    for (experiment, set, why) in [
        (
            "lm_policy",
            "robustness_seeds=21",
            "robustness_seeds must be an integer in 0..=20",
        ),
        (
            "digits",
            "robustness_seeds=21",
            "robustness_seeds must be an integer in 0..=20",
        ),
        (
            "squeezing",
            "robustness_seeds=10001",
            "an integer in 0..=10000",
        ),
        (
            "lm_sft_length",
            "language.entities=49",
            "language.entities must be an integer in 3..=48",
        ),
    ] {
        let args = ["run", experiment, "--set", set, "--out", out];
        assert_fails(&ldyn_within(30, &args), why);
    }
}
