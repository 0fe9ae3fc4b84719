//! The squeezing theorems (the paper's App. E; stated in `learning_dynamics::squeezing`) on random distributions:
//! V from 2 to 200, peakiness from flat to near one-hot, step sizes c from 0.01 to 20.
//!
//! A class is only declared to have risen or fallen where the theory's margin exceeds
//! 1e-9, far above the ~1e-15 rounding of the log-domain computation.

use learning_dynamics::decomposition::one_step;
use learning_dynamics::mlp::Mlp;
use learning_dynamics::numerics::log_sum_exp;
use learning_dynamics::objective::CrossEntropy;
use learning_dynamics::squeezing::{Direction, Squeeze};
use nalgebra::DMatrix;
use proptest::prelude::*;
use rand_distr::{Distribution, StandardNormal};

use crate::common::{config, random_vector, rng};

const MARGIN: f64 = 1e-9;

/// Random logits `z_i = τ·N(0, 1)`: τ = 0 is flat, τ = 8 is nearly one-hot.
fn logits(seed: u64, v: usize, peakiness: f64) -> Vec<f64> {
    random_vector(v, &mut rng(seed))
        .iter()
        .map(|x| peakiness * x)
        .collect()
}

fn probs(s: &Squeeze) -> Vec<f64> {
    s.log_p_before.iter().map(|l| l.exp()).collect()
}

/// `y* = argmax_{i ≠ y} p_i`.
fn y_star(p: &[f64], y: usize) -> usize {
    (0..p.len())
        .filter(|&i| i != y)
        .max_by(|&a, &b| p[a].total_cmp(&p[b]))
        .unwrap()
}

/// `log Z = log Σ_j p_j exp(Δz_j)` with `Δz = c (p − e_y)`, computed directly.
fn log_z(p: &[f64], y: usize, c: f64) -> f64 {
    let terms: Vec<f64> = (0..p.len())
        .map(|j| p[j].ln() + c * (p[j] - f64::from(u8::from(j == y))))
        .collect();
    log_sum_exp(&terms)
}

fn rose(s: &Squeeze, i: usize) -> bool {
    s.log_p_after[i] > s.log_p_before[i]
}

