"""The package's behaviour: the theory through the Python API (the η² remainder, the
Custom check), the pinned shapes, dtypes and memory order, and every documented error."""

import _thread
import os
import threading
import time

import numpy as np
import pytest

import learning_dynamics as ld


def classifier_step(eta, model=None):
    model = model or ld.MLP([3, 8, 4], seed=0)
    x_u = np.array([0.5, -1.0, 2.0])
    observe = np.array([[0.4, -0.8, 1.5], [1.0, 0.0, -1.0]])
    return ld.one_step(model, x_u, ld.SFT(label=2), observe, eta)


def remainder(step):
    if isinstance(step.actual, list):
        return max(np.abs(a - p).max() for a, p in zip(step.actual, step.predicted))
    return np.abs(step.actual - step.predicted).max()


LM_UPDATE = ([1, 5], [2, 8], [3, 9])
LM_OBSERVE = [([1, 5], [2, 8]), ([1], [3, 9, 4])]


def lm_step(eta, objective):
    model = ld.TinyLM(vocab=10, window=2, embed=3, hidden=6, seed=1)
    update = LM_UPDATE if objective.name != "sft" else LM_UPDATE[:2]
    return ld.one_step(model, update, objective, LM_OBSERVE, eta)


@pytest.mark.parametrize("make", [classifier_step, lambda eta: lm_step(eta, ld.SFT()), lambda eta: lm_step(eta, ld.DPO())])
def test_the_remainder_shrinks_like_eta_squared(make):
    """Eq. 5 is first order: dividing η by 10 divides actual − predicted by about 100
    (log-log slope 2; ± 0.3 as the crate's own η² tests allow)."""
    slope = np.log10(remainder(make(1e-3)) / remainder(make(1e-4)))
    assert abs(slope - 2.0) <= 0.3, slope


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def cross_entropy(label, sign=1.0):
    def loss(z):
        lse = z.max() + np.log(np.exp(z - z.max()).sum())
        return lse - z[label], sign * (softmax(z) - np.eye(len(z))[label])

    return loss


def test_a_custom_objective_is_the_built_in_one_when_it_is_right():
    model = ld.MLP([3, 8, 4], seed=0)
    mine = ld.one_step(model, np.array([0.5, -1.0, 2.0]), ld.Custom(cross_entropy(2)), np.eye(3), 1e-3)
    built = ld.one_step(model, np.array([0.5, -1.0, 2.0]), ld.SFT(label=2), np.eye(3), 1e-3)
    # numpy's softmax and the crate's differ in the last bit.
    np.testing.assert_allclose(mine.G, built.G, rtol=0, atol=1e-15)
    np.testing.assert_allclose(mine.predicted, built.predicted, rtol=1e-12, atol=1e-18)


def test_a_custom_objective_with_a_wrong_sign_is_refused_naming_the_worst_entry():
    model = ld.MLP([3, 8, 4], seed=0)
    with pytest.raises(ValueError, match=r"finite difference|disagree") as refused:
        ld.one_step(model, np.array([0.5, -1.0, 2.0]), ld.Custom(cross_entropy(2, sign=-1.0)), np.eye(3), 1e-3)
    assert "class 2" in str(refused.value), str(refused.value)


def test_a_custom_objective_that_raises_passes_its_own_exception():
    def broken(z):
        raise ZeroDivisionError("my loss")

    with pytest.raises(ZeroDivisionError, match="my loss"):
        ld.one_step(ld.Linear(3, 4), np.ones(3), ld.Custom(broken), np.eye(3), 1e-3)


def test_a_custom_lm_objective_reads_and_returns_position_first_arrays():
    seen = []

    def sft(logits):
        seen.append([z.shape for z in logits])
        z = logits[0]
        lse = z.max(axis=1) + np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1))
        targets = LM_UPDATE[1]
        loss = float(sum(lse[m] - z[m, t] for m, t in enumerate(targets)))
        g = np.exp(z - lse[:, None]) - np.eye(z.shape[1])[targets]
        return loss, [g]

    model = ld.TinyLM(vocab=10, window=2, embed=3, hidden=6, seed=1)
    mine = ld.one_step(model, [LM_UPDATE[:2]], ld.Custom(sft), LM_OBSERVE, 1e-3)
    built = ld.one_step(model, LM_UPDATE[:2], ld.SFT(), LM_OBSERVE, 1e-3)
    assert seen[0] == [(2, 10)]
    for a, b in zip(mine.predicted, built.predicted):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)


def c_float(a, shape):
    assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags["C_CONTIGUOUS"], a
    assert a.shape == shape, (a.shape, shape)


