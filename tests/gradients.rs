//! Every analytic derivative against central finite differences.
//!
//! Central differences with step h have error O(h²·f''') + O(ε/h); with h = 1e-5 both
//! are below 1e-9 for these O(1) functions, so a relative tolerance of 1e-6 can only
//! fail if a formula is wrong.

use learning_dynamics::model::Model;
use learning_dynamics::objective::{CrossEntropy, Objective};
use nalgebra::DVector;
use proptest::prelude::*;

use crate::common::{config, random_model, random_vector, rng};

const H: f64 = 1e-5;

fn assert_close(analytic: &DVector<f64>, numeric: &DVector<f64>) {
    let scale = analytic.norm().max(1.0);
    let err = (analytic - numeric).norm();
    assert!(
        err <= 1e-6 * scale,
        "analytic vs numeric differ by {err} (scale {scale})"
    );
}

proptest! {
    #![proptest_config(config(48))]

    /// ∇_θ L from backprop equals the finite-difference gradient of L(θ), for
    /// cross-entropy with several signed label terms (positive and negative gradients).
    #[test]
    fn backprop_matches_finite_differences(
        seed in any::<u64>(), kind in 0u8..5, d in 1usize..6, h in 1usize..7, v in 2usize..8,
        weights in prop::collection::vec(-2.0f64..2.0, 1..4),
    ) {
        let mut r = rng(seed);
        let model = random_model(kind, d, h, v, &mut r);
        let x = random_vector(d, &mut r);
        let mut objective = CrossEntropy::weighted(0, weights[0]);
        for (k, w) in weights.iter().enumerate().skip(1) {
            objective = objective.and(CrossEntropy::weighted(k % v, *w));
        }
        let loss = |m: &learning_dynamics::mlp::Mlp| objective.loss(&[m.logits(&x)]);
        let g = objective.residuals(&[model.logits(&x)]);
        let analytic = model.backprop(&x, &g[0]);
        let theta = model.params();
        let numeric = DVector::from_fn(theta.len(), |i, _| {
            let mut plus = model.clone();
            let mut minus = model.clone();
            let mut t = theta.clone();
            t[i] += H;
            plus.set_params(&t);
            t[i] -= 2.0 * H;
            minus.set_params(&t);
            (loss(&plus) - loss(&minus)) / (2.0 * H)
        });
        assert_close(&analytic, &numeric);
    }

    /// The residual G of weighted cross-entropy is the exact logit gradient ∂L/∂z.
    #[test]
    fn residual_is_the_logit_gradient(
        z in prop::collection::vec(-30.0f64..30.0, 2..12), class in 0usize..12, w in -3.0f64..3.0,
    ) {
        let v = z.len();
        let objective = CrossEntropy::weighted(class % v, w).and(CrossEntropy::positive(0));
        let z = nalgebra::DMatrix::from_column_slice(v, 1, &z);
        let g = objective.residuals(std::slice::from_ref(&z))[0].column(0).into_owned();
        let numeric = DVector::from_fn(v, |i, _| {
            let mut zp = z.clone();
            let mut zm = z.clone();
            zp[i] += H;
            zm[i] -= H;
            (objective.loss(&[zp]) - objective.loss(&[zm])) / (2.0 * H)
        });
        assert_close(&g, &numeric);
    }

    /// Forward mode J dθ equals the directional finite difference of the logits, and the
    /// explicit Jacobian (built from backprop) times dθ gives the same vector.
    #[test]
    fn jvp_matches_finite_differences_and_jacobian(
        seed in any::<u64>(), kind in 0u8..5, d in 1usize..6, h in 1usize..7, v in 2usize..8,
    ) {
        let mut r = rng(seed);
        let model = random_model(kind, d, h, v, &mut r);
        let x = random_vector(d, &mut r);
        let dir = random_vector(model.num_params(), &mut r);
        let jvp = model.jvp(&x, &dir).column(0).into_owned();
        let theta = model.params();
        let mut plus = model.clone();
        plus.set_params(&(&theta + &dir * H));
        let mut minus = model.clone();
        minus.set_params(&(&theta - &dir * H));
        let numeric = (plus.logits(&x) - minus.logits(&x)).column(0) / (2.0 * H);
        assert_close(&jvp, &numeric);
        assert_close(&jvp, &(model.jacobian(&x) * &dir));
    }
}

#[test]
fn params_round_trip_and_sgd_step_moves_against_the_gradient() {
    let mut r = rng(7);
    let mut model = random_model(3, 3, 4, 5, &mut r);
    let theta = model.params();
    let mut copy = model.clone();
    copy.set_params(&theta);
    assert_eq!(copy, model);
    let grad = random_vector(model.num_params(), &mut r);
    model.sgd_step(&grad, 0.25).unwrap();
    assert_eq!(model.params(), theta - grad * 0.25);
}