proptest! {
    #![proptest_config(config(256))]

    /// Claims 1 and 2: after a negative gradient on ȳ, π(ȳ) falls and
    /// π(y*) rises, where y* = argmax_{i≠ȳ} π_i. Both are guaranteed for every π and c > 0.
    #[test]
    fn negative_gradient_lowers_its_class_and_raises_the_runner_up(
        seed in any::<u64>(), v in 2usize..200, tau in 0.0f64..8.0, y in 0usize..200, c in 0.01f64..20.0,
    ) {
        let y = y % v;
        let s = Squeeze::from_logit_step(&logits(seed, v, tau), y, Direction::Negative, c).unwrap();
        let p = probs(&s);
        prop_assume!(c * (1.0 - p[y]) > MARGIN);
        prop_assert!(s.log_p_after[y] < s.log_p_before[y]);
        prop_assert!(rose(&s, y_star(&p, y)));
    }

    /// Claim 3 (threshold rule): a class i ≠ ȳ rises iff c p_i > log Z, and every class
    /// with p_i ≤ ‖p‖² − p_ȳ falls (Jensen: log Z ≥ c(‖p‖² − p_ȳ)).
    #[test]
    fn threshold_rule_decides_who_rises(
        seed in any::<u64>(), v in 2usize..200, tau in 0.0f64..8.0, y in 0usize..200, c in 0.01f64..20.0,
    ) {
        let y = y % v;
        let s = Squeeze::from_logit_step(&logits(seed, v, tau), y, Direction::Negative, c).unwrap();
        let p = probs(&s);
        let lz = log_z(&p, y, c);
        let collision = p.iter().map(|pi| pi * pi).sum::<f64>() - p[y];
        for i in (0..v).filter(|&i| i != y) {
            if (c * p[i] - lz).abs() > MARGIN {
                prop_assert_eq!(rose(&s, i), c * p[i] > lz, "class {} (p = {}, log Z / c = {})", i, p[i], lz / c);
            }
            if p[i] < collision - MARGIN {
                prop_assert!(!rose(&s, i), "class {} below ‖p‖² − p_y rose", i);
            }
        }
    }

    /// Claim 4: with the shape q of the non-ȳ distribution fixed, a smaller p_ȳ never
    /// produces fewer falling classes (the sharpening exponent c(1 − p_ȳ) grows).
    #[test]
    fn smaller_p_y_squeezes_at_least_as_many_classes(
        seed in any::<u64>(), v in 3usize..120, tau in 0.0f64..6.0, c in 0.1f64..20.0,
        log_hi in -6.0f64..-0.05, gap in 0.1f64..20.0,
    ) {
        let shape = logits(seed, v - 1, tau);
        let falling = |log_p_y: f64| {
            // z_j = log((1 − p_y) q_j) up to a constant, z_y = log p_y.
            let log_q_norm = log_sum_exp(&shape);
            let log_rest = (-log_p_y.exp()).ln_1p();
            let mut z: Vec<f64> = shape.iter().map(|s| s - log_q_norm + log_rest).collect();
            z.push(log_p_y);
            let s = Squeeze::from_logit_step(&z, v - 1, Direction::Negative, c).unwrap();
            (0..v - 1).filter(|&i| s.log_p_after[i] < s.log_p_before[i]).count()
        };
        prop_assert!(falling(log_hi - gap) >= falling(log_hi));
    }

    /// Positive gradient: π(y) always rises, and among the other classes
    /// the log-change −c p_i − log Z is largest for the least likely ones.
    #[test]
    fn positive_gradient_raises_its_class(
        seed in any::<u64>(), v in 2usize..200, tau in 0.0f64..8.0, y in 0usize..200, c in 0.01f64..20.0,
    ) {
        let y = y % v;
        let s = Squeeze::from_logit_step(&logits(seed, v, tau), y, Direction::Positive, c).unwrap();
        let p = probs(&s);
        prop_assume!(c * (1.0 - p[y]) > MARGIN);
        prop_assert!(rose(&s, y));
        let others: Vec<usize> = (0..v).filter(|&i| i != y).collect();
        for w in others.windows(2) {
            let (a, b) = (w[0], w[1]);
            let (da, db) = (s.log_p_after[a] - s.log_p_before[a], s.log_p_after[b] - s.log_p_before[b]);
            if (p[a] - p[b]).abs() > MARGIN {
                prop_assert_eq!(da > db, p[a] < p[b]);
            }
        }
    }

    /// The squeezing step on raw logits is the linear model's SGD step: with z = W x and
    /// a negative-gradient weight −lr, one_step gives Δz = lr‖x‖² (π − e_y).
    #[test]
    fn logit_step_equals_linear_model_step(seed in any::<u64>(), v in 2usize..30, d in 1usize..6, lr in 0.01f64..2.0) {
        let mut r = rng(seed);
        let w = DMatrix::from_fn(v, d, |_, _| -> f64 { StandardNormal.sample(&mut r) });
        let x = random_vector(d, &mut r);
        let y = (seed % v as u64) as usize;
        let model = Mlp::linear(w.clone(), None).unwrap();
        let step = one_step(&model, std::slice::from_ref(&x), &CrossEntropy::weighted(y, -lr), std::slice::from_ref(&x), 1.0).unwrap();
        let o = &step.observed[0];
        let z = &w * &x;
        let s = Squeeze::from_logit_step(z.as_slice(), y, Direction::Negative, lr * x.norm_squared()).unwrap();
        for i in 0..v {
            prop_assert!((o.log_pi[i] + o.actual[i] - s.log_p_after[i]).abs() <= 1e-12 * (1.0 + s.log_p_after[i].abs()));
        }
    }
}

/// Repeated valley-negative steps (claim 15): log p_y → −∞ without underflow trouble,
/// and y* takes almost all the mass. 21 steps of c = 5 on a class with p ≈ 8e-11 drive
/// its log-probability below −100 (each step subtracts about c(1 − p_y) = 5 nats, so
/// about −128 at least; −232 in fact). Claim 4's rich-get-richer reweighting sends the
/// argmax (2 nats ahead of the runner-up) to 1 to rounding; 0.999 is a loose floor.
#[test]
fn repeated_negative_steps_stay_finite_in_the_log_domain() {
    let mut z = vec![3.0, 1.0, 0.0, -0.5, -20.0];
    let mut s = Squeeze::from_logit_step(&z, 4, Direction::Negative, 5.0).unwrap();
    for _ in 0..20 {
        // Recover logits from log-probabilities (softmax is shift-invariant).
        z = s.log_p_after.clone();
        s = Squeeze::from_logit_step(&z, 4, Direction::Negative, 5.0).unwrap();
    }
    assert!(s.log_p_after[4] < -100.0 && s.log_p_after[4].is_finite());
    assert!(s.log_p_after[0].exp() > 0.999);
}