def test_shapes_dtypes_and_memory_order_are_pinned():
    s = classifier_step(1e-3)
    n, v = 2, 4
    c_float(s.G, (v,))
    for a in (s.log_pi, s.predicted, s.actual):
        c_float(a, (n, v))
    c_float(s.A, (n, v, v))
    c_float(s.K, (n, v, v))
    assert s.by_term is None and s.positions is None
    lm = lm_step(1e-3, ld.DPO())
    v = 10
    assert [g.shape for g in lm.G] == [(2, v), (2, v)]
    for i, (prompt, response) in enumerate(LM_OBSERVE):
        m = len(response)
        for a in (lm.log_pi[i], lm.predicted[i], lm.actual[i], *(lm.by_term[t][i] for t in ("chosen", "rejected", "anchor"))):
            c_float(a, (m, v))
        c_float(lm.A[i], (m, v, v))
        assert len(lm.K[i]) == 2
        c_float(lm.K[i][0], (m, 2, v, v))
    model = ld.TinyLM(vocab=10, window=2, embed=3, hidden=6, seed=1)
    c_float(model.logits([1, 5], [2, 8, 3]), (3, v))
    weights = model.weights
    c_float(weights["embed"], (10, 3))
    c_float(weights["layers.0.weight"], (6, 6))
    linear = ld.Linear(3, 4)
    c_float(linear.logits(np.ones(3)), (4,))
    c_float(linear.logits(np.ones((5, 3))), (5, 4))
    # Any memory order in: a Fortran-ordered batch gives the same logits.
    x = np.asfortranarray(np.arange(15.0).reshape(5, 3))
    np.testing.assert_array_equal(linear.logits(x), linear.logits(np.ascontiguousarray(x)))


def test_models_round_trip_through_their_weights():
    model = ld.TinyLM(vocab=10, window=2, embed=3, hidden=6, seed=4)
    w = model.weights
    again = ld.TinyLM.from_weights(w["embed"], w["slots"], [(w["layers.0.weight"], w["layers.0.bias"]), (w["layers.1.weight"], w["layers.1.bias"])])
    np.testing.assert_array_equal(again.logits([1], [2, 3]), model.logits([1], [2, 3]))
    with pytest.raises(ValueError, match="MLP input size"):
        ld.TinyLM.from_weights(w["embed"], w["slots"][:1], [(w["layers.0.weight"], w["layers.0.bias"]), (w["layers.1.weight"], w["layers.1.bias"])])


def test_the_world_names_its_tokens():
    model = ld.TinyLM.from_world(0, stage="base")
    assert model.vocabulary[:5] == ["·", "ASK", "IS", "SEEMS", "END"]
    with pytest.raises(ValueError, match="unknown stage 'dpo'"):
        ld.TinyLM.from_world(0, stage="dpo")


def test_help_shows_the_formula_and_the_shapes():
    doc = ld.one_step.__doc__
    assert "Δ log π(x_o) = −η · A(x_o) · K(x_o, x_u) · G(x_u) + O(η²)" in doc
    assert "(n, V, V)" in doc and "(M_i, L_s, V, V)" in doc and "C order" in doc


def test_objectives_take_trl_names_and_refuse_unknown_ones():
    assert ld.objective("sigmoid").name == "dpo"
    assert ld.objective("sigmoid+sft").name == "rpo"
    assert ld.objective("sppo_hard").name == "sppo_hard"
    with pytest.raises(ValueError, match="unknown objective 'kto'"):
        ld.objective("kto")
    with pytest.raises(ValueError, match="alpha must be a finite number ≥ 0"):
        ld.RPO(alpha=-1.0)
    with pytest.raises(ValueError, match="pairwise losses compare"):
        ld.one_step(ld.Linear(3, 4), np.ones(3), ld.DPO(), np.eye(3), 1e-3)


def test_bad_input_is_a_value_error_with_the_crates_message():
    model = ld.Linear(3, 4)
    with pytest.raises(ValueError, match=r"learning rate eta must be finite and > 0, got NaN"):
        ld.one_step(model, np.ones(3), ld.SFT(label=1), np.eye(3), float("nan"))
    with pytest.raises(ValueError, match=r"class 9 is out of range for 4 classes"):
        ld.one_step(model, np.ones(3), ld.SFT(label=9), np.eye(3), 1e-3)
    with pytest.raises(ValueError, match="must be finite"):
        ld.one_step(model, np.array([1.0, np.inf, 0.0]), ld.SFT(label=1), np.eye(3), 1e-3)
    with pytest.raises(ValueError, match="input vector: expected size 3, got 5"):
        ld.one_step(model, np.ones(5), ld.SFT(label=1), np.eye(3), 1e-3)
    with pytest.raises(ValueError, match="out of range|vocab"):
        ld.one_step(ld.TinyLM(10, 2, 3, 6), ([1], [99]), ld.SFT(), LM_OBSERVE, 1e-3)
    with pytest.raises(ValueError, match="would need"):
        ld.TinyLM(vocab=10**7, window=64, embed=1024, hidden=4096)


