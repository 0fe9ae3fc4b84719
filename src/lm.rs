//! `TinyLm`: an autoregressive MLP language model with analytic gradients, the
//! crate's instance of the paper's sequence decomposition (Eq. 5).
//!
//! A prompt `x` and a response `y` form one sequence `χ = [x; y]`. The logits for
//! response position `l` (predicting `y_l`) depend only on the `W` tokens before it:
//!
//! `u_l = [E[t_{l−W}] + P_0; …; E[t_{l−1}] + P_{W−1}]`,   `z_l = MLP(u_l)`,
//!
//! with token embeddings `E` (`V × d`), slot embeddings `P` (`W × d`), and a one-hidden
//! layer tanh [`Mlp`] from `W·d` to `V`. Slots before the start of `χ` hold the padding
//! token [`PAD`]. The model is causal by construction, and teacher forcing is simply
//! feeding the given prefix; only response positions are scored, so the logits of a
//! sequence are `V × |y|`.
//!
//! Parameters are flattened as `E` (column-major), then `P` (column-major), then the MLP.

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};

use crate::error::{Error, Result};
use crate::mlp::{Activation, Mlp, normal};
use crate::model::Model;
use crate::numerics::log_softmax;

/// The padding token that fills context slots before the start of a sequence.
pub const PAD: usize = 0;

/// A prompt followed by a response, `χ = [x; y]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    /// All tokens, prompt first.
    pub tokens: Vec<usize>,
    /// How many of them are the prompt.
    pub prompt_len: usize,
}

impl Sequence {
    /// `[prompt; response]`.
    pub fn new(prompt: &[usize], response: &[usize]) -> Self {
        Sequence {
            tokens: [prompt, response].concat(),
            prompt_len: prompt.len(),
        }
    }

    /// The response tokens `y` (the scored positions).
    pub fn response(&self) -> &[usize] {
        &self.tokens[self.prompt_len..]
    }

    /// The prompt tokens `x`.
    pub fn prompt(&self) -> &[usize] {
        &self.tokens[..self.prompt_len]
    }
}

/// Sizes of a [`TinyLm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LmSpec {
    /// Vocabulary size `V`.
    pub vocab: usize,
    /// Context window `W` (tokens before each position).
    pub window: usize,
    /// Embedding size `d`.
    pub embed: usize,
    /// Width of the MLP's hidden layer.
    pub hidden: usize,
}

/// The model; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct TinyLm {
    spec: LmSpec,
    /// Token embeddings, `V × d` (row `t` embeds token `t`).
    embed: DMatrix<f64>,
    /// Slot embeddings, `W × d`.
    slots: DMatrix<f64>,
    mlp: Mlp,
}

impl TinyLm {
    /// A random model: embeddings `N(0, 1)`, the MLP as in [`Mlp::random`].
    pub fn random(spec: LmSpec, rng: &mut impl Rng) -> Result<Self> {
        if spec.vocab < 2 {
            return Err(Error::TooFewClasses(spec.vocab));
        }
        if spec.window == 0 || spec.embed == 0 || spec.hidden == 0 {
            return Err(Error::InvalidArgument(
                "window, embedding and hidden sizes must be > 0".into(),
            ));
        }
        let embed = DMatrix::from_fn(spec.vocab, spec.embed, |_, _| normal(rng));
        let slots = DMatrix::from_fn(spec.window, spec.embed, |_, _| normal(rng));
        let mlp = Mlp::random(
            &[spec.window * spec.embed, spec.hidden, spec.vocab],
            Activation::Tanh,
            true,
            rng,
        )?;
        Ok(TinyLm {
            spec,
            embed,
            slots,
            mlp,
        })
    }

    /// The model's sizes.
    pub fn spec(&self) -> LmSpec {
        self.spec
    }

    /// The MLP from context vectors to logits.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// The context tokens of position `l` (an index into `tokens`): the `W` tokens
    /// before it, oldest first, padded with [`PAD`].
    pub fn context(&self, tokens: &[usize], l: usize) -> Vec<usize> {
        let w = self.spec.window;
        (0..w)
            .map(|s| (l + s).checked_sub(w).map_or(PAD, |i| tokens[i]))
            .collect()
    }

    /// The MLP input `u` for a context.
    pub fn context_vector(&self, context: &[usize]) -> DVector<f64> {
        let d = self.spec.embed;
        DVector::from_fn(context.len() * d, |i, _| {
            let (s, k) = (i / d, i % d);
            self.embed[(context[s], k)] + self.slots[(s, k)]
        })
    }

    /// Logits for the next token after `tokens`.
    pub fn next_logits(&self, tokens: &[usize]) -> DVector<f64> {
        let u = self.context_vector(&self.context(tokens, tokens.len()));
        self.mlp.logits(&u).column(0).into_owned()
    }

