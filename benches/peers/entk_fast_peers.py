"""The two peers of entk_peers.py that finish in minutes on the L workload:
numpy's layer-wise formula and neural-tangents' NTK-vector products, on the same seeded
tanh MLP d -> h -> h -> V (numpy default_rng(0), drawn in the same order). The shared
script also runs the Jacobian contraction, which takes over ten minutes on L here.

Usage: python3 entk_fast_peers.py D H V N [REPS]; prints name, median seconds, checksum.
"""
import os
import sys
import time

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np

D, H, V, N = (int(a) for a in sys.argv[1:5])
REPS = int(sys.argv[5]) if len(sys.argv) > 5 else 3
rng = np.random.default_rng(0)
X = rng.standard_normal((N, D))
W1 = rng.standard_normal((D, H)) / np.sqrt(D); b1 = rng.standard_normal(H) * 0.1
W2 = rng.standard_normal((H, H)) / np.sqrt(H); b2 = rng.standard_normal(H) * 0.1
W3 = rng.standard_normal((H, V)) / np.sqrt(H); b3 = rng.standard_normal(V) * 0.1


def f(p, x):
    (w1, c1), (w2, c2), (w3, c3) = p
    return jnp.tanh(jnp.tanh(x @ w1 + c1) @ w2 + c2) @ w3 + c3


def med(fn):
    times, out = [], None
    for _ in range(REPS):
        t = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t)
    return float(np.median(times)), out


params = jax.tree_util.tree_map(jnp.asarray, [(W1, b1), (W2, b2), (W3, b3)])
kfn = jax.jit(nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0,
                                  implementation=nt.NtkImplementation.NTK_VECTOR_PRODUCTS))
Xj = jnp.asarray(X)
kfn(Xj, None, params).block_until_ready()
t, K = med(lambda: kfn(Xj, None, params).block_until_ready())
print(f"nt_ntk_vector_products {t:.4f} {float(np.asarray(K).sum()):.6e}")


def numpy_layerwise():
    a1 = np.tanh(X @ W1 + b1); a2 = np.tanh(a1 @ W2 + b2)
    B2 = np.einsum('vh,nh->nvh', W3.T, 1 - a2**2)
    B1 = np.einsum('nvh,kh,nk->nvk', B2, W2, 1 - a1**2)
    B3 = np.broadcast_to(np.eye(V), (N, V, V))
    K = np.zeros((N, N, V, V))
    for a, B in [(X, B1), (a1, B2), (a2, B3)]:
        Bf = np.ascontiguousarray(B).reshape(N * V, -1)
        K += (a @ a.T + 1.0)[:, :, None, None] * (Bf @ Bf.T).reshape(N, V, N, V).transpose(0, 2, 1, 3)
    return K


t, K = med(numpy_layerwise)
print(f"numpy_layerwise {t:.4f} {K.sum():.6e}")
