//! The off-/on-policy mechanism's measures, against the theory they rest on: the split
//! of a step into DPO's two terms (each term's prediction is a step with that term alone,
//! to O(η²), and the two sum to the step), the fixed-token probe's mass in the log domain,
//! the ablations' pairs, and runs that finish at every β and learning rate of the grid.

use learning_dynamics::Rng64;
use learning_dynamics::decomposition::{one_step, predict};
use learning_dynamics::experiments::lm_measures::log_mass_except;
use learning_dynamics::lm::{LmSpec, Sequence, TinyLm, update};
use learning_dynamics::model::Model;
use learning_dynamics::objective::{
    Objective, OneTerm, PairLoss, Term, shared_positions, split_terms,
};
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;

/// A hand-sized LM and a pair whose responses share their first token (as an entity
/// does), with the model as its own reference.
fn hand_sized(
    loss: PairLoss,
) -> (
    TinyLm,
    Vec<Sequence>,
    learning_dynamics::objective::Pairwise,
) {
    let spec = LmSpec {
        vocab: 7,
        window: 3,
        embed: 3,
        hidden: 6,
    };
    let model = TinyLm::random(spec, &mut Rng64::seed_from_u64(5)).unwrap();
    let (inputs, mut pair) =
        update::pair(&model, &[1, 2], (vec![2, 3, 4], vec![2, 5, 6]), loss, 0.5);
    // Off the reference, so that every loss reads its own coefficients.
    pair.reference = (pair.reference.0 + 0.7, pair.reference.1 - 0.4);
    (model, inputs, pair)
}

fn observed() -> Vec<Sequence> {
    vec![
        Sequence::new(&[1, 2], &[2, 3, 4]),
        Sequence::new(&[1, 2], &[2, 5, 6]),
        Sequence::new(&[1, 3], &[6, 6, 1]),
    ]
}

