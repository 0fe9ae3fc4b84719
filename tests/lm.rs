//! `TinyLm` and the sequence objectives: analytic derivatives against finite
//! differences, the structured eNTK against explicit Jacobians, Eq. 5's prediction
//! against the real step for every objective, and each loss's scalar behaviour.

use learning_dynamics::decomposition::one_step;
use learning_dynamics::lm::{LmSpec, Sequence, TinyLm};
use learning_dynamics::model::Model;
use learning_dynamics::numerics::log_softmax;
use learning_dynamics::numerics::sequence_log_prob;
use learning_dynamics::objective::{
    Batch, CrossEntropy, DpopForm, LmObjective, Objective, PairLoss, Pairwise, RpoWeighting,
};
use learning_dynamics::{entk::entk_explicit, lm::kernel::entk_lm_structured};
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use rand::RngExt;

use crate::common::{config, random_vector, rng};

fn small_lm(seed: u64, vocab: usize, window: usize) -> TinyLm {
    TinyLm::random(
        LmSpec {
            vocab,
            window,
            embed: 3,
            hidden: 5,
        },
        &mut rng(seed),
    )
    .unwrap()
}

fn random_sequence(seed: u64, vocab: usize, prompt: usize, response: usize) -> Sequence {
    let mut r = rng(seed);
    let tokens: Vec<usize> = (0..prompt + response)
        .map(|_| r.random_range(0..vocab))
        .collect();
    Sequence::new(&tokens[..prompt], &tokens[prompt..])
}

/// Every objective on `(plus, minus)`; DPOP's reference puts `y⁺` half a nat below it
/// (the penalty active) or above it (inactive) under `lm`, far from the kink at
/// `lp⁺ = ref⁺`, so that finite differences and small steps do not cross it.
fn objectives(
    lm: &TinyLm,
    plus: &Sequence,
    minus: &Sequence,
) -> Vec<(&'static str, Box<dyn Objective>)> {
    let pair = |loss| Pairwise {
        loss,
        beta: 0.7,
        chosen: plus.response().to_vec(),
        rejected: minus.response().to_vec(),
        reference: (-3.0, -4.5),
    };
    let lp_plus = sequence_log_prob(&lm.logits(plus), plus.response());
    let dpop = |form, below: f64| Pairwise {
        reference: (lp_plus + below, -4.5),
        ..pair(PairLoss::Dpop { lambda: 5.0, form })
    };
    let rpo = |weighting| PairLoss::Rpo {
        alpha: 0.6,
        weighting,
    };
    vec![
        (
            "sft",
            Box::new(CrossEntropy::sequence(plus.response())) as Box<dyn Objective>,
        ),
        ("dpo", Box::new(pair(PairLoss::Dpo))),
        ("ipo", Box::new(pair(PairLoss::Ipo))),
        (
            "slic",
            Box::new(pair(PairLoss::Slic {
                delta: 1.0,
                lambda: 0.1,
            })),
        ),
        ("sppo_hard", Box::new(pair(PairLoss::SppoHard))),
        ("rpo_v3", Box::new(pair(rpo(RpoWeighting::V3)))),
        ("rpo_v1", Box::new(pair(rpo(RpoWeighting::V1)))),
        ("dpop_inside_below", Box::new(dpop(DpopForm::Inside, 0.5))),
        ("dpop_inside_above", Box::new(dpop(DpopForm::Inside, -0.5))),
        ("dpop_outside_below", Box::new(dpop(DpopForm::Outside, 0.5))),
        (
            "dpop_outside_above",
            Box::new(dpop(DpopForm::Outside, -0.5)),
        ),
    ]
}

