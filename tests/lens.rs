//! The paper's lens on `K` (App. C.2), held against the exact kernel: the first-order LBK
//! is a lower bound of `η²‖K‖²_F`, exact for a rank-one kernel; the last-layer kernel is
//! the full one for a model linear in its parameters, where a frozen kernel predicts the
//! logits exactly but not `log π` (A drifts); SignDelta on a hand-computed change.

use learning_dynamics::entk::entk_explicit;
use learning_dynamics::lens::{adaptation_sq, first_order_change, lbk, sign_delta};
use learning_dynamics::mlp::Mlp;
use learning_dynamics::mlp::kernel::entk_last_layer;
use learning_dynamics::model::Model;
use learning_dynamics::numerics::{adaptation_apply_columns, log_softmax_columns, softmax_columns};
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;

use crate::common::{config, random_model, random_vector, rng};

/// `π − e_y` of `model` at `x`, as a `V × 1` residual.
fn residual(model: &Mlp, x: &DVector<f64>, y: usize) -> DMatrix<f64> {
    let mut g = softmax_columns(&model.logits(x));
    g[(y, 0)] -= 1.0;
    g
}

proptest! {
    #![proptest_config(config(64))]

    /// On random models and inputs, the LBK of the first-order change `−ηAKG` is at
    /// most `η²‖K‖²_F`, with `K` from explicit Jacobians.
    #[test]
    fn the_first_order_lbk_is_a_lower_bound_of_the_kernel(
        kind in 0u8..5, seed in 0u64..1000, y in 0usize..4, eta in 1e-3f64..2.0,
    ) {
        let mut r = rng(seed);
        let model = random_model(kind, 3, 5, 4, &mut r);
        let (x_o, x_u) = (random_vector(3, &mut r), random_vector(3, &mut r));
        let k = entk_explicit(&model, &x_o, &x_u);
        let pi = softmax_columns(&model.logits(&x_o));
        let g = residual(&model, &x_u, y);
        let delta = first_order_change(&pi, &k, &g, eta);
        let proxy = lbk(&delta, adaptation_sq(&pi), g.norm_squared());
        let bound = eta * eta * k.norm_squared();
        prop_assert!(proxy <= bound * (1.0 + 1e-12), "{} > {}", proxy, bound);
    }
}

/// For a rank-one kernel `K = u vᵀ` and one position, `−ηAKG = −η (vᵀG) A u`, so the
/// first-order LBK is `η² ‖A u‖² (vᵀG)² / (‖A‖² ‖G‖²)`, to 1e-12.
#[test]
fn a_rank_one_kernel_gives_the_closed_form_lbk() {
    let mut r = rng(7);
    for _ in 0..20 {
        let v = 6;
        let (u, w) = (random_vector(v, &mut r), random_vector(v, &mut r));
        let pi = softmax_columns(&DMatrix::from_column_slice(
            v,
            1,
            random_vector(v, &mut r).as_slice(),
        ));
        let g = DMatrix::from_column_slice(v, 1, random_vector(v, &mut r).as_slice());
        let eta = 0.3;
        let k = &u * w.transpose();
        let got = lbk(
            &first_order_change(&pi, &k, &g, eta),
            adaptation_sq(&pi),
            g.norm_squared(),
        );
        let au = adaptation_apply_columns(&pi, &DMatrix::from_column_slice(v, 1, u.as_slice()));
        let vg = w.dot(&g.column(0));
        let want =
            eta * eta * au.norm_squared() * vg * vg / (adaptation_sq(&pi) * g.norm_squared());
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1e-300),
            "{got} vs {want}"
        );
    }
}

