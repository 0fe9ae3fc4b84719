//! The vectorised `exp` and `tanh` against libm: within 1 and 2 ulp over grids that
//! cover their ranges and every special value. That the slice functions give the scalar
//! functions' bits at every width the processor has is a unit test of `vecmath`.

use learning_dynamics::vecmath::{exp1, tanh1};

/// `|got − want|` in units of the last place of `want` (the gap above `|want|`; the
/// smallest subnormal at 0). Equal values, infinities included, and two NaNs are 0 apart.
fn ulps(got: f64, want: f64) -> f64 {
    if got == want || (got.is_nan() && want.is_nan()) {
        return 0.0;
    }
    let a = want.abs();
    let ulp = f64::from_bits(a.to_bits() + 1) - a;
    (got - want).abs() / ulp
}

/// `n` evenly spaced points from `lo` to `hi`, and their negatives.
fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..=n)
        .map(|i| lo + (hi - lo) * i as f64 / n as f64)
        .flat_map(|x| [x, -x])
        .collect()
}

/// Zeros, subnormals, the edges of the branches and of the range, infinities and NaN.
fn specials() -> Vec<f64> {
    let mut v = vec![
        0.0,
        5e-324,
        1e-310,
        2.2250738585072014e-308,
        3.7252902984619e-9,
        1e-8,
        0.625,
        0.624_999_999_999_999_9,
        20.0,
        22.0,
        21.999_999_999_999_996,
        708.5,
        709.78,
        709.782_712_893_384,
        710.0,
        744.0,
        745.0,
        745.2,
        800.0,
        f64::MAX,
        f64::INFINITY,
    ];
    v.extend(v.clone().iter().map(|x| -x));
    v.push(f64::NAN);
    v
}

/// The largest distance in ulps between `ours` and libm's `reference` over `xs`, and
/// where it is.
fn worst_ulps(xs: &[f64], ours: fn(f64) -> f64, reference: fn(f64) -> f64) -> (f64, f64) {
    xs.iter()
        .map(|&x| (ulps(ours(x), reference(x)), x))
        .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a })
}

#[test]
fn exp_is_within_one_ulp_of_libm() {
    let xs = [
        grid(0.0, 760.0, 200_000),
        grid(0.0, 1.0, 20_000),
        specials(),
    ]
    .concat();
    let worst = worst_ulps(&xs, exp1, f64::exp);
    assert!(
        worst.0 <= 1.0,
        "exp({}) is {} ulp from libm",
        worst.1,
        worst.0
    );
}

#[test]
fn tanh_is_within_two_ulp_of_libm() {
    let xs = [
        grid(0.0, 30.0, 200_000),
        grid(0.0, 0.7, 50_000),
        grid(0.0, 1e-7, 1_000),
        specials(),
    ]
    .concat();
    let worst = worst_ulps(&xs, tanh1, f64::tanh);
    assert!(
        worst.0 <= 2.0,
        "tanh({}) is {} ulp from libm",
        worst.1,
        worst.0
    );
    // The sign of zero survives, and the tails are exactly ±1.
    assert!(tanh1(-0.0).is_sign_negative() && tanh1(0.0).is_sign_positive());
    assert_eq!((tanh1(20.0), tanh1(-710.0)), (1.0, -1.0));
}
