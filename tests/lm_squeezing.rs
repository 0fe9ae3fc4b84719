//! Squeezing in the tiny LM, measured where the theory puts it (`lm_measures::squeezing`),
//! and the attribution it rests on, on real `lm_policy` pairs: a row of
//! `lm_policy_squeezing_rows.csv` recomputed by hand from a retrained update; DPO's two
//! terms cancelling at the shared positions; and, for losses whose two coefficients
//! differ, the net of a shared position going to the term `split_terms` names.

use learning_dynamics::decomposition::predict;
use learning_dynamics::experiments::lm_measures::SqueezingRows;
use learning_dynamics::experiments::lm_policy::{self, LmPolicy};
use learning_dynamics::experiments::lm_world::{Dpo, checkpoint, pair_on, train_dpo};
use learning_dynamics::experiments::{Experiment, Valid};
use learning_dynamics::lm::{Sequence, TinyLm};
use learning_dynamics::model::Model;
use learning_dynamics::numerics::{log_softmax_columns, log_sum_exp};
use learning_dynamics::objective::{Objective, PairLoss, shared_positions, split_terms};
use learning_dynamics::trainer::{Observer, StepEvent};
use nalgebra::DMatrix;

/// A small `lm_policy` world, one seed, every squeezing row written.
fn small() -> lm_policy::Config {
    let mut config = lm_policy::Config::default();
    config.world.pretrain.steps = 300;
    config.world.sft.epochs = 2;
    config.world.dpo_updates = 12;
    config.track_every = 4;
    config.seeds = 1;
    config.squeezing_rows = SqueezingRows::All;
    config
}

/// The model before and after an update, its pair, its residuals and its learning rate.
type Seen = (TinyLm, TinyLm, Vec<Sequence>, Vec<DMatrix<f64>>, f64);

/// What update `t` (from 1) of a DPO run saw.
#[derive(Default)]
struct Capture {
    t: usize,
    seen: Option<Seen>,
}

impl Observer<TinyLm> for Capture {
    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> learning_dynamics::Result<()> {
        if e.step + 1 == self.t {
            let (before, after) = (e.before.clone(), e.after.clone());
            self.seen = Some((
                before,
                after,
                e.update.to_vec(),
                e.residuals.to_vec(),
                e.eta,
            ));
        }
        Ok(())
    }
}

/// A field of a CSV row by its column name.
fn field<'a>(header: &str, row: &'a str, name: &str) -> &'a str {
    let k = header.split(',').position(|c| c == name).unwrap();
    row.split(',').nth(k).unwrap()
}