fn update_inputs(name: &str, plus: &Sequence, minus: &Sequence) -> Vec<Sequence> {
    if name == "sft" {
        vec![plus.clone()]
    } else {
        vec![plus.clone(), minus.clone()]
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// ∇_θ L (backprop through the MLP and the shared embeddings) equals central finite
    /// differences for every objective (h = 1e-5, relative tolerance 1e-6).
    #[test]
    fn lm_gradients_match_finite_differences(seed in any::<u64>(), v in 2usize..7, w in 1usize..4, p in 1usize..3, l in 1usize..4) {
        let lm = small_lm(seed, v, w);
        let plus = random_sequence(seed ^ 1, v, p, l);
        let minus = random_sequence(seed ^ 2, v, p, l + 1);
        for (name, objective) in objectives(&lm, &plus, &minus) {
            let inputs = update_inputs(name, &plus, &minus);
            let logits: Vec<_> = inputs.iter().map(|x| lm.logits(x)).collect();
            let g = objective.residuals(&logits);
            let mut analytic = DVector::zeros(lm.num_params());
            for (x, gs) in inputs.iter().zip(&g) {
                analytic += lm.backprop(x, gs);
            }
            let theta = lm.params();
            let loss_at = |t: &DVector<f64>| {
                let mut m = lm.clone();
                m.set_params(t);
                objective.loss(&inputs.iter().map(|x| m.logits(x)).collect::<Vec<_>>())
            };
            let h = 1e-5;
            let numeric = DVector::from_fn(theta.len(), |i, _| {
                let mut tp = theta.clone();
                tp[i] += h;
                let mut tm = theta.clone();
                tm[i] -= h;
                (loss_at(&tp) - loss_at(&tm)) / (2.0 * h)
            });
            let err = (&analytic - &numeric).norm();
            prop_assert!(err <= 1e-6 * analytic.norm().max(1.0), "{}: error {}", name, err);
        }
    }

    /// Forward mode equals finite differences of the logits and the explicit Jacobian; the
    /// structured kernel Σ MLP layers + shared embeddings equals J_o J_uᵀ to 1e-10.
    #[test]
    fn lm_jvp_and_structured_kernel(seed in any::<u64>(), v in 2usize..7, w in 1usize..4, p in 1usize..3, l in 1usize..4, m in 1usize..4) {
        let lm = small_lm(seed, v, w);
        let x_u = random_sequence(seed ^ 3, v, p, l);
        let x_o = random_sequence(seed ^ 4, v, p + 1, m);
        let dir = random_vector(lm.num_params(), &mut rng(seed ^ 5));
        let jvp = lm.jvp(&x_o, &dir);
        let theta = lm.params();
        let (mut plus, mut minus) = (lm.clone(), lm.clone());
        plus.set_params(&(&theta + &dir * 1e-5));
        minus.set_params(&(&theta - &dir * 1e-5));
        let numeric = (plus.logits(&x_o) - minus.logits(&x_o)) / 2e-5;
        prop_assert!((&jvp - &numeric).amax() <= 1e-6 * jvp.amax().max(1.0));
        let via_jacobian = lm.jacobian(&x_o) * &dir;
        prop_assert!((DVector::from_column_slice(jvp.as_slice()) - via_jacobian).amax() <= 1e-10 * jvp.amax().max(1.0));
        let explicit = entk_explicit(&lm, &x_o, &x_u);
        let structured = entk_lm_structured(&lm, &x_o, &x_u);
        prop_assert_eq!(structured.shape(), (v * m, v * l));
        prop_assert!((&explicit - &structured).amax() <= 1e-10 * explicit.amax().max(1.0));
    }

    /// The kernel factors of several sequences give their kernels side by side, columns
    /// in order, and the same kernels as one sequence at a time (to 1e-12: products of
    /// another shape may sum in another order).
    #[test]
    fn kernel_factors_stack_sequences(seed in any::<u64>(), v in 2usize..9, w in 1usize..4, l in 1usize..4) {
        use learning_dynamics::lm::kernel::{KernelFactors, entk_lm_last_layer};
        let lm = small_lm(seed, v, w);
        let x_o = random_sequence(seed ^ 1, v, 2, 3);
        let update = [random_sequence(seed ^ 2, v, 1, l), random_sequence(seed ^ 3, v, 2, 2)];
        let fo = KernelFactors::of(&lm, std::slice::from_ref(&x_o));
        let fu = KernelFactors::of(&lm, &update);
        for (stacked, one) in [
            (fo.structured(&fu), entk_lm_structured as fn(&TinyLm, &Sequence, &Sequence) -> DMatrix<f64>),
            (fo.last_layer(&fu), entk_lm_last_layer),
        ] {
            let (first, second) = (one(&lm, &x_o, &update[0]), one(&lm, &x_o, &update[1]));
            prop_assert_eq!(stacked.shape(), (first.nrows(), first.ncols() + second.ncols()));
            let side_by_side = DMatrix::from_fn(stacked.nrows(), stacked.ncols(), |i, j| {
                if j < first.ncols() { first[(i, j)] } else { second[(i, j - first.ncols())] }
            });
            prop_assert!((&stacked - &side_by_side).amax() <= 1e-12 * stacked.amax().max(1.0));
        }
    }

    /// Eq. 5 for every objective: the residual of −η A_m Σ_l K_{m,l} G_l against the real
    /// step shrinks like η² (log-log slope 2 ± 0.3) when η is divided by 10.
    #[test]
    fn sequence_decomposition_is_second_order(seed in any::<u64>(), v in 3usize..7, l in 1usize..4) {
        let lm = small_lm(seed, v, 3);
        let plus = random_sequence(seed ^ 6, v, 2, l);
        let minus = random_sequence(seed ^ 7, v, 2, l);
        let observed = vec![plus.clone(), minus.clone(), random_sequence(seed ^ 8, v, 2, 3)];
        for (name, objective) in objectives(&lm, &plus, &minus) {
            let inputs = update_inputs(name, &plus, &minus);
            let probe = one_step(&lm, &inputs, objective.as_ref(), &observed, 1.0).unwrap();
            let scale = probe.observed.iter().map(|o| o.predicted_logits.amax()).fold(0.0, f64::max);
            prop_assume!(scale > 1e-6);
            let eta = 0.05 / scale;
            let residual = |eta: f64| {
                let s = one_step(&lm, &inputs, objective.as_ref(), &observed, eta).unwrap();
                s.observed.iter().map(|o| o.residual().norm_squared()).sum::<f64>().sqrt()
            };
            let slope = (residual(eta) / residual(eta / 10.0)).log10();
            prop_assert!((slope - 2.0).abs() <= 0.3, "{}: slope {}", name, slope);
        }
    }
}

/// log π(y | χ) from the logits matrix equals the sum of next-token log-probabilities
/// computed one prefix at a time.
#[test]
fn sequence_log_prob_is_the_sum_over_response_tokens() {
    let lm = small_lm(9, 6, 3);
    let x = random_sequence(10, 6, 3, 5);
    let direct: f64 = (x.prompt_len..x.tokens.len())
        .map(|l| log_softmax(lm.next_logits(&x.tokens[..l]).as_view())[x.tokens[l]])
        .sum();
    let via_logits = sequence_log_prob(&lm.logits(&x), x.response());
    assert!(
        (direct - via_logits).abs() < 1e-12,
        "{direct} vs {via_logits}"
    );
    assert_eq!(lm.logits(&x).shape(), (6, 5));
}

#[test]
fn generation_is_greedy_or_seeded() {
    let lm = small_lm(11, 7, 3);
    let prompt = [1, 2];
    let greedy = lm.generate(&prompt, 6, None, &mut rng(0)).unwrap();
    let z = lm.logits(&Sequence::new(&prompt, &greedy));
    for (l, &t) in greedy.iter().enumerate() {
        assert_eq!(
            z.column(l).argmax().0,
            t,
            "greedy token {l} is the teacher-forced argmax"
        );
    }
    let a = lm.generate(&prompt, 20, Some(1.0), &mut rng(5)).unwrap();
    assert_eq!(a, lm.generate(&prompt, 20, Some(1.0), &mut rng(5)).unwrap());
    assert!(a.iter().all(|&t| t < 7));
    // A very low temperature is greedy.
    assert_eq!(
        lm.generate(&prompt, 6, Some(1e-6), &mut rng(1)).unwrap(),
        greedy
    );
    assert!(lm.generate(&prompt, 3, Some(0.0), &mut rng(1)).is_err());
}

#[test]
fn bad_sequences_and_specs_are_errors() {
    let lm = small_lm(1, 5, 2);
    assert!(lm.check_input(&Sequence::new(&[1], &[7])).is_err());
    assert!(lm.check_input(&Sequence::new(&[1, 2], &[])).is_err());
    assert!(
        TinyLm::random(
            LmSpec {
                vocab: 1,
                window: 2,
                embed: 2,
                hidden: 2
            },
            &mut rng(0)
        )
        .is_err()
    );
    let plus = Sequence::new(&[1], &[2, 3]);
    let dpo = Pairwise {
        loss: PairLoss::Dpo,
        beta: 0.1,
        chosen: vec![2, 3],
        rejected: vec![4],
        reference: (0.0, 0.0),
    };
    let err = one_step(&lm, &[plus.clone(), plus.clone()], &dpo, &[plus], 0.1).unwrap_err();
    assert!(
        err.to_string().contains("rejected response length"),
        "{err}"
    );
    assert!("kto".parse::<PairLoss>().is_err());
}

/// The per-position path the batched passes replace: one context vector at a time
/// through the MLP, with the embedding gradients scattered by hand. Returns the logits,
/// `Σ_i J(χ_i)ᵀ G_i` and `J(χ_i) dθ` of every sequence.
fn per_position(
    lm: &TinyLm,
    xs: &[Sequence],
    gs: &[DMatrix<f64>],
    dtheta: &DVector<f64>,
) -> (Vec<DMatrix<f64>>, DVector<f64>, Vec<DMatrix<f64>>) {
    let spec = lm.spec();
    let (v, d, w) = (spec.vocab, spec.embed, spec.window);
    let (slot_start, mlp_start) = (v * d, v * d + w * d);
    let mut grad = DVector::zeros(lm.num_params());
    let (mut logits, mut tangents) = (Vec::new(), Vec::new());
    for (x, g) in xs.iter().zip(gs) {
        let (mut zs, mut dzs) = (Vec::new(), Vec::new());
        for (col, l) in (x.prompt_len..x.tokens.len()).enumerate() {
            let context = lm.context(&x.tokens, l);
            let u = lm.context_vector(&context);
            let g_col = g.column(col).into_owned();
            let du = lm
                .mlp()
                .backprop_into(&u, &g_col, &mut grad.as_mut_slice()[mlp_start..]);
            let mut du_in = DVector::zeros(w * d);
            for (s, &t) in context.iter().enumerate() {
                for k in 0..d {
                    grad[t + k * v] += du[s * d + k];
                    grad[slot_start + s + k * w] += du[s * d + k];
                    du_in[s * d + k] = dtheta[t + k * v] + dtheta[slot_start + s + k * w];
                }
            }
            let (z, dz) =
                lm.mlp()
                    .forward_tangent(&u, &dtheta.as_slice()[mlp_start..], Some(&du_in));
            zs.push(z);
            dzs.push(dz);
        }
        logits.push(DMatrix::from_columns(&zs));
        tangents.push(DMatrix::from_columns(&dzs));
    }
    (logits, grad, tangents)
}

proptest! {
    #![proptest_config(config(24))]

    /// The batched passes over all positions of all sequences equal the per-position
    /// path to 1e-12: logits, gradients and forward-mode products.
    #[test]
    fn batched_passes_equal_the_per_position_path(
        seed in 0u64..1000,
        window in 1usize..5,
        lens in proptest::collection::vec((0usize..4, 1usize..5), 1..5),
    ) {
        let lm = small_lm(seed, 7, window);
        let xs: Vec<Sequence> = lens
            .iter()
            .enumerate()
            .map(|(i, &(p, r))| random_sequence(seed + 10 * i as u64 + 1, 7, p, r))
            .collect();
        let mut r = rng(seed + 5000);
        let gs: Vec<DMatrix<f64>> = xs
            .iter()
            .map(|x| DMatrix::from_fn(7, x.response().len(), |_, _| random_vector(1, &mut r)[0]))
            .collect();
        let dtheta = random_vector(lm.num_params(), &mut r);
        let (z_ref, grad_ref, dz_ref) = per_position(&lm, &xs, &gs, &dtheta);
        let close = |a: &DMatrix<f64>, b: &DMatrix<f64>| {
            a.shape() == b.shape() && (a - b).amax() <= 1e-12 * (1.0 + b.amax())
        };
        let z = lm.logits_batch(&xs);
        prop_assert!(z.iter().zip(&z_ref).all(|(a, b)| close(a, b)));
        let grad = lm.backprop_batch(&xs, &gs);
        prop_assert!((&grad - &grad_ref).amax() <= 1e-12 * (1.0 + grad_ref.amax()));
        // The training step's own pass: the embedding folded into the first layer when
        // the batch has more positions than the 7 tokens, unfolded otherwise.
        let (z_step, _, grad_step) = lm.gradient_batch(&xs, &mut |_| Ok(gs.clone())).unwrap();
        prop_assert!((&grad_step - &grad_ref).amax() <= 1e-12 * (1.0 + grad_ref.amax()));
        prop_assert!(z_step.iter().zip(&z_ref).all(|(a, b)| close(a, b)));
        for ((z0, dz), (z1, dz1)) in lm.logits_and_jvp_batch(&xs, &dtheta).iter().zip(z_ref.iter().zip(&dz_ref)) {
            prop_assert!(close(z0, z1) && close(dz, dz1));
        }
    }
}

/// A batch large enough to be split into two halves on two threads gives the
/// per-position path's gradient, and one gradient evaluation (one forward pass, the
/// embedding folded into the first layer) gives the same logits and gradient, to
/// rounding, as the logits and the backward pass taken apart.
#[test]
fn chunked_gradients_equal_the_per_position_path() {
    let lm = small_lm(3, 7, 3);
    // 75 sequences of 4 response tokens: 300 positions, past the two-thread threshold;
    // the last 15 repeat earlier ones, so the forward mode finds shared contexts by
    // hashing (past 32 positions).
    let xs: Vec<Sequence> = (0..75)
        .map(|i| random_sequence(100 + i % 60, 7, 2, 4))
        .collect();
    let positions: usize = xs.iter().map(|x| x.response().len()).sum();
    assert!(positions >= learning_dynamics::lm::PARALLEL_POSITIONS);
    let mut r = rng(9);
    let gs: Vec<DMatrix<f64>> = xs
        .iter()
        .map(|_| DMatrix::from_fn(7, 4, |_, _| random_vector(1, &mut r)[0]))
        .collect();
    let dtheta = random_vector(lm.num_params(), &mut r);
    let (z_ref, grad_ref, dz_ref) = per_position(&lm, &xs, &gs, &dtheta);
    let grad = lm.backprop_batch(&xs, &gs);
    assert!((&grad - &grad_ref).amax() <= 1e-12 * (1.0 + grad_ref.amax()));
    let close = |a: &DMatrix<f64>, b: &DMatrix<f64>| (a - b).amax() <= 1e-12 * (1.0 + b.amax());
    for ((z, dz), (z1, dz1)) in
        (lm.logits_and_jvp_batch(&xs, &dtheta).iter()).zip(z_ref.iter().zip(&dz_ref))
    {
        assert!(close(z, z1) && close(dz, dz1));
    }
    let (logits, residuals, grad_once) = lm.gradient_batch(&xs, &mut |_| Ok(gs.clone())).unwrap();
    assert_eq!(residuals, gs);
    assert!((&grad_once - &grad_ref).amax() <= 1e-12 * (1.0 + grad_ref.amax()));
    for (z, z1) in logits.iter().zip(&z_ref) {
        assert!((z - z1).amax() <= 1e-12 * (1.0 + z1.amax()));
    }
    // The step reuses its buffers (with stale contents) from one call to the next: after
    // a batch of another size, the same batch gives the same bits.
    let (_, _, _) = lm
        .gradient_batch(&xs[..70], &mut |_| Ok(gs[..70].to_vec()))
        .unwrap();
    let (logits_again, _, grad_again) = lm.gradient_batch(&xs, &mut |_| Ok(gs.clone())).unwrap();
    assert_eq!((logits_again, grad_again), (logits, grad_once));
}

/// A minibatch objective is the sum of its parts: its gradient is the sum of theirs.
#[test]
fn a_batch_objective_sums_its_parts() {
    let lm = small_lm(4, 6, 2);
    let (a, b, c) = (
        random_sequence(1, 6, 1, 3),
        random_sequence(2, 6, 2, 2),
        random_sequence(3, 6, 2, 2),
    );
    let sft = || Box::new(CrossEntropy::sequence(a.response())) as Box<dyn Objective>;
    let dpo = || {
        Box::new(Pairwise {
            loss: PairLoss::Dpo,
            beta: 0.5,
            chosen: b.response().to_vec(),
            rejected: c.response().to_vec(),
            reference: (-2.0, -3.0),
        }) as Box<dyn Objective>
    };
    let grad = |xs: &[Sequence], o: &dyn Objective| {
        learning_dynamics::decomposition::gradient(&lm, xs, o).unwrap()
    };
    let whole = grad(
        &[a.clone(), b.clone(), c.clone()],
        &Batch(vec![sft(), dpo()]),
    );
    let (g1, g2) = (
        grad(std::slice::from_ref(&a), sft().as_ref()),
        grad(&[b.clone(), c.clone()], dpo().as_ref()),
    );
    assert!((whole.loss - g1.loss - g2.loss).abs() < 1e-12);
    assert!((&whole.grad - &g1.grad - &g2.grad).amax() < 1e-12);
    assert_eq!(whole.residuals.len(), 3);
}

/// Every objective name the error message lists parses, and prints back as itself.
#[test]
fn every_listed_objective_name_parses() {
    let err = "kto".parse::<LmObjective>().unwrap_err().to_string();
    let listed = err.split("one of: ").nth(1).unwrap().trim_end_matches(')');
    for name in listed.split(", ") {
        let objective: LmObjective = name.parse().unwrap();
        assert_eq!(objective.to_string(), name);
    }
    assert_eq!("sigmoid".parse::<PairLoss>().unwrap(), PairLoss::Dpo);
    // TRL's hinge, max(0, 1 − βm), is not SLiC-HF: it is no alias here.
    assert!("hinge".parse::<PairLoss>().is_err());
    assert!(
        "sft".parse::<PairLoss>().is_err(),
        "SFT is not a pairwise loss"
    );
}

/// DPO's strength β(1 − σ(βm)) falls as the margin grows; IPO's coefficient changes
/// sign at m = 1/(2β); SLiC's push stops once the gap passes δ; SPPO's rejected
/// coefficient changes sign at r⁻ = −η_s/2 = −1/(2β).
#[test]
fn loss_strengths_behave_as_the_paper_says() {
    let pair = |loss| Pairwise {
        loss,
        beta: 0.5,
        chosen: vec![],
        rejected: vec![],
        reference: (0.0, 0.0),
    };
    let dpo = pair(PairLoss::Dpo);
    let strengths: Vec<f64> = [-4.0, -1.0, 0.0, 1.0, 4.0, 10.0]
        .iter()
        .map(|&m| dpo.strengths(m, 0.0).1)
        .collect();
    assert!(strengths.windows(2).all(|w| w[1] < w[0]), "{strengths:?}");
    assert!(
        (dpo.strengths(0.0, 0.0).1 - 0.25).abs() < 1e-15,
        "β σ(0) = 0.25"
    );
    let ipo = pair(PairLoss::Ipo);
    assert!(ipo.strengths(0.9, 0.0).1 > 0.0 && ipo.strengths(1.1, 0.0).1 < 0.0);
    assert_eq!(ipo.strengths(1.0, 0.0).1, 0.0);
    let slic = pair(PairLoss::Slic {
        delta: 1.0,
        lambda: 0.1,
    });
    assert_eq!(slic.strengths(0.5, 0.0).2, 1.0);
    assert_eq!(slic.strengths(1.5, 0.0).2, 0.0);
    assert!(
        (slic.strengths(1.5, 0.0).1 - 0.1).abs() < 1e-15,
        "only the SFT regulariser remains"
    );
    let sppo = pair(PairLoss::SppoHard);
    assert!(sppo.strengths(0.0, -0.9).2 > 0.0 && sppo.strengths(0.0, -1.1).2 < 0.0);
    assert!(sppo.strengths(0.0, 0.0).1 > 0.0 && sppo.strengths(1.1, 0.0).1 < 0.0);
}

mod experiments {
    use learning_dynamics::experiments::lm_finetune::{self, LmFinetune};
    use learning_dynamics::experiments::lm_influence::{self, LmInfluence};
    use learning_dynamics::experiments::lm_measures::{FamilyPoint, curve};
    use learning_dynamics::experiments::lm_world::Signal;
    use learning_dynamics::experiments::lm_world::{DEFAULT_SEED, LmConfig};
    use learning_dynamics::experiments::{Experiment, Settings};
    use learning_dynamics::language::Family;

    /// A fast world for tests: half the pre-training, longer SFT, shorter DPO.
    fn fast_world() -> LmConfig {
        let mut world = LmConfig::default();
        world.pretrain.steps = 3000;
        world.sft.epochs = 20;
        world.dpo_updates = 240;
        world
    }

    fn change(points: &[FamilyPoint], family: Family) -> f64 {
        let c = curve(points, family);
        c[c.len() - 1].1 - c[0].1
    }

    /// The fast configuration's qualitative claims, read from the tracked data: chosen
    /// rises during SFT, rejected falls during DPO, and the mass off the greedy argmax
    /// falls on the rejected prefixes (squeezing). Also an invariant of the tracking itself: Σ log max π ≥ log π(y⁺)
    /// on the same prefixes, at every point.
    #[test]
    fn fast_sft_and_dpo_claims() {
        let config = lm_finetune::Config {
            world: fast_world(),
            track_every: 8,
            band_seeds: 3,
        };
        for seed in [DEFAULT_SEED, 7] {
            let r = LmFinetune::run(
                &learning_dynamics::experiments::Valid::new(config).unwrap(),
                seed,
            )
            .unwrap();
            let chosen = change(&r.sft, Family::Chosen);
            assert!(chosen > 0.0, "seed {seed}: chosen {chosen}");
            let rejected = change(&r.dpo, Family::Rejected);
            assert!(rejected < 0.0, "seed {seed}: rejected {rejected}");
            let squeezed = change(&r.dpo, Family::ExceptArgmaxRejectedPrefix);
            assert!(
                squeezed < 0.0,
                "seed {seed}: except_argmax on the rejected prefixes {squeezed}"
            );
            for points in [&r.sft, &r.dpo] {
                let (chosen, argmax) =
                    (curve(points, Family::Chosen), curve(points, Family::Argmax));
                assert!(chosen.iter().zip(&argmax).all(|(c, a)| a.1 >= c.1 - 1e-12));
                assert_eq!(points.len() % Family::ALL.len(), 0);
            }
            let tables = LmFinetune::tables(&r);
            let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "lm_sft",
                    "lm_sft_seeds",
                    "lm_dpo",
                    "lm_dpo_seeds",
                    "lm_peakiness",
                    "lm_dpo_end"
                ]
            );
            assert_eq!(tables[0].rows().len(), r.sft.len());
            // The band's seeds: the run's own first, then the next two, on the same steps.
            assert_eq!(r.sft_seeds.len(), 3);
            assert_eq!(r.sft_seeds[0], r.sft);
            assert!(r.sft_seeds.iter().all(|s| s.len() == r.sft.len()));
            assert_ne!(r.sft_seeds[1], r.sft);
            assert_eq!(tables[1].rows().len(), 3 * r.sft.len());
            assert!(tables[1].rows()[r.sft.len()].starts_with(&format!("{},", seed + 1)));
            // The DPO band likewise: each seed's curve is what a run from that seed draws.
            assert_eq!(r.dpo_seeds.len(), 3);
            assert_eq!(r.dpo_seeds[0], r.dpo);
            assert_ne!(r.dpo_seeds[1], r.dpo);
            let rows: usize = r.dpo_seeds.iter().map(Vec::len).sum();
            assert_eq!(tables[3].rows().len(), rows);
            if seed == DEFAULT_SEED {
                let alone = lm_finetune::Config {
                    band_seeds: 1,
                    ..config
                };
                let next = LmFinetune::run(
                    &learning_dynamics::experiments::Valid::new(alone).unwrap(),
                    seed + 1,
                )
                .unwrap();
                assert_eq!(next.dpo, r.dpo_seeds[1]);
                // A robustness rerun trains no band, and its claims are the run's.
                let valid = learning_dynamics::experiments::Valid::new(config).unwrap();
                let rerun = LmFinetune::rerun(&valid, seed).unwrap();
                assert_eq!(rerun.dpo_seeds.len(), 1);
                assert_eq!(LmFinetune::claims(&rerun), LmFinetune::claims(&r));
            }
        }
    }

    #[test]
    fn influence_table_is_normalised_per_signal() {
        let config = lm_influence::Config {
            world: fast_world(),
            epochs: 1,
            ..lm_influence::Config::default()
        };
        let table = LmInfluence::run(
            &learning_dynamics::experiments::Valid::new(config).unwrap(),
            3,
        )
        .unwrap();
        let normalised = table.normalised();
        assert_eq!(normalised.len(), 5 * 10);
        for signal in Signal::HEATMAP {
            let column: Vec<f64> = normalised
                .iter()
                .filter(|c| c.0 == signal)
                .map(|c| c.2)
                .collect();
            let max = column.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(
                (max - 1.0).abs() < 1e-12,
                "{}: max |value| {max}",
                signal.id()
            );
        }
    }

    /// A configuration out of range is refused before anything runs, naming the key.
    #[test]
    fn out_of_range_configurations_are_refused() {
        let mut config = lm_finetune::Config::default();
        config.world.beta = -1.0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("beta") && err.contains("(0, 1000]"), "{err}");
        assert!(
            learning_dynamics::experiments::Valid::new(config).is_err(),
            "refused before it runs"
        );
    }
}

