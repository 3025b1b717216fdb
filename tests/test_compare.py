"""``bench compare BASE NEW``: the regression gate, on crafted result sets."""

from __future__ import annotations

import copy

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.report.compare import parse_threshold
from bench.store import write_record

DEVICE = "CPU: Test Xeon (2 cores)"


def record(cid, step_ms=10.0, rss=400e6, temp=1e6, rel_l2=0.1, status="ok"):
    return {"case_id": cid, "suite": "s", "status": status,
            "case": {"method": cid.split("-")[0], "n_per_axis": 8, "seed": 0},
            "metrics": {"step_ms": step_ms, "peak_rss_bytes": rss, "xla_temp_bytes": temp,
                        "rel_l2": rel_l2, "nvml_peak_bytes": None},
            "env": {"device_name": DEVICE}}


BASE = [record("pinn-a", 10.0), record("spinn-b", 2.0, rss=380e6, temp=1e4, rel_l2=0.3),
        record("pinn-c", 50.0, rel_l2=0.05)]


def write_set(root, recs):
    for r in recs:
        write_record(root, r)
    return root


def scaled(recs, **factors):
    """Copies with metrics multiplied: factors = {case_id: {metric: factor}}."""
    out = copy.deepcopy(recs)
    for r in out:
        for k, f in factors.get(r["case_id"].replace("-", "_"), {}).items():
            r["metrics"][k] *= f
    return out


def run(tmp_path, new, *extra):
    base = write_set(tmp_path / "base", BASE)
    newd = write_set(tmp_path / "new", new)
    return main(["compare", str(base), str(newd), *extra])


def test_30pct_step_time_regression_fails(tmp_path, capsys):
    rc = run(tmp_path, scaled(BASE, pinn_a={"step_ms": 1.30}), "--threshold", "10%")
    out = capsys.readouterr().out
    assert rc == 1
    line = [ln for ln in out.splitlines() if "pinn-a" in ln]
    assert len(line) == 1 and "step ms" in line[0] and "+30.0%" in line[0] and "regression" in line[0]
    assert "1 regression(s)" in out


def test_noise_below_threshold_passes(tmp_path, capsys):
    noisy = scaled(BASE, pinn_a={"step_ms": 1.07, "peak_rss_bytes": 1.02},
                   spinn_b={"step_ms": 0.93, "rel_l2": 1.04}, pinn_c={"step_ms": 1.095})
    assert run(tmp_path, noisy, "--threshold", "10%") == 0
    out = capsys.readouterr().out
    assert "0 regression(s)" in out and "pinn-a" not in out    # nothing moved: nothing listed


def test_threshold_is_respected_both_ways(tmp_path, capsys):
    # the same 30% slowdown passes a 50% gate
    assert run(tmp_path, scaled(BASE, pinn_a={"step_ms": 1.30}), "--threshold", "0.5") == 0
    capsys.readouterr()


def test_memory_and_error_regressions_and_improvements(tmp_path, capsys):
    new = scaled(BASE, spinn_b={"xla_temp_bytes": 1.5, "step_ms": 0.5}, pinn_c={"rel_l2": 2.0})
    assert run(tmp_path, new) == 1
    out = capsys.readouterr().out
    rows = {(ln.split(" | ")[0].strip("| "), ln.split(" | ")[1]): ln for ln in out.splitlines()
            if ln.startswith("| ") and " | " in ln}
    assert "regression" in rows["spinn-b", "XLA temp"] and "+50.0%" in rows["spinn-b", "XLA temp"]
    assert "improved" in rows["spinn-b", "step ms"] and "-50.0%" in rows["spinn-b", "step ms"]
    assert "regression" in rows["pinn-c", "rel L2"]
    # choosing only time ignores the memory and error regressions
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--metrics", "time"]) == 0
    capsys.readouterr()


def test_status_regression_fails(tmp_path, capsys):
    new = copy.deepcopy(BASE)
    new[0]["status"] = "oom"
    assert run(tmp_path, new) == 1
    out = capsys.readouterr().out
    assert "| pinn-a | status | ok | OOM |" in out


def test_threshold_parsing_and_bad_input(tmp_path, capsys):
    assert parse_threshold("10%") == pytest.approx(0.10)
    assert parse_threshold("0.25") == pytest.approx(0.25)
    for bad in ("abc", "-5%", "nan"):
        with pytest.raises(BenchError, match="--threshold"):
            parse_threshold(bad)
    assert run(tmp_path, BASE, "--threshold", "ten") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "'ten'" in err and "10%" in err
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "nope")]) == 2
    assert "'" + str(tmp_path / "nope") + "'" in capsys.readouterr().err
    other = write_set(tmp_path / "other", [record("x-z")])
    assert main(["compare", str(tmp_path / "base"), str(other)]) == 2
    assert "no case_id in common" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--metrics", "speed"]) == 2
    assert "valid: time, memory, error" in capsys.readouterr().err
