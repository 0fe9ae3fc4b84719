//! Shared helpers: seeded random models and inputs, and a deterministic proptest config.

use std::path::PathBuf;
use std::process::{Command, Output};

use learning_dynamics::Rng64;
use learning_dynamics::mlp::{Activation, Mlp};
use nalgebra::DVector;
use proptest::test_runner::{Config, RngSeed};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// A proptest configuration with a fixed seed, so a run is reproducible.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(20250124),
        failure_persistence: None,
        ..Config::default()
    }
}

pub fn rng(seed: u64) -> Rng64 {
    Rng64::seed_from_u64(seed)
}

pub fn random_vector(n: usize, rng: &mut Rng64) -> DVector<f64> {
    DVector::from_fn(n, |_, _| StandardNormal.sample(rng))
}

/// Model kinds the property tests range over: 0 = linear without bias, 1 = linear with
/// bias, 2 = tanh MLP, 3 = ReLU MLP (two hidden layers), 4 = deep tanh MLP.
pub fn random_model(kind: u8, d: usize, h: usize, v: usize, rng: &mut Rng64) -> Mlp {
    let (sizes, act, bias) = match kind % 5 {
        0 => (vec![d, v], Activation::Identity, false),
        1 => (vec![d, v], Activation::Identity, true),
        2 => (vec![d, h, v], Activation::Tanh, true),
        3 => (vec![d, h, h, v], Activation::Relu, true),
        _ => (vec![d, h, h + 1, h, v], Activation::Tanh, false),
    };
    Mlp::random(&sizes, act, bias, rng).expect("valid sizes")
}

/// Runs the `ldyn` binary with `args`.
pub fn ldyn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ldyn"))
        .args(args)
        .output()
        .expect("ldyn runs")
}

/// Runs `ldyn` and asserts that it succeeded.
pub fn ldyn_ok(args: &[&str]) -> Output {
    let out = ldyn(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ldyn-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts exit status 2, a single `error: ...` line on stderr that contains `needle`.
pub fn assert_fails(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert!(stderr.contains(needle), "expected '{needle}' in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
