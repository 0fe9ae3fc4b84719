//! The structured eNTK of an MLP: with backprop factors `B_l = ∂z/∂h_l` and layer
//! inputs `a_{l−1}`,
//!
//! `K(x_o, x_u) = Σ_l (a_{l−1}(x_o) · a_{l−1}(x_u) + β_l) B_l(x_o) B_l(x_u)ᵀ`,
//!
//! where `β_l = 1` if layer `l` has a bias and 0 otherwise. It never forms a Jacobian,
//! and it is tested equal to [`crate::entk::entk_explicit`]. For a linear model without
//! hidden layers `B = I`, so `K = (x_o · x_u + 1) I_V` (or `(x_o · x_u) I_V` without a
//! bias).
//!
//! [`entk_full`] computes the kernel of every pair of many inputs at once, as a few large
//! products over stacked factors, in column panels on several threads.

use nalgebra::{DMatrix, DVector};

use super::Mlp;
use crate::error::{Result, try_zeros};
use crate::model::Model;

/// `K(x_o, x_u)` of an MLP from its layer-wise backprop factors (see the module docs).
pub fn entk_layerwise(mlp: &Mlp, x_o: &DVector<f64>, x_u: &DVector<f64>) -> DMatrix<f64> {
    let v = mlp.classes();
    let mut k = DMatrix::zeros(v, v);
    add_layerwise(
        &mut k,
        mlp,
        &mlp.layer_factors(x_o),
        &mlp.layer_factors(x_u),
    );
    k
}

/// Adds `Σ_l (a_o · a_u + β_l) B_o B_uᵀ` to `k`, from the layer factors `(B_l, a_{l−1})`
/// of two inputs ([`Mlp::layer_factors`]). The last layer's `B = I` adds on the diagonal,
/// not through a `V × V × V` product.
pub fn add_layerwise<S>(
    k: &mut nalgebra::Matrix<f64, nalgebra::Dyn, nalgebra::Dyn, S>,
    mlp: &Mlp,
    fo: &[(DMatrix<f64>, DVector<f64>)],
    fu: &[(DMatrix<f64>, DVector<f64>)],
) where
    S: nalgebra::StorageMut<f64, nalgebra::Dyn, nalgebra::Dyn>,
{
    let last = mlp.layers().len() - 1;
    for (l, (layer, ((bo, ao), (bu, au)))) in mlp.layers().iter().zip(fo.iter().zip(fu)).enumerate()
    {
        let scale = ao.dot(au) + f64::from(u8::from(layer.bias.is_some()));
        if l == last {
            // `B_last = I`: the product `I Iᵀ` is the identity, added on the diagonal.
            (0..k.nrows()).for_each(|i| k[(i, i)] += scale);
        } else {
            k.gemm(scale, bo, &bu.transpose(), 1.0);
        }
    }
}

/// The full empirical NTK of a set of inputs: every pair `(x_i, x_j)` and every pair of
/// logits, the `(N, N, V, V)` tensor stored as an `(N·V) × (N·V)` matrix whose block
/// `(i, j)` is `K(x_i, x_j)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Number of inputs `N`.
    pub inputs: usize,
    /// Number of classes `V`.
    pub classes: usize,
    /// Entry `(i·V + a, j·V + b)` is `K(x_i, x_j)[a, b]`.
    pub matrix: DMatrix<f64>,
}

impl Kernel {
    /// The `V × V` block `K(x_i, x_j)`.
    pub fn block(&self, i: usize, j: usize) -> DMatrix<f64> {
        let v = self.classes;
        self.matrix.view((i * v, j * v), (v, v)).into_owned()
    }
}