/// The pieces of the on/off-policy comparison: the answer grammar and its reward, the
/// repeater measure, the pair sampler and the update rule.
mod policy {
    use learning_dynamics::Rng64;
    use learning_dynamics::experiments::lm_measures::{repeater, repeats};
    use learning_dynamics::experiments::lm_world::{
        Dpo, LmConfig, Regime, draw_pair, pretrain, train_dpo,
    };
    use learning_dynamics::language::{Answer, END, IS, Language, SEEMS, Sizes, Style, entity};
    use learning_dynamics::objective::PairLoss;
    use rand::SeedableRng;

    fn language() -> Language {
        Language::random(
            Style::Canonical,
            Sizes::default(),
            &mut Rng64::seed_from_u64(5),
        )
    }

    /// The token of value `k` (or its synonym) in the default world.
    fn value(k: usize, synonym: bool) -> usize {
        Sizes::default().value(k, synonym)
    }

    /// Hand-made answers: the grammar accepts either synonym, a wrong fact is not
    /// malformed, and the reward orders correct > wrong > malformed.
    #[test]
    fn answers_are_judged_by_the_grammar_and_rewarded_by_the_fact() {
        let lang = language();
        let j = lang.train[0];
        let (true_v, wrong_v) = (lang.facts[j], lang.wrong[j]);
        let e = entity(j);
        assert_eq!(
            lang.judge(j, &[e, IS, value(true_v, false), END]),
            Answer::Correct
        );
        assert_eq!(
            lang.judge(j, &[e, SEEMS, value(true_v, true), END]),
            Answer::Correct
        );
        assert_eq!(
            lang.judge(j, &[e, IS, value(wrong_v, true), END]),
            Answer::Wrong
        );
        for malformed in [
            vec![IS, IS, value(true_v, false), IS],
            vec![e, IS, value(true_v, false)],
            vec![e, IS, value(true_v, false), END, END],
            vec![entity((j + 1) % 12), IS, value(true_v, false), END],
            vec![e, END, value(true_v, false), END],
        ] {
            assert_eq!(
                lang.judge(j, &malformed),
                Answer::Malformed,
                "{malformed:?}"
            );
        }
        assert!(Answer::Correct.reward() > Answer::Wrong.reward());
        assert!(Answer::Wrong.reward() > Answer::Malformed.reward());
    }

