//! The record of one step of the tiny LM (`ldyn akg --model lm`): the model's weights,
//! the objective with its hyperparameters (β; SLiC's δ and λ; RPO's α and weighting;
//! DPOP's λ and form), the update sequences with the reference's and the model's
//! log-probabilities, `π`, the loss, its coefficients `s⁺`, `s⁻` and the anchor's part of
//! `s⁺`, and the residuals `G`; and per observed sequence `π`
//! and the predicted and actual `Δ log π` at every response position. With the
//! reference's log-probabilities in the record, every field can be re-derived from the
//! weights alone.

use nalgebra::DMatrix;
use serde_json::{Value, json};

use super::{columns, layers_json, matrix_rows};
use crate::decomposition::one_step;
use crate::error::{Error, Result};
use crate::experiments::lm_world::{LmConfig, Stage, checkpoint, pretrained, world_model};
use crate::lm::{Sequence, TinyLm, update};
use crate::model::Model;
use crate::numerics::{log_softmax_columns, sequence_log_prob};
use crate::objective::{DpopForm, LmObjective, Objective, PairLoss, Pairwise, RpoWeighting};
use crate::trainer::Trainer;

/// Which model the step starts from, and which is the pairwise losses' frozen reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reference {
    /// `sft`: the world's SFT checkpoint is the reference, and the stepped model is one
    /// off-policy DPO step past it (the world's `dpo_eta` and `beta`), so the margin is
    /// not zero and every loss reads its own coefficients.
    #[default]
    Sft,
    /// `self`: the pre-trained base model, its own reference (margin 0: IPO and SPPO
    /// then take the same step).
    Own,
}

impl std::str::FromStr for Reference {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        let references = [("sft", Reference::Sft), ("self", Reference::Own)];
        crate::error::pick("reference", name, &references)
    }
}

impl Reference {
    fn id(self) -> &'static str {
        match self {
            Reference::Sft => "sft",
            Reference::Own => "self",
        }
    }
}

/// The flags of `ldyn akg` that shape the language model's step, each `None` when not
/// given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LmFlags {
    /// `--objective`: SFT or a pairwise loss.
    pub objective: LmObjective,
    /// `--reference`: where the step starts and what the reference is (default `sft`).
    pub reference: Option<Reference>,
    /// `--slic-delta`: SLiC's margin `δ` (SLiC only; default 1).
    pub slic_delta: Option<f64>,
    /// `--rpo-alpha`: RPO's weight `α` (RPO only; default 1).
    pub rpo_alpha: Option<f64>,
    /// `--rpo-weighting`: which term RPO's `α` weighs (RPO only; default `v3`).
    pub rpo_weighting: Option<RpoWeighting>,
    /// `--dpop-lambda`: DPOP's weight `λ` (DPOP only; default 50).
    pub dpop_lambda: Option<f64>,
    /// `--dpop-form`: where DPOP's penalty sits (DPOP only; default `inside`).
    pub dpop_form: Option<DpopForm>,
}

impl LmFlags {
    /// The first loss flag given, by its name (what a classifier refuses).
    pub(super) fn loss_flag(&self) -> Option<&'static str> {
        [
            ("--slic-delta", self.slic_delta.is_some()),
            ("--rpo-alpha", self.rpo_alpha.is_some()),
            ("--rpo-weighting", self.rpo_weighting.is_some()),
            ("--dpop-lambda", self.dpop_lambda.is_some()),
            ("--dpop-form", self.dpop_form.is_some()),
        ]
        .into_iter()
        .find(|f| f.1)
        .map(|f| f.0)
    }

    /// The objective with the loss flags applied.
    ///
    /// # Errors
    /// A loss flag for another objective, or a value out of its range: `δ` finite, `α`
    /// and `λ` finite and at least 0.
    fn objective(&self) -> Result<LmObjective> {
        let LmObjective::Pair(mut loss) = self.objective else {
            return match self.loss_flag() {
                Some(flag) => Err(wrong_objective(flag, self.objective)),
                None => Ok(self.objective),
            };
        };
        let number = |flag: &str, v: f64, negative: bool| {
            if v.is_finite() && (negative || v >= 0.0) {
                Ok(v)
            } else {
                let range = if negative {
                    "finite"
                } else {
                    "a finite number ≥ 0"
                };
                Err(Error::InvalidArgument(format!(
                    "{flag} must be {range}, got {v}"
                )))
            }
        };
        let other = |flag: &str| Err(wrong_objective(flag, self.objective));
        if let Some(v) = self.slic_delta {
            let PairLoss::Slic { delta, .. } = &mut loss else {
                return other("--slic-delta");
            };
            *delta = number("--slic-delta", v, true)?;
        }
        if let Some(v) = self.rpo_alpha {
            let PairLoss::Rpo { alpha, .. } = &mut loss else {
                return other("--rpo-alpha");
            };
            *alpha = number("--rpo-alpha", v, false)?;
        }
        if let Some(v) = self.rpo_weighting {
            let PairLoss::Rpo { weighting, .. } = &mut loss else {
                return other("--rpo-weighting");
            };
            *weighting = v;
        }
        if let Some(v) = self.dpop_lambda {
            let PairLoss::Dpop { lambda, .. } = &mut loss else {
                return other("--dpop-lambda");
            };
            *lambda = number("--dpop-lambda", v, false)?;
        }
        if let Some(v) = self.dpop_form {
            let PairLoss::Dpop { form, .. } = &mut loss else {
                return other("--dpop-form");
            };
            *form = v;
        }
        Ok(LmObjective::Pair(loss))
    }
}