/// Baseline for [`entk_full`]: [`entk_layerwise`]'s formula evaluated pair by pair from
/// per-input backprop factors (`N²·layers` small products). It is what a direct
/// implementation does, and what the benchmark compares the batched kernel against.
pub fn entk_pairwise(mlp: &Mlp, xs: &[DVector<f64>]) -> Kernel {
    let v = mlp.classes();
    let factors: Vec<_> = xs.iter().map(|x| mlp.layer_factors(x)).collect();
    let mut matrix = DMatrix::zeros(xs.len() * v, xs.len() * v);
    for (i, fi) in factors.iter().enumerate() {
        for (j, fj) in factors.iter().enumerate() {
            let mut block = matrix.view_mut((i * v, j * v), (v, v));
            for (layer, ((bi, ai), (bj, aj))) in mlp.layers().iter().zip(fi.iter().zip(fj)) {
                let scale = ai.dot(aj) + f64::from(u8::from(layer.bias.is_some()));
                block.gemm(scale, bi, &bj.transpose(), 1.0);
            }
        }
    }
    Kernel {
        inputs: xs.len(),
        classes: v,
        matrix,
    }
}

/// The last-layer (feature) kernel between `x_o` and `x_u`: the output layer's share of
/// the eNTK alone, `(a_o · a_u + β) I_V`, with `a` the last hidden features (the input for
/// a linear model) and `β` 1 if the layer has a bias. It is what one computes when the
/// full eNTK is out of reach; for a model whose logits are linear in its parameters it is
/// the full kernel.
pub fn entk_last_layer(mlp: &Mlp, x_o: &DVector<f64>, x_u: &DVector<f64>) -> DMatrix<f64> {
    let features = |x: &DVector<f64>| {
        let factors = mlp.layer_factors(x);
        factors.last().expect("an MLP has a layer").1.clone()
    };
    let last = mlp.layers().last().expect("an MLP has a layer");
    let scale = features(x_o).dot(&features(x_u)) + f64::from(u8::from(last.bias.is_some()));
    DMatrix::identity(mlp.classes(), mlp.classes()) * scale
}

/// The most memory faer's GEMM keeps on a thread for packing its operands: 64 MiB
/// (measured: the one allocation of a kernel run that failed under a `ulimit -v`). A
/// memory estimate of work that calls [`entk_full`] counts it once per thread.
pub const GEMM_WORKSPACE_BYTES: u128 = 64 << 20;

/// The full eNTK of an MLP on `xs` as a few large matrix products.
///
/// With every input's backprop factors stacked into one `(N·V) × n_l` matrix `B_l` per
/// layer and the input Gram matrices `S_l = A_{l−1} A_{l−1}ᵀ + β_l` (`N × N`),
///
/// `K = S_L ⊗ I_V + Σ_{l<L} (S_l ⊗ 1_{V×V}) ∘ (B_l B_lᵀ)`,
///
/// since the last layer's factor is the identity. Only the lower block triangle is
/// computed (`K(x_j, x_i) = K(x_i, x_j)ᵀ`), in column panels of [`panel_inputs`] inputs
/// that up to `max_threads` worker threads take from a queue, largest first. For one
/// panel each layer's product `B_l[rows below] B_l[panel]ᵀ` is one GEMM (faer, on the
/// worker's thread) into a buffer of the worker's, and one pass then writes
/// `Σ_l s_l(i, j) · product_l` (and the diagonal term) into the panel. The strictly upper
/// triangle is then mirrored. Below [`PARALLEL_FLOPS`] one thread is used, since
/// spawning costs more than it saves. The result does not depend on the number of
/// threads.
///
/// # Errors
/// If the `(N·V)²` kernel cannot be allocated.
///
/// # Panics
/// If an input does not have the model's input size.
pub fn entk_full(mlp: &Mlp, xs: &[DVector<f64>], max_threads: usize) -> Result<Kernel> {
    let (n, v) = (xs.len(), mlp.classes());
    let nv = n * v;
    let threads = if executed_flops(mlp, n) >= PARALLEL_FLOPS {
        max_threads
    } else {
        1
    };
    let mut matrix = try_zeros(nv, nv, "full eNTK")?;
    let (grams, factors) = stacked_factors(mlp, xs);
    let panel = panel_inputs(n, v);
    // Column panels; each is a contiguous slice of the column-major matrix.
    let chunks: Vec<(usize, &mut [f64])> = matrix
        .as_mut_slice()
        .chunks_mut(nv * panel * v)
        .enumerate()
        .collect();
    let queue = std::sync::Mutex::new(chunks.into_iter());
    let work = || {
        let mut buffers = vec![Vec::new(); factors.len()];
        loop {
            let next = queue.lock().expect("no worker panicked").next();
            let Some((p, chunk)) = next else { break };
            lower_panel(p * panel, chunk, &grams, &factors, v, &mut buffers);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads.max(1) {
            s.spawn(work);
        }
        work();
    });
    mirror_lower(&mut matrix);
    Ok(Kernel {
        inputs: n,
        classes: v,
        matrix,
    })
}

