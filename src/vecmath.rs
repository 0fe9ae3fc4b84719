//! `exp` and `tanh` over slices, written branch-free so that the compiler vectorises
//! them, with the same result on every machine (plain IEEE operations, no fused
//! multiply-add): the softmax and the tanh layers of the LM's step spend most of their
//! element-wise time here. They run in the widest lanes the processor has ([`lanes`]:
//! eight with AVX-512, four with AVX2, two in the baseline), with the same bits at every
//! width; a unit test compares each width the processor has with the scalar functions.
//!
//! * [`exp`]: fdlibm's algorithm. With `k = round(x / ln 2)` and `r = x − k ln 2` (in two
//!   parts, `|r| ≤ ln 2 / 2`), `exp r = 1 + r + r c / (2 − c)` where
//!   `c = r − r² P(r²)` (a degree-5 minimax `P`), and `exp x = 2^k exp r`, with `2^k`
//!   applied as two exact powers so that subnormal results round once. fdlibm bounds its
//!   error below 1 ulp; a test measures it against libm.
//! * [`tanh`]: `x` itself below `2^−28`; Cephes' rational `x + x³ P(x²)/Q(x²)` below
//!   0.625; `1 − 2 / (exp(2|x|) + 1)` with the sign of `x` up to 22; `±1` beyond.
//!   A test bounds the error against libm at 2 ulp over a grid that includes `±0`,
//!   subnormals, `±20` and `±710`.
//! * [`clear_upper`]: `vzeroupper` after faer's products. Its AVX-512 kernels return
//!   with the upper halves of the vector registers in use, and until they are cleared
//!   every SSE instruction of the code that follows (the crate is compiled for baseline
//!   x86-64, SSE2) pays a transition penalty: on the 2-vCPU AMD EPYC this crate is
//!   measured on, the SGD update of the gallery's LM took 14.2 µs after any product and
//!   3.4 µs before one, or after `clear_upper` (`docs/ENGINEERING.md`, Performance).

// The constants are written with the digits fdlibm and Cephes publish; each rounds to
// the double they mean.
#![allow(clippy::excessive_precision)]

/// `x · log₂e` rounded to the nearest integer by adding and subtracting `1.5 · 2⁵²`.
const ROUND: f64 = 6_755_399_441_055_744.0;
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// `ln 2` in two parts: the high one has 32 trailing zero bits, so `k · LN2_HI` is exact.
const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
const P1: f64 = 1.666_666_666_666_660_190_37e-1;
const P2: f64 = -2.777_777_777_701_559_338_42e-3;
const P3: f64 = 6.613_756_321_437_934_361_17e-5;
const P4: f64 = -1.653_390_220_546_525_153_90e-6;
const P5: f64 = 4.138_136_797_057_238_460_39e-8;
/// Above this `exp` overflows, below the other it underflows to 0.
const EXP_MAX: f64 = 709.782_712_893_383_973_096;
const EXP_MIN: f64 = -745.133_219_101_941_108_420;

/// The integer `k` of a float `k + ROUND` (`|k| < 2⁵¹`), from its low bits.
#[inline(always)]
fn rounded_bits(shifted: f64) -> u64 {
    shifted.to_bits().wrapping_sub(ROUND.to_bits())
}

/// `2^k` for `−1022 ≤ k ≤ 1023`, from the integer `k` (as wrapped bits) of [`rounded_bits`].
#[inline(always)]
fn pow2(k: u64) -> f64 {
    f64::from_bits(k.wrapping_add(1023) << 52)
}

/// `exp x`; see the module docs.
#[inline(always)]
pub fn exp1(x: f64) -> f64 {
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let shifted = xc * LOG2_E + ROUND;
    let k = shifted - ROUND;
    let hi = xc - k * LN2_HI;
    let lo = k * LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // 2^k as 2^k₁ · 2^(k − k₁) with k₁ = round(k/2): both factors are normal for every
    // k in range, and only the last product can round (to a subnormal).
    let (ki, k1) = (rounded_bits(shifted), rounded_bits(k * 0.5 + ROUND));
    let e = y * pow2(k1) * pow2(ki.wrapping_sub(k1));
    if x > EXP_MAX {
        f64::INFINITY
    } else if x < EXP_MIN {
        0.0
    } else if x.is_nan() {
        x
    } else {
        e
    }
}

/// Cephes' `tanh` rational for `|x| < 0.625`: `x + x³ P(x²) / Q(x²)`.
const TP: [f64; 3] = [
    -9.643_991_794_250_522_386_28e-1,
    -9.928_772_310_019_185_865_64e1,
    -1.614_687_684_417_084_479_52e3,
];
const TQ: [f64; 3] = [
    1.128_116_784_916_329_314_02e2,
    2.235_488_390_601_004_485_83e3,
    4.844_063_053_251_254_860_48e3,
];