fn largest(ms: &[DMatrix<f64>]) -> f64 {
    ms.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// Each term's first-order prediction is the change a step with that term alone makes,
/// to O(η²): dividing η by 10 divides the remainder by about 100. For a loss whose
/// coefficients differ (SPPO) the shared positions' remainder goes to one term, and the
/// two terms still sum to the step's own prediction.
#[test]
fn each_term_predicts_a_step_with_that_term_alone() {
    for loss in [PairLoss::Dpo, PairLoss::SppoHard] {
        let (model, inputs, pair) = hand_sized(loss);
        let observed = observed();
        let residual = |term: Term, eta: f64| {
            let logits = model.logits_batch(&inputs);
            let shared = shared_positions(&pair.chosen, &pair.rejected);
            let terms = split_terms(&pair.residuals(&logits), &shared, &pair.chosen);
            let g = &terms[term as usize];
            let dtheta = model.backprop_batch(&inputs, g) * -eta;
            let (_, mut predicted) = predict(&model, &observed, &[dtheta]);
            let alone = OneTerm {
                pair: pair.clone(),
                term,
            };
            let step = one_step(&model, &inputs, &alone, &observed, eta).unwrap();
            let actual: Vec<DMatrix<f64>> =
                step.observed.iter().map(|o| o.actual.clone()).collect();
            let diff: Vec<DMatrix<f64>> = predicted
                .remove(0)
                .iter()
                .zip(&actual)
                .map(|(p, a)| p - a)
                .collect();
            (largest(&diff), largest(&actual))
        };
        for term in [Term::Chosen, Term::Rejected] {
            let (coarse, moved) = residual(term, 1e-2);
            let (fine, _) = residual(term, 1e-3);
            assert!(moved > 1e-6, "{loss} {term:?}: the term moves nothing");
            let slope = (coarse / fine).log10();
            assert!((slope - 2.0).abs() < 0.3, "{loss} {term:?}: slope {slope}");
        }
        // The two terms sum to the prediction of the whole step.
        let eta = 1e-2;
        let logits = model.logits_batch(&inputs);
        let g = pair.residuals(&logits);
        let shared = shared_positions(&pair.chosen, &pair.rejected);
        let terms = split_terms(&g, &shared, &pair.chosen);
        let directions: Vec<DVector<f64>> = [&terms[0], &terms[1], &g]
            .iter()
            .map(|g| model.backprop_batch(&inputs, g) * -eta)
            .collect();
        let (_, p) = predict(&model, &observed, &directions);
        for ((c, r), whole) in p[0].iter().zip(&p[1]).zip(&p[2]) {
            assert!(
                (c + r - whole).amax() < 1e-12 * (1.0 + whole.amax()),
                "{loss}"
            );
        }
    }
}

/// The entity is shared: DPO's two terms cancel there exactly, so both are zero at it.
#[test]
fn dpo_terms_are_zero_where_the_answers_share_context_and_token() {
    let (model, inputs, pair) = hand_sized(PairLoss::Dpo);
    let shared = shared_positions(&pair.chosen, &pair.rejected);
    assert_eq!(shared, [true, false, false]);
    assert_eq!(
        shared_positions(&[2, 3, 4], &[2, 3, 5]),
        [true, true, false]
    );
    assert_eq!(
        shared_positions(&[2, 3, 4], &[1, 3, 4]),
        [false, false, false]
    );
    let g = pair.residuals(&model.logits_batch(&inputs));
    let [chosen, rejected] = split_terms(&g, &shared, &pair.chosen);
    assert!(chosen[0].column(0).amax() < 1e-15 && rejected[1].column(0).amax() < 1e-15);
    assert_eq!(chosen[0].column(1), g[0].column(1));
    assert_eq!(rejected[1].column(2), g[1].column(2));
    assert_eq!((chosen[1].amax(), rejected[0].amax()), (0.0, 0.0));
    // The one-term objective keeps the full loss's value.
    let logits = model.logits_batch(&inputs);
    let alone = OneTerm {
        pair: pair.clone(),
        term: Term::Rejected,
    };
    assert_eq!(alone.loss(&logits), pair.loss(&logits));
}

/// The mass off the fixed argmax and y⁺'s token, in the log domain: exact on a
/// hand-made distribution, and finite where `1 − π` would round to 0.
#[test]
fn the_fixed_token_probe_keeps_the_rest_of_the_mass_in_the_log_domain() {
    let log_pi: Vec<f64> = [0.5f64, 0.25, 0.125, 0.125]
        .iter()
        .map(|p| p.ln())
        .collect();
    // Fixed argmax 0, y⁺'s token 1: the rest is 0.25.
    assert!((log_mass_except(&log_pi, &[0, 1]) - 0.25f64.ln()).abs() < 1e-15);
    // The same token twice: every token but that one.
    assert!((log_mass_except(&log_pi, &[0, 0]) - 0.5f64.ln()).abs() < 1e-15);
    // π(argmax) = 1 − 1e-300 in exact arithmetic: the rest is about e^−801.
    let z = DMatrix::from_column_slice(4, 1, &[0.0, -800.0, -801.0, -900.0]);
    let lp = learning_dynamics::numerics::log_softmax_columns(&z);
    let rest = log_mass_except(lp.as_slice(), &[0, 1]);
    assert!((rest + 801.0).abs() < 1e-9, "{rest}");
}

/// The ablations take off-policy DPO's pairs in its order: the same update sequences,
/// step by step.
#[test]
fn the_ablations_take_the_same_pairs_in_the_same_order_as_off_policy() {
    use learning_dynamics::experiments::lm_world::{Dpo, LmConfig, Regime, pretrain, train_dpo};
    use learning_dynamics::trainer::{Observer, StepEvent};
    struct Updates(Vec<Vec<Sequence>>);
    impl Observer<TinyLm> for Updates {
        fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> learning_dynamics::Result<()> {
            self.0.push(e.update.to_vec());
            Ok(())
        }
    }
    let mut config = LmConfig::default();
    config.pretrain.steps = 300;
    let world = pretrain(&config, 6).unwrap();
    let updates = |regime| {
        let dpo = Dpo {
            regime,
            updates: 11,
            ..Dpo::off_policy(&config)
        };
        let mut seen = Updates(Vec::new());
        let mut rng = Rng64::seed_from_u64(3);
        let models = (&world.base, &world.base);
        let (_, counts) =
            train_dpo(&dpo, &world.language, models, &mut rng, &mut [&mut seen]).unwrap();
        assert_eq!(counts.updates, 11);
        seen.0
    };
    let off = updates(Regime::OffPolicy);
    assert_eq!(off.len(), 11);
    assert_eq!(updates(Regime::OffPolicyChosenOnly), off);
    assert_eq!(updates(Regime::OffPolicyRejectedOnly), off);
}

/// At every corner of the grid β ∈ {0.05, 0.5} × dpo_eta ∈ {0.05, 0.2}, every regime's
/// run finishes: a pass without a usable pair ends it short, and its last snapshot is at
/// the updates it took.
#[test]
fn every_regime_finishes_at_the_corners_of_beta_and_the_learning_rate() {
    use learning_dynamics::experiments::lm_policy::{self, LmPolicy};
    use learning_dynamics::experiments::{Experiment, Valid};
    for (beta, eta) in [(0.05, 0.05), (0.05, 0.2), (0.5, 0.05), (0.5, 0.2)] {
        let mut config = lm_policy::Config::default();
        config.world.pretrain.steps = 600;
        config.world.sft.epochs = 4;
        config.world.dpo_updates = 24;
        config.world.beta = beta;
        config.world.dpo_eta = eta;
        config.max_redraws = 2;
        config.track_every = 8;
        let data = LmPolicy::run(&Valid::new(config).unwrap(), 40).unwrap();
        for run in &data.runs {
            assert!(run.counts.updates <= 24);
            assert_eq!(run.counts.records.len(), run.counts.updates);
            assert_eq!(run.last().step, run.counts.updates, "β {beta}, η {eta}");
            let values = run.counts.records.iter().flat_map(|r| {
                [
                    r.rejected_log_prob,
                    r.chosen_coefficient,
                    r.rejected_coefficient,
                ]
            });
            assert!(values.into_iter().all(f64::is_finite), "β {beta}, η {eta}");
        }
        // The claims are decided, each with a finite number, held or not.
        for claim in LmPolicy::claims(&data) {
            let words = claim.text.split(|c: char| !c.is_ascii_alphanumeric());
            let bad = words.into_iter().any(|w| w == "NaN" || w == "inf");
            assert!(!bad, "β {beta}, η {eta}: {}", claim.text);
        }
    }
}

/// `ldyn run lm_policy --seed S --out D` writes every table, the new ones included, for a
/// seed other than the default.
#[test]
fn lm_policy_writes_the_mechanism_tables_for_any_seed() {
    let dir = crate::common::scratch("policy-any-seed");
    let out = dir.join("out");
    let out_arg = out.to_str().unwrap();
    let run = crate::common::ldyn_ok(&[
        "run",
        "lm_policy",
        "--seed",
        "77",
        "--out",
        out_arg,
        "--set",
        "pretrain.steps=300",
        "--set",
        "sft.epochs=3",
        "--set",
        "dpo_updates=12",
        "--set",
        "track_every=4",
        "--set",
        "beta=0.5",
        "--set",
        "max_redraws=1",
    ]);
    let report = String::from_utf8(run.stdout).unwrap();
    for table in [
        "",
        "_frames",
        "_positions",
        "_repeater",
        "_summary",
        "_attribution",
        "_negatives",
    ] {
        let path = out.join(format!("lm_policy{table}.csv"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().count() > 1, "{}", path.display());
        if !table.is_empty() && table != "_frames" && table != "_summary" {
            assert!(
                text.lines()
                    .skip(1)
                    .all(|l| l.split(',').nth(1) >= Some("77")),
                "{table}"
            );
        }
    }
    assert!(out.join("lm_policy.png").exists() && out.join("lm_policy.gif").exists());
    assert!(report.contains("lm_policy:"), "{report}");
}

/// A figure of runs that ended short (fewer snapshots than the others) is drawn: each
/// band holds a short run's last value.
#[test]
fn the_comparison_figure_draws_runs_that_ended_short() {
    use learning_dynamics::experiments::lm_policy::{self, LmPolicy};
    use learning_dynamics::experiments::{Experiment, Valid};
    let mut config = lm_policy::Config::default();
    config.world.pretrain.steps = 300;
    config.world.sft.epochs = 2;
    config.world.dpo_updates = 12;
    config.track_every = 4;
    let mut data = LmPolicy::run(&Valid::new(config).unwrap(), 5).unwrap();
    // The second seed's online run: not the first of its group.
    let short = &mut data.runs[7];
    short.points.truncate(2);
    short.counts.updates = short.points[1].step;
    short.counts.records.truncate(short.counts.updates);
    let dir = crate::common::scratch("short-runs");
    let path = dir.join("policy.png");
    learning_dynamics::plot::policy::policy(&data, &path).unwrap();
    // A drawn figure of 1800 × 1740 pixels; an empty or failed one is far smaller.
    assert!(std::fs::metadata(&path).unwrap().len() > 10_000);
}