    /// The repeater measures on hand-made answers: degenerate (not well-formed),
    /// repeating, wrong-entity and hallucinated answers each counted where they belong,
    /// and the distinct-token share over every answer.
    #[test]
    fn the_repeater_measures_tell_degenerate_repeating_and_hallucinated_answers_apart() {
        let lang = language();
        let (a, b) = (lang.train[0], lang.train[1]);
        let (t, u) = (lang.test[0], lang.test[1]);
        let v = value(lang.facts[a], true);
        let train_answers = vec![
            lang.chosen(a),                  // well-formed, own entity
            vec![entity(a), IS, v, v, v, v], // degenerate, repeats, no END
            lang.chosen(b),                  // well-formed, another entity's
            vec![entity(b), SEEMS, v, END],  // well-formed, own entity (b)
        ];
        let held_out = vec![lang.chosen(a), lang.chosen(u)]; // about a: hallucinated; u: own
        let r = repeater(&lang, (&[a, a, a, b], &train_answers), (&[t, u], &held_out));
        assert!((r.degenerate_rate - 0.25).abs() < 1e-12, "{r:?}");
        assert!((r.repetition_rate - 0.25).abs() < 1e-12, "{r:?}");
        assert!((r.wrong_entity_rate - 0.25).abs() < 1e-12, "{r:?}");
        assert!((r.hallucination_rate - 0.5).abs() < 1e-12, "{r:?}");
        // A repeat without a missing END, and a missing END without a repeat.
        assert!(repeats(&[entity(a), IS, IS, END]) && repeats(&[entity(a), IS, v]));
        assert!(!repeats(&lang.chosen(a)));
        let all: Vec<usize> = train_answers
            .iter()
            .chain(&held_out)
            .flatten()
            .copied()
            .collect();
        let mut distinct = all.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let share = distinct.len() as f64 / all.len() as f64;
        assert!((r.distinct_token_share - share).abs() < 1e-12);
    }