/// An SGD update with a non-finite gradient entry, or one that would overflow a
/// parameter, is an error that leaves every block as it was, wherever the bad entry
/// sits (the checks run block by block: 300 entries span two of their blocks of 256);
/// otherwise every entry moves. The second block holds 1e308, so that a gradient of
/// −1e308 takes it past `f64::MAX` ≈ 1.8e308.
#[test]
fn sgd_in_place_changes_nothing_unless_every_entry_stays_finite() {
    use learning_dynamics::model::sgd_in_place;
    let (first, second): (Vec<f64>, Vec<f64>) = ((0..300).map(f64::from).collect(), vec![1e308; 5]);
    for (at, bad) in [
        (0, f64::NAN),
        (299, f64::INFINITY),
        (304, f64::NEG_INFINITY),
        (303, -1e308),
    ] {
        let (mut a, mut b) = (first.clone(), second.clone());
        let mut grad = vec![1.0; 305];
        grad[at] = bad;
        let err = sgd_in_place(vec![&mut a, &mut b], &grad, 1.0).unwrap_err();
        assert!(
            err.to_string().contains("not finite") || err.to_string().contains("overflow"),
            "{err}"
        );
        assert_eq!((a, b), (first.clone(), second.clone()), "bad entry at {at}");
    }
    // A step of η·g = 1 on the first block and 2e307 on the second (1 alone would vanish
    // in 1e308's rounding, and the test could not see whether the block moved).
    let (mut a, mut b) = (first.clone(), second.clone());
    let mut grad = vec![0.5; 305];
    grad[300..].fill(1e307);
    sgd_in_place(vec![&mut a, &mut b], &grad, 2.0).unwrap();
    assert!(a.iter().zip(&first).all(|(x, y)| *x == y - 1.0));
    assert!(b.iter().all(|&x| x == 1e308 - 2e307));
}

/// The batched passes (every input a column of one matrix) agree with the passes of one
/// input at a time, for every kind of model: the same numbers up to rounding.
#[test]
fn batched_logits_and_jvps_equal_the_passes_of_one_input() {
    let mut r = rng(11);
    for kind in 0..5 {
        let model = random_model(kind, 4, 6, 5, &mut r);
        let xs: Vec<DVector<f64>> = (0..7).map(|_| random_vector(4, &mut r)).collect();
        let dir = random_vector(model.num_params(), &mut r);
        let close = |a: &nalgebra::DMatrix<f64>, b: &nalgebra::DMatrix<f64>| {
            assert_eq!(a.shape(), b.shape());
            assert!((a - b).amax() <= 1e-12 * (1.0 + b.amax()), "kind {kind}");
        };
        for (x, z) in xs.iter().zip(Model::logits_batch(&model, &xs)) {
            close(&z, &model.logits(x));
        }
        for (x, (z, dz)) in xs.iter().zip(model.logits_and_jvp_batch(&xs, &dir)) {
            let (z1, dz1) = model.logits_and_jvp(x, &dir);
            close(&z, &z1);
            close(&dz, &dz1);
        }
    }
}

/// `check_residuals` accepts every objective of the crate at random logits (cross-entropy
/// on a sequence, every pairwise loss away from its kinks) and refuses a residual with
/// the wrong sign, naming the entry where it disagrees most.
#[test]
fn an_objectives_residual_is_checked_against_its_loss() {
    use learning_dynamics::objective::{
        CrossEntropy, Objective, PairLoss, Pairwise, check_residuals,
    };
    use nalgebra::DMatrix;
    use rand::RngExt;

    let mut r = rng(17);
    let mut random =
        |v: usize, l: usize| DMatrix::from_fn(v, l, |_, _| r.random::<f64>() * 4.0 - 2.0);
    let (plus, minus) = (random(5, 3), random(5, 3));
    check_residuals(
        &CrossEntropy::sequence(&[1, 4, 0]),
        std::slice::from_ref(&plus),
    )
    .unwrap();
    for loss in PairLoss::ALL {
        let pair = Pairwise {
            loss,
            beta: 0.5,
            chosen: vec![1, 4, 0],
            rejected: vec![2, 4, 3],
            // lp⁺ of these logits is far from ref⁺ (DPOP's kink), and y⁺ − y⁻ from SLiC's δ.
            reference: (-7.0, -6.0),
        };
        check_residuals(&pair, &[plus.clone(), minus.clone()])
            .unwrap_or_else(|e| panic!("{loss}: {e}"));
    }

    /// Cross-entropy on class 2 with its residual's sign flipped: a step would raise the loss.
    struct Flipped(CrossEntropy);
    impl Objective for Flipped {
        fn arity(&self) -> usize {
            1
        }
        fn check(&self, shapes: &[(usize, usize)]) -> learning_dynamics::Result<()> {
            self.0.check(shapes)
        }
        fn loss(&self, z: &[DMatrix<f64>]) -> f64 {
            self.0.loss(z)
        }
        fn residuals(&self, z: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
            vec![-&self.0.residuals(z)[0]]
        }
    }
    let z = DMatrix::from_column_slice(4, 1, &[1.0, -0.5, 2.0, 0.3]);
    let err = check_residuals(&Flipped(CrossEntropy::positive(2)), &[z]).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("at input 0, class 2, position 0"),
        "{message}"
    );
}