/// `tanh x`; see the module docs.
#[inline(always)]
pub fn tanh1(x: f64) -> f64 {
    let a = x.abs();
    let z = x * x;
    let p = (TP[0] * z + TP[1]) * z + TP[2];
    let q = ((z + TQ[0]) * z + TQ[1]) * z + TQ[2];
    let small = x + x * z * (p / q);
    let e = exp1(2.0 * a.min(22.0));
    let large = (1.0 - 2.0 / (e + 1.0)).copysign(x);
    if a < 0.625 {
        if a < 3.725_290_298_461_914e-9 {
            x
        } else {
            small
        }
    } else if a < 22.0 {
        large
    } else if a.is_nan() {
        x
    } else {
        1.0f64.copysign(x)
    }
}

/// Applies `f` to every entry, in the widest lanes the processor has: eight with
/// AVX-512, four with AVX2, two in the baseline (the same IEEE operations in every lane,
/// so the same bits at every width; a test compares each width the processor has).
#[inline(always)]
fn map(x: &mut [f64], f: impl Fn(f64) -> f64 + Copy) {
    match lanes() {
        // SAFETY: `lanes` found AVX-512F.
        #[cfg(target_arch = "x86_64")]
        8 => unsafe { lanes::eight(x, f) },
        // SAFETY: `lanes` found AVX2.
        #[cfg(target_arch = "x86_64")]
        4 => unsafe { lanes::four(x, f) },
        _ => lanes::two(x, f),
    }
}

/// How many `f64` lanes [`exp`] and [`tanh`] run in on this processor: 8 with AVX-512F,
/// 4 with AVX2, else 2.
pub fn lanes() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return 8;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return 4;
        }
    }
    2
}

/// [`map`]'s loop compiled for each width.
mod lanes {
    #[inline(always)]
    pub(super) fn two(x: &mut [f64], f: impl Fn(f64) -> f64) {
        x.iter_mut().for_each(|v| *v = f(*v));
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub(super) fn four(x: &mut [f64], f: impl Fn(f64) -> f64) {
        two(x, f);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(super) fn eight(x: &mut [f64], f: impl Fn(f64) -> f64) {
        two(x, f);
    }
}

/// Clears the upper halves of the vector registers (`vzeroupper`) where the processor
/// has AVX; call it after an external product kernel returns (see the module docs).
#[inline]
pub fn clear_upper() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        #[target_feature(enable = "avx")]
        fn zero_upper() {
            std::arch::x86_64::_mm256_zeroupper();
        }
        // SAFETY: the processor has AVX, checked just above.
        unsafe { zero_upper() };
    }
}

/// `x ← exp x` for every entry.
pub fn exp(x: &mut [f64]) {
    map(x, exp1);
}

/// `x ← tanh x` for every entry.
pub fn tanh(x: &mut [f64]) {
    map(x, tanh1);
}

#[cfg(test)]
mod tests {
    use super::{EXP_MAX, EXP_MIN, exp, exp1, lanes, tanh, tanh1};

    /// `±[0, 40]` in steps of 0.02, and `±` zeros, subnormals, the edges of `tanh`'s
    /// branches and of `exp`'s range, `f64::MAX`, infinities and NaN.
    fn grid() -> Vec<f64> {
        let mut xs: Vec<f64> = (0..=2_000).map(|i| f64::from(i) * 0.02).collect();
        xs.extend([
            0.0,
            5e-324,
            2.2250738585072014e-308,
            3.7252902984619e-9,
            0.624_999_999_999_999_9,
            21.999_999_999_999_996,
            EXP_MAX,
            EXP_MIN,
            745.2,
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
        ]);
        let negated: Vec<f64> = xs.iter().map(|x| -x).collect();
        xs.extend(negated);
        xs
    }

    /// `slice` applied to the grid gives `scalar`'s bits.
    fn check(scalar: fn(f64) -> f64, slice: impl Fn(&mut [f64])) {
        let xs = grid();
        let mut v = xs.clone();
        slice(&mut v);
        for (&got, &x) in v.iter().zip(&xs) {
            let want = scalar(x);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{x}"
            );
        }
    }

    /// Every width of [`super::map`] the processor has, each compiled with the function
    /// inlined as `map` compiles it, and the public slice functions give the scalar
    /// function's bits.
    #[test]
    fn every_width_gives_the_scalar_bits() {
        check(exp1, exp);
        check(tanh1, tanh);
        check(exp1, |x| lanes::two(x, exp1));
        check(tanh1, |x| lanes::two(x, tanh1));
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the processor has AVX2, checked just above.
                check(exp1, |x| unsafe { lanes::four(x, exp1) });
                check(tanh1, |x| unsafe { lanes::four(x, tanh1) });
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the processor has AVX-512F, checked just above.
                check(exp1, |x| unsafe { lanes::eight(x, exp1) });
                check(tanh1, |x| unsafe { lanes::eight(x, tanh1) });
            }
        }
    }
}