#[test]
fn bad_squeeze_inputs_are_errors() {
    assert!(Squeeze::from_logit_step(&[1.0], 0, Direction::Negative, 1.0).is_err());
    assert!(Squeeze::from_logit_step(&[1.0, 2.0], 2, Direction::Negative, 1.0).is_err());
    assert!(Squeeze::from_logit_step(&[1.0, f64::NAN], 0, Direction::Negative, 1.0).is_err());
    assert!(Squeeze::from_logit_step(&[1.0, 2.0], 0, Direction::Negative, 0.0).is_err());
    assert!(Squeeze::from_logit_step(&[1.0, 2.0], 0, Direction::Negative, f64::INFINITY).is_err());
    assert!("sideways".parse::<Direction>().is_err());
    // Logits of ±1e3 are fine.
    let s = Squeeze::from_logit_step(&[1000.0, -1000.0, 0.0], 1, Direction::Negative, 2.0).unwrap();
    assert!(s.log_p_after.iter().all(|l| l.is_finite()));
}

/// The residual schematic (Fig. 2): the table's shape, and the one-context case where
/// DPO's two `π` terms cancel.
mod residuals {
    use learning_dynamics::experiments::Experiment;
    use learning_dynamics::experiments::residuals::{self, Case, ResidualSchematic};

    #[test]
    fn every_objective_has_a_row_per_class_with_its_roles() {
        let data = ResidualSchematic::run(
            &learning_dynamics::experiments::Valid::new(residuals::Config::default()).unwrap(),
            3,
        )
        .unwrap();
        let table = &ResidualSchematic::tables(&data)[0];
        assert_eq!(table.header(), "objective,class,role,g,p_before,p_after");
        // 7 objectives × V = 20 classes.
        assert_eq!(table.rows().len(), 7 * 20);
        let chosen = table
            .rows()
            .iter()
            .filter(|r| r.contains(",chosen,"))
            .count();
        let rejected = table
            .rows()
            .iter()
            .filter(|r| r.contains(",rejected,"))
            .count();
        assert_eq!((chosen, rejected), (7, 6), "SFT has no y⁻");
        // The panels in figure order, each reachable by its case.
        let ids: Vec<Case> = data.panels.iter().map(|p| p.id).collect();
        assert_eq!(ids, Case::ALL);
        for panel in &data.panels {
            assert_ne!(panel.rejected, Some(panel.chosen), "{}", panel.id.id());
            let p: f64 = panel.squeeze.log_p_after.iter().map(|l| l.exp()).sum();
            assert!((p - 1.0).abs() < 1e-12);
        }
    }

    /// With one shared context (ρ = 1) DPO's residual is `s(e_{y⁻} − e_{y⁺})`: every other
    /// entry is 0, and the argmax does not gain (no squeezing).
    #[test]
    fn one_shared_context_cancels_dpos_pi_terms() {
        let config = residuals::Config {
            similarity: 1.0,
            ..residuals::Config::default()
        };
        let data = ResidualSchematic::run(
            &learning_dynamics::experiments::Valid::new(config).unwrap(),
            3,
        )
        .unwrap();
        let dpo = data.panel(Case::OffPolicyDpo);
        let minus = dpo.rejected.unwrap();
        for (class, g) in dpo.g.iter().enumerate() {
            if class != dpo.chosen && class != minus {
                assert!(g.abs() < 1e-15, "class {class}: {g}");
            }
        }
        // β = 0.1 and r± = 0: s = β σ(0) = 0.05.
        assert!((dpo.g[minus] - 0.05).abs() < 1e-12 && (dpo.g[dpo.chosen] + 0.05).abs() < 1e-12);
        assert!(dpo.delta_p(data.argmax) < 0.0);
    }
}