/// Kernels cheaper than this many flops are computed on one thread.
pub const PARALLEL_FLOPS: f64 = 2e7;

/// How many inputs one column panel holds: about 256 columns, enough for an efficient
/// product and small enough that two workers' buffers stay well under the kernel's size.
pub fn panel_inputs(n: usize, v: usize) -> usize {
    (256 / v).clamp(1, n.max(1))
}

/// The floating-point operations [`entk_full`] executes in its products for `n` inputs:
/// every panel multiplies the rows from its first input down by its columns, for every
/// hidden layer (`2 · rows · cols · n_l` each). The element-wise passes are not counted.
pub fn executed_flops(mlp: &Mlp, n: usize) -> f64 {
    let v = mlp.classes();
    let hidden: usize = mlp.layers()[1..].iter().map(|l| l.weight.ncols()).sum();
    let panel = panel_inputs(n, v);
    (0..n)
        .step_by(panel)
        .map(|c0| {
            let cols = (panel.min(n - c0) * v) as f64;
            2.0 * ((n - c0) * v) as f64 * cols * hidden as f64
        })
        .sum()
}

/// `S_l` for every layer and the stacked `B_l` for every hidden layer `l < L`.
fn stacked_factors(mlp: &Mlp, xs: &[DVector<f64>]) -> (Vec<DMatrix<f64>>, Vec<DMatrix<f64>>) {
    let layers = mlp.layers();
    let (n, v) = (xs.len(), mlp.classes());
    // Forward pass for all inputs at once: rows are inputs.
    let mut a = DMatrix::from_fn(n, mlp.inputs(), |i, k| xs[i][k]);
    let mut grams = Vec::with_capacity(layers.len());
    let mut derivs = Vec::with_capacity(layers.len());
    for (l, layer) in layers.iter().enumerate() {
        let beta = f64::from(u8::from(layer.bias.is_some()));
        grams.push((&a * a.transpose()).add_scalar(beta));
        if l + 1 == layers.len() {
            break;
        }
        let mut h = &a * layer.weight.transpose();
        if let Some(b) = &layer.bias {
            for mut row in h.row_iter_mut() {
                row += b.transpose();
            }
        }
        let (act, der) = activation_and_derivative(mlp, &h);
        a = act;
        derivs.push(der);
    }
    // Backward: B_{L−1} rows (i, c) = W_L[c, :] ∘ σ'(h_{L−1}(x_i)); B_{l−1} = (B_l W_l) ∘ σ'.
    let mut factors: Vec<DMatrix<f64>> = Vec::with_capacity(layers.len() - 1);
    for l in (0..layers.len() - 1).rev() {
        let mut b = match factors.last() {
            None => DMatrix::from_fn(n * v, layers[l + 1].weight.ncols(), |r, k| {
                layers[l + 1].weight[(r % v, k)]
            }),
            Some(prev) => prev * &layers[l + 1].weight,
        };
        for (k, mut col) in b.column_iter_mut().enumerate() {
            let slopes = derivs[l].column(k);
            for (rows, &slope) in col.as_mut_slice().chunks_exact_mut(v).zip(slopes.iter()) {
                rows.iter_mut().for_each(|x| *x *= slope);
            }
        }
        factors.push(b);
    }
    factors.reverse();
    (grams, factors)
}