    /// Extends `prompt` by `len` tokens: greedily (`temperature = None`) or by sampling
    /// from `softmax(z / T)`. Returns the generated response.
    pub fn generate(
        &self,
        prompt: &[usize],
        len: usize,
        temperature: Option<f64>,
        rng: &mut impl Rng,
    ) -> Result<Vec<usize>> {
        if let Some(t) = temperature {
            crate::error::check_step("temperature", t)?;
        }
        let mut tokens = prompt.to_vec();
        for _ in 0..len {
            let z = self.next_logits(&tokens);
            let next = match temperature {
                None => z.argmax().0,
                Some(t) => sample(&log_softmax((z / t).as_view()), rng),
            };
            tokens.push(next);
        }
        Ok(tokens[prompt.len()..].to_vec())
    }

    fn offsets(&self) -> (usize, usize) {
        let e = self.embed.len();
        (e, e + self.slots.len())
    }
}

/// Draws an index from log-probabilities by inverse transform sampling.
fn sample(log_p: &DVector<f64>, rng: &mut impl Rng) -> usize {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (i, lp) in log_p.iter().enumerate() {
        acc += lp.exp();
        if u < acc {
            return i;
        }
    }
    log_p.len() - 1
}

impl Model for TinyLm {
    type Input = Sequence;

    fn classes(&self) -> usize {
        self.spec.vocab
    }

    fn num_params(&self) -> usize {
        self.embed.len() + self.slots.len() + self.mlp.num_params()
    }

    fn check_input(&self, x: &Sequence) -> Result<()> {
        if let Some(&t) = x.tokens.iter().find(|&&t| t >= self.spec.vocab) {
            return Err(Error::InvalidArgument(format!(
                "token {t} is out of range for a vocabulary of {}",
                self.spec.vocab
            )));
        }
        if x.prompt_len >= x.tokens.len() {
            return Err(Error::InvalidArgument(
                "a sequence needs at least one response token".into(),
            ));
        }
        Ok(())
    }

    fn logits(&self, x: &Sequence) -> DMatrix<f64> {
        let cols: Vec<DVector<f64>> = (x.prompt_len..x.tokens.len())
            .map(|l| {
                self.mlp
                    .logits(&self.context_vector(&self.context(&x.tokens, l)))
                    .column(0)
                    .into_owned()
            })
            .collect();
        DMatrix::from_columns(&cols)
    }

    /// Per position: the MLP's backprop gives `∇θ_MLP` and the context gradient `∂L/∂u`,
    /// whose slot `s` part is added to `∇E[t_s]` and to `∇P_s`.
    fn backprop(&self, x: &Sequence, g: &DMatrix<f64>) -> DVector<f64> {
        assert_eq!(
            g.shape(),
            (self.spec.vocab, x.tokens.len() - x.prompt_len),
            "residual shape does not match the sequence"
        );
        let (v, d) = (self.spec.vocab, self.spec.embed);
        let (slot_start, mlp_start) = self.offsets();
        let mut grad = DVector::zeros(self.num_params());
        for (col, l) in (x.prompt_len..x.tokens.len()).enumerate() {
            let context = self.context(&x.tokens, l);
            let u = self.context_vector(&context);
            let du = self.mlp.backprop_into(
                &u,
                &g.column(col).into_owned(),
                &mut grad.as_mut_slice()[mlp_start..],
            );
            for (s, &t) in context.iter().enumerate() {
                for k in 0..d {
                    grad[t + k * v] += du[s * d + k];
                    grad[slot_start + s + k * self.spec.window] += du[s * d + k];
                }
            }
        }
        grad
    }

    fn logits_and_jvp(&self, x: &Sequence, dtheta: &DVector<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        assert_eq!(
            dtheta.len(),
            self.num_params(),
            "direction length does not match the model"
        );
        let (v, d, w) = (self.spec.vocab, self.spec.embed, self.spec.window);
        let (slot_start, mlp_start) = self.offsets();
        let theta = dtheta.as_slice();
        let (mut zs, mut dzs) = (Vec::new(), Vec::new());
        for l in x.prompt_len..x.tokens.len() {
            let context = self.context(&x.tokens, l);
            let du = DVector::from_fn(w * d, |i, _| {
                let (s, k) = (i / d, i % d);
                theta[context[s] + k * v] + theta[slot_start + s + k * w]
            });
            let (z, dz) = self.mlp.forward_tangent(
                &self.context_vector(&context),
                &theta[mlp_start..],
                Some(&du),
            );
            zs.push(z);
            dzs.push(dz);
        }
        (DMatrix::from_columns(&zs), DMatrix::from_columns(&dzs))
    }

    fn params(&self) -> DVector<f64> {
        let mut theta = Vec::with_capacity(self.num_params());
        theta.extend_from_slice(self.embed.as_slice());
        theta.extend_from_slice(self.slots.as_slice());
        theta.extend_from_slice(self.mlp.params().as_slice());
        DVector::from_vec(theta)
    }

    fn set_params(&mut self, theta: &DVector<f64>) {
        assert_eq!(
            theta.len(),
            self.num_params(),
            "parameter vector length does not match"
        );
        let (slot_start, mlp_start) = self.offsets();
        self.embed
            .as_mut_slice()
            .copy_from_slice(&theta.as_slice()[..slot_start]);
        self.slots
            .as_mut_slice()
            .copy_from_slice(&theta.as_slice()[slot_start..mlp_start]);
        self.mlp
            .set_params(&DVector::from_column_slice(&theta.as_slice()[mlp_start..]));
    }
}