/// The animation's frames: the first is the distribution itself; repeated negative steps
/// on the valley only ever raise the argmax, and on the current argmax they raise the
/// entropy.
#[test]
fn the_animation_squeezes_on_the_valley_and_flattens_on_the_argmax() {
    use learning_dynamics::experiments::Experiment;
    use learning_dynamics::experiments::squeezing::{self, Squeezing};
    let config = squeezing::Config {
        frames: 12,
        ..squeezing::Config::default()
    };
    let data = Squeezing::run(
        &learning_dynamics::experiments::Valid::new(config).unwrap(),
        5,
    )
    .unwrap();
    // The panels in figure order, each reachable by its case.
    let ids: Vec<squeezing::Case> = data.cases.iter().map(|c| c.id).collect();
    assert_eq!(ids, squeezing::Case::ALL);
    let (valley, argmax) = (&data.animation[0], &data.animation[1]);
    for case in [valley, argmax] {
        assert_eq!(case.frames.len(), 13);
        assert_eq!(case.frames[0].log_p_after, case.frames[0].log_p_before);
    }
    // The marks are read from the drawn distribution (`log_p_after`): on the argmax
    // case the ▲ sits on its tallest bar, the class the next step pushes, and y* is the
    // tallest of the rest; on the valley case the ▲ stays on the valley.
    let argmax_of = |lp: &[f64], skip: Option<usize>| {
        (0..lp.len())
            .filter(|&i| Some(i) != skip)
            .max_by(|&a, &b| lp[a].total_cmp(&lp[b]))
            .unwrap()
    };
    let pushed = |f: &learning_dynamics::squeezing::Squeeze| f.summary().pushed;
    for (k, frame) in argmax.frames.iter().enumerate() {
        let drawn = &frame.log_p_after;
        assert_eq!(pushed(frame), argmax_of(drawn, None), "frame {k}");
        let y_star = learning_dynamics::plot::squeezing::y_star(frame, true);
        assert_eq!(y_star, argmax_of(drawn, Some(pushed(frame))), "frame {k}");
    }
    // The argmax moves while the steps flatten π, so the marks do move.
    assert!(
        argmax
            .frames
            .iter()
            .any(|f| pushed(f) != pushed(&argmax.frames[0]))
    );
    let valley_class = pushed(&valley.frames[0]);
    assert!(valley.frames.iter().all(|f| pushed(f) == valley_class));
    let top = valley.frames[0].summary().y_star;
    let p_top: Vec<f64> = valley.frames.iter().map(|f| f.log_p_after[top]).collect();
    assert!(p_top.windows(2).all(|w| w[1] >= w[0]), "{p_top:?}");
    let (before, after) = argmax.frames[12].summary().entropy;
    assert!(after > before);
    let table = &Squeezing::tables(&data)[2];
    assert_eq!(table.header(), "case,frame,class,p,log_p");
    // 2 cases × 13 frames (0..=12 steps) × V = 50 classes.
    assert_eq!(table.rows().len(), 2 * 13 * 50);
}

/// `squeeze --plot` labels its x axis with one tick per class up to 20 classes (the
/// tutorial's five-class example reads 0 1 2 3 4), and with evenly spaced class indices
/// from 0 beyond, never more than 20 labels and never a label between two classes.
#[test]
fn the_squeeze_plot_labels_whole_classes() {
    use learning_dynamics::plot::squeezing::class_ticks;
    assert_eq!(class_ticks(5), [0, 1, 2, 3, 4]);
    assert_eq!(class_ticks(2), [0, 1]);
    assert_eq!(class_ticks(50), (0..50).step_by(5).collect::<Vec<_>>());
    assert_eq!(
        class_ticks(1000),
        (0..1000).step_by(100).collect::<Vec<_>>()
    );
    for classes in 2..=3000 {
        let ticks = class_ticks(classes);
        assert_eq!(ticks[0], 0);
        assert!(
            ticks.len() <= 20 && ticks.iter().all(|&t| t < classes),
            "{classes}"
        );
        let step = ticks.get(1).map_or(1, |t| t - ticks[0]);
        assert!(ticks.windows(2).all(|w| w[1] - w[0] == step), "{classes}");
        assert!(ticks.len() >= classes.min(5), "{classes}: {ticks:?}");
    }
}