/// Element-wise `σ(h)` and `σ'(h)` of a batch of pre-activations.
fn activation_and_derivative(mlp: &Mlp, h: &DMatrix<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
    let act = mlp.activation();
    (h.map(|x| act.eval(x).0), h.map(|x| act.eval(x).1))
}

/// Fills rows `c0·V..` of the column panel starting at input `c0` (the lower block
/// triangle), one block of [`ROW_BLOCK`] rows at a time so that the products stay in
/// cache: one GEMM per hidden layer into `buffers`, then one pass that scales each
/// `V × V` block by its `s_l(i, j)` and adds the last layer's `s_L(i, j) I_V`.
fn lower_panel(
    c0: usize,
    chunk: &mut [f64],
    grams: &[DMatrix<f64>],
    factors: &[DMatrix<f64>],
    v: usize,
    buffers: &mut [Vec<f64>],
) {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, MatMut, MatRef, Par};

    let n = grams[0].nrows();
    let nv = n * v;
    let cols = chunk.len() / nv;
    let (hidden_grams, last) = grams.split_at(grams.len() - 1);
    let last = &last[0];
    let block_inputs = (ROW_BLOCK / v).max(1);
    for r0 in (c0..n).step_by(block_inputs) {
        let r1 = (r0 + block_inputs).min(n);
        let rows = (r1 - r0) * v;
        for (b, buffer) in factors.iter().zip(buffers.iter_mut()) {
            let k = b.ncols();
            buffer.resize(rows * cols, 0.0);
            let data = b.as_slice();
            let block = MatRef::from_column_major_slice_with_stride(&data[r0 * v..], rows, k, nv);
            let panel = MatRef::from_column_major_slice_with_stride(&data[c0 * v..], cols, k, nv);
            let dst = MatMut::from_column_major_slice_mut(&mut buffer[..rows * cols], rows, cols);
            matmul(dst, Accum::Replace, block, panel.transpose(), 1.0, Par::Seq);
            crate::vecmath::clear_upper();
        }
        for jj in 0..cols {
            let j = c0 + jj / v;
            let out = &mut chunk[jj * nv + r0 * v..jj * nv + r1 * v];
            for (l, (s, buffer)) in hidden_grams.iter().zip(buffers.iter()).enumerate() {
                let column = &buffer[jj * rows..(jj + 1) * rows];
                let scales = &s.as_slice()[j * n + r0..j * n + r1];
                for ((o, p), &scale) in out
                    .chunks_exact_mut(v)
                    .zip(column.chunks_exact(v))
                    .zip(scales)
                {
                    if l == 0 {
                        o.iter_mut().zip(p).for_each(|(o, p)| *o = scale * p);
                    } else {
                        o.iter_mut().zip(p).for_each(|(o, p)| *o += scale * p);
                    }
                }
            }
            for i in r0..r1 {
                out[(i - r0) * v + jj % v] += last[(i, j)];
            }
        }
    }
}

/// Rows of the kernel computed per product in [`entk_full`].
const ROW_BLOCK: usize = 768;

/// Copies the strictly lower triangle onto the upper one, in cache-sized tiles.
fn mirror_lower(m: &mut DMatrix<f64>) {
    const TILE: usize = 32;
    let n = m.nrows();
    let data = m.as_mut_slice();
    for c0 in (0..n).step_by(TILE) {
        let c1 = (c0 + TILE).min(n);
        for r0 in (0..c1).step_by(TILE) {
            for c in c0..c1 {
                let r1 = (r0 + TILE).min(c);
                for r in r0..r1 {
                    data[c * n + r] = data[r * n + c];
                }
            }
        }
    }
}