    /// Seeded draws repeat; SPIN's y⁻ never equals y⁺; online's y⁺ has the higher reward.
    #[test]
    fn pairs_are_seeded_usable_and_ranked_by_the_reward() {
        // A short pre-training keeps the model's samples varied, so every regime has
        // usable pairs to check.
        let mut config = LmConfig::default();
        config.pretrain.steps = 500;
        let world = pretrain(&config, 3).unwrap();
        let lang = &world.language;
        for regime in Regime::ALL {
            let mut usable = 0;
            for j in lang.train.iter().copied() {
                let draw = |seed| {
                    draw_pair(
                        regime,
                        lang,
                        &world.base,
                        j,
                        20,
                        &mut Rng64::seed_from_u64(seed),
                    )
                    .unwrap()
                };
                assert_eq!(draw(1), draw(1), "seeded");
                let (pair, _) = draw(2);
                let Some((plus, minus)) = pair else { continue };
                usable += 1;
                match regime {
                    Regime::OffPolicy
                    | Regime::OffPolicyChosenOnly
                    | Regime::OffPolicyRejectedOnly => {
                        assert_eq!((plus, minus), (lang.chosen(j), lang.rejected(j)))
                    }
                    Regime::Spin => {
                        assert_eq!(plus, lang.chosen(j));
                        assert_ne!(minus, plus);
                    }
                    Regime::Online => {
                        assert!(lang.judge(j, &plus).reward() > lang.judge(j, &minus).reward())
                    }
                }
            }
            assert!(usable > 0, "{}: no usable pair to check", regime.id());
        }
    }

