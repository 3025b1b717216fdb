"""Inverse mode: a PINN recovers heat's diffusivity from observations of the exact solution,
observations are drawn as specified, the suite's [inverse] table expands and validates."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import methods
import pdes
from bench.suite import SuiteError, parse
from methods.inverse import draw_observations, time_to_target


def test_pinn_recovers_the_diffusivity_of_heat_1d():
    pde = pdes.build("heat", 1)  # kappa* = 0.25
    M = methods.get("pinn")(pde, 16, {"width": 32, "depth": 3, "lr": 3e-3})
    M.set_inverse({"learn": ["kappa"], "init": {"kappa": 0.0}, "n_data": 500, "noise": 0.0,
                   "data_weight": 1.0}, seed=0)
    state = M.init(jax.random.PRNGKey(0))
    assert float(state["params"]["coef"]["kappa"]) == 0.0
    batch = M.sample(jax.random.PRNGKey(1))

    def run(state):
        return jax.lax.scan(lambda s, _: (M.step(s, batch)[0], None), state, None, length=3000)[0]

    state, metrics = M.step(jax.jit(run)(state), batch)
    kappa = float(state["params"]["coef"]["kappa"])
    assert abs(kappa - 0.25) / 0.25 < 0.01, kappa
    assert float(metrics["coef_kappa_rel_err"]) == pytest.approx(abs(float(metrics["coef_kappa"]) - 0.25) / 0.25)
    assert "data" in metrics and "coef_max_rel_err" in M.curve_keys
    # predict sees the network only
    X = np.array([[0.5, 0.3]], np.float32)
    assert M.predict(state, X).shape == (1,)


def test_observations_follow_the_seed_and_the_noise_level():
    pde = pdes.build("heat", 1)
    X, u = draw_observations(pde, 4000, 0.0, 3)
    np.testing.assert_allclose(u, pde.exact([X[:, 0], X[:, 1]], np))
    X2, un = draw_observations(pde, 4000, 0.01, 3)
    np.testing.assert_array_equal(X, X2)
    rel = np.std(un - u) / np.std(u)
    assert 0.009 < rel < 0.011
    assert not np.array_equal(draw_observations(pde, 10, 0.0, 4)[0], X[:10])


def test_time_to_target_is_the_first_curve_point_below_it():
    curve = [{"step": 1, "train_s": 0.1, "coef_max_rel_err": 0.5},
             {"step": 5, "train_s": 0.4, "loss": 1.0},
             {"step": 9, "train_s": 0.9, "coef_max_rel_err": 0.009},
             {"step": 12, "train_s": 1.2, "coef_max_rel_err": 0.001}]
    assert time_to_target(curve, 0.01) == {"time_to_coef_target_s": 0.9, "steps_to_coef_target": 9}
    assert time_to_target(curve, 1e-4)["time_to_coef_target_s"] is None


BASE = {"pde": "burgers", "dim": 1, "methods": ["pinn", "spinn"], "n_per_axis": 8, "steps": 10}


def test_inverse_table_expands_noise_levels_into_cases_and_keeps_forward_ids():
    raw = {**BASE, "inverse": {"learn": ["lambda_1", "lambda_2"], "init": {"lambda_1": 0.0},
                               "n_data": 2000, "noise": [0.0, 0.01]}}
    s = parse(raw, "t")
    assert len(s.cases) == 4
    assert sorted({c.inverse["noise"] for c in s.cases}) == [0.0, 0.01]
    assert all(c.inverse["init"] == {"lambda_1": 0.0, "lambda_2": 0.0} for c in s.cases)
    assert all("-inv-" in c.case_id for c in s.cases) and len({c.case_id for c in s.cases}) == 4
    fwd = parse(BASE, "t").cases[0]
    assert fwd.inverse == {} and "-inv" not in fwd.case_id


@pytest.mark.parametrize("inv,match", [
    ({"learn": ["nu"]}, r"unknown coefficient 'nu' for PDE 'burgers' \(valid: lambda_1, lambda_2\)"),
    ({"learn": ["lambda_1"], "n_data": 0}, "n_data = 0 must be a positive integer"),
    ({"learn": ["lambda_1"], "noise": [0.0, -0.01]}, "noise = -0.01 must be a non-negative"),
    ({"learn": ["lambda_1"], "init": {"kappa": 1.0}}, r"init.kappa: not a learned coefficient \(valid: lambda_1\)"),
    ({"learn": ["lambda_1"], "ndata": 5}, "unknown key 'ndata'"),
    ({"learn": []}, "non-empty list"),
])
def test_bad_inverse_settings_are_one_line_errors(inv, match):
    with pytest.raises(SuiteError, match=match) as e:
        parse({**BASE, "inverse": inv}, "t")
    assert "\n" not in str(e.value)


def test_a_method_without_inverse_mode_is_named_with_the_valid_ones():
    with pytest.raises(SuiteError, match=r"method 'kfac' cannot: .*\(valid: .*pinn.*spinn") as e:
        parse({**BASE, "pde": "heat", "methods": ["kfac"], "inverse": {"learn": ["kappa"]}}, "t")
    assert "\n" not in str(e.value) and "pinn-torch" not in str(e.value).split("valid:")[1]


def test_an_inverse_case_runs_end_to_end_and_records_coefficients_and_a_snapshot(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    suite = tmp_path / "inv.toml"
    suite.write_text('pde = "heat"\ndim = 1\nmethods = ["spinn"]\nn_per_axis = 8\nsteps = 3\n'
                     'eval_points = 64\ntiming_samples = 1\n[method.spinn]\nwidth = 8\ndepth = 1\nrank = 4\n'
                     '[inverse]\nlearn = ["kappa"]\ninit = {kappa = 0.5}\nn_data = 50\nnoise = 0.01\n'
                     'target_coef_err = 10.0\n')
    env = {**os.environ, "PINNBENCH_CACHE": str(tmp_path / "cache")}
    p = subprocess.run([sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results",
                        str(tmp_path / "res"), "--device", "cpu"], cwd=root, env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    (f,) = (tmp_path / "res" / "inv").glob("*.json")
    r = json.loads(f.read_text())
    m = r["metrics"]
    assert r["status"] == "ok", r.get("error")
    assert m["final_coef_kappa_rel_err"] == pytest.approx(abs(m["final_coef_kappa"] - 0.25) / 0.25, rel=1e-5)
    assert m["time_to_coef_target_s"] == r["curve"][0]["train_s"]  # 10.0 is met at once
    assert all("coef_kappa" in pt for pt in r["curve"])
    assert r["pde"]["coefficients"] == {"kappa": 0.25}
    s = r["snapshot"]
    assert np.asarray(s["pred"]).shape == np.asarray(s["exact"]).shape == (41, 81)