/// A linear softmax (logits linear in θ): the last-layer kernel is the full kernel; over
/// many SGD steps the frozen kernel's accumulated prediction equals the exact one (K does
/// not move), and `Σ −η K G_t` is the actual change of the logits to 1e-12; but
/// `Σ −η A_t K G_t` is not the change of `log π`, since `A` drifts.
#[test]
fn a_linear_model_has_its_last_layer_kernel_and_a_frozen_kernel_that_predicts_its_logits() {
    let mut r = rng(11);
    let weight = DMatrix::from_fn(5, 4, |_, _| random_vector(1, &mut r)[0]);
    let mut model = Mlp::linear(weight, Some(random_vector(5, &mut r))).unwrap();
    let x_o = random_vector(4, &mut r);
    let updates: Vec<(DVector<f64>, usize)> =
        (0..30).map(|t| (random_vector(4, &mut r), t % 5)).collect();
    let eta = 0.5;
    let start = model.clone();
    let (z0, lp0) = (model.logits(&x_o), log_softmax_columns(&model.logits(&x_o)));
    let zero = || DMatrix::<f64>::zeros(5, 1);
    let (mut exact, mut frozen, mut logits) = (zero(), zero(), zero());
    for (x_u, y) in &updates {
        let pi = softmax_columns(&model.logits(&x_o));
        let g = residual(&model, x_u, *y);
        let k_t = entk_explicit(&model, &x_o, x_u);
        assert!((entk_last_layer(&model, &x_o, x_u) - &k_t).abs().max() < 1e-12);
        exact += first_order_change(&pi, &k_t, &g, eta);
        // The frozen eNTK: the kernel of the model at the first step.
        frozen += first_order_change(&pi, &entk_explicit(&start, &x_o, x_u), &g, eta);
        logits -= &k_t * &g * eta;
        let grad = model.backprop(x_u, &g);
        model.sgd_step(&grad, eta).unwrap();
    }
    assert!((&frozen - &exact).abs().max() < 1e-12, "frozen = exact");
    let dz = model.logits(&x_o) - z0;
    assert!(
        (&logits - &dz).abs().max() < 1e-12,
        "Σ −ηKG is the change of the logits"
    );
    let dlp = log_softmax_columns(&model.logits(&x_o)) - lp0;
    assert!(
        (&exact - &dlp).abs().max() > 1e-3,
        "A drifts: log π is not predicted exactly"
    );
}

/// SignDelta is the mean over tokens and positions of the change: here
/// `(−1 + 0.5 + 0.25 − 0.75 + 0 + 0) / 6 = −1/6`.
#[test]
fn sign_delta_is_the_mean_change() {
    let delta = DMatrix::from_row_slice(3, 2, &[-1.0, 0.5, 0.25, -0.75, 0.0, 0.0]);
    assert!((sign_delta(&delta) + 1.0 / 6.0).abs() < 1e-15);
    assert!((lbk(&delta, 2.0, 4.0) - (1.0 + 0.25 + 0.0625 + 0.5625) / 8.0).abs() < 1e-15);
}

/// On the tiny LM, for an SFT and a DPO update (whose shared positions cancel), the lens
/// of every probe family: the first-order LBK is at most `η²‖K‖²_F`, and the first-order
/// change `−ηAKG` from the stacked kernel and residuals is the decomposition's prediction
/// from forward-mode products (`A J_o dθ`, `dθ = −η∇L`) to 1e-10; SignDelta on the
/// response is the change of `log π(y | χ)` between two fresh forward passes, to 1e-12.
#[test]
fn the_lm_lens_is_bounded_and_matches_the_decomposition() {
    use learning_dynamics::decomposition::{gradient, predict};
    use learning_dynamics::experiments::lm_measures::{lens_points, stacked_residuals};
    use learning_dynamics::experiments::lm_world::LmConfig;
    use learning_dynamics::language::{Language, Sizes, Style};
    use learning_dynamics::lm::{Sequence, TinyLm, update};
    use learning_dynamics::numerics::sequence_log_prob;
    use learning_dynamics::objective::{Objective, PairLoss};

    let mut r = rng(3);
    let model = TinyLm::random(LmConfig::default().spec(), &mut r).unwrap();
    let lang = Language::random(Style::Human, Sizes::default(), &mut r);
    let probes = lang.probes(&mut r);
    let observed: Vec<Sequence> = probes[1].responses.iter().map(|(_, s)| s.clone()).collect();
    let j = lang.train[0];
    let (prompt, pair) = (lang.prompt(j), (lang.chosen(j), lang.rejected(j)));
    let (sft_inputs, sft) = update::sft(&prompt, &lang.chosen(j));
    let (dpo_inputs, dpo) = update::pair(&model, &prompt, pair, PairLoss::Dpo, 0.1);
    let updates: [(&[Sequence], &dyn Objective); 2] = [(&sft_inputs, &sft), (&dpo_inputs, &dpo)];
    let eta = 0.5;
    for (inputs, objective) in updates {
        let g = gradient(&model, inputs, objective).unwrap();
        let mut after = model.clone();
        after.sgd_step(&g.grad, eta).unwrap();
        let (_, predicted) = predict(&model, &observed, &[&g.grad * -eta]);
        let g_stacked = stacked_residuals(inputs, &g.residuals);
        let points = lens_points((&model, &model, &after), inputs, &g_stacked, eta, &observed);
        assert_eq!(points.len(), observed.len());
        for ((p, want), o) in points.iter().zip(&predicted[0]).zip(&observed) {
            assert!(p.lbk_first_order <= eta * eta * p.kernel.norm_squared() * (1.0 + 1e-12));
            assert!(
                (&p.first_order - want).abs().max() < 1e-10,
                "{}",
                (&p.first_order - want).abs().max()
            );
            assert_eq!(p.sign_delta_vocabulary, p.actual.mean());
            // SignDelta on the response: Δ log π(y | χ) from two fresh forward passes.
            let log_p = |m: &TinyLm| sequence_log_prob(&m.logits(o), o.response());
            let response = log_p(&after) - log_p(&model);
            assert!((p.sign_delta_response - response).abs() < 1e-12);
            assert!(p.lbk.is_finite() && p.lbk > 0.0);
            // At the first step the frozen kernel is the kernel.
            assert!((&p.frozen - &p.first_order).abs().max() < 1e-12);
        }
    }
}