/// The refusal of a loss flag for another objective: `--rpo-alpha` applies to
/// `--objective rpo` only.
fn wrong_objective(flag: &str, objective: LmObjective) -> Error {
    let own = match flag.split('-').nth(2) {
        Some("slic") => "slic",
        Some("rpo") => "rpo",
        _ => "dpop",
    };
    Error::InvalidArgument(format!(
        "{flag} applies to --objective {own} only, not {objective}"
    ))
}

/// A [`TinyLm`]'s architecture and every weight, so another framework can rebuild it:
/// `embed` (`V × d`, row `t` embeds token `t`), `slots` (`W × d`), and the MLP's layers
/// (`weight` as rows, `out × in`; `bias`), with `PAD = 0` filling slots before the start.
/// The flat parameter order of the crate's gradients is `embed` column-major, `slots`
/// column-major, then per layer `weight` column-major and `bias`.
pub fn lm_model_json(model: &TinyLm) -> Value {
    let spec = model.spec();
    let (embed, slots) = model.embeddings();
    json!({
        "kind": "tiny_lm",
        "vocab": spec.vocab,
        "window": spec.window,
        "embed_dim": spec.embed,
        "hidden": spec.hidden,
        "activation": model.mlp().activation().name(),
        "pad": crate::lm::PAD,
        "embed": matrix_rows(embed),
        "slots": matrix_rows(slots),
        "layers": layers_json(model.mlp()),
    })
}

/// The model the step starts from and the frozen reference, for `seed`'s default world.
fn start(config: &LmConfig, seed: u64, reference: Reference) -> Result<(TinyLm, TinyLm)> {
    match reference {
        Reference::Own => {
            let base = world_model(config, seed, Stage::Base)?;
            Ok((base.clone(), base))
        }
        Reference::Sft => {
            let ck = checkpoint(config, seed)?;
            let language = &ck.world.language;
            let j = language.train[0];
            let pair = (language.chosen(j), language.rejected(j));
            let (inputs, dpo) = update::pair(
                &ck.sft_model,
                &language.prompt(j),
                pair,
                PairLoss::Dpo,
                config.beta,
            );
            let mut trainer = Trainer::new(ck.sft_model.clone(), config.dpo_eta)?;
            trainer.step(&inputs, &dpo, &mut [])?;
            Ok((trainer.model, ck.sft_model))
        }
    }
}

/// The objective's hyperparameters and its coefficients `(s⁺, s⁻, anchor)` at `logits`
/// (SFT: `s⁺ = 1`, no `s⁻` and no anchor).
fn terms(pairwise: Option<&Pairwise>, logits: &[DMatrix<f64>]) -> (Value, Value, Value, Value) {
    let Some(pair) = pairwise else {
        return (json!({}), json!(1.0), Value::Null, Value::Null);
    };
    let mut hyper = json!({"beta": pair.beta});
    match pair.loss {
        PairLoss::Slic { delta, lambda } => {
            hyper["delta"] = json!(delta);
            hyper["lambda"] = json!(lambda);
        }
        PairLoss::Rpo { alpha, weighting } => {
            hyper["alpha"] = json!(alpha);
            hyper["weighting"] = json!(weighting.id());
        }
        PairLoss::Dpop { lambda, form } => {
            hyper["lambda"] = json!(lambda);
            hyper["form"] = json!(form.id());
        }
        PairLoss::Dpo | PairLoss::Ipo | PairLoss::SppoHard => {}
    }
    let lp = |k: usize, y: &[usize]| sequence_log_prob(&logits[k], y);
    let c = pair.coefficients(lp(0, &pair.chosen), lp(1, &pair.rejected));
    (hyper, json!(c.chosen), json!(c.rejected), json!(c.anchor))
}

