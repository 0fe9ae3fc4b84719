"""The package's speed against the crate's, each pair measured in one command on the same
machine (`target/py/bin/python python/benches/speed.py`, after ./test built the wheel):

1. `run`: a fresh Python process running `ld.run(NAME, out=DIR)` (interpreter start and
   import included) against `ldyn run NAME --out DIR`, interleaved, median of 3 each;
2. `one_step`: the call with its conversion to numpy against the crate's computation of
   the same arrays alone (`_time_one_step`, interleaved in one process), median of 50.
"""

import statistics
import subprocess
import sys
import tempfile
import time
import pathlib

import numpy as np

import learning_dynamics as ld

REPO = pathlib.Path(__file__).resolve().parents[2]
LDYN = str(REPO / "target" / "release" / "ldyn")


def wall(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_vs_cli(name, reps=3):
    cli, py = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(reps):
            cli.append(wall([LDYN, "run", name, "--out", f"{tmp}/cli"]))
            script = f"import learning_dynamics as ld; ld.run({name!r}, out={tmp + '/py'!r})"
            py.append(wall([sys.executable, "-c", script]))
    c, p = statistics.median(cli), statistics.median(py)
    print(f"run {name}: ldyn run {c:.2f} s, Python run {p:.2f} s (median of {reps}): Python/CLI = {p / c:.3f}")


def one_step_conversion(label, *args, reps=50, **kwargs):
    rust, whole = ld._core._time_one_step(*args, reps, **kwargs)
    extra = whole - rust
    print(f"one_step {label}: crate {rust * 1e3:.3f} ms, with conversion {whole * 1e3:.3f} ms (median of {reps}): +{extra * 1e3:.3f} ms, {100 * extra / rust:+.1f}%")


if __name__ == "__main__":
    for name in ("squeezing", "lm_policy"):
        run_vs_cli(name)
    mlp = ld.MLP([4, 8, 5], seed=3)
    one_step_conversion("MLP [4, 8, 5], 4 observed", mlp, np.ones(4), ld.SFT(label=2), np.eye(4), 1e-3)
    lm = ld.TinyLM.from_world(0, stage="sft")
    observe = [([12, 1], [13, 2, 20, 4]), ([12, 1], [13, 3, 21, 4]), ([14, 1], [15, 2, 22, 4])]
    one_step_conversion("world LM, DPO, 3 observed", lm, ([12, 1], [13, 2, 20, 4], [13, 2, 21, 4]), ld.DPO(), observe, 1e-3)
