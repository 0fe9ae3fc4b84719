"""Type stubs of the Rust extension. Arrays are float64 numpy arrays in C order,
positions first and classes last; log-probabilities in nats. V: classes (vocabulary),
n: observed inputs, M_i: response positions of observed sequence i, L_s: of update
sequence s."""

from os import PathLike
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
Tokens = Sequence[int]
LmSequence = Tuple[Tokens, Tokens]
Model = Union["Linear", "MLP", "TinyLM"]

__version__: str

class Linear:
    """A linear softmax classifier z = W x + b, W of shape (V, d)."""

    def __init__(self, inputs: int, classes: int, seed: int = 0) -> None: ...
    @staticmethod
    def from_weights(weight: Array, bias: Optional[Array] = None) -> "Linear": ...
    @property
    def weights(self) -> dict[str, Array]:
        """{"weight": (V, d), "bias": (V,)}."""
    def logits(self, x: Array) -> Array:
        """(d,) → (V,), or (n, d) → (n, V)."""

class MLP:
    """An MLP classifier z_k = W_k a_{k−1} + b_k, the activation after every layer but the last."""

    def __init__(self, sizes: Sequence[int], seed: int = 0, activation: str = "tanh") -> None: ...
    @staticmethod
    def from_weights(layers: Sequence[Tuple[Array, Optional[Array]]], activation: str = "tanh") -> "MLP": ...
    @property
    def weights(self) -> dict[str, Array]:
        """{"layers.K.weight": (out, in), "layers.K.bias": (out,)}."""
    @property
    def activation(self) -> str: ...
    def logits(self, x: Array) -> Array:
        """(d,) → (V,), or (n, d) → (n, V)."""

class TinyLM:
    """The tiny autoregressive LM: z_m = W₂ tanh(W₁ u_m + b₁) + b₂ with
    u_m = [E[t_{m−W}] + P_0; …; E[t_{m−1}] + P_{W−1}] (PAD = 0 before the start)."""

    def __init__(self, vocab: int, window: int, embed: int, hidden: int, seed: int = 0) -> None: ...
    @staticmethod
    def from_weights(embed: Array, slots: Array, layers: Sequence[Tuple[Array, Array]]) -> "TinyLM": ...
    @staticmethod
    def from_world(seed: int, stage: str = "base") -> "TinyLM":
        """The default LM world's pre-trained model ("base") or SFT checkpoint ("sft")."""
    @property
    def vocabulary(self) -> Optional[list[str]]: ...
    @property
    def weights(self) -> dict[str, Array]:
        """{"embed": (V, d), "slots": (W, d), "layers.0.weight": (h, W·d), "layers.0.bias": (h,),
        "layers.1.weight": (V, h), "layers.1.bias": (V,)}."""
    def logits(self, prompt: Tokens, response: Tokens) -> Array:
        """(L, V), L = len(response)."""

class Objective:
    """A loss whose residual G = ∂L/∂z the decomposition reads."""

    @property
    def name(self) -> str: ...

def SFT(label: Optional[int] = None, negative: bool = False) -> Objective:
    """Cross-entropy: G = π − e_y (negative=True: −(π − e_y))."""

def DPO(beta: Optional[float] = None) -> Objective:
    """L = −log σ(β m), m = (lp⁺ − lp⁻) − (ref⁺ − ref⁻). TRL: "sigmoid"."""

def IPO(beta: Optional[float] = None) -> Objective:
    """L = (m − 1/(2τ))², τ = beta."""

def SLiC(beta: Optional[float] = None, delta: float = 1.0, lambda_: float = 0.1) -> Objective:
    """L = max(0, δ − (lp⁺ − lp⁻)) − λ lp⁺."""

def SPPOHard(beta: Optional[float] = None) -> Objective:
    """L = (r⁺ − 1/(2β))² + (r⁻ + 1/(2β))², r± = lp± − ref±."""

def RPO(beta: Optional[float] = None, alpha: float = 1.0, weighting: str = "v3") -> Objective:
    """v3: L = L_DPO + α·NLL; v1: L = α·L_DPO + NLL; NLL = −lp⁺/|y⁺|."""

