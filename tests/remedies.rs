//! The remedies for the falling chosen response, RPO and DPOP, as the losses their
//! papers write: their coefficients, the sign of their anchor on `y⁺` (RPO's NLL always
//! pulls `y⁺` up; DPOP's penalty only once `y⁺` is below the reference), and the split of
//! every pairwise loss into DPO's chosen term, its rejected term and the anchor, which sum
//! to the step's gradient.

use learning_dynamics::lm::{LmSpec, Sequence, TinyLm};
use learning_dynamics::model::Model;
use learning_dynamics::numerics::{sequence_log_prob, sigmoid};
use learning_dynamics::objective::{
    DpopForm, Objective, PairLoss, Pairwise, RpoWeighting, shared_positions,
};
use learning_dynamics::trainer::Trainer;
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use rand::RngExt;

use crate::common::{config, rng};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

/// RPO: v3 adds `α/|y⁺|` to DPO's `s⁺`, v1 scales DPO by `α` and adds `1/|y⁺|`; the loss
/// adds the token-mean NLL. DPOP: DPO itself at or above the reference (the kink takes
/// the subgradient 0); below it, inside the sigmoid the penalty shifts the margin and
/// scales the pull by `1 + λ`, outside it adds `λp` and `λ` to the pull.
#[test]
fn rpo_and_dpop_coefficients_are_the_papers() {
    let (beta, len) = (0.5, 4);
    let dpo = |lps, reference| PairLoss::Dpo.coefficients(beta, lps, reference, len);
    let (lps, reference) = ((-3.0, -5.0), (-2.5, -4.0));
    let d = dpo(lps, reference);
    let m = (lps.0 - reference.0) - (lps.1 - reference.1);
    assert!(close(d.chosen, beta * sigmoid(-beta * m)) && d.anchor == 0.0);
    for (weighting, (w_dpo, w_nll)) in [
        (RpoWeighting::V3, (1.0, 0.3)),
        (RpoWeighting::V1, (0.3, 1.0)),
    ] {
        let rpo = PairLoss::Rpo {
            alpha: 0.3,
            weighting,
        };
        let c = rpo.coefficients(beta, lps, reference, len);
        assert!(close(c.loss, w_dpo * d.loss - w_nll * lps.0 / len as f64));
        assert!(close(c.anchor, w_nll / len as f64));
        assert!(close(c.chosen, w_dpo * d.chosen + c.anchor));
        assert!(close(c.rejected, w_dpo * d.rejected));
    }
    let dpop = |form, lp_plus: f64| {
        let c = PairLoss::Dpop { lambda: 5.0, form };
        c.coefficients(beta, (lp_plus, lps.1), reference, len)
    };
    for form in [DpopForm::Inside, DpopForm::Outside] {
        // At and above the reference: DPO.
        for lp_plus in [reference.0, reference.0 + 0.7] {
            let (c, d) = (dpop(form, lp_plus), dpo((lp_plus, lps.1), reference));
            assert_eq!(
                (c.loss, c.chosen, c.rejected, c.anchor),
                (d.loss, d.chosen, d.rejected, 0.0)
            );
        }
    }
    // Below (p = 0.5): inside, the margin shifts by −λp and the pull is (1 + λ)s.
    let below = reference.0 - 0.5;
    let m_below = (below - reference.0) - (lps.1 - reference.1);
    let shifted = dpo((below - 5.0 * 0.5, lps.1), reference);
    let c = dpop(DpopForm::Inside, below);
    assert!(close(c.loss, shifted.loss) && close(c.rejected, shifted.rejected));
    assert!(close(c.chosen, 6.0 * c.rejected) && close(c.anchor, 5.0 * c.rejected));
    let plain = beta * sigmoid(-beta * m_below);
    let c = dpop(DpopForm::Outside, below);
    assert!(close(c.rejected, plain) && close(c.anchor, 5.0) && close(c.chosen, plain + 5.0));
    assert!(close(
        c.loss,
        dpo((below, lps.1), reference).loss + 5.0 * 0.5
    ));
}

/// The names: `rpo` and `dpop` parse to their defaults, TRL's `sigmoid+sft` is RPO v3 at
/// α = 1, and the weightings and forms parse by their ids.
#[test]
fn rpo_and_dpop_parse_with_trls_names() {
    let rpo = PairLoss::Rpo {
        alpha: 1.0,
        weighting: RpoWeighting::V3,
    };
    assert_eq!("rpo".parse::<PairLoss>().unwrap(), rpo);
    assert_eq!("sigmoid+sft".parse::<PairLoss>().unwrap(), rpo);
    let dpop = PairLoss::Dpop {
        lambda: 50.0,
        form: DpopForm::Inside,
    };
    assert_eq!("dpop".parse::<PairLoss>().unwrap(), dpop);
    assert_eq!("v1".parse::<RpoWeighting>().unwrap(), RpoWeighting::V1);
    assert_eq!("outside".parse::<DpopForm>().unwrap(), DpopForm::Outside);
    assert!("v2".parse::<RpoWeighting>().is_err() && "between".parse::<DpopForm>().is_err());
}