    /// Every regime takes exactly the updates asked for.
    #[test]
    fn every_regime_takes_the_same_number_of_updates() {
        let mut config = LmConfig::default();
        config.pretrain.steps = 500;
        let world = pretrain(&config, 4).unwrap();
        for regime in Regime::ALL {
            let mut rng = Rng64::seed_from_u64(9);
            let models = (&world.base, &world.base);
            // 13 updates: not a multiple of the 8 training prompts, so the last pass stops
            // midway; learning rate 0.05, β = 0.1, up to 50 redraws per prompt.
            let dpo = Dpo {
                regime,
                loss: PairLoss::Dpo,
                eta: 0.05,
                beta: 0.1,
                updates: 13,
                max_redraws: 50,
            };
            let (_, counts) = train_dpo(&dpo, &world.language, models, &mut rng, &mut []).unwrap();
            assert_eq!(counts.updates, 13, "{}", regime.id());
        }
    }
}

/// The on/off-policy experiment on a small world: its tables, the update rule's counts,
/// and the checkpoint every regime shares.
mod lm_policy {
    use learning_dynamics::experiments::Experiment;
    use learning_dynamics::experiments::lm_policy::{self, LmPolicy};
    use learning_dynamics::experiments::lm_world::SEEDS;
    use learning_dynamics::experiments::lm_world::{
        Regime, Stage, checkpoint, pretrain, world_model,
    };

    fn small() -> lm_policy::Config {
        let mut config = lm_policy::Config::default();
        config.world.pretrain.steps = 1500;
        config.world.dpo_updates = 20;
        config.track_every = 8;
        config
    }

    #[test]
    fn every_regime_and_seed_is_tracked_with_equal_updates() {
        let config = small();
        let data = LmPolicy::run(
            &learning_dynamics::experiments::Valid::new(config).unwrap(),
            11,
        )
        .unwrap();
        assert_eq!(data.runs.len(), SEEDS as usize * Regime::ALL.len());
        for run in &data.runs {
            assert_eq!(run.counts.updates, 20, "{}", run.label.id());
            let steps: Vec<usize> = run.points.iter().map(|p| p.step).collect();
            assert_eq!(steps, [0, 8, 16, 20], "the last update is always tracked");
            let first = data.runs.iter().find(|r| r.seed == run.seed).unwrap();
            assert_eq!(
                run.points[0].families, first.points[0].families,
                "every regime starts from the seed's one SFT checkpoint"
            );
        }
        let tables = LmPolicy::tables(&data);
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "lm_policy",
                "lm_policy_frames",
                "lm_policy_positions",
                "lm_policy_repeater",
                "lm_policy_summary",
                "lm_policy_attribution",
                "lm_policy_negatives",
                "lm_policy_first_order",
                "lm_policy_squeezing",
                "lm_policy_dashboard"
            ]
        );
        // The animation's frames: two regimes of the first seed, every token at every point.
        assert_eq!(tables[1].header(), "regime,step,token,log_prob");
        // 2 regimes × 4 tracking points (updates 0, 8, 16, 20) × the 36 tokens of VOCAB.
        assert_eq!(tables[1].rows().len(), 2 * 4 * 36);
        for table in [&tables[0], &tables[2], &tables[3]] {
            let rows = table.rows();
            let seeds: std::collections::BTreeSet<&str> =
                rows.iter().map(|r| r.split(',').nth(1).unwrap()).collect();
            assert_eq!(
                seeds.len(),
                SEEDS as usize,
                "{}: every seed's rows",
                table.name
            );
        }
        let summary_rows = tables[4].rows();
        let summary = &summary_rows;
        for regime in Regime::ALL {
            let row = format!("{},updates,20", regime.id());
            assert!(summary.contains(&row), "{row} in {summary:?}");
        }
        // The summary's 21 metrics for each of the 5 regimes.
        assert_eq!(summary.len(), 5 * 21);
        assert_eq!(LmPolicy::claims(&data).len(), 15);
        // Every update of every run is in the negatives, with both coefficients.
        assert_eq!(tables[6].rows().len(), data.runs.len() * 20);
        // The dashboard, as TRL logs it: against the reference (the model at step 0), so
        // every reward is 0 at step 0 and at every run's first update; and its
        // rewards/chosen is β times the change of the chosen family (the same pairs,
        // measured another way), its margins the difference of the rewards.
        let beta = config.world.beta;
        for run in &data.runs {
            let start = &run.points[0];
            assert_eq!(start.dashboard.rewards_chosen, 0.0);
            assert_eq!(start.dashboard.rewards_accuracies, 0.0, "no r⁺ > r⁻ at 0");
            for p in &run.points {
                let d = p.dashboard;
                let family = |f| beta * (p.family(f) - start.family(f));
                assert!(
                    (d.rewards_chosen - family(learning_dynamics::language::Family::Chosen)).abs()
                        < 1e-9,
                    "{d:?}"
                );
                assert!(
                    (d.rewards_rejected - family(learning_dynamics::language::Family::Rejected))
                        .abs()
                        < 1e-9
                );
                assert!(
                    (d.logps_chosen - p.family(learning_dynamics::language::Family::Chosen)).abs()
                        < 1e-9
                );
                assert!((d.logps_chosen_per_token * 4.0 - d.logps_chosen).abs() < 1e-12);
            }
            let first = run.counts.records[0];
            assert_eq!(
                (first.chosen_log_prob, first.rejected_log_prob),
                first.reference
            );
        }
        let named = |name: &str| tables.iter().find(|t| t.name == name).unwrap();
        assert_eq!(
            named("lm_policy_dashboard").rows().len(),
            data.runs.len() * 4
        );
        // The first-order error after updates 8, 16 and the last (20): at the end, the
        // rms of actual − predicted over the attribution's family cells, which its
        // table writes position by position.
        let errors = &named("lm_policy_first_order").rows();
        assert_eq!(errors.len(), data.runs.len() * 3);
        for run in &data.runs {
            let cells = &run.attribution.families;
            let squares: f64 = (cells.iter())
                .map(|c| (c.split.actual - c.split.predicted).powi(2))
                .sum();
            let rms = (squares / cells.len() as f64).sqrt();
            let last = run.attribution.errors.last().unwrap();
            assert_eq!(last.step, 20);
            assert!((last.rms_error - rms).abs() <= 1e-12 * (1.0 + rms), "{rms}");
        }
        // The attribution: chosen + rejected = predicted, row by row (a consistency check,
        // true by construction; the evidence is in `attribution` and `lm_squeezing`).
        for row in &tables[5].rows() {
            let v: Vec<f64> = row.split(',').skip(4).map(|x| x.parse().unwrap()).collect();
            assert!(
                (v[0] + v[1] - v[2]).abs() <= 1e-9 * (1.0 + v[2].abs()),
                "{row}"
            );
        }
    }

    /// A checkpoint taken twice, or trained afresh, is the same model.
    #[test]
    fn checkpoints_are_shared_without_changing_them() {
        let world = small().world;
        let (a, b) = (
            checkpoint(&world, 2).unwrap(),
            checkpoint(&world, 2).unwrap(),
        );
        assert_eq!(a.sft_model, b.sft_model);
        let mut fresh = pretrain(&world, 2).unwrap();
        assert_eq!(fresh.base, world_model(&world, 2, Stage::Base).unwrap());
        assert_eq!(fresh.sft(&world, &mut []).unwrap(), a.sft_model);
        assert_eq!(world_model(&world, 2, Stage::Sft).unwrap(), a.sft_model);
    }
}