/// Off-policy DPO's update `t` on seed 3 is retrained from the checkpoint; the rejected
/// term's direction is rebuilt there by hand (`split_terms`, then the backward pass), and
/// its change of the argmax, `y⁻`'s token, the rest of the mass (log-sum-exp) and the
/// rising count at each of `y⁻`'s unshared positions, the step's actual change and the
/// toy's, equal the rows the run wrote.
#[test]
fn a_squeezing_row_is_recomputed_from_its_retrained_update() {
    let (seed, t) = (3, 7);
    let config = Valid::new(small()).unwrap();
    let data = LmPolicy::run(&config, seed).unwrap();
    let table = LmPolicy::tables(&data)
        .into_iter()
        .find(|t| t.name == "lm_policy_squeezing_rows")
        .unwrap();

    let start = checkpoint(&config.world, seed).unwrap();
    let mut capture = Capture {
        t,
        ..Capture::default()
    };
    let mut rng = start.world.rng.clone();
    let dpo = Dpo::off_policy(&config.world);
    let model = &start.sft_model;
    train_dpo(
        &dpo,
        &start.world.language,
        (model, model),
        &mut rng,
        &mut [&mut capture],
    )
    .unwrap();
    let (before, after, pair, g, eta) = capture.seen.unwrap();

    let shared = shared_positions(pair[0].response(), pair[1].response());
    let [_, rejected] = split_terms(&g, &shared, pair[0].response());
    let direction = before.backprop_batch(&pair, &rejected) * -eta;
    let (log_pi, changes) = predict(&before, std::slice::from_ref(&pair[1]), &[direction]);
    let (lp, d) = (&log_pi[0], &changes[0][0]);
    let lp_after = log_softmax_columns(&after.logits(&pair[1]));
    let all_rows = table.rows();
    let rows: Vec<&String> = (all_rows.iter())
        .filter(|r| r.starts_with(&format!("off_policy,{seed},{t},")))
        .collect();
    let unshared: Vec<usize> = (0..pair[1].response().len())
        .filter(|&m| !shared.get(m).copied().unwrap_or(false))
        .collect();
    assert!(!unshared.is_empty());
    assert_eq!(rows.len(), 5 * unshared.len(), "five sources per position");
    let h = &table.header();
    let close = |written: &str, v: f64, what: &str| {
        let w: f64 = written.parse().unwrap();
        assert!(
            (w - v).abs() <= 1e-12 * (1.0 + v.abs()),
            "{what}: {w} vs {v}"
        );
    };
    for m in unshared {
        let column: Vec<f64> = lp.column(m).iter().copied().collect();
        let top = lp.column(m).argmax().0;
        let y_minus = pair[1].response()[m];
        let y_plus = pair[0].response().get(m).copied().filter(|&y| y != y_minus);
        let row = |source: &str| {
            let found = rows.iter().find(|r| {
                field(h, r, "position") == m.to_string() && field(h, r, "source") == source
            });
            found.unwrap().as_str()
        };
        let class = match () {
            _ if top == y_minus => "peak",
            _ if Some(top) == pair[0].response().get(m).copied() => "chosen",
            _ => "third",
        };
        let r = row("rejected_term");
        assert_eq!(field(h, r, "class"), class);
        close(
            field(h, r, "rejected_log_prob"),
            column[y_minus],
            "log π(y⁻)",
        );
        close(field(h, r, "argmax"), d[(top, m)], "argmax");
        close(field(h, r, "rejected"), d[(y_minus, m)], "y⁻");
        let rising = d.column(m).iter().filter(|&&v| v > 0.0).count();
        assert_eq!(field(h, r, "rising"), rising.to_string());
        // The rest: every token but the argmax, y⁻'s and y⁺'s, weighted by its share of R.
        let rest: Vec<usize> = (0..column.len())
            .filter(|&i| i != top && i != y_minus && Some(i) != y_plus)
            .collect();
        let log_r = log_sum_exp(&rest.iter().map(|&i| column[i]).collect::<Vec<_>>());
        let d_rest: f64 = rest
            .iter()
            .map(|&i| (column[i] - log_r).exp() * d[(i, m)])
            .sum();
        close(field(h, r, "rest"), d_rest, "rest");
        // The actual step, exactly.
        let a = row("actual");
        close(
            field(h, a, "argmax"),
            lp_after[(top, m)] - column[top],
            "actual argmax",
        );
        let r_after = log_sum_exp(&rest.iter().map(|&i| lp_after[(i, m)]).collect::<Vec<_>>());
        close(field(h, a, "rest"), r_after - log_r, "actual rest");
        // The toy: Δz = −η G⁻_m on this column alone, then A.
        let dz: Vec<f64> = rejected[1].column(m).iter().map(|v| -eta * v).collect();
        let mean: f64 = column.iter().zip(&dz).map(|(l, v)| l.exp() * v).sum();
        close(field(h, row("toy"), "argmax"), dz[top] - mean, "toy argmax");
    }
}

