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
//!
//! Every pass is batched: the context vectors of all response positions of all sequences
//! of a call are the columns of one matrix `U`, so the forward, backward and forward-mode
//! passes are a few matrix products per layer, and the embedding gradients are scattered
//! back from `∂L/∂U`. The training step, the forward pass and the JVPs run in [`step`]:
//! faer's products, the first layer folded into the embeddings when a batch has more
//! positions than the vocabulary has tokens. The reverse mode of [`Model::backprop_batch`]
//! keeps the unfolded form ([`Mlp::backprop_batch_into`]), which the tests hold the
//! step against.

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};

pub mod kernel;
pub mod step;
pub mod update;

use crate::error::{Error, Result, check_len};
use crate::mlp::{Activation, Mlp, Trace, normal};
use crate::model::{Gradients, Model, Residuals};
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

impl LmSpec {
    /// The number of parameters, `(V + W)·d + (W·d + 1)·h + (h + 1)·V` (embeddings, then
    /// the MLP's layers with their biases), or `None` if it overflows.
    pub fn params(&self) -> Option<u128> {
        let (v, w, d, h) = (
            self.vocab as u128,
            self.window as u128,
            self.embed as u128,
            self.hidden as u128,
        );
        (v + w)
            .checked_mul(d)?
            .checked_add((w.checked_mul(d)? + 1).checked_mul(h)?)?
            .checked_add((h + 1).checked_mul(v)?)
    }
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