/// Every pairwise loss trained on the same pairs.
mod lm_losses {
    use learning_dynamics::experiments::Experiment;
    use learning_dynamics::experiments::lm_losses::{self, LmLosses};
    use learning_dynamics::objective::PairLoss;

    /// Each loss's learning rate makes its first step as large as DPO's: the first-step
    /// coefficients are β/2 = 0.05 (DPO), 1/τ = 10 (IPO), 1 + λ = 1.1 (SLiC), η_s = 10
    /// (SPPO).
    #[test]
    fn every_loss_starts_with_dpos_step() {
        let config = lm_losses::Config::default();
        let eta = config.world.dpo_eta;
        let expected = [0.05 / 0.05, 0.05 / 10.0, 0.05 / 1.1, 0.05 / 10.0];
        for ((loss, _, lr), ratio) in config.losses().into_iter().zip(expected) {
            assert!((lr - eta * ratio).abs() < 1e-15, "{loss}: {lr}");
        }
        assert_eq!(config.losses()[3].1, 0.1, "SPPO's β is 1/η_s");
        assert!(
            matches!(config.losses()[2].0, PairLoss::Slic { delta, lambda } if delta == 1.0 && lambda == 0.1)
        );
    }

    #[test]
    fn every_loss_and_seed_is_tracked_on_the_same_updates() {
        let mut config = lm_losses::Config::default();
        config.world.pretrain.steps = 1500;
        config.world.dpo_updates = 10;
        config.track_every = 5;
        let data = LmLosses::run(
            &learning_dynamics::experiments::Valid::new(config).unwrap(),
            21,
        )
        .unwrap();
        // 5 seeds × 4 losses (DPO, IPO, SLiC, SPPO).
        assert_eq!(data.runs.len(), 5 * 4);
        assert!(
            data.runs
                .iter()
                .all(|r| r.counts.updates == 10 && r.points.len() == 3)
        );
        let tables = LmLosses::tables(&data);
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        // Every panel of the figure has its table: curves, per position, repeater.
        assert_eq!(
            names,
            [
                "lm_losses",
                "lm_losses_positions",
                "lm_losses_repeater",
                "lm_losses_summary",
                "lm_losses_attribution",
                "lm_losses_negatives",
                "lm_losses_first_order",
                "lm_losses_squeezing",
                "lm_losses_dashboard"
            ]
        );
        assert_eq!(tables[0].header(), "loss,seed,step,family,mean_log_prob");
        assert_eq!(tables[3].header(), "loss,metric,value");
        // The first seed's 4 losses × the 21 summary metrics of lm_policy.
        assert_eq!(tables[3].rows().len(), 4 * 21);
        assert!(
            tables[3]
                .rows()
                .contains(&"sppo_hard,updates,10".to_string())
        );
        // 5 seeds × 4 losses × 3 tracking points (updates 0, 5, 10) × 2 prefixes × 4
        // positions, each split by whether the fixed argmax is y⁺'s token: the groups
        // of a cell hold its 8 probes between them.
        let mut probes = std::collections::BTreeMap::new();
        for row in &tables[1].rows() {
            let fields: Vec<&str> = row.split(',').collect();
            let n: usize = fields[6].parse().unwrap();
            *probes.entry(fields[..5].join(",")).or_insert(0) += n;
        }
        assert_eq!(probes.len(), 5 * 4 * 3 * 2 * 4);
        assert!(probes.values().all(|&n| n == 8), "{probes:?}");
    }
}

/// Longer SFT before the same DPO.
mod lm_sft_length {
    use learning_dynamics::experiments::Experiment;
    use learning_dynamics::experiments::comparison::Metric;
    use learning_dynamics::experiments::lm_sft_length::{self, LmSftLength};

    #[test]
    fn the_lengths_double_up_to_the_longest() {
        let with = |epochs| {
            let mut config = lm_sft_length::Config::default();
            config.world.sft.epochs = epochs;
            config.lengths()
        };
        assert_eq!(with(16), [1, 2, 4, 8, 16]);
        assert_eq!(with(10), [1, 2, 4, 8, 10]);
        assert_eq!(with(1), [1]);
    }

    #[test]
    fn every_length_and_seed_has_its_metrics() {
        let mut config = lm_sft_length::Config::default();
        config.world.pretrain.steps = 1000;
        config.world.sft.epochs = 2;
        config.world.dpo_updates = 6;
        let data = LmSftLength::run(
            &learning_dynamics::experiments::Valid::new(config).unwrap(),
            5,
        )
        .unwrap();
        let table = &LmSftLength::tables(&data)[0];
        assert_eq!(table.header(), "sft_epochs,seed,metric,value");
        // 5 seeds × 2 SFT lengths (1, 2) × 4 metrics.
        assert_eq!(table.rows().len(), 5 * 2 * 4);
        // A longer SFT on the same pre-trained model starts DPO from another checkpoint.
        let (one, two) = (
            data.values(1, Metric::PeakinessAtDpoStart),
            data.values(2, Metric::PeakinessAtDpoStart),
        );
        assert!(one.iter().zip(&two).all(|(a, b)| a != b));
    }
}

/// The extend method against the baseline.
mod lm_extend {
    use learning_dynamics::experiments::Experiment;
    use learning_dynamics::experiments::lm_extend::{self, Arm, LmExtend};

    #[test]
    fn both_arms_take_the_same_sft_budget_and_dpo_updates() {
        let mut config = lm_extend::Config::default();
        config.world.pretrain.steps = 1000;
        config.world.sft.epochs = 3;
        config.world.dpo_updates = 8;
        config.track_every = 4;
        let data = LmExtend::run(
            &learning_dynamics::experiments::Valid::new(config).unwrap(),
            8,
        )
        .unwrap();
        assert_eq!(data.runs.len(), 5 * 2);
        for (b, e) in data.of(Arm::Baseline).zip(data.of(Arm::Extend)) {
            // 3 epochs × 8 prompts × 4 tokens, counted from the updates the trainer took.
            assert_eq!((b.sft.token_updates, e.sft.token_updates), (96, 96));
            let last_step = |r: &lm_extend::ArmRun| r.sft.points.last().unwrap().step;
            assert_eq!(last_step(b), last_step(e));
            assert_eq!((b.counts.updates, e.counts.updates), (8, 8));
            assert_eq!(b.seed, e.seed);
        }
        let tables = LmExtend::tables(&data);
        assert_eq!(
            tables[0].header(),
            "arm,seed,phase,step,family,mean_log_prob"
        );
        assert!(
            tables[0]
                .rows()
                .iter()
                .any(|r| r.starts_with("extend,8,sft,"))
        );
        // The first seed's 2 arms × 7 summary metrics.
        assert_eq!(tables[3].name, "lm_extend_summary");
        assert_eq!(tables[3].rows().len(), 2 * 7);
        // The repeater panel's table: 5 seeds × 2 arms × 3 tracking points (0, 4, 8).
        assert_eq!(tables[2].name, "lm_extend_repeater");
        assert_eq!(tables[2].rows().len(), 5 * 2 * 3);
    }
}