/// The tiny LM's last-layer kernel is the product of the explicit Jacobians restricted to
/// the output layer's parameters (the last `V·h + V` of θ), to 1e-10.
#[test]
fn the_lm_last_layer_kernel_is_the_output_layers_jacobian_product() {
    use learning_dynamics::experiments::lm_lens::token_diagonal;
    use learning_dynamics::experiments::lm_world::LmConfig;
    use learning_dynamics::language::{Language, Sizes, Style};
    use learning_dynamics::lm::TinyLm;
    use learning_dynamics::lm::kernel::entk_lm_last_layer;

    let mut r = rng(5);
    let spec = LmConfig::default().spec();
    let model = TinyLm::random(spec, &mut r).unwrap();
    let lang = Language::random(Style::Human, Sizes::default(), &mut r);
    let probes = lang.probes(&mut r);
    let (x_o, x_u) = (&probes[0].responses[3].1, &probes[2].responses[0].1);
    let tail = spec.vocab * spec.hidden + spec.vocab;
    let last = |j: DMatrix<f64>| j.columns(j.ncols() - tail, tail).into_owned();
    let explicit = last(model.jacobian(x_o)) * last(model.jacobian(x_u)).transpose();
    let structured = entk_lm_last_layer(&model, x_o, x_u);
    assert!((explicit - &structured).abs().max() < 1e-10);
    // Its token diagonal holds every entry that is not zero.
    let diagonal = token_diagonal(&structured, spec.vocab);
    assert_eq!(diagonal.len(), structured.len() / spec.vocab);
    let diagonal_sq: f64 = diagonal.iter().map(|x| x * x).sum();
    assert!((diagonal_sq - structured.norm_squared()).abs() <= 1e-12 * diagonal_sq);
}

/// The token diagonal of a kernel between two positions and two positions, `V = 2`: the
/// entries `(m·2 + v, l·2 + v)`, position pair by position pair.
#[test]
fn the_token_diagonal_takes_each_token_against_itself() {
    use learning_dynamics::experiments::lm_lens::token_diagonal;
    let k = DMatrix::from_fn(4, 4, |i, j| (10 * i + j) as f64);
    assert_eq!(
        token_diagonal(&k, 2),
        [0.0, 11.0, 2.0, 13.0, 20.0, 31.0, 22.0, 33.0]
    );
}

/// At a vanishing learning rate nothing changes, so no relative error is defined: the
/// claim says so and fails, and nothing printed is infinite or not a number.
#[test]
fn a_vanishing_learning_rate_prints_no_infinite_error() {
    let dir = crate::common::scratch("lens-tiny-eta");
    for eta in ["1e-20", "1e-200"] {
        let out = dir.join(eta);
        let run = crate::common::ldyn_within(
            300,
            &[
                "run",
                "lm_lens",
                "--set",
                "seeds=1",
                "--set",
                &format!("eta_scale={eta}"),
                "--out",
                out.to_str().unwrap(),
            ],
        );
        let text = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(!text.contains("inf") && !text.contains("NaN"), "{text}");
        assert!(text.contains("undefined, no actual change"), "{text}");
    }
}

/// The lens's work limit counts the whole run at its measured rate: `seeds = 17`, which
/// took 18 s on two cores when the limit counted the lens alone, is refused up front in
/// one line that names the keys to lower.
#[test]
fn a_lens_run_past_fifteen_seconds_is_refused_up_front() {
    let out = crate::common::scratch("lens-too-long").join("out");
    let args = [
        "run",
        "lm_lens",
        "--set",
        "seeds=17",
        "--out",
        out.to_str().unwrap(),
    ];
    let result = crate::common::ldyn_within(30, &args);
    crate::common::assert_fails(&result, "about 15 s for the whole run on two cores");
    let written = std::fs::read_dir(&out).map_or(0, |d| {
        d.filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count()
    });
    assert_eq!(written, 0, "no output was written (the lock file aside)");
}