    /// The model with these weights: token embeddings `embed` (`V × d`), slot embeddings
    /// `slots` (`W × d`) and the MLP `[W·d, hidden, V]` (tanh, with biases), as
    /// [`TinyLm::random`] builds it and [`embeddings`](TinyLm::embeddings) and
    /// [`mlp`](TinyLm::mlp) return it.
    ///
    /// # Errors
    /// Sizes that do not fit together, an MLP of another shape or activation, or a
    /// weight that is not finite.
    pub fn from_weights(embed: DMatrix<f64>, slots: DMatrix<f64>, mlp: Mlp) -> Result<Self> {
        let (vocab, d) = embed.shape();
        let (window, _) = slots.shape();
        check_len("slot embedding size (columns of slots)", d, slots.ncols())?;
        let layers = mlp.layers();
        if layers.len() != 2
            || mlp.activation() != Activation::Tanh
            || layers.iter().any(|l| l.bias.is_none())
        {
            return Err(Error::InvalidArgument(
                "a tiny LM's MLP has one tanh hidden layer, and both layers have biases".into(),
            ));
        }
        check_len(
            "MLP input size (window × embedding)",
            window * d,
            mlp.inputs(),
        )?;
        check_len(
            "MLP output size (vocabulary)",
            vocab,
            layers[1].weight.nrows(),
        )?;
        if !embed.iter().chain(slots.iter()).all(|w| w.is_finite()) {
            return Err(Error::NonFinite("weights"));
        }
        let spec = LmSpec {
            vocab,
            window,
            embed: d,
            hidden: layers[0].weight.nrows(),
        };
        if spec.vocab < 2 {
            return Err(Error::TooFewClasses(spec.vocab));
        }
        if window == 0 || d == 0 {
            return Err(Error::InvalidArgument(
                "window, embedding and hidden sizes must be > 0".into(),
            ));
        }
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

    /// The token embeddings `E` (`V × d`) and the slot embeddings `P` (`W × d`).
    pub fn embeddings(&self) -> (&DMatrix<f64>, &DMatrix<f64>) {
        (&self.embed, &self.slots)
    }

    /// The context tokens of position `l` (an index into `tokens`): the `W` tokens
    /// before it, oldest first, padded with [`PAD`].
    pub fn context(&self, tokens: &[usize], l: usize) -> Vec<usize> {
        let mut context = Vec::with_capacity(self.spec.window);
        self.context_into(tokens, l, &mut context);
        context
    }

    /// [`TinyLm::context`], appended to `out`.
    fn context_into(&self, tokens: &[usize], l: usize, out: &mut Vec<usize>) {
        let w = self.spec.window;
        out.extend((0..w).map(|s| (l + s).checked_sub(w).map_or(PAD, |i| tokens[i])));
    }

    /// The MLP input `u` for a context.
    pub fn context_vector(&self, context: &[usize]) -> DVector<f64> {
        let d = self.spec.embed;
        DVector::from_fn(context.len() * d, |i, _| {
            let (s, k) = (i / d, i % d);
            self.embed[(context[s], k)] + self.slots[(s, k)]
        })
    }

    /// `h = Σ_l h_l`: the last hidden layer summed over the response positions of `x`,
    /// the representation of a response in Razin et al.'s CHES.
    pub fn response_hidden_sum(&self, x: &Sequence) -> DVector<f64> {
        let (_, u) = self.positions(std::slice::from_ref(x));
        self.mlp.forward(&u).last_hidden().column_sum()
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
        self.complete(prompt, None, len, temperature, rng)
    }

    /// Like [`TinyLm::generate`], but stops after the token `stop` (kept) if it comes
    /// before `max_len` tokens.
    pub fn complete(
        &self,
        prompt: &[usize],
        stop: Option<usize>,
        max_len: usize,
        temperature: Option<f64>,
        rng: &mut impl Rng,
    ) -> Result<Vec<usize>> {
        if let Some(t) = temperature {
            crate::error::check_step("temperature", t)?;
        }
        let mut tokens = prompt.to_vec();
        for _ in 0..max_len {
            let z = self.next_logits(&tokens);
            let next = match temperature {
                None => z.argmax().0,
                Some(t) => sample(&log_softmax((z / t).as_view()), rng),
            };
            tokens.push(next);
            if Some(next) == stop {
                break;
            }
        }
        Ok(tokens[prompt.len()..].to_vec())
    }

    fn offsets(&self) -> (usize, usize) {
        let e = self.embed.len();
        (e, e + self.slots.len())
    }

    /// The contexts of every response position of `xs`, in order, and their context
    /// vectors as the columns of `U` (`W·d × positions`).
    fn positions(&self, xs: &[Sequence]) -> (Vec<Vec<usize>>, DMatrix<f64>) {
        let contexts: Vec<Vec<usize>> = xs
            .iter()
            .flat_map(|x| (x.prompt_len..x.tokens.len()).map(|l| self.context(&x.tokens, l)))
            .collect();
        let mut u = DMatrix::zeros(self.spec.window * self.spec.embed, contexts.len());
        for (mut col, context) in u.column_iter_mut().zip(&contexts) {
            col.copy_from(&self.context_vector(context));
        }
        (contexts, u)
    }
}

/// Batches of at least this many positions are split into two halves, each passed
/// through the MLP on its own thread. The split depends only on the batch, so the result
/// does not depend on the machine.
pub const PARALLEL_POSITIONS: usize = 256;

/// The position ranges of a batch: one, or two halves for large batches.
fn chunks(positions: usize) -> Vec<std::ops::Range<usize>> {
    if positions >= PARALLEL_POSITIONS {
        vec![0..positions / 2, positions / 2..positions]
    } else {
        std::iter::once(0..positions).collect()
    }
}

/// Runs `f` on every chunk, in parallel on rayon's pool when there are several (its
/// threads live on, so their allocations are reused from step to step).
fn on_chunks<T: Send>(
    positions: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<(std::ops::Range<usize>, T)> {
    use rayon::prelude::*;
    chunks(positions)
        .into_par_iter()
        .map(|r| (r.clone(), f(r)))
        .collect()
}

impl TinyLm {
    /// The MLP's forward pass over the columns of `u`, chunk by chunk.
    fn forward_chunks(&self, u: &DMatrix<f64>) -> Vec<(std::ops::Range<usize>, Trace)> {
        on_chunks(u.ncols(), |r| {
            self.mlp.forward(&u.columns(r.start, r.len()).into_owned())
        })
    }

    /// All positions at once: the MLP's batched backward pass gives `∇θ_MLP` and the
    /// context gradients `∂L/∂U` (chunk by chunk, summed in chunk order), whose slot `s`
    /// part of each column is added to `∇E[t_s]` and to `∇P_s`.
    fn backward(
        &self,
        xs: &[Sequence],
        contexts: &[Vec<usize>],
        traces: &[(std::ops::Range<usize>, Trace)],
        gs: &[DMatrix<f64>],
    ) -> DVector<f64> {
        let (v, d, w) = (self.spec.vocab, self.spec.embed, self.spec.window);
        for (x, g) in xs.iter().zip(gs) {
            assert_eq!(
                g.shape(),
                (v, x.tokens.len() - x.prompt_len),
                "residual shape does not match the sequence"
            );
        }
        let g = DMatrix::from_columns(&gs.iter().flat_map(|g| g.column_iter()).collect::<Vec<_>>());
        let parts = on_chunks(g.ncols(), |r| {
            let (_, trace) = traces.iter().find(|(t, _)| *t == r).expect("same chunks");
            let mut grad = vec![0.0; self.mlp.num_params()];
            let du =
                self.mlp
                    .backward_into(trace, &g.columns(r.start, r.len()).into_owned(), &mut grad);
            (grad, du)
        });
        let (slot_start, mlp_start) = self.offsets();
        let mut grad = DVector::zeros(self.num_params());
        for (range, (mlp_grad, du)) in &parts {
            grad.as_mut_slice()[mlp_start..]
                .iter_mut()
                .zip(mlp_grad)
                .for_each(|(g, p)| *g += p);
            for (du, context) in du.column_iter().zip(&contexts[range.clone()]) {
                for (s, &t) in context.iter().enumerate() {
                    for k in 0..d {
                        grad[t + k * v] += du[s * d + k];
                        grad[slot_start + s + k * w] += du[s * d + k];
                    }
                }
            }
        }
        grad
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
        self.logits_batch(std::slice::from_ref(x)).remove(0)
    }

    fn backprop(&self, x: &Sequence, g: &DMatrix<f64>) -> DVector<f64> {
        self.backprop_batch(std::slice::from_ref(x), std::slice::from_ref(g))
    }

    fn logits_and_jvp(&self, x: &Sequence, dtheta: &DVector<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        self.logits_and_jvp_batch(std::slice::from_ref(x), dtheta)
            .remove(0)
    }

    fn logits_batch(&self, xs: &[Sequence]) -> Vec<DMatrix<f64>> {
        step::logits(self, xs)
    }

    fn backprop_batch(&self, xs: &[Sequence], gs: &[DMatrix<f64>]) -> DVector<f64> {
        let (contexts, u) = self.positions(xs);
        self.backward(xs, &contexts, &self.forward_chunks(&u), gs)
    }

    /// One forward pass over all positions of `xs`, kept for the backward pass; the
    /// first layer folded into the embedding when that is cheaper ([`step`]).
    fn gradient_batch(&self, xs: &[Sequence], residuals: &mut Residuals<'_>) -> Result<Gradients> {
        step::gradient_batch(self, xs, residuals)
    }

    fn logits_and_jvp_batch(
        &self,
        xs: &[Sequence],
        dtheta: &DVector<f64>,
    ) -> Vec<(DMatrix<f64>, DMatrix<f64>)> {
        let (logits, mut jvps) = self.logits_and_jvps_batch(xs, std::slice::from_ref(dtheta));
        logits.into_iter().zip(jvps.remove(0)).collect()
    }

    fn logits_and_jvps_batch(
        &self,
        xs: &[Sequence],
        dthetas: &[DVector<f64>],
    ) -> (Vec<DMatrix<f64>>, Vec<Vec<DMatrix<f64>>>) {
        for dtheta in dthetas {
            assert_eq!(
                dtheta.len(),
                self.num_params(),
                "direction length does not match the model"
            );
        }
        step::logits_and_tangents(self, xs, dthetas)
    }

    fn params(&self) -> DVector<f64> {
        let mut theta = Vec::with_capacity(self.num_params());
        theta.extend_from_slice(self.embed.as_slice());
        theta.extend_from_slice(self.slots.as_slice());
        theta.extend_from_slice(self.mlp.params().as_slice());
        DVector::from_vec(theta)
    }

    /// In place: `E`, `P`, then the MLP's layers
    /// ([`sgd_in_place`](crate::model::sgd_in_place)).
    fn sgd_step(&mut self, grad: &DVector<f64>, eta: f64) -> Result<()> {
        assert_eq!(
            grad.len(),
            self.num_params(),
            "gradient length does not match"
        );
        let mut blocks = vec![self.embed.as_mut_slice(), self.slots.as_mut_slice()];
        blocks.extend(self.mlp.param_blocks());
        crate::model::sgd_in_place(blocks, grad.as_slice(), eta)
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