/// CHES and the response representation it reads.
mod lm_ches {
    use learning_dynamics::Rng64;
    use learning_dynamics::experiments::lm_measures::ches;
    use learning_dynamics::lm::{LmSpec, Sequence, TinyLm};
    use nalgebra::DVector;
    use rand::SeedableRng;

    /// Hand-made hidden states: h⁺ = (1, 2), h⁻ = (3, −1): ⟨h⁺, h⁻⟩ − ‖h⁺‖² = 1 − 5 = −4;
    /// a y⁻ equal to y⁺ has CHES 0, and one along h⁺ but longer a positive CHES.
    #[test]
    fn ches_on_hand_made_hidden_states() {
        assert_eq!(ches(&[1.0, 2.0], &[3.0, -1.0]), -4.0);
        assert_eq!(ches(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert_eq!(ches(&[1.0, 2.0], &[2.0, 4.0]), 5.0);
    }

    /// The response representation is the sum over response positions of the hidden
    /// layer, `tanh(W₁ u_l + b₁)`, computed here from the context vectors by hand.
    #[test]
    fn the_response_representation_sums_the_last_hidden_layer() {
        let spec = LmSpec {
            vocab: 9,
            window: 3,
            embed: 2,
            hidden: 5,
        };
        let lm = TinyLm::random(spec, &mut Rng64::seed_from_u64(4)).unwrap();
        let x = Sequence::new(&[1, 2], &[3, 4, 5]);
        let tokens = [1, 2, 3, 4, 5];
        let layer = &lm.mlp().layers()[0];
        let mut expected = DVector::zeros(5);
        for l in 2..5 {
            let u = lm.context_vector(&lm.context(&tokens, l));
            let b = layer.bias.clone().unwrap_or_else(|| DVector::zeros(5));
            expected += (&layer.weight * u + b).map(f64::tanh);
        }
        let h = lm.response_hidden_sum(&x);
        assert!((h - expected).norm() < 1e-12);
    }
}

/// The language's sizes are keys: a world of any valid size draws its facts, split and
/// vocabulary from them; combinations that leave no world are refused with one line that
/// names the keys; the defaults are today's world (the golden test keeps its bytes).
#[test]
fn the_world_size_keys_are_checked_and_used() {
    use learning_dynamics::language::{Language, Sizes, Style};

    assert_eq!(
        Sizes::default(),
        Sizes {
            entities: 12,
            values: 8,
            test_entities: 4
        }
    );
    assert_eq!(Sizes::default().vocab(), 36);
    let sizes = Sizes {
        entities: 30,
        values: 5,
        test_entities: 7,
    };
    assert_eq!(sizes.vocab(), 8 + 30 + 10);
    let lang = Language::random(Style::Human, sizes, &mut crate::common::rng(9));
    assert_eq!((lang.train.len(), lang.test.len()), (23, 7));
    assert!(
        lang.facts
            .iter()
            .zip(&lang.wrong)
            .all(|(f, w)| f < &5 && w < &5 && f != w)
    );
    assert_eq!(sizes.token_name(sizes.value(4, true)), "v4'");
    assert_eq!(sizes.value_of(sizes.value(3, true)), Some(3));
    let dir = crate::common::scratch("world-sizes");
    let run = |sets: &[&str]| {
        let mut args = vec!["run", "lm_finetune", "--out", dir.to_str().unwrap()];
        for set in sets {
            args.extend(["--set", set]);
        }
        crate::common::ldyn(&args)
    };
    crate::common::assert_fails(
        &run(&["language.entities=5", "language.test_entities=4"]),
        "language.entities = 5 with language.test_entities = 4 leaves 1 entities",
    );
    crate::common::assert_fails(&run(&["language.values=1"]), "language.values must be");
    crate::common::assert_fails(
        &run(&["language.test_entities=0"]),
        "language.test_entities must be",
    );
    // A world twice the default size trains, and its configuration records the sizes.
    let out = run(&[
        "language.entities=24",
        "model.hidden=8",
        "pretrain.steps=100",
        "dpo_updates=4",
        "robustness_seeds=0",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string(dir.join("lm_finetune.config.toml")).unwrap();
    assert!(config.contains("\nlanguage.entities = 24 "), "{config}");
}

/// Kernel factors of models of other sizes do not make a kernel.
#[test]
#[should_panic(expected = "kernel factors of different models")]
fn kernel_factors_of_other_models_are_refused() {
    use learning_dynamics::lm::kernel::KernelFactors;
    let x = random_sequence(1, 4, 2, 2);
    let of = |v: usize| KernelFactors::of(&small_lm(1, v, 2), std::slice::from_ref(&x));
    of(4).structured(&of(5));
}

/// The products one gradient evaluation executes: for the gallery's LM (V 36, window 4,
/// d 8, hidden 64) on 4 positions the first layer is not folded, `6·V·h·N + 6·h·W·d·N`
/// = 55 296 + 49 152; on 100 positions (more than 36 tokens) it is, and its share is
/// `6·h·d·V·W` = 442 368 whatever the batch. A forward pass executes a third of that
/// (`2·V·h·N + 2·h·W·d·N` = 18 432 + 16 384 on 4 positions), and each direction of the
/// forward mode two thirds.
#[test]
fn the_step_counts_the_flops_of_its_products() {
    use learning_dynamics::lm::step::{forward_flops, gradient_flops, tangent_flops};
    let spec = learning_dynamics::experiments::lm_world::LmConfig::default().spec();
    assert_eq!(gradient_flops(spec, 4), 55_296.0 + 49_152.0);
    assert_eq!(
        gradient_flops(spec, 100),
        6.0 * 36.0 * 64.0 * 100.0 + 442_368.0
    );
    assert_eq!(forward_flops(spec, 4), 18_432.0 + 16_384.0);
    assert_eq!(tangent_flops(spec, 4), 2.0 * (18_432.0 + 16_384.0));
    // Folded, a forward pass's first layer is a third of 442 368: `2·h·d·V·W` = 147 456.
    assert_eq!(
        tangent_flops(spec, 100),
        2.0 * (2.0 * 36.0 * 64.0 * 100.0 + 147_456.0)
    );
}

/// A model rebuilt from its weights is the same model; weights that do not fit are refused.
#[test]
fn a_tiny_lm_rebuilds_from_its_weights() {
    use learning_dynamics::mlp::{Activation, Mlp};
    let spec = LmSpec {
        vocab: 7,
        window: 3,
        embed: 2,
        hidden: 5,
    };
    let model = TinyLm::random(spec, &mut rng(9)).unwrap();
    let (embed, slots) = model.embeddings();
    let rebuilt = TinyLm::from_weights(embed.clone(), slots.clone(), model.mlp().clone()).unwrap();
    assert_eq!(rebuilt, model);
    let short = slots.rows(0, 2).into_owned();
    let err = TinyLm::from_weights(embed.clone(), short, model.mlp().clone()).unwrap_err();
    assert!(err.to_string().contains("MLP input size"), "{err}");
    let relu = Mlp::from_layers(model.mlp().layers().to_vec(), Activation::Relu).unwrap();
    let err = TinyLm::from_weights(embed.clone(), slots.clone(), relu).unwrap_err();
    assert!(err.to_string().contains("one tanh hidden layer"), "{err}");
}