def DPOP(beta: Optional[float] = None, lambda_: float = 50.0, form: str = "inside") -> Objective:
    """inside: −log σ(β(r⁺ − r⁻ − λp)); outside: −log σ(β(r⁺ − r⁻)) + λp; p = max(0, ref⁺ − lp⁺)."""

def objective(name: str, beta: Optional[float] = None) -> Objective:
    """By name: "sft", the crate's loss names, or TRL's loss_type ("sigmoid", "sigmoid+sft")."""

class Custom:
    """Your loss: fn(logits) -> (loss, G), G = ∂loss/∂logits in the logits' shapes (a
    classifier's (V,); an LM's list of (L_s, V)). Checked against central finite
    differences of loss before any step."""

    def __init__(self, function: Callable[..., Tuple[float, object]]) -> None: ...

class Step:
    """The decomposition of one step (see one_step for the shapes)."""

    eta: float
    loss: float
    G: Union[Array, list[Array]]
    log_pi: Union[Array, list[Array]]
    A: Union[Array, list[Array]]
    K: Union[Array, list[list[Array]], None]
    predicted: Union[Array, list[Array]]
    actual: Union[Array, list[Array]]
    by_term: Optional[dict[str, list[Array]]]
    positions: Optional[list[dict[str, object]]]

def one_step(
    model: Model,
    update: object,
    objective: Union[Objective, Custom],
    observe: object,
    eta: float,
    reference: Optional[TinyLM] = None,
    kernel: bool = True,
) -> Step:
    """Δ log π(x_o) = −η · A(x_o) · K(x_o, x_u) · G(x_u) + O(η²), every term exact.

    Classifier: update x_u (d,), observe (n, d): G (V,), log_pi/predicted/actual (n, V),
    A and K (n, V, V). TinyLM: update (prompt, response) or (prompt, chosen, rejected),
    observe a list of (prompt, response): G list of (L_s, V), log_pi/predicted/actual
    lists of (M_i, V), A list of (M_i, V, V), K list of lists of (M_i, L_s, V, V)."""

def squeeze(logits: Array, cls: int, direction: str = "negative", step: float = 1.0) -> dict[str, object]:
    """App. E's step Δz = ±c(π − e_k): {"before", "after", "log_before", "log_after", "rose", "summary"}."""

class Claim:
    id: str
    text: str
    holds: bool
    seeds: Optional[Tuple[int, int]]
    reruns: Optional[Tuple[int, int]]

class Run:
    name: str
    seeds: str
    claims: list[Claim]
    tables: dict[str, dict[str, Union[NDArray[np.float64], NDArray[np.int64], list[str]]]]
    files: list[str]
    report: str

class Pooled:
    cells: list[str]
    claims: list[str]
    holds: list[list[int]]
    seeds: list[int]
    failed: list[int]
    summary: list[Tuple[str, int, str, str]]
    out: str

Setting = Union[bool, int, float, str]

def run(
    name: str,
    seed: Optional[int] = None,
    set: Optional[dict[str, Setting]] = None,
    out: Union[str, PathLike[str], None] = None,
    max_memory: Optional[float] = None,
) -> Run:
    """`ldyn run NAME`: claims and tables; with out=DIR exactly the CLI's files."""

def sweep(
    name: str,
    seeds: Union[range, str, None] = None,
    grid: Optional[dict[str, Sequence[Setting]]] = None,
    set: Optional[dict[str, Setting]] = None,
    jobs: Optional[int] = None,
    out: Union[str, PathLike[str], None] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    max_memory: Optional[float] = None,
) -> Pooled:
    """`ldyn sweep NAME`: claims pooled per cell over seeds; progress(done, total)."""

def config(name: str) -> dict[str, dict[str, object]]:
    """{key: {"default", "doc", "range"}}, as `ldyn config NAME` writes them."""

def experiments() -> list[Tuple[str, int, str]]:
    """(name, default seed, what it shows), in gallery order."""

def akg(
    model: str = "linear",
    seed: int = 0,
    eta: float = 1e-3,
    objective: str = "sft",
    reference: Optional[str] = None,
    inputs: Optional[int] = None,
    hidden: Optional[int] = None,
    layers: Optional[int] = None,
    classes: Optional[int] = None,
) -> dict[str, object]:
    """The record `ldyn akg` writes, as a dict."""

def _panic(message: str, long: bool = False) -> None: ...
