"""``bench compare BASE NEW``: the regression gate with its noise model, on crafted result sets."""

from __future__ import annotations

import copy

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.report.compare import parse_threshold
from bench.store import write_record

DEVICE = "CPU: Test Xeon (2 cores)"


def record(cid, step_ms=10.0, rss=400e6, temp=1e6, rel_l2=0.1, status="ok", seed=0, pde=None, **case):
    return {"case_id": cid, "suite": "s", "status": status,
            "case": {"method": cid.split("-")[0], "n_per_axis": 8, "seed": seed, "pde": pde or cid,
                     "dim": 1, **case},
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
    for ambiguous in ("10", "1", "150"):
        with pytest.raises(BenchError, match="ambiguous"):
            parse_threshold(ambiguous)
    assert run(tmp_path, BASE, "--threshold", "10") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "'10'" in err and "10%" in err and "0.1" in err


BASE_RUNS = [10.0, 14.0, 9.0, 12.0, 16.0]


def runs(name, times, **kw):
    """Five independent runs (seeds) of one configuration."""
    return [record(f"{name}-s{i}", t, seed=i, pde="heat", **kw) for i, t in enumerate(times)]


def test_noise_beyond_threshold_is_not_a_regression_but_2x_is(tmp_path, capsys):
    """Five runs a side: a +12.5% median shift among runs that spread 9..16 ms is within the noise
    (the CI of the ratio over runs contains 1); a real 2x slowdown is a regression."""
    noisy = runs("pinn", [13.5, 10.0, 16.0, 14.0, 9.5])
    base = write_set(tmp_path / "base", runs("pinn", BASE_RUNS))
    assert main(["compare", str(base), str(write_set(tmp_path / "noisy", noisy)), "--metrics", "time"]) == 0
    out = capsys.readouterr().out
    assert "+12.5%" in out and "within noise" in out and "0 regression(s)" in out and "CI [" in out
    slow = runs("pinn", [2 * t for t in BASE_RUNS])
    assert main(["compare", str(base), str(write_set(tmp_path / "slow", slow)), "--metrics", "time"]) == 1
    out = capsys.readouterr().out
    assert "+100.0%" in out and "1 regression(s)" in out and "over runs 5/5" in out


def test_single_runs_use_the_stated_single_run_rule(tmp_path, capsys):
    """One run a side: the output says which rule judged it; within-run IQR widens the noise."""
    base = [record("pinn-a", 10.0, pde="heat")]
    base[0]["metrics"]["step_ms_iqr"] = 2.0
    new = [record("pinn-a", 12.5, pde="heat")]
    new[0]["metrics"]["step_ms_iqr"] = 2.0
    rc = main(["compare", str(write_set(tmp_path / "b", base)), str(write_set(tmp_path / "n", new)),
               "--metrics", "time"])
    out = capsys.readouterr().out
    assert rc == 0 and "within noise" in out and "single-run rule" in out  # 25% < 10% + 20% + 16%


def test_rel_l2_is_not_compared_across_wall_clock_budgets_with_other_step_counts(tmp_path, capsys):
    def rec(steps_done, rel_l2):
        r = record("pinn-a", 10.0, rel_l2=rel_l2, pde="heat", max_seconds=30.0)
        r["metrics"]["steps_done"] = steps_done
        return r

    base = write_set(tmp_path / "b", [rec(5000, 0.01)])
    assert main(["compare", str(base), str(write_set(tmp_path / "n", [rec(2500, 0.05)])),
                 "--metrics", "error"]) == 0
    out = capsys.readouterr().out
    assert "rel. L2 not compared" in out and "steps differ: 5,000 vs 2,500" in out
    assert main(["compare", str(base), str(write_set(tmp_path / "m", [rec(5000, 0.05)])),
                 "--metrics", "error"]) == 1   # equal steps: compared, and worse
    capsys.readouterr()
