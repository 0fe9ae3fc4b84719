"""A JAX mirror of learning-dynamics' TinyLm, timed on the same weights and batches.

Usage: python3 tinylm_jax.py WORKLOAD.json [REPS]
where WORKLOAD.json is written by `ldyn bench lm --workload W --export WORKLOAD.json`.

The model (see src/lm.rs): for response position l of chi = [x; y], the context is the W
tokens before it (PAD = 0 before the start); u = concat_s(E[t_s] + P[s]);
z = W2 tanh(W1 u + b1) + b2; log pi = log_softmax(z). SFT is the sum over sequences and
positions of -log pi(y_l); DPO is the sum over pairs of -log sigmoid(beta * m) with
m = (lp+ - lp-) - (ref+ - ref-) and the starting model as the frozen reference.

Before timing, it checks in 64-bit mode that its log-probabilities, losses, gradients and
JVP equal the crate's (in the JSON) to 1e-10, then times jitted SFT and DPO steps (jax.grad
and the SGD update), medians of REPS runs, and prints scored tokens per second; then the
JVP of `ldyn bench lm --jvp` (jax.jvp of log pi on the SFT sequences along the DPO step's
direction) against a jitted forward pass, and the JVP along two directions (the DPO and the
SFT step's) that share one forward pass through jax.linearize.
"""
import json
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np

doc = json.load(open(sys.argv[1]))
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 7
m = doc["model"]
V, W, D, PAD = m["vocab"], m["window"], m["embed_dim"], m["pad"]
params = {
    "E": jnp.asarray(m["embed"]),
    "P": jnp.asarray(m["slots"]),
    "W1": jnp.asarray(m["layers"][0]["weight"]),
    "b1": jnp.asarray(m["layers"][0]["bias"]),
    "W2": jnp.asarray(m["layers"][1]["weight"]),
    "b2": jnp.asarray(m["layers"][1]["bias"]),
}


def positions(seqs):
    """Context token ids (positions x W), targets, and the sequence of each position."""
    ctx, tgt, owner = [], [], []
    for i, s in enumerate(seqs):
        t, p = s["tokens"], s["prompt_len"]
        for l in range(p, len(t)):
            ctx.append([t[l - W + k] if l - W + k >= 0 else PAD for k in range(W)])
            tgt.append(t[l])
            owner.append(i)
    return jnp.asarray(ctx), jnp.asarray(tgt), jnp.asarray(owner)


def seq_log_probs(p, ctx, tgt, owner, n):
    u = (p["E"][ctx] + p["P"][None, :, :]).reshape(ctx.shape[0], W * D)
    h = jnp.tanh(u @ p["W1"].T + p["b1"])
    z = h @ p["W2"].T + p["b2"]
    lp = jax.nn.log_softmax(z, axis=-1)[jnp.arange(tgt.shape[0]), tgt]
    return jax.ops.segment_sum(lp, owner, num_segments=n)


sft = positions(doc["sft"])
n_sft = len(doc["sft"])
pair_seqs = [s for pr in doc["pairs"] for s in (pr["chosen"], pr["rejected"])]
dpo = positions(pair_seqs)
n_pairs = len(doc["pairs"])
beta, eta = doc["beta"], doc["eta"]


def sft_loss(p):
    return -seq_log_probs(p, *sft, n_sft).sum()


def pair_margins(p):
    lp = seq_log_probs(p, *dpo, 2 * n_pairs)
    return lp[0::2] - lp[1::2]


reference = pair_margins(params)


def dpo_loss(p):
    return -jax.nn.log_sigmoid(beta * (pair_margins(p) - reference)).sum()


def flat(g):
    """The crate's parameter order: E, P column-major, then each layer's W column-major and b."""
    parts = [g["E"].T, g["P"].T, g["W1"].T, g["b1"], g["W2"].T, g["b2"]]
    return np.concatenate([np.asarray(x).reshape(-1) for x in parts])


