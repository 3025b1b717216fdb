"""The report's inverse section: the coefficient table (with the paper's figures), the
convergence figure and the (t, x) snapshots, from records."""

from __future__ import annotations

import numpy as np
import pytest

from bench.report import inverse


def record(method, noise, lam1, lam2, snapshot=False):
    inv = {"learn": ["lambda_1", "lambda_2"], "init": {}, "n_data": 2000, "noise": noise}
    nu = 0.01 / np.pi
    curve = [{"step": s, "train_s": 0.1 * s, "coef_lambda_1_rel_err": 1.0 / s, "coef_lambda_2_rel_err": 2.0 / s}
             for s in (1, 10, 100)]
    r = {"case_id": f"burgers1-inv-{method}-{noise}", "status": "ok",
         "case": {"pde": "burgers", "dim": 1, "method": method, "n_per_axis": 32, "seed": 0, "inverse": inv},
         "pde": {"coefficients": {"lambda_1": 1.0, "lambda_2": nu}},
         "metrics": {"final_coef_lambda_1": lam1, "final_coef_lambda_1_rel_err": abs(lam1 - 1.0),
                     "final_coef_lambda_2": lam2, "final_coef_lambda_2_rel_err": abs(lam2 - nu) / nu,
                     "time_to_coef_target_s": 1.0, "train_s": 10.0, "steps_done": 100, "rel_l2": 0.01},
         "curve": curve}
    if snapshot:
        t, x = np.linspace(0, 1, 5), np.linspace(-1, 1, 7)
        ex = -np.sin(np.pi * x)[None, :] * np.exp(-t)[:, None]
        r["snapshot"] = {"axes": [t.tolist(), x.tolist()], "exact": ex.tolist(), "pred": (ex + 0.01).tolist()}
    return r


def test_coefficient_rows_carry_learned_values_errors_and_the_paper(tmp_path):
    recs = [record("pinn", 0.0, 0.99, 0.0032), record("spinn", 0.01, 1.02, 0.0031),
            {"status": "ok", "case": {"pde": "heat", "inverse": {}}}]
    df = inverse.coefficient_rows(recs)
    assert len(df) == 4
    row = df[(df.method == "spinn") & (df.coefficient == "lambda_1")].iloc[0]
    assert row.learned == 1.02 and row.rel_err == pytest.approx(0.02)
    assert row.paper == inverse.PAPER[("burgers", 0.01)]["lambda_1"]
    assert row.paper_rel_err == pytest.approx(abs(row.paper - 1.0))
    table = inverse.coefficient_table(df)
    assert "1%" in table and "2.00%" in table


def test_section_writes_the_convergence_and_snapshot_figures(tmp_path):
    recs = [record("pinn", 0.0, 0.99, 0.0032, snapshot=True), record("spinn", 0.01, 1.02, 0.0031)]
    text, figs = inverse.section(recs, tmp_path / "figs", tmp_path)
    assert [p.name for p in figs] == ["fig-inverse-coefficients.png", "fig-snapshot-burgers1-inv-pinn-0.0.png"]
    assert all(p.stat().st_size > 1000 for p in figs)
    assert "identified coefficients" in text and "figs/fig-snapshot" in text
    assert inverse.section([{"status": "ok", "case": {"pde": "heat"}}], tmp_path, tmp_path) == ("", [])