/// `ldyn akg --model lm`: in the seeded default world ([`LmConfig::default`]), one step
/// of the objective on the first training prompt from the model that `--reference` names
/// ([`Reference`]), observed on that prompt's probe families. `update` holds the prompt,
/// the loss, the coefficients `s⁺`, `s⁻` and the update sequences (`chosen`, and
/// `rejected` for the pairwise losses) with their log-probabilities under the model and
/// the reference, `π` and the residuals `G`; per response position `m` of every observed
/// sequence the document gives `π`, the predicted `−η A_m Σ_l K_{m,l} G_l` and the actual
/// change.
///
/// # Errors
/// A learning rate that is not positive and finite, a flag that does not apply, or a
/// failing step.
pub fn lm_akg_json(flags: &LmFlags, seed: u64, eta: f64) -> Result<Value> {
    crate::error::check_step("learning rate eta", eta)?;
    let objective = flags.objective()?;
    let reference_kind = flags.reference.unwrap_or_default();
    let config = LmConfig::default();
    let world = pretrained(&config, seed)?;
    let (model, reference) = start(&config, seed, reference_kind)?;
    let lang = &world.language;
    let j = lang.train[0];
    let (prompt, plus) = (lang.prompt(j), lang.chosen(j));
    let (update, pairwise) = match objective {
        LmObjective::Sft => (update::sft(&prompt, &plus).0, None),
        LmObjective::Pair(loss) => {
            let pair = (plus, lang.rejected(j));
            let (inputs, objective) = update::pair(&reference, &prompt, pair, loss, config.beta);
            (inputs, Some(objective))
        }
    };
    let sft = crate::objective::CrossEntropy::sequence(update[0].response());
    let objective_ref: &dyn Objective = match &pairwise {
        Some(pair) => pair,
        None => &sft,
    };
    let probe = &world.probes[0];
    let observed: Vec<(&str, &Sequence)> = probe
        .responses
        .iter()
        .filter(|(f, _)| f.is_sequence())
        .map(|(f, s)| (f.id(), s))
        .collect();
    let inputs: Vec<Sequence> = observed.iter().map(|(_, s)| (*s).clone()).collect();
    let step = one_step(&model, &update, objective_ref, &inputs, eta)?;
    let spec = model.spec();
    let observations: Vec<Value> = observed
        .iter()
        .zip(&step.observed)
        .map(|((family, seq), o)| {
            json!({
                "family": family,
                "tokens": seq.tokens,
                "prompt_len": seq.prompt_len,
                "pi": columns(&o.pi()),
                "predicted_delta_log_pi": columns(&o.predicted),
                "actual_delta_log_pi": columns(&o.actual),
            })
        })
        .collect();
    let logits: Vec<DMatrix<f64>> = update.iter().map(|x| model.logits(x)).collect();
    let (hyperparameters, s_plus, s_minus, s_anchor) = terms(pairwise.as_ref(), &logits);
    // One entry per update sequence: χ⁺ (and χ⁻ for the pairwise losses), each with its
    // log-probabilities, π and residual G, one column of V values per response position.
    let sequences: Vec<Value> = update
        .iter()
        .zip(&logits)
        .zip(&step.residuals)
        .zip(["chosen", "rejected"])
        .map(|(((seq, z), g), role)| {
            let y = seq.response();
            let reference_log_prob = pairwise
                .as_ref()
                .map(|_| sequence_log_prob(&reference.logits(seq), y));
            let mut sequence = json!({
                "role": role,
                "tokens": seq.tokens,
                "prompt_len": seq.prompt_len,
                "log_prob": sequence_log_prob(z, y),
                "pi": columns(&log_softmax_columns(z).map(f64::exp)),
                "G": columns(g),
            });
            // Only a pairwise loss has a reference (SFT's key is left out, not null).
            if let Some(lp) = reference_log_prob {
                sequence["reference_log_prob"] = json!(lp);
            }
            sequence
        })
        .collect();
    let mut update_json = json!({
        "prompt": prompt,
        "loss": objective_ref.loss(&logits),
        "s_plus": s_plus,
        "sequences": sequences,
    });
    // SFT has no s⁻ and no anchor: the keys are left out rather than written as null.
    if !s_minus.is_null() {
        update_json["s_minus"] = s_minus;
        update_json["s_anchor"] = s_anchor;
    }
    // Every token's name, in token order, so that a record's token ids can be read.
    let sizes = lang.sizes;
    let vocabulary: Vec<String> = (0..spec.vocab).map(|t| sizes.token_name(t)).collect();
    Ok(json!({
        "model": {"kind": "lm", "vocab": spec.vocab, "window": spec.window, "embed": spec.embed, "hidden": spec.hidden, "seed": seed},
        "vocabulary": vocabulary,
        "weights": lm_model_json(&model),
        "objective": objective.to_string(),
        "reference": reference_kind.id(),
        "hyperparameters": hyperparameters,
        "eta": eta,
        "update": update_json,
        "observed": observations,
    }))
}
