"""The exact A·K·G laboratory of *Learning Dynamics of LLM Finetuning* (Ren &
Sutherland, ICLR 2025), from Python.

One SGD step on x_u changes the log-probabilities on x_o by

    Δ log π(x_o) = −η · A(x_o) · K(x_o, x_u) · G(x_u) + O(η²)

with A = I − 1πᵀ, K = J(x_o) J(x_u)ᵀ (the empirical NTK of the logits) and G = ∂L/∂z
(the residual). The Rust crate computes every term exactly, with analytic gradients;
this package calls it. Arrays are float64 numpy arrays in C order, positions first and
classes last (an LM's logits are (L, V)); log-probabilities are in nats.

* models: Linear, MLP, TinyLM (from a seed, your weights, or a world's checkpoint);
* objectives: SFT, DPO, IPO, SLiC, SPPOHard, RPO, DPOP, objective(name) (TRL's names
  too), and Custom (your loss, checked against finite differences before any step);
* one_step: A, K, G, log π, the predicted and the actual change (and per term for
  pairwise losses); squeeze: the one-column squeezing step;
* experiments: experiments(), config(name), run(name, ...), sweep(name, ...), and
  akg(...), the record `ldyn akg` writes.

Errors are ValueError (bad input) or OSError (files) with the message `ldyn` prints; a
panic (a bug) is a RuntimeError. Long calls release the GIL, and Ctrl-C stops them.
"""

from ._core import (
    DPO,
    DPOP,
    IPO,
    MLP,
    RPO,
    SFT,
    Claim,
    Custom,
    Linear,
    Objective,
    Pooled,
    Run,
    SLiC,
    SPPOHard,
    Step,
    TinyLM,
    __version__,
    akg,
    config,
    experiments,
    objective,
    one_step,
    run,
    squeeze,
    sweep,
)

__all__ = [
    "DPO",
    "DPOP",
    "IPO",
    "MLP",
    "RPO",
    "SFT",
    "Claim",
    "Custom",
    "Linear",
    "Objective",
    "Pooled",
    "Run",
    "SLiC",
    "SPPOHard",
    "Step",
    "TinyLM",
    "__version__",
    "akg",
    "config",
    "experiments",
    "objective",
    "one_step",
    "run",
    "squeeze",
    "sweep",
]