/// Four training pairs of each of three seeds' `lm_policy` worlds, with their residuals
/// under `loss` at the SFT model: with the SFT model as the reference, as at DPO's first
/// update, or (`off_reference`) with the pre-trained model as the reference, so that the
/// log-ratios are not zero and SPPO's two coefficients differ.
fn first_pairs(
    loss: PairLoss,
    off_reference: bool,
) -> Vec<(TinyLm, Vec<Sequence>, Vec<DMatrix<f64>>)> {
    let config = Valid::new(small()).unwrap();
    (0..3)
        .flat_map(|seed| {
            let start = checkpoint(&config.world, seed).unwrap();
            let language = &start.world.language;
            let model = start.sft_model.clone();
            let reference = if off_reference {
                &start.world.base
            } else {
                &model
            };
            (language.train.iter().take(4))
                .map(|&j| {
                    let pair = (language.chosen(j), language.rejected(j));
                    let (inputs, objective) =
                        pair_on(language, j, pair, reference, (loss, config.world.beta));
                    let g = objective.residuals(&model.logits_batch(&inputs));
                    (model.clone(), inputs, g)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// At the positions `y⁺` and `y⁻` share (context and token: the entity, and the copula
/// when both copulas agree), DPO's two residual columns are equal and opposite and act
/// through the same Jacobian, so their parameter moves cancel to machine precision: the
/// attribution leaves them out of both terms.
#[test]
fn dpo_terms_cancel_at_the_shared_positions_of_real_pairs() {
    for (model, inputs, g) in first_pairs(PairLoss::Dpo, false) {
        let shared = shared_positions(inputs[0].response(), inputs[1].response());
        assert!(shared[0], "the entity is always shared");
        let only_shared = |m: &DMatrix<f64>| {
            let mut m = m.clone();
            for l in (0..m.ncols()).filter(|&l| !shared.get(l).copied().unwrap_or(false)) {
                m.column_mut(l).fill(0.0);
            }
            m
        };
        let plus = vec![
            only_shared(&g[0]),
            DMatrix::zeros(g[1].nrows(), g[1].ncols()),
        ];
        let minus = vec![
            DMatrix::zeros(g[0].nrows(), g[0].ncols()),
            only_shared(&g[1]),
        ];
        let (d_plus, d_minus) = (
            model.backprop_batch(&inputs, &plus),
            model.backprop_batch(&inputs, &minus),
        );
        assert!(
            d_plus.norm() > 1e-6,
            "the chosen term moves the shared positions"
        );
        let rel = (&d_plus + &d_minus).norm() / d_plus.norm();
        assert!(rel < 1e-12, "they cancel to {rel}");
    }
}

/// For losses whose two coefficients differ (SLiC, SPPO), a shared position keeps the net
/// `G⁺_l + G⁻_l = (s⁺ − s⁻)(π − e_y)`; `split_terms` gives it to the chosen term when it
/// pulls `y` up and to the rejected term otherwise, zeroes it in the other, and the two
/// terms still move the parameters as the whole residual does.
#[test]
fn other_losses_give_the_shared_net_to_the_term_split_terms_names() {
    for loss in [PairLoss::ALL[2], PairLoss::SppoHard] {
        for (model, inputs, g) in first_pairs(loss, true) {
            let (plus, minus) = (inputs[0].response(), inputs[1].response());
            let shared = shared_positions(plus, minus);
            let [c, r] = split_terms(&g, &shared, plus);
            for l in (0..shared.len()).filter(|&l| shared[l]) {
                let net = g[0].column(l) + g[1].column(l);
                assert!(net.amax() > 0.0, "{loss}: the coefficients differ");
                let (kept, dropped) = match net[plus[l]] < 0.0 {
                    true => (c[0].column(l), r[1].column(l)),
                    false => (r[1].column(l), c[0].column(l)),
                };
                assert!(
                    (kept - &net).amax() < 1e-15,
                    "{loss}: the net is kept whole"
                );
                assert_eq!(dropped.amax(), 0.0, "{loss}: and dropped from the other");
            }
            let whole = model.backprop_batch(&inputs, &g);
            let sum = model.backprop_batch(&inputs, &c) + model.backprop_batch(&inputs, &r);
            let rel = (&sum - &whole).norm() / whole.norm();
            assert!(rel < 1e-12, "{loss}: the terms sum to the step to {rel}");
        }
    }
}

/// The rows of a committed CSV under `plots/`, as column-name maps.
fn committed(name: &str) -> Vec<std::collections::HashMap<String, String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plots")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

/// The median over seeds of one column of `NAME_squeezing.csv`'s rows of `label`, `group`
/// (positions, class) and the rejected term: the statistic the figure and the claims quote.
fn over_seeds(name: &str, label: &str, (positions, class): (&str, &str), column: &str) -> f64 {
    let rows = committed(name);
    let values: Vec<f64> = (rows.iter())
        .filter(|r| {
            ["regime", "arm", "loss"]
                .iter()
                .any(|c| r.get(*c).is_some_and(|v| v == label))
        })
        .filter(|r| r["position"] == positions)
        .filter(|r| r["class"] == class && r["source"] == "rejected_term")
        .map(|r| r[column].parse().unwrap())
        .collect();
    assert!(!values.is_empty(), "{name} {label} {positions} {class}");
    learning_dynamics::stats::median(&values)
}

/// `v` as the docs write it, with a true minus sign.
fn quoted(v: f64, decimals: usize, signed: bool) -> String {
    let text = match signed {
        true => format!("{v:+.decimals$}"),
        false => format!("{v:.decimals$}"),
    };
    text.replace('-', "−")
}

/// The squeezing numbers the findings (`docs/FINDINGS.md`) and tutorial chapters 6 and 7
/// quote are the committed tables' statistics (the median over seeds of each seed's median, as the figure draws).
#[test]
fn the_docs_quote_the_committed_squeezing_tables() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let (readme, ch6, ch7) = (
        read("docs/FINDINGS.md"),
        read("src/tutorial/ch6_policy.md"),
        read("src/tutorial/ch7_extend.md"),
    );
    let policy = "lm_policy_squeezing.csv";
    let mut quotes = vec![
        quoted(
            over_seeds(policy, "off_policy", ("2-3", "valley"), "median_argmax"),
            4,
            true,
        ),
        quoted(
            over_seeds(policy, "off_policy", ("2", "third"), "median_chosen"),
            4,
            true,
        ),
    ];
    for regime in ["off_policy", "spin", "online"] {
        let third = ("2", "third");
        let depth = over_seeds(policy, regime, third, "median_rejected_log_prob");
        quotes.push(quoted(depth, 1, false));
        quotes.push(quoted(
            over_seeds(policy, regime, third, "median_rising"),
            1,
            false,
        ));
    }
    for quote in &quotes {
        assert!(
            readme.contains(quote.as_str()),
            "docs/FINDINGS.md lacks {quote}"
        );
        assert!(ch6.contains(quote.as_str()), "chapter 6 lacks {quote}");
    }
    // Where y⁻ sat when pushed: the figure's box, the median over every update and seed.
    let negatives = committed("lm_policy_negatives.csv");
    for regime in ["off_policy", "spin", "online"] {
        let values: Vec<f64> = (negatives.iter())
            .filter(|r| r["regime"] == regime)
            .map(|r| r["rejected_log_prob"].parse().unwrap())
            .collect();
        let quote = quoted(learning_dynamics::stats::median(&values), 1, false);
        assert!(
            readme.contains(&quote) && ch6.contains(&quote),
            "{regime}: {quote}"
        );
    }
    // Extend: how deep y⁻'s value position is when pushed, in both arms.
    for arm in ["extend", "baseline"] {
        let depth = over_seeds(
            "lm_extend_squeezing.csv",
            arm,
            ("2", "valley"),
            "median_rejected_log_prob",
        );
        let quote = quoted(depth, 1, false);
        assert!(
            readme.contains(&quote) && ch7.contains(&quote),
            "{arm}: {quote}"
        );
    }
}
