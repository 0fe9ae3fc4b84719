//! Small statistics used to state claims: Pearson and Spearman correlation, and the
//! quantiles that summarise a measure over seeds.

/// Pearson correlation of two equally long samples; `NaN`-free: returns 0 when either
/// sample is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "samples must have the same length");
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// Ranks from 1, ties sharing their average rank.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut r = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && x[order[end]] == x[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            r[i] = rank;
        }
        start = end;
    }
    r
}

/// Spearman rank correlation: Pearson correlation of the ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// The cosine of the angle between two equally long vectors (0 if either is zero).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "vectors must have the same length");
    // Each vector is first divided by its largest magnitude, so that squares of values
    // near the largest double cannot overflow.
    let unit = |v: &[f64]| {
        let top = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let scaled: Vec<f64> = v
            .iter()
            .map(|x| if top > 0.0 { x / top } else { 0.0 })
            .collect();
        let norm = scaled.iter().map(|x| x * x).sum::<f64>().sqrt();
        (scaled, norm)
    };
    let ((a, na), (b, nb)) = (unit(a), unit(b));
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// The `q`-quantile of a sample (`0 ≤ q ≤ 1`), interpolating linearly between order
/// statistics (numpy's default); `NaN` for an empty sample.
pub fn quantile(sample: &[f64], q: f64) -> f64 {
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    let at = q.clamp(0.0, 1.0) * last as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// The median of a sample.
pub fn median(sample: &[f64]) -> f64 {
    quantile(sample, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-15);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-15);
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
        assert_eq!(ranks(&[10.0, 30.0, 20.0, 20.0]), vec![1.0, 4.0, 2.5, 2.5]);
        // Monotone but nonlinear: Spearman is exactly 1.
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 8.0, 27.0, 64.0]) - 1.0).abs() < 1e-15);
        // Hand-computed: ranks (1,2,3,4) vs (2,1,4,3): 1 − 6·4/(4·15) = 0.6.
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[2.0, 1.0, 4.0, 3.0]) - 0.6).abs() < 1e-12);
        // numpy.quantile([3, 1, 4, 2], [0.25, 0.5, 0.75]) = [1.75, 2.5, 3.25].
        let sample = [3.0, 1.0, 4.0, 2.0];
        assert_eq!(quantile(&sample, 0.25), 1.75);
        assert_eq!(median(&sample), 2.5);
        assert_eq!(quantile(&sample, 0.75), 3.25);
        assert!(median(&[]).is_nan());
        assert!((cosine(&[1.0, 0.0], &[3.0, 0.0]) - 1.0).abs() < 1e-15);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 2.0]), 0.0);
        // Values whose squares overflow: still exact.
        assert!((cosine(&[1e300, 1e300], &[2e300, 2e300]) - 1.0).abs() < 1e-15);
    }
}
