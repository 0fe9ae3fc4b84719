"""Parity with `ldyn`: the same experiments give the same numbers and the same bytes,
and one_step gives the numbers of `ldyn akg`'s record."""

import csv
import pathlib
import json
import math

import numpy as np
import pytest

import learning_dynamics as ld

# Two experiments whose runs take milliseconds, on two seeds each.
RUNS = [(name, seed) for name in ("squeezing", "residuals") for seed in (0, 7)]


def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("name,seed", RUNS)
def test_run_tables_equal_the_cli_csvs_value_for_value(name, seed, cli, tmp_path):
    cli("run", name, "--seed", seed, "--out", tmp_path)
    result = ld.run(name, seed=seed)
    assert result.files == []
    assert result.tables, "an experiment writes at least one table"
    for table, columns in result.tables.items():
        with open(tmp_path / f"{table}.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == list(columns), table
        for j, (column, values) in enumerate(columns.items()):
            fields = [row[j] for row in rows[1:]]
            assert len(fields) == len(values), (table, column)
            if isinstance(values, list):
                assert fields == values, (table, column)
                continue
            assert values.dtype in (np.float64, np.int64), (table, column)
            parse = float if values.dtype == np.float64 else int
            expected = [parse(v) if v != "" else math.nan for v in fields]
            assert all(same(a, b) for a, b in zip(values.tolist(), expected)), (table, column)


@pytest.mark.parametrize("name,seed", RUNS)
def test_run_with_out_writes_the_cli_files_byte_for_byte(name, seed, cli, tmp_path):
    cli("run", name, "--seed", seed, "--out", tmp_path / "cli")
    result = ld.run(name, seed=seed, out=tmp_path / "py")
    cli_files = sorted(p.name for p in (tmp_path / "cli").iterdir())
    py_files = sorted(p.name for p in (tmp_path / "py").iterdir())
    assert py_files == cli_files
    # Every file but the directory's lock (the tool's own) is a named output.
    assert sorted(pathlib_name(f) for f in result.files) == [f for f in cli_files if f != ".ldyn.lock"]
    for f in cli_files:
        assert (tmp_path / "py" / f).read_bytes() == (tmp_path / "cli" / f).read_bytes(), f


def pathlib_name(path):
    return path.rsplit("/", 1)[-1]


def test_claims_carry_the_cli_verdicts_and_counts(cli, tmp_path):
    result = ld.run("squeezing", seed=0)
    printed = result.report.splitlines()
    assert printed[0].startswith("squeezing: ")
    for claim, line in zip(result.claims, printed[1:]):
        assert ("[holds at" if claim.holds else "[FAILS at") in line
        assert claim.text in line
        k, n = claim.reruns
        assert f"holds on {k}/{n}]" in claim.text
    assert all(c.seeds is None for c in result.claims), "one seed: no per-seed count"


def akg(cli, tmp_path, *args):
    path = tmp_path / "akg.json"
    cli("akg", *args, "--json", path)
    return json.loads(path.read_text())


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_one_step_equals_the_akg_record_of_a_classifier(kind, cli, tmp_path):
    record = akg(cli, tmp_path, "--model", kind, "--seed", "3", "--eta", "0.001")
    layers = [(np.array(l["weight"]), np.array(l["bias"])) for l in record["model"]["layers"]]
    model = ld.Linear.from_weights(*layers[0]) if kind == "linear" else ld.MLP.from_weights(layers)
    observed = record["observed"]
    step = ld.one_step(
        model,
        update=np.array(record["update"]["x"]),
        objective=ld.SFT(label=record["update"]["label"]),
        observe=np.array([o["x"] for o in observed]),
        eta=record["eta"],
    )
    close = dict(rtol=0, atol=1e-12)
    np.testing.assert_allclose(step.G, record["update"]["G"], **close)
    np.testing.assert_allclose(step.A, [o["A"] for o in observed], **close)
    np.testing.assert_allclose(step.K, [o["K"] for o in observed], **close)
    np.testing.assert_allclose(np.exp(step.log_pi), [o["pi"] for o in observed], **close)
    np.testing.assert_allclose(step.predicted, [o["predicted_delta_log_pi"] for o in observed], **close)
    np.testing.assert_allclose(step.actual, [o["actual_delta_log_pi"] for o in observed], **close)
    # The seeded constructors build the model `ldyn akg` builds from the same seed.
    seeded = ld.Linear(4, 5, seed=3) if kind == "linear" else ld.MLP([4, 8, 5], seed=3)
    for key, value in model.weights.items():
        np.testing.assert_array_equal(seeded.weights[key], value)


def lm_parts(weights):
    """The record's weights as numpy arrays."""
    layers = [(np.array(l["weight"]), np.array(l["bias"])) for l in weights["layers"]]
    return np.array(weights["embed"]), np.array(weights["slots"]), layers


def lm_jacobian(weights, tokens, prompt_len):
    """An independent eNTK reference: the explicit Jacobian ∂z_m/∂θ (V × P per response
    position m) of the record's tiny LM, assembled from the derivatives of its documented
    architecture, u_m = [E[t_{m−W}] + P_0; …; E[t_{m−1}] + P_{W−1}], z_m = W₂ tanh(W₁u_m + b₁) + b₂."""
    embed, slots, ((w1, b1), (w2, b2)) = lm_parts(weights)
    V, d = embed.shape
    W = slots.shape[0]
    jac = []
    for m in range(prompt_len, len(tokens)):
        context = [tokens[m - W + s] if m - W + s >= 0 else weights["pad"] for s in range(W)]
        u = np.concatenate([embed[t] + slots[s] for s, t in enumerate(context)])
        h = np.tanh(w1 @ u + b1)
        B = w2 * (1 - h**2)  # ∂z/∂(W₁u + b₁): V × hidden
        C = B @ w1  # ∂z/∂u: V × W·d
        d_embed = np.zeros((V, V, d))
        d_slots = np.zeros((V, W, d))
        for s, t in enumerate(context):
            d_embed[:, t, :] += C[:, s * d : (s + 1) * d]
            d_slots[:, s, :] += C[:, s * d : (s + 1) * d]
        d_w1 = np.einsum("vh,i->vhi", B, u)
        d_w2 = np.einsum("vw,h->vwh", np.eye(V), h)
        parts = [d_embed, d_slots, d_w1, B, d_w2, np.eye(V)]
        jac.append(np.concatenate([p.reshape(V, -1) for p in parts], axis=1))
    return jac


def test_one_step_equals_the_akg_record_of_the_lm(cli, tmp_path):
    record = akg(cli, tmp_path, "--model", "lm", "--objective", "dpo", "--seed", "2", "--eta", "0.001")
    embed, slots, layers = lm_parts(record["weights"])
    model = ld.TinyLM.from_weights(embed, slots, layers)
    sequences = record["update"]["sequences"]
    prompt = record["update"]["prompt"]
    chosen, rejected = (s["tokens"][s["prompt_len"] :] for s in sequences)
    observed = [(o["tokens"][: o["prompt_len"]], o["tokens"][o["prompt_len"] :]) for o in record["observed"]]
    step = ld.one_step(
        model,
        update=(prompt, chosen, rejected),
        objective=ld.DPO(beta=record["hyperparameters"]["beta"]),
        observe=observed,
        eta=record["eta"],
        reference=ld.TinyLM.from_world(2, stage="sft"),
    )
    close = dict(rtol=0, atol=1e-12)
    for g, s in zip(step.G, sequences):
        np.testing.assert_allclose(g, s["G"], **close)
    for i, o in enumerate(record["observed"]):
        np.testing.assert_allclose(np.exp(step.log_pi[i]), o["pi"], **close)
        np.testing.assert_allclose(step.predicted[i], o["predicted_delta_log_pi"], **close)
        np.testing.assert_allclose(step.actual[i], o["actual_delta_log_pi"], **close)
        # A from the record's π; K from the explicit Jacobians of the record's weights.
        pi = np.array(o["pi"])
        np.testing.assert_allclose(step.A[i], np.eye(pi.shape[1])[None] - pi[:, None, :], **close)
        j_o = lm_jacobian(record["weights"], o["tokens"], o["prompt_len"])
        for s, seq in enumerate(sequences):
            j_u = lm_jacobian(record["weights"], seq["tokens"], seq["prompt_len"])
            k = np.array([[jo @ ju.T for ju in j_u] for jo in j_o])
            # Entries reach about 430 and numpy sums J_o J_uᵀ's P products in another
            # order: they differed by at most 2.3e-13 (seed 2), within the 1e-12.
            np.testing.assert_allclose(step.K[i][s], k, rtol=0, atol=1e-12)
    # The terms add up to the prediction (the decomposition is linear in G).
    for i in range(len(observed)):
        total = sum(step.by_term[t][i] for t in ("chosen", "rejected", "anchor"))
        np.testing.assert_allclose(total, step.predicted[i], rtol=0, atol=1e-12)
    assert {p["class"] for p in step.positions} <= {"peak", "chosen", "third"}
    assert step.positions, "off-policy y⁻ differs from y⁺ somewhere"


def test_the_readme_example_prints_the_numbers_of_ldyn_akg(cli, tmp_path, capsys):
    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert 5 <= len(example.strip().splitlines()) <= 8
    exec(compile(example, "README.md", "exec"), {})
    predicted, actual = capsys.readouterr().out.strip().split("] [")
    record = akg(cli, tmp_path, "--model", "mlp", "--seed", "3", "--eta", "0.001")
    assert json.loads(predicted + "]") == record["observed"][1]["predicted_delta_log_pi"]
    assert json.loads("[" + actual) == record["observed"][1]["actual_delta_log_pi"]
