//! Every experiment at the ends of every numeric key's documented range, one key at a
//! time from a small base configuration: each run either succeeds with every number it
//! prints or writes finite, or is refused with one line that names the key. The keys and
//! their ranges are read from `ldyn config`, so a new key is covered without a change
//! here. (The upper ends of keys that cost time are bounded for this reason: see
//! `lm_world::MAX_DPO_UPDATES` and `digits::MAX_EPOCHS`.)

use crate::common::{ldyn, ldyn_within, scratch};

/// A small world for the language-model experiments, one seed and one probe per family:
/// a key at its end costs seconds.
const LM_BASE: &[(&str, &str)] = &[
    ("model.window", "2"),
    ("model.embed", "2"),
    ("model.hidden", "4"),
    ("pretrain.steps", "50"),
    ("sft.epochs", "1"),
    ("dpo_updates", "4"),
    ("track_every", "2000"),
    ("epochs", "1"),
    ("robustness_seeds", "0"),
    ("seeds", "1"),
    ("probes_per_family", "1"),
];

/// One epoch of a narrow digits MLP, checkpoints that fit in it.
const DIGITS_BASE: &[(&str, &str)] = &[
    ("hidden", "4"),
    ("epochs", "1"),
    ("probes_per_class", "2"),
    ("entk_every", "50"),
    ("early_step", "10"),
    ("robustness_seeds", "0"),
];

/// The toys with one robustness rerun, so that rerun claims are scanned too.
const TOY_BASE: &[(&str, &str)] = &[("robustness_seeds", "1")];

/// The numeric keys of `experiment` with the two ends of each range, as `--set` writes
/// them, parsed from the `; an integer in A..=B` and `; a number in (A, B]` comments of
/// `ldyn config`. An open lower end 0 becomes the smallest positive double.
fn range_ends(experiment: &str) -> Vec<(String, [String; 2])> {
    let out = ldyn(&["config", experiment]);
    assert!(out.status.success());
    let mut keys = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let Some((key, rest)) = line.split_once(" = ") else {
            continue;
        };
        if key == "seed" || key == "robustness_seeds" {
            continue;
        }
        let range = rest.rsplit_once("; ").map_or("", |(_, r)| r);
        let ends = if let Some(r) = range.strip_prefix("an integer in ") {
            let (lo, hi) = r.split_once("..=").unwrap();
            [lo.to_string(), hi.to_string()]
        } else if let Some(r) = range.strip_prefix("a number in ") {
            let (lo, hi) = r[1..r.len() - 1].split_once(", ").unwrap();
            let lo = match (r.starts_with('('), lo) {
                (true, "0") => "5e-324".to_string(),
                (true, lo) => panic!("{experiment}: an open lower end {lo} other than 0"),
                (false, lo) => lo.to_string(),
            };
            [lo, hi.to_string()]
        } else {
            continue;
        };
        keys.push((key.to_string(), ends));
    }
    assert!(!keys.is_empty(), "{experiment} has numeric keys");
    keys
}

/// Whether `text` holds a word that a non-finite number prints as.
fn non_finite(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
        matches!(
            w.to_ascii_lowercase().as_str(),
            "nan" | "inf" | "infinity" | "null"
        )
    })
}

/// Runs `experiment` at both ends of every numeric key, the others from `base` (where
/// the experiment has them) and otherwise at their defaults.
fn scan(experiment: &str, base: &[(&str, &str)]) {
    let dir = scratch(&format!("range-ends-{experiment}"));
    let keys = range_ends(experiment);
    let known = |k: &str| k == "robustness_seeds" || keys.iter().any(|(key, _)| key == k);
    for (key, ends) in &keys {
        for value in ends {
            let out = dir.join(format!("{key}-{value}"));
            let set = format!("{key}={value}");
            let mut args = vec!["run".to_string(), experiment.to_string()];
            for (k, v) in base.iter().filter(|(k, _)| known(k) && k != key) {
                args.extend(["--set".to_string(), format!("{k}={v}")]);
            }
            args.extend(["--set".to_string(), set.clone()]);
            args.extend(["--out".to_string(), out.display().to_string()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let result = ldyn_within(300, &args);
            let stdout = String::from_utf8_lossy(&result.stdout);
            let stderr = String::from_utf8_lossy(&result.stderr);
            let run = format!("{experiment} {set}");
            assert!(!non_finite(&stdout), "{run}: {stdout}");
            assert!(!non_finite(&stderr), "{run}: {stderr}");
            if !result.status.success() {
                // Refused: one line that names the key.
                assert_eq!(result.status.code(), Some(2), "{run}: {stderr}");
                assert_eq!(stderr.lines().count(), 1, "{run}: {stderr}");
                assert!(stderr.contains(key.as_str()), "{run}: {stderr}");
                continue;
            }
            for file in std::fs::read_dir(&out).unwrap() {
                let path = file.unwrap().path();
                if path.extension().is_some_and(|e| e == "csv" || e == "toml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(!non_finite(&text), "{run}: {}", path.display());
                }
            }
        }
    }
}

#[test]
fn squeezing_stays_finite_at_the_ends_of_every_range() {
    scan("squeezing", TOY_BASE);
}

#[test]
fn residuals_stays_finite_at_the_ends_of_every_range() {
    scan("residuals", TOY_BASE);
}

#[test]
fn digits_stays_finite_at_the_ends_of_every_range() {
    scan("digits", DIGITS_BASE);
}

#[test]
fn lm_finetune_stays_finite_at_the_ends_of_every_range() {
    scan("lm_finetune", LM_BASE);
}

#[test]
fn lm_influence_stays_finite_at_the_ends_of_every_range() {
    scan("lm_influence", LM_BASE);
}

#[test]
fn lm_lens_stays_finite_at_the_ends_of_every_range() {
    scan("lm_lens", LM_BASE);
}

#[test]
fn lm_policy_stays_finite_at_the_ends_of_every_range() {
    scan("lm_policy", LM_BASE);
}

#[test]
fn lm_losses_stays_finite_at_the_ends_of_every_range() {
    scan("lm_losses", LM_BASE);
}

#[test]
fn lm_sft_length_stays_finite_at_the_ends_of_every_range() {
    scan("lm_sft_length", LM_BASE);
}

#[test]
fn lm_extend_stays_finite_at_the_ends_of_every_range() {
    scan("lm_extend", LM_BASE);
}

#[test]
fn lm_ches_stays_finite_at_the_ends_of_every_range() {
    scan("lm_ches", LM_BASE);
}

#[test]
fn lm_remedies_stays_finite_at_the_ends_of_every_range() {
    scan("lm_remedies", LM_BASE);
}