fn small_lm(seed: u64) -> TinyLm {
    let spec = LmSpec {
        vocab: 6,
        window: 3,
        embed: 3,
        hidden: 5,
    };
    TinyLm::random(spec, &mut rng(seed)).unwrap()
}

fn sequence(seed: u64, response: usize) -> Sequence {
    let mut r = rng(seed);
    let tokens: Vec<usize> = (0..2 + response).map(|_| r.random_range(0..6)).collect();
    Sequence::new(&tokens[..2], &tokens[2..])
}

/// The gradient `Σ_i Jᵢᵀ gᵢ` of residuals `g` on `inputs`.
fn gradient(lm: &TinyLm, inputs: &[Sequence], g: &[DMatrix<f64>]) -> DVector<f64> {
    (inputs.iter().zip(g)).fold(DVector::zeros(lm.num_params()), |acc, (x, g)| {
        acc + lm.backprop(x, g)
    })
}

/// Only the anchor's residuals, as an objective to step with.
struct Anchor(Pairwise);

impl Objective for Anchor {
    fn arity(&self) -> usize {
        2
    }
    fn check(&self, shapes: &[(usize, usize)]) -> learning_dynamics::Result<()> {
        self.0.check(shapes)
    }
    fn loss(&self, logits: &[DMatrix<f64>]) -> f64 {
        self.0.loss(logits)
    }
    fn residuals(&self, logits: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
        let [_, _, anchor] = self.0.terms(logits);
        anchor
    }
}

