//! `ldyn akg --model lm`'s records are complete: from the record alone (the
//! log-probabilities of the model and the reference, β, δ, λ, π) a reader re-derives
//! the loss, both coefficients and every residual `G`, with the formulas of the paper's
//! losses written out again here, independently of `objective.rs`.

use std::path::Path;

use crate::common::{assert_fails, ldyn, ldyn_ok, scratch};

fn lm_record(dir: &Path, args: &[&str]) -> serde_json::Value {
    let path = dir.join(format!("{}.json", args.join("_")));
    let mut all = vec!["akg", "--model", "lm", "--seed", "2", "--eta", "0.001"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", path.to_str().unwrap()]);
    ldyn_ok(&all);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn columns(v: &serde_json::Value) -> Vec<Vec<f64>> {
    serde_json::from_value(v.clone()).unwrap()
}

/// `(L, s⁺, s⁻, anchor)` of `objective` from the record's log-probabilities and
/// hyperparameters; the anchor is the part of `s⁺` that is not DPO's pull.
fn expected_terms(doc: &serde_json::Value) -> (f64, f64, f64, f64) {
    let hyper = &doc["hyperparameters"];
    let seqs = doc["update"]["sequences"].as_array().unwrap();
    let (lp_p, lp_m) = (f(&seqs[0]["log_prob"]), f(&seqs[1]["log_prob"]));
    let (rp, rm) = (
        lp_p - f(&seqs[0]["reference_log_prob"]),
        lp_m - f(&seqs[1]["reference_log_prob"]),
    );
    let (beta, m) = (f(&hyper["beta"]), rp - rm);
    let sigma = |t: f64| 1.0 / (1.0 + (-t).exp());
    // DPO's loss and pull at a margin.
    let dpo = |m: f64| (-(sigma(beta * m)).ln(), beta * sigma(-beta * m));
    let tokens = seqs[0]["tokens"].as_array().unwrap().len();
    let chosen_len = (tokens - seqs[0]["prompt_len"].as_u64().unwrap() as usize) as f64;
    match doc["objective"].as_str().unwrap() {
        "dpo" => {
            let (loss, s) = dpo(m);
            (loss, s, s, 0.0)
        }
        "ipo" => {
            let s = 2.0 * (1.0 / (2.0 * beta) - m);
            ((m - 1.0 / (2.0 * beta)).powi(2), s, s, 0.0)
        }
        "slic" => {
            let hinge = f(&hyper["delta"]) - (lp_p - lp_m);
            let on = if hinge > 0.0 { 1.0 } else { 0.0 };
            let lambda = f(&hyper["lambda"]);
            (hinge.max(0.0) - lambda * lp_p, on + lambda, on, lambda)
        }
        "sppo_hard" => {
            let half = 0.5 / beta;
            let loss = (rp - half).powi(2) + (rm + half).powi(2);
            (loss, 2.0 * (half - rp), 2.0 * (rm + half), 0.0)
        }
        // RPO: NLL = −lp⁺/|y⁺|; v3 L_DPO + α·NLL, v1 α·L_DPO + NLL.
        "rpo" => {
            let (loss, s) = dpo(m);
            let alpha = f(&hyper["alpha"]);
            let (a_dpo, a_nll) = match hyper["weighting"].as_str().unwrap() {
                "v3" => (1.0, alpha),
                "v1" => (alpha, 1.0),
                other => panic!("no RPO weighting {other}"),
            };
            let nll = -lp_p / chosen_len;
            let anchor = a_nll / chosen_len;
            (
                a_dpo * loss + a_nll * nll,
                a_dpo * s + anchor,
                a_dpo * s,
                anchor,
            )
        }
        // DPOP: p = max(0, ref⁺ − lp⁺); inside −log σ(β(m − λp)), outside L_DPO + λp;
        // the penalty's derivative 0 at p = 0.
        "dpop" => {
            let lambda = f(&hyper["lambda"]);
            let p = (-rp).max(0.0);
            let on = if -rp > 0.0 { 1.0 } else { 0.0 };
            match hyper["form"].as_str().unwrap() {
                "inside" => {
                    let (loss, s) = dpo(m - lambda * p);
                    (loss, s * (1.0 + lambda * on), s, s * lambda * on)
                }
                "outside" => {
                    let (loss, s) = dpo(m);
                    (loss + lambda * p, s + lambda * on, s, lambda * on)
                }
                other => panic!("no DPOP form {other}"),
            }
        }
        other => panic!("no formula for {other}"),
    }
}

/// Checks a pairwise record against the formulas: the log-probabilities against π, the
/// loss and the coefficients, and `G⁺ = s⁺(π⁺ − e_{y⁺})`, `G⁻ = −s⁻(π⁻ − e_{y⁻})`.
fn check_pairwise(doc: &serde_json::Value) {
    let update = &doc["update"];
    let (loss, s_plus, s_minus, anchor) = expected_terms(doc);
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-10 * (1.0 + b.abs()),
            "{}: {what} {a} vs {b}",
            doc["objective"]
        );
    };
    close(f(&update["loss"]), loss, "loss");
    close(f(&update["s_plus"]), s_plus, "s⁺");
    close(f(&update["s_minus"]), s_minus, "s⁻");
    close(f(&update["s_anchor"]), anchor, "the anchor's part of s⁺");
    for (seq, sign) in update["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .zip([s_plus, -s_minus])
    {
        let tokens: Vec<usize> = serde_json::from_value(seq["tokens"].clone()).unwrap();
        let y = &tokens[seq["prompt_len"].as_u64().unwrap() as usize..];
        let (pi, g) = (columns(&seq["pi"]), columns(&seq["G"]));
        assert_eq!(pi.len(), y.len());
        let lp: f64 = pi.iter().zip(y).map(|(col, &t)| col[t].ln()).sum();
        close(lp, f(&seq["log_prob"]), "log π(y) from π");
        for ((pi_l, g_l), &t) in pi.iter().zip(&g).zip(y) {
            for (v, (p, gv)) in pi_l.iter().zip(g_l).enumerate() {
                let hot = if v == t { 1.0 } else { 0.0 };
                close(*gv, sign * (p - hot), "G");
            }
        }
    }
}

#[test]
fn lm_records_re_derive_loss_coefficients_and_residuals() {
    let dir = scratch("akg-records");
    let objectives: [&[&str]; 8] = [
        &["dpo"],
        &["ipo"],
        &["slic"],
        &["sppo_hard"],
        &["rpo"],
        &["rpo", "--rpo-weighting", "v1", "--rpo-alpha", "0.5"],
        &["dpop"],
        &["dpop", "--dpop-form", "outside", "--dpop-lambda", "5"],
    ];
    for args in objectives {
        let all: Vec<&str> = ["--objective"].iter().chain(args).copied().collect();
        let doc = lm_record(&dir, &all);
        assert_eq!(doc["reference"], "sft", "the default reference");
        check_pairwise(&doc);
        for o in doc["observed"].as_array().unwrap() {
            for col in columns(&o["pi"]) {
                assert!((col.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
    }
    // Every token has its name, in token order: a record's ids read as words.
    let doc = lm_record(&dir, &["--objective", "dpo"]);
    let names: Vec<String> = serde_json::from_value(doc["vocabulary"].clone()).unwrap();
    assert_eq!(names.len() as u64, doc["model"]["vocab"].as_u64().unwrap());
    assert_eq!((names[2].as_str(), names[4].as_str()), ("IS", "END"));
    // SFT: s⁺ = 1 and G = π − e_y; no reference is read, and no key is written as null
    // (SFT has no s⁻ and no reference log-probability: the keys are left out).
    let sft = lm_record(&dir, &["--objective", "sft"]);
    assert_eq!(sft["update"]["s_plus"], 1.0);
    assert!(sft["update"].get("s_minus").is_none());
    assert!(
        sft["update"]["sequences"][0]
            .get("reference_log_prob")
            .is_none()
    );
    let text = std::fs::read_to_string(dir.join("--objective_sft.json")).unwrap();
    assert!(!text.contains("null"), "no key of an SFT record is null");
}

/// One DPO step past the SFT reference makes the margin non-zero, so IPO and SPPO take
/// different steps; from the reference itself (margin 0) their steps coincide, which
/// is why `self` cannot tell them apart.
#[test]
fn the_sft_reference_tells_ipo_from_sppo() {
    let dir = scratch("akg-reference");
    let g = |args: &[&str]| columns(&lm_record(&dir, args)["update"]["sequences"][1]["G"]);
    let differ = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    let (ipo, sppo) = (g(&["--objective", "ipo"]), g(&["--objective", "sppo_hard"]));
    assert!(
        differ(&ipo, &sppo) > 1e-3,
        "sft reference: IPO and SPPO must differ"
    );
    let own = |o: &str| g(&["--objective", o, "--reference", "self"]);
    assert!(
        differ(&own("ipo"), &own("sppo_hard")) < 1e-12,
        "self: margin 0, same step"
    );
    let doc = lm_record(&dir, &["--objective", "dpo", "--reference", "self"]);
    check_pairwise(&doc);
    let seqs = &doc["update"]["sequences"];
    assert_eq!(seqs[0]["log_prob"], seqs[0]["reference_log_prob"]);
}

/// `--slic-delta` moves SLiC's margin past the gap, so the hinge is active (s⁻ = 1), or
/// below it (s⁻ = 0).
#[test]
fn slic_delta_turns_the_hinge_on_and_off() {
    let dir = scratch("akg-slic");
    for (delta, s_minus) in [("50", 1.0), ("-50", 0.0)] {
        let doc = lm_record(&dir, &["--objective", "slic", "--slic-delta", delta]);
        assert_eq!(
            f(&doc["hyperparameters"]["delta"]),
            delta.parse::<f64>().unwrap()
        );
        assert_eq!(f(&doc["update"]["s_minus"]), s_minus);
        check_pairwise(&doc);
    }
}

#[test]
fn lm_flags_are_refused_where_they_do_not_apply() {
    let dir = scratch("akg-flags");
    let p = dir.join("x.json");
    let p = p.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut all = vec!["akg", "--eta", "0.1", "--json", p];
        all.extend_from_slice(extra);
        ldyn(&all)
    };
    let cases: [(&[&str], &str); 9] = [
        (
            &["--model", "mlp", "--reference", "sft"],
            "--reference applies to --model lm only",
        ),
        (
            &["--model", "linear", "--slic-delta", "2"],
            "--slic-delta applies to --model lm only",
        ),
        (
            &["--model", "lm", "--objective", "dpo", "--slic-delta", "2"],
            "--slic-delta applies to --objective slic only",
        ),
        (
            &[
                "--model",
                "lm",
                "--objective",
                "slic",
                "--slic-delta",
                "nan",
            ],
            "--slic-delta must be finite",
        ),
        (
            &["--model", "lm", "--reference", "base"],
            "unknown reference 'base'",
        ),
        (
            &["--model", "mlp", "--dpop-form", "outside"],
            "--dpop-form applies to --model lm only",
        ),
        (
            &["--model", "lm", "--objective", "dpo", "--rpo-alpha", "2"],
            "--rpo-alpha applies to --objective rpo only, not dpo",
        ),
        (
            &["--model", "lm", "--objective", "rpo", "--dpop-lambda", "2"],
            "--dpop-lambda applies to --objective dpop only, not rpo",
        ),
        (
            &[
                "--model",
                "lm",
                "--objective",
                "dpop",
                "--dpop-lambda",
                "-1",
            ],
            "--dpop-lambda must be a finite number ≥ 0",
        ),
    ];
    for (args, message) in cases {
        assert_fails(&run(args), message);
    }
    assert!(!Path::new(p).exists(), "a refused call writes nothing");
}