def check(name, ours, theirs):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    err = float(np.max(np.abs(ours - theirs))) / max(1.0, float(np.max(np.abs(theirs))))
    status = "ok" if err <= 1e-10 else "MISMATCH"
    print(f"check {name}: max relative difference {err:.2e} {status}")
    if err > 1e-10:
        sys.exit(1)


c = doc["check"]
check("sft log-probabilities", seq_log_probs(params, *sft, n_sft), c["sft_log_probs"])
for name, loss in [("sft", sft_loss), ("dpo", dpo_loss)]:
    value, grad = jax.value_and_grad(loss)(params)
    check(f"{name} loss", value, c[name]["loss"])
    check(f"{name} gradient", flat(grad), c[name]["grad"])


def stepper(loss):
    @jax.jit
    def step(p):
        g = jax.grad(loss)(p)
        return jax.tree_util.tree_map(lambda a, b: a - eta * b, p, g)

    return step


def median_seconds(step):
    jax.block_until_ready(step(params))  # compile
    times = []
    for _ in range(REPS):
        t = time.perf_counter()
        jax.block_until_ready(step(params))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def all_log_probs(p, ctx):
    u = (p["E"][ctx] + p["P"][None, :, :]).reshape(ctx.shape[0], W * D)
    h = jnp.tanh(u @ p["W1"].T + p["b1"])
    return jax.nn.log_softmax(h @ p["W2"].T + p["b2"], axis=-1)


# The JVP bench (ldyn bench lm --jvp): the first-order change of log pi on every position
# of the SFT sequences along the DPO step's direction, against a forward pass to log pi.
direction = jax.tree_util.tree_map(lambda g: -eta * g, jax.grad(dpo_loss)(params))
ctx_sft, tgt_sft, owner_sft = sft
jvp_fn = jax.jit(lambda p, dp: jax.jvp(lambda q: all_log_probs(q, ctx_sft), (p,), (dp,))[1])
forward_fn = jax.jit(lambda p: all_log_probs(p, ctx_sft))
tangent = jvp_fn(params, direction)
per_sequence = jax.ops.segment_sum(tangent[jnp.arange(tgt_sft.shape[0]), tgt_sft], owner_sft, num_segments=n_sft)
check("jvp of the sft log-probabilities", per_sequence, c["jvp"])

tokens = {"SFT": int(sft[1].shape[0]), "DPO": int(dpo[1].shape[0])}
for name, loss in [("SFT", sft_loss), ("DPO", dpo_loss)]:
    s = median_seconds(stepper(loss))
    print(f"  jax.jit {name} step: {s * 1e3:9.3f} ms  {tokens[name]:>5} scored tokens  {tokens[name] / s:10.0f} tokens/s")
jvp_s = median_seconds(lambda p: jvp_fn(p, direction))
forward_s = median_seconds(forward_fn)
print(f"  jax.jit JVP:          {jvp_s * 1e3:9.3f} ms")
print(f"  jax.jit forward pass: {forward_s * 1e3:9.3f} ms")
print(f"  ratio: the JVP costs {jvp_s / forward_s:.2f} forward passes")


# Two directions in one call (the DPO and the SFT step's), sharing the forward pass through
# jax.linearize, as the attribution's terms share it in ldyn.
sft_direction = jax.tree_util.tree_map(lambda g: -eta * g, jax.grad(sft_loss)(params))


@jax.jit
def two_fn(p, d1, d2):
    _, tangent_of = jax.linearize(lambda q: all_log_probs(q, ctx_sft), p)
    return tangent_of(d1), tangent_of(d2)


two_s = median_seconds(lambda p: two_fn(p, direction, sft_direction))
further = two_s - jvp_s
print(
    f"  two directions in one call: {two_s * 1e3:.3f} ms; each further direction adds "
    f"{further * 1e3:.3f} ms, {further / forward_s:.2f} forward passes"
)