/// The sign test: a step on the anchor alone raises `log π(y⁺)` for RPO (both
/// weightings) and for DPOP below the reference (both forms); above the reference DPOP's
/// anchor is zero, so it moves nothing.
#[test]
fn the_anchor_raises_the_chosen_response_only_where_it_acts() {
    let lm = small_lm(3);
    let (plus, minus) = (sequence(4, 3), sequence(5, 3));
    let lp = |m: &TinyLm| sequence_log_prob(&m.logits(&plus), plus.response());
    let pair = |loss, reference| Pairwise {
        loss,
        beta: 0.5,
        chosen: plus.response().to_vec(),
        rejected: minus.response().to_vec(),
        reference,
    };
    let below = (lp(&lm) + 0.5, -4.0);
    let above = (lp(&lm) - 0.5, -4.0);
    let acting = [
        pair(
            PairLoss::Rpo {
                alpha: 0.2,
                weighting: RpoWeighting::V3,
            },
            (-3.0, -4.0),
        ),
        pair(
            PairLoss::Rpo {
                alpha: 0.2,
                weighting: RpoWeighting::V1,
            },
            (-3.0, -4.0),
        ),
        pair(
            PairLoss::Dpop {
                lambda: 5.0,
                form: DpopForm::Inside,
            },
            below,
        ),
        pair(
            PairLoss::Dpop {
                lambda: 5.0,
                form: DpopForm::Outside,
            },
            below,
        ),
    ];
    let inputs = [plus.clone(), minus.clone()];
    for objective in acting {
        let mut trainer = Trainer::new(lm.clone(), 0.05).unwrap();
        trainer
            .step(&inputs, &Anchor(objective.clone()), &mut [])
            .unwrap();
        let rise = lp(&trainer.model) - lp(&lm);
        assert!(
            rise > 0.0,
            "{:?}: log π(y⁺) changes by {rise}",
            objective.loss
        );
    }
    for form in [DpopForm::Inside, DpopForm::Outside] {
        let objective = pair(PairLoss::Dpop { lambda: 5.0, form }, above);
        let logits = [lm.logits(&plus), lm.logits(&minus)];
        let [_, _, anchor] = objective.terms(&logits);
        assert!(
            anchor.iter().all(|g| g.amax() == 0.0),
            "{form:?} above the reference"
        );
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// For every pairwise loss, DPO's chosen term, its rejected term and the anchor sum to
    /// the step's gradient; the anchor is `a(π⁺ − e_{y⁺})` on `y⁺`'s input; with a shared
    /// first token, DPO's two terms cancel there for the DPO family and the anchor keeps
    /// its residual.
    #[test]
    fn three_terms_sum_to_the_gradient(seed in any::<u64>(), l in 1usize..4, below in -1.0f64..1.0, shared in any::<bool>()) {
        prop_assume!(below.abs() > 1e-3);
        let lm = small_lm(seed);
        // One prompt, as every pair has; with `shared`, the first response token too.
        let plus = sequence(seed ^ 1, l);
        let mut tokens = sequence(seed ^ 2, l + 1).tokens;
        let same = plus.prompt_len + usize::from(shared);
        tokens[..same].copy_from_slice(&plus.tokens[..same]);
        let minus = Sequence::new(&tokens[..plus.prompt_len], &tokens[plus.prompt_len..]);
        let inputs = [plus.clone(), minus.clone()];
        let logits = [lm.logits(&plus), lm.logits(&minus)];
        let lp_plus = sequence_log_prob(&logits[0], plus.response());
        let losses = PairLoss::ALL.into_iter().chain([
            PairLoss::Rpo { alpha: 0.4, weighting: RpoWeighting::V1 },
            PairLoss::Dpop { lambda: 3.0, form: DpopForm::Outside },
        ]);
        for loss in losses {
            let pair = Pairwise {
                loss,
                beta: 0.7,
                chosen: plus.response().to_vec(),
                rejected: minus.response().to_vec(),
                reference: (lp_plus + below, -4.0),
            };
            let g = pair.residuals(&logits);
            let terms = pair.terms(&logits);
            let total = gradient(&lm, &inputs, &g);
            let summed = terms.iter().fold(DVector::zeros(lm.num_params()), |acc, t| acc + gradient(&lm, &inputs, t));
            prop_assert!((&summed - &total).amax() <= 1e-12 * total.amax().max(1.0), "{}: the terms do not sum", loss);
            let lp_minus = sequence_log_prob(&logits[1], minus.response());
            let a = pair.coefficients(lp_plus, lp_minus).anchor;
            let mut expected = learning_dynamics::numerics::softmax_columns(&logits[0]);
            for (m, &t) in plus.response().iter().enumerate() {
                expected[(t, m)] -= 1.0;
            }
            prop_assert!((&terms[2][0] - expected * a).amax() <= 1e-14 * (1.0 + a.abs()) && terms[2][1].amax() == 0.0);
            let dpo_family = matches!(loss, PairLoss::Dpo | PairLoss::Ipo | PairLoss::Rpo { weighting: RpoWeighting::V3, .. } | PairLoss::Dpop { .. });
            if dpo_family && shared_positions(plus.response(), minus.response())[0] {
                // Up to the rounding of subtracting the anchor from G⁺.
                let tolerance = 1e-14 * (1.0 + a.abs());
                let left = terms[0][0].column(0).amax().max(terms[1][1].column(0).amax());
                prop_assert!(left <= tolerance, "{}: the shared position keeps {}", loss, left);
            }
        }
    }
}

/// A step's event carries the anchor's residuals, and the attribution's directions of
/// DPO's two terms and the anchor sum to the step itself (`θ_after − θ_before`): for a
/// loss without an anchor (DPO) there are three directions, with one (RPO, DPOP below
/// the reference, SLiC) four.
#[test]
fn the_attribution_moves_by_chosen_rejected_and_anchor_terms() {
    use learning_dynamics::experiments::lm_measures::term_directions;
    use learning_dynamics::trainer::{Observer, StepEvent};

    struct Check(Vec<usize>);
    impl Observer<TinyLm> for Check {
        fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> learning_dynamics::Result<()> {
            let (_, d) = term_directions(
                (e.before, e.after),
                e.update,
                (e.residuals, e.anchor),
                e.eta,
            );
            let step = &d[2];
            let sum = &d[0] + &d[1] + d.get(3).cloned().unwrap_or_else(|| step * 0.0);
            assert!(
                (&sum - step).amax() <= 1e-12 * step.amax(),
                "the terms do not sum to the step"
            );
            self.0.push(d.len());
            Ok(())
        }
    }
    let lm = small_lm(9);
    let (plus, minus) = (sequence(10, 3), sequence(11, 3));
    let lp = sequence_log_prob(&lm.logits(&plus), plus.response());
    let losses = [
        (PairLoss::Dpo, 3),
        (
            PairLoss::Rpo {
                alpha: 1.0,
                weighting: RpoWeighting::V3,
            },
            4,
        ),
        (
            PairLoss::Dpop {
                lambda: 5.0,
                form: DpopForm::Inside,
            },
            4,
        ),
        (PairLoss::ALL[2], 4),
    ];
    for (loss, directions) in losses {
        let pair = Pairwise {
            loss,
            beta: 0.5,
            chosen: plus.response().to_vec(),
            rejected: minus.response().to_vec(),
            reference: (lp + 0.5, -4.0),
        };
        let mut check = Check(Vec::new());
        let mut trainer = Trainer::new(lm.clone(), 0.05).unwrap();
        trainer
            .step(&[plus.clone(), minus.clone()], &pair, &mut [&mut check])
            .unwrap();
        assert_eq!(check.0, [directions], "{loss}");
    }
}
