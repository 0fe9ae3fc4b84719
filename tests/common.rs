//! Shared helpers: seeded random models and inputs, and a deterministic proptest config.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

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

/// Runs the `ldyn` binary with `args`, in a scratch working directory, so that a test
/// that forgets `--out` writes nothing into the source tree.
pub fn ldyn(args: &[&str]) -> Output {
    ldyn_command().args(args).output().expect("ldyn runs")
}

/// The `ldyn` binary as a command, in a scratch working directory.
pub fn ldyn_command() -> Command {
    static CWD: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ldyn"));
    command.current_dir(CWD.get_or_init(|| scratch("cwd")));
    command
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

/// The environment variable that marks this machine as lacking a test prerequisite:
/// a comma-separated list of `script` (util-linux's pseudo-terminal runner) and `root`.
pub const LACKING: &str = "LDYN_TEST_LACKING";

/// Whether a test may use `prerequisite`: true if `available`; false, with a note on
/// stderr, if [`LACKING`] names it; otherwise the test fails, saying what is missing and
/// how to mark it, so a missing tool never turns a test into one that checks nothing.
pub fn requires(prerequisite: &str, available: bool) -> bool {
    if available {
        return true;
    }
    let lacking = std::env::var(LACKING).unwrap_or_default();
    assert!(
        lacking.split(',').any(|p| p.trim() == prerequisite),
        "this test needs {prerequisite}, which this machine lacks: install it (.ci/run does), \
         or set {LACKING}={prerequisite} to skip the parts that need it"
    );
    eprintln!("skipped: {prerequisite} is missing and {LACKING} says so");
    false
}

/// Whether `script` (util-linux) can run here, or the test may skip it ([`requires`]).
pub fn has_script() -> bool {
    let found = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    requires("script", found)
}

/// Runs the shell `command` on a pseudo-terminal (`script`, its record to `typescript`)
/// and returns whether it succeeded and what the terminal showed.
pub fn on_a_terminal(command: &str, typescript: &std::path::Path) -> (bool, String) {
    let out = Command::new("script")
        .args(["-qec", command, typescript.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), screen)
}

/// Whether the tests run as root, or may skip what needs it ([`requires`]).
pub fn has_root() -> bool {
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    requires("root", root)
}

/// Runs `ldyn` with `args` (stdin empty) and kills it if it has not ended within
/// `seconds`: a test that would block for ever fails instead.
pub fn ldyn_within(seconds: u64, args: &[&str]) -> std::process::Output {
    let mut child = ldyn_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() >= seconds {
            child.kill().unwrap();
            panic!("ldyn {args:?} still ran after {seconds} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