/// The bound's gap in its three factors: `‖A_m‖²_op = V‖π_m‖²` and the power iteration's
/// `‖K‖²_op` agree with the singular values to 1e-9; on the tiny LM the factors sum to
/// `log10(η²‖K‖²_F / LBK₁)` computed from the lens point's own LBK and kernel, and the
/// misalignment is at least 0 (`‖AKG‖ ≤ ‖A‖_op ‖K‖_op ‖G‖`).
#[test]
fn the_bounds_gap_is_its_three_factors() {
    use learning_dynamics::decomposition::gradient;
    use learning_dynamics::experiments::lm_measures::{lens_points, stacked_residuals};
    use learning_dynamics::experiments::lm_world::LmConfig;
    use learning_dynamics::language::{Language, Sizes, Style};
    use learning_dynamics::lens::{adaptation_op_sq, operator_norm_sq};
    use learning_dynamics::lm::{Sequence, TinyLm, update};
    use learning_dynamics::numerics::adaptation_matrix;
    use learning_dynamics::objective::PairLoss;
    use rand::RngExt;

    let mut r = rng(7);
    let top = |m: &DMatrix<f64>| m.clone().svd(false, false).singular_values.max().powi(2);
    let m = DMatrix::from_fn(12, 30, |_, _| r.random::<f64>() - 0.3);
    assert!((operator_norm_sq(&m) / top(&m) - 1.0).abs() < 1e-9);
    let z = DMatrix::from_fn(6, 3, |i, j| 3.0 * ((i * 7 + j * 3) % 5) as f64 - 4.0);
    let pi = softmax_columns(&z);
    let blocks = (0..3).map(|j| top(&adaptation_matrix(pi.column(j))));
    let want = blocks.fold(0.0, f64::max);
    assert!((adaptation_op_sq(&pi) / want - 1.0).abs() < 1e-9);

    let model = TinyLm::random(LmConfig::default().spec(), &mut r).unwrap();
    let lang = Language::random(Style::Human, Sizes::default(), &mut r);
    let probes = lang.probes(&mut r);
    let observed: Vec<Sequence> = probes[1].responses.iter().map(|(_, s)| s.clone()).collect();
    let j = lang.train[0];
    let pair = (lang.chosen(j), lang.rejected(j));
    let (inputs, dpo) = update::pair(&model, &lang.prompt(j), pair, PairLoss::Dpo, 0.1);
    let eta = 0.5;
    let g = gradient(&model, &inputs, &dpo).unwrap();
    let mut after = model.clone();
    after.sgd_step(&g.grad, eta).unwrap();
    let stacked = stacked_residuals(&inputs, &g.residuals);
    for p in lens_points((&model, &model, &after), &inputs, &stacked, eta, &observed) {
        let gap = p.gap.expect("every norm is positive");
        let want = (eta * eta * p.kernel.norm_squared() / p.lbk_first_order).log10();
        assert!(
            (gap.total() - want).abs() < 1e-9,
            "{} vs {want}",
            gap.total()
        );
        assert!(gap.kernel >= 0.0 && gap.adaptation >= 0.0 && gap.misalignment >= -1e-12);
    }
}

/// SignDelta over the vocabulary can say "fell" while the response rose. Under SFT on
/// `y⁺`, family `chosen`, seed 1024 (the gallery's first seed, run alone): summed over
/// the run, the vocabulary SignDelta is negative while `Δ log π(y⁺ | χ)` rises by over
/// a nat, as the committed `plots/lm_lens_fig8.csv` records.
#[test]
fn the_vocabulary_sign_delta_can_fall_while_the_response_rises() {
    use learning_dynamics::experiments::lm_lens::{self, LmLens};
    use learning_dynamics::experiments::lm_world::Signal;
    use learning_dynamics::experiments::{Experiment, Valid};
    use learning_dynamics::language::Family;

    let config = lm_lens::Config {
        seeds: 1,
        ..Default::default()
    };
    let data = LmLens::run(&Valid::new(config).unwrap(), 1024).unwrap();
    let run = (data.runs.iter())
        .find(|r| r.signal == Signal::SftChosen)
        .unwrap();
    let chosen = run.steps.iter().filter(|s| s.family == Family::Chosen);
    let (vocabulary, response) = chosen.fold((0.0, 0.0), |(v, r), s| {
        (v + s.sign_delta_vocabulary, r + s.sign_delta_response)
    });
    assert!(
        vocabulary < 0.0 && response > 1.0,
        "{vocabulary} {response}"
    );
    let csv = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plots/lm_lens_fig8.csv"),
    )
    .unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (v, r) = (
        column("sign_delta_vocabulary"),
        column("sign_delta_response"),
    );
    let committed = (csv.lines().skip(1))
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[0] == "sft_chosen" && f[1] == "1024" && f[3] == "chosen")
        .fold((0.0, 0.0), |(a, b), f| {
            (
                a + f[v].parse::<f64>().unwrap(),
                b + f[r].parse::<f64>().unwrap(),
            )
        });
    assert_eq!(committed, (vocabulary, response));
}