def test_squeeze_holds_at_the_extremes():
    s = ld.squeeze(np.array([4.0, 2.0, 1.0, -6.0]), 3, "negative", 2.0)
    assert s["rose"] == [0]
    np.testing.assert_allclose(s["before"].sum(), 1.0)
    far = ld.squeeze(np.array([1e3, -1e3, 0.0]), 1, "negative", 1.0)
    # log π(1) = −1e3 − log-sum-exp(1e3, −1e3, 0) ≈ −2000: π underflows a double, log π does not.
    assert np.isfinite(far["log_before"]).all() and far["log_before"][1] < -1999
    with pytest.raises(ValueError, match="unknown direction"):
        ld.squeeze(np.zeros(3), 0, "sideways", 1.0)


def test_a_panic_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="internal error.*boom"):
        ld._core._panic("boom")
    with pytest.raises(RuntimeError, match="internal error.*on the thread"):
        ld._core._panic("on the thread", long=True)


def test_config_lists_the_documented_keys_with_defaults_and_ranges(cli, tmp_path):
    keys = ld.config("lm_policy")
    assert list(keys)[:2] == ["seed", "robustness_seeds"]
    names = dict((n, s) for n, s, _ in ld.experiments())
    assert keys["seed"]["default"] == names["lm_policy"]
    assert keys["beta"]["default"] == 0.1 and keys["beta"]["doc"] and keys["beta"]["range"]
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        ld.config("nope")


def test_a_bad_key_in_set_is_the_clis_error(cli, tmp_path):
    printed = cli("run", "squeezing", "--set", "bogus=1", "--out", tmp_path, check=False)
    assert printed.returncode == 2
    message = printed.stderr.strip().removeprefix("error: ")
    with pytest.raises(ValueError) as refused:
        ld.run("squeezing", set={"bogus": 1})
    assert str(refused.value) == message
    with pytest.raises(ValueError, match="robustness_seeds"):
        ld.run("squeezing", set={"robustness_seeds": -1})
    assert not any(tmp_path.iterdir()) or sorted(p.name for p in tmp_path.iterdir()) == [".ldyn.lock"]


def test_an_unwritable_out_is_an_os_error_and_writes_nothing(tmp_path):
    if os.geteuid() == 0:
        # Root writes through permission bits: /proc refuses a new directory to anyone.
        out = "/proc/learning-dynamics-test/out"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        out = locked / "out"
    with pytest.raises(OSError, match="cannot"):
        ld.run("squeezing", out=out)
    assert not os.path.exists(out)


def test_ctrl_c_stops_a_run_cleanly_and_the_next_run_works(tmp_path):
    out = tmp_path / "stopped"
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        ld.run("lm_policy", set={"robustness_seeds": 0}, out=out)
    stopped = time.monotonic() - started
    assert stopped < 3.0, f"stopped {stopped:.1f} s after start (Ctrl-C at 1 s)"
    # As a killed `ldyn run`: the configuration, written last, is not there.
    assert not (out / "lm_policy.config.toml").exists()
    # The stop is cleared: the next run runs.
    assert ld.run("squeezing", set={"robustness_seeds": 1}).claims


def test_sweep_reports_progress_and_pools_as_the_cli_does(cli, tmp_path):
    calls = []
    pooled = ld.sweep("squeezing", seeds=range(0, 3), jobs=2, out=tmp_path / "py", progress=lambda d, n: calls.append((d, n)))
    cli("sweep", "squeezing", "--seeds", "0..3", "--jobs", "2", "--out", tmp_path / "cli")
    assert calls and calls[-1] == (3, 3)
    assert pooled.cells == ["default"] and pooled.seeds == [3] and pooled.failed == [0]
    for f in ("sweep_claims.csv", "sweep.toml", "sweep.png"):
        assert (tmp_path / "py" / f).read_bytes() == (tmp_path / "cli" / f).read_bytes(), f


def test_the_memory_budget_applies_as_in_the_cli(cli, tmp_path):
    printed = cli("--max-memory", "0.001", "run", "lm_policy", "--out", tmp_path, check=False)
    assert printed.returncode == 2
    with pytest.raises(ValueError) as refused:
        ld.run("lm_policy", max_memory=0.001)
    assert str(refused.value) == printed.stderr.strip().removeprefix("error: ")
    with pytest.raises(ValueError, match=r"max_memory must be a number of GiB in \(0, 1e9\]"):
        ld.run("squeezing", max_memory=-1.0)
