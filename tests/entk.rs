//! The eNTK computed two independent ways agrees; the linear model's kernel is (x_o·x_u + 1) I.

use learning_dynamics::mlp::Mlp;
use learning_dynamics::model::Model;
use learning_dynamics::{entk::entk_explicit, mlp::kernel::entk_layerwise};
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;

use crate::common::{config, random_model, random_vector, rng};

proptest! {
    #![proptest_config(config(64))]

    /// J_o J_uᵀ (explicit Jacobians from V backward passes each) equals
    /// Σ_l (a_{l−1}·a'_{l−1} + β_l) B_l B'_lᵀ (layer-wise factors) to 1e-10.
    #[test]
    fn explicit_and_layerwise_kernels_agree(
        seed in any::<u64>(), kind in 0u8..5, d in 1usize..7, h in 1usize..9, v in 2usize..9,
    ) {
        let mut r = rng(seed);
        let model = random_model(kind, d, h, v, &mut r);
        let x_o = random_vector(d, &mut r);
        let x_u = random_vector(d, &mut r);
        let explicit = entk_explicit(&model, &x_o, &x_u);
        let layerwise = entk_layerwise(&model, &x_o, &x_u);
        let err = (&explicit - &layerwise).amax();
        prop_assert!(err <= 1e-10 * explicit.amax().max(1.0), "max difference {err}");
        // Symmetry: K(x_u, x_o) = K(x_o, x_u)ᵀ.
        let swapped = entk_layerwise(&model, &x_u, &x_o);
        prop_assert!((swapped.transpose() - layerwise).amax() <= 1e-12 * explicit.amax().max(1.0));
    }
}

#[test]
fn linear_kernel_is_dot_product_plus_one_times_identity() {
    let mut r = rng(3);
    let w = DMatrix::from_fn(4, 3, |i, j| (i + 2 * j) as f64 * 0.1);
    let x_o = random_vector(3, &mut r);
    let x_u = random_vector(3, &mut r);
    let with_bias = Mlp::linear(w.clone(), Some(DVector::zeros(4))).unwrap();
    let expected = DMatrix::identity(4, 4) * (x_o.dot(&x_u) + 1.0);
    assert!((entk_explicit(&with_bias, &x_o, &x_u) - &expected).amax() < 1e-12);
    let no_bias = Mlp::linear(w, None).unwrap();
    let expected = DMatrix::identity(4, 4) * x_o.dot(&x_u);
    assert!((entk_explicit(&no_bias, &x_o, &x_u) - expected).amax() < 1e-12);
    assert_eq!(no_bias.num_params(), 12);
}

proptest! {
    #![proptest_config(config(40))]

    /// The batched full kernel (lower triangle in panels, mirrored, 1 or 2 threads) and the
    /// pair-by-pair baseline both equal J(x_i) J(x_j)ᵀ from explicit Jacobians, to 1e-10,
    /// on odd shapes, V = 2, single inputs, any depth, with and without biases.
    #[test]
    fn full_kernel_matches_explicit_jacobians(
        seed in any::<u64>(), kind in 0u8..5, d in 1usize..7, h in 1usize..9, v in 2usize..7,
        n in 1usize..12, threads in 1usize..3,
    ) {
        let mut r = rng(seed);
        let model = random_model(kind, d, h, v, &mut r);
        let xs: Vec<_> = (0..n).map(|_| random_vector(d, &mut r)).collect();
        let jacobians: Vec<_> = xs.iter().map(|x| model.jacobian(x)).collect();
        let full = learning_dynamics::mlp::kernel::entk_full(&model, &xs, threads).unwrap();
        let pairwise = learning_dynamics::mlp::kernel::entk_pairwise(&model, &xs);
        prop_assert_eq!((full.inputs, full.classes), (n, v));
        for i in 0..n {
            for j in 0..n {
                let reference = &jacobians[i] * jacobians[j].transpose();
                let tol = 1e-10 * reference.amax().max(1.0);
                prop_assert!((full.block(i, j) - &reference).amax() <= tol, "block ({}, {})", i, j);
                prop_assert!((pairwise.block(i, j) - &reference).amax() <= tol);
            }
        }
    }
}

#[test]
fn full_kernel_is_the_same_with_any_thread_count() {
    let mut r = rng(11);
    let model = random_model(2, 5, 9, 7, &mut r);
    let xs: Vec<_> = (0..45).map(|_| random_vector(5, &mut r)).collect();
    let one = learning_dynamics::mlp::kernel::entk_full(&model, &xs, 1).unwrap();
    assert_eq!(
        one,
        learning_dynamics::mlp::kernel::entk_full(&model, &xs, 2).unwrap()
    );
    assert_eq!(
        one,
        learning_dynamics::mlp::kernel::entk_full(&model, &xs, 5).unwrap()
    );
}
