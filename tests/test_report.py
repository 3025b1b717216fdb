"""Reports: built from crafted records and from a real smoke run; claims verdicts by code."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import mannwhitneyu

from bench.cli import main
from bench.report import claims as mclaims
from bench.report import tables as mt
from bench.report.markdown import build
from bench.store import load_records, write_record

REPO = Path(__file__).resolve().parents[1]
CPU = "CPU: Test Xeon (2 cores)"
GPU = "NVIDIA H100 80GB HBM3"
SECTIONS = ["## Environment", "### Memory sources", "## Results: ", "#### Ratios against",
            "#### Figures", "## Claims", "## Reproduce"]


def make_record(method, n, seed=0, *, pde="heat", dim=2, status="ok", samples=(1.0, 1.1, 1.2, 1.3, 1.4),
                device_name=CPU, dtype="float32", steps=100, suite="synth", **metrics):
    """A record shaped like bench.worker's, with chosen metrics (None = not measured)."""
    device = "gpu" if device_name == GPU else "cpu"
    m = {"step_ms": float(np.median(samples)) if samples else None, "step_ms_samples": list(samples),
         "compile_s": 1.0, "xla_temp_bytes": 1000 * n, "xla_total_bytes": 2000 * n,
         "flops_per_step": 1e6 * n, "peak_rss_bytes": 300e6 + n, "rel_l2": 0.1, "rms_abs": 0.05,
         "train_s": 1.0, "nvml_peak_bytes": None, "nvml_process_peak_bytes": None,
         "device_peak_bytes": None}
    m.update(metrics)
    cid = f"{pde}{dim}-{method}-n{n}-s{seed}-{device}{dtype[-2:]}"
    return {"case_id": cid, "suite": suite, "status": status,
            "error": None if status == "ok" else f"{status} happened",
            "case": {"suite": suite, "pde": pde, "dim": dim, "method": method, "n_per_axis": n,
                     "seed": seed, "steps": steps, "dtype": dtype, "device": device,
                     "pde_params": {}, "method_params": {}, "precision": "highest"},
            "metrics": m, "pde": {"name": pde, "dim": dim, "n_in": dim + 1, "time_dependent": True},
            "size": {"n_per_axis": n, "n_points": n ** (dim + 1)},
            "memory_sources": {"peak_rss_bytes": "host peak RSS", "xla_temp_bytes": "XLA temp"},
            "curve": [{"step": 1, "train_s": 0.1, "loss": 1.0, "rel_l2": 0.9},
                      {"step": steps, "train_s": 1.0, "loss": 0.1,
                       "rel_l2": metrics.get("rel_l2", 0.1) or 0.5}],
            "env": {"device_name": device_name, "backend": device, "dtype": dtype,
                    "matmul_precision": "highest", "x64": dtype == "float64", "git_commit": "abc123",
                    "versions": {"jax": "0.10.2"}, "cpu_model": "Test Xeon", "cpu_count": 2},
            "started": "2026-01-01T00:00:00+0000"}


def parse_tables(text: str) -> dict[str, list[list[dict]]]:
    """Markdown pipe tables under each '### ' heading: heading -> list of tables (rows as dicts)."""
    out, heading, lines = {}, None, text.splitlines()
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("#"):
            heading = ln.lstrip("#").strip()
        if ln.startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            cols = [c.strip() for c in ln.strip("|").split(" | ")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in re.split(r"(?<!\\) \| ", lines[i].strip()[1:-1].strip())]
                rows.append(dict(zip(cols, cells)))
                i += 1
            out.setdefault(heading, []).append(rows)
            continue
        i += 1
    return out


def parse_value(cell: str) -> float:
    units = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
    num, _, unit = cell.rstrip("x").partition(" ")
    return float(num.replace(",", "")) * units.get(unit, 1)


def close(cell: str, value: float) -> bool:
    """The cell shows ``value`` to the 3 significant figures the report prints."""
    return abs(parse_value(cell) - value) <= 5e-3 * abs(value)


def image_links_ok(md_path: Path) -> list[Path]:
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md_path.read_text())
    paths = [md_path.parent / link for link in links]
    for p in paths:
        assert p.is_file(), f"broken image link {p}"
        with Image.open(p) as im:
            assert im.format == "PNG"
            im.verify()
    return paths


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """pinn and spinn at n = 8, 16, 32 (two seeds at 8), pinn OOM at 32, one missing rel_l2;
    the report written by ``bench report`` once for the tests that read it."""
    tmp_path = tmp_path_factory.mktemp("synth")
    recs = [
        make_record("pinn", 8, 0, samples=(1, 2, 3, 4, 100)),
        make_record("pinn", 8, 1, samples=(10, 11, 12, 13, 14), rel_l2=0.3),
        make_record("spinn", 8, 0, samples=(0.5, 0.6, 0.7, 0.8, 0.9), rel_l2=0.2,
                    xla_temp_bytes=100),
        make_record("spinn", 8, 1, samples=(0.5, 0.6, 0.7, 0.8, 0.9), rel_l2=0.4,
                    xla_temp_bytes=100),
        make_record("pinn", 16, samples=(40, 41, 42, 43, 44), rel_l2=None),
        make_record("spinn", 16, samples=(2, 2.1, 2.2, 2.3, 2.4), xla_temp_bytes=200),
        make_record("pinn", 32, status="oom", samples=(), rel_l2=None, peak_rss_bytes=None,
                    xla_temp_bytes=64 * 2**30),
        make_record("spinn", 32, samples=(4, 4.1, 4.2, 4.3, 4.4), xla_temp_bytes=400),
    ]
    res = tmp_path / "results"
    for r in recs:
        write_record(res, r)
    out = tmp_path / "reports" / "synth.md"
    rc = main(["report", "--suite", "synth", "--results", str(res), "--out", str(out)])
    return {"res": res, "recs": recs, "out": out, "rc": rc, "text": out.read_text()}


def test_report_sections_and_numbers_equal_records(synth):
    recs, text = synth["recs"], synth["text"]
    assert synth["rc"] == 0
    for s in SECTIONS:
        assert s in text, s
    table = parse_tables(text)["heat, dim 2 (3 inputs)"][0]
    row = {(r["method"], r["n/axis"]): r for r in table}
    # the unit is a run: the median over runs of each run's median (3 and 12), not the median
    # of the pooled chunks (10.5); within-run IQR: median over runs of each run's chunk IQR
    assert close(row["pinn", "8"]["step ms (median)"], 7.5)
    assert close(row["pinn", "8"]["within-run IQR ms"], 2.0)
    assert row["pinn", "8"]["seeds"] == "2" and row["pinn", "8"]["runs"] == "2"
    lo, hi = (parse_value(c) for c in row["pinn", "8"]["95% CI ms"].strip("[]").split(", "))
    assert 3 <= lo <= 7.5 <= hi <= 12
    assert row["spinn", "16"]["95% CI ms"] == "n/a (1 run)"
    assert close(row["pinn", "8"]["rel L2"], np.median([0.1, 0.3]))
    for r in recs:
        if r["status"] != "ok" or r["case"]["seed"]:
            continue
        cells = row[r["case"]["method"], str(r["case"]["n_per_axis"])]
        assert close(cells["XLA temp"], r["metrics"]["xla_temp_bytes"])
        assert close(cells["GFLOP/step"], r["metrics"]["flops_per_step"] / 1e9)
        assert close(cells["points"], r["size"]["n_points"])
    assert close(row["spinn", "16"]["step ms (median)"], 2.2)
    assert close(row["spinn", "16"]["host RSS"], 300e6 + 16)


def test_missing_metric_is_na_and_failures_are_named(synth):
    text = synth["text"]
    table = parse_tables(text)["heat, dim 2 (3 inputs)"][0]
    row = {(r["method"], r["n/axis"]): r for r in table}
    assert row["pinn", "16"]["rel L2"] == "n/a"          # not measured: n/a, never 0
    oom = row["pinn", "32"]
    assert oom["step ms (median)"] == "OOM" and oom["rel L2"] == "OOM" and oom["status"] == "OOM"
    assert close(oom["XLA temp"], 64 * 2**30)              # the compile-time estimate survives
    assert "NVML process" not in table[0]                  # no source with a value: left out ...
    assert "NVML process, NVML device, allocator peak" in text  # ... and named
    assert "### Cases that did not finish" in text
    summary = [ln for ln in text.splitlines() if ln.startswith("At n/axis = 16")][0]
    assert "fastest: **spinn** (2.2 ms, 1 run: no test)" in summary and "pinn at n=32: OOM" in summary
    assert "lowest rel. L2" not in summary       # pinn's error at n=16 is missing: no winner claimed


def test_ratios_and_no_test_below_three_runs(synth):
    rat = parse_tables(synth["text"])["Ratios against `pinn`"][0]
    row = {r["n/axis"]: r for r in rat}
    assert close(row["16"]["speedup"], 42 / 2.2)
    assert close(row["16"]["FLOP ratio"], 1.0)
    assert close(row["8"]["mem XLA temp"], 8000 / 100)
    assert row["8"][mt.P_COLUMN] == "2 runs: no test" and row["16"][mt.P_COLUMN] == "1 run: no test"
    assert row["8"]["runs (base/method)"] == "2/2"
    assert row["16"]["speedup 95% CI"] == "n/a (1 run)"
    assert row["32"]["speedup"] == "baseline OOM"
    largest = [r for r in rat if r["method vs baseline"].startswith("**largest")][0]
    assert largest["speedup"].startswith(f"**{mt.fmt(42 / 2.2, 'ratio')}**") and "n=16" in largest["speedup"]


def test_test_and_ci_use_one_median_per_run(tmp_path):
    """Three runs a side: Mann-Whitney on the three run medians (the 15 chunks would give a far
    smaller p); the speedup CI comes from resampling runs."""
    pinn = [(10, 11, 12, 13, 14), (20, 21, 22, 23, 24), (14, 15, 16, 17, 18)]
    spinn = [(1, 1.1, 1.2, 1.3, 1.4), (2, 2.1, 2.2, 2.3, 2.4), (1.5, 1.6, 1.7, 1.8, 1.9)]
    recs = [make_record("pinn", 8, i, samples=s) for i, s in enumerate(pinn)] + \
        [make_record("spinn", 8, i, samples=s) for i, s in enumerate(spinn)]
    aggs = mt.aggregate(recs)
    rat = mt.ratios(aggs, "pinn").iloc[0]
    medians = [float(np.median(x)) for x in pinn], [float(np.median(x)) for x in spinn]
    assert rat["p_value"] == pytest.approx(mannwhitneyu(*medians).pvalue)
    assert rat["p_value"] != pytest.approx(mannwhitneyu([x for s in pinn for x in s],
                                                        [x for s in spinn for x in s]).pvalue)
    assert rat["speedup_lo"] <= np.median(medians[0]) / np.median(medians[1]) <= rat["speedup_hi"]
    a = aggs.set_index("method").loc["pinn"]
    assert a["n_runs"] == 3 and a["step_ms"] == 16 and a["step_ms_lo"] <= 16 <= a["step_ms_hi"]
    assert mt.bootstrap_ci([1.0, 2.0, 3.0]) == mt.bootstrap_ci([1.0, 2.0, 3.0])  # seeded


def test_ratio_format_has_no_exponent():
    assert mt.fmt(1225.4, "ratio") == "1,225x" and mt.fmt(19.09, "ratio") == "19.1x"


def test_run_summary_and_report_agree(tmp_path):
    """cli.summary_table and the report table print the same ms/step for the same records, and
    the summary keeps devices and dtypes apart."""
    from rich.console import Console

    from bench import cli

    recs = [make_record("pinn", 8, 0, samples=(1, 2, 3, 4, 100)), make_record("pinn", 8, 1, samples=(10, 11, 12)),
            make_record("pinn", 8, 0, samples=(7, 7, 7), dtype="float64"),
            make_record("pinn", 8, 0, samples=(5, 5, 5), device_name=GPU)]
    console = Console(width=300, record=True)
    console.print(cli.summary_table(recs))
    lines = [ln.split("│") for ln in console.export_text().splitlines() if ln.count("│") > 5]
    got = sorted((c[16].strip(), c[17].strip(), c[5].strip()) for c in lines)
    assert got == sorted([("float32", CPU, "7"), ("float64", CPU, "7"), ("float32", GPU, "5")])
    rep = build(recs, "synth", tmp_path / "r.md", tmp_path, figures=False)
    cpu = parse_tables(rep.text.split("## Results: ")[1 + [GPU in p[:40] for p in
                                                          rep.text.split("## Results: ")[1:]].index(False)])
    cells = {r["dtype"]: r["step ms (median)"] for r in cpu["heat, dim 2 (3 inputs)"][0]}
    assert cells == {"float32": "7", "float64": "7"}


def test_figures_are_pngs_and_links_resolve(synth):
    out = synth["out"]
    paths = image_links_ok(out)
    assert {p.name.rsplit("-", 1)[1] for p in paths} == {"scaling.png", "curves.png", "pareto.png"}
    assert all(p.parent == out.parent / "synth" for p in paths)


def test_devices_are_never_mixed(tmp_path):
    res = tmp_path / "results"
    write_record(res, make_record("pinn", 8, device_name=GPU, samples=(5, 5, 5, 5, 5)))
    write_record(res, make_record("spinn", 8, device_name=GPU, samples=(1, 1, 1, 1, 1)))
    write_record(res, make_record("spinn", 8, device_name=CPU, samples=(9, 9, 9, 9, 9)))
    rep = build(load_records(res), "synth", tmp_path / "r.md", res, figures=False)
    assert rep.text.count("## Results: ") == 2
    parts = rep.text.split("## Results: ")
    gpu_part = [p for p in parts if p.startswith(GPU)][0]
    cpu_part = [p for p in parts if p.startswith(CPU)][0]
    gpu_rows = parse_tables(gpu_part)["heat, dim 2 (3 inputs)"][0]
    assert {r["step ms (median)"] for r in gpu_rows} == {"5", "1"}
    assert "9" not in {r["step ms (median)"] for r in gpu_rows}
    assert close(parse_tables(gpu_part)["Ratios against `pinn`"][0][0]["speedup"], 5.0)
    assert "n/a: no `pinn` records" in cpu_part        # no CPU baseline: no cross-device ratio


# ---------------------------------------------------------------- claims verdicts

CLAIM_HEAD = ",".join(mclaims.CSV_COLUMNS)


def claims_file(tmp_path, rows: list[dict]) -> Path:
    import csv

    p = tmp_path / "claims.csv"
    with open(p, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=mclaims.CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({"paper": "P", "source": "Tab. 1", "setting": "s", "error_definition": "e",
                        "comparison": ">=", "device_class": "any", **r})
    return p


def verdicts(tmp_path, records, rows):
    claims = mclaims.load_claims(claims_file(tmp_path, rows))
    aggs = mt.aggregate(records)
    return {v.claim.claim_id: v for v in mclaims.evaluate_all(claims, aggs, records)}


def speed_pair(n, pinn_ms, spinn_ms, **kw):
    return [make_record("pinn", n, samples=(pinn_ms,) * 5, **kw),
            make_record("spinn", n, samples=(spinn_ms,) * 5, **kw)]


def test_verdicts_reproduced_not_reproduced_not_measurable(tmp_path):
    recs = speed_pair(8, 10.0, 1.0) + speed_pair(16, 40.0, 2.0)   # 10x and 20x
    ratio = {"metric": "speedup", "baseline_method": "pinn", "method": "spinn"}
    v = verdicts(tmp_path, recs, [
        {"claim_id": "meets", **ratio, "value": 15},
        {"claim_id": "misses", **ratio, "value": 25},
        {"claim_id": "gpu", **ratio, "value": 15, "device_class": "gpu"},
        {"claim_id": "nomethod", "metric": "speedup", "baseline_method": "pinn", "method": "kfac",
         "value": 2},
        {"claim_id": "size", **ratio, "value": 2, "n_per_axis": 64},
        {"claim_id": "budget", "metric": "rel_l2", "method": "spinn", "value": 0.5, "comparison": "<=",
         "min_steps": 50000},
        {"claim_id": "err-ok", "metric": "rel_l2", "method": "spinn", "value": 0.15, "comparison": "<="},
        {"claim_id": "err-bad", "metric": "rel_l2", "method": "spinn", "value": 0.05, "comparison": "<="},
    ])
    assert v["meets"].verdict == mclaims.REPRODUCED
    assert v["meets"].measured_value == pytest.approx(20.0)       # "up to": the largest ratio
    assert v["meets"].where["n_per_axis"] == 16
    assert v["misses"].verdict == mclaims.NOT_REPRODUCED and "misses >= 25x" in v["misses"].why
    assert v["gpu"].verdict == mclaims.NOT_MEASURABLE and "GPU claim" in v["gpu"].why
    assert v["gpu"].measured.startswith("20x")                    # shown, but not a reproduction
    assert v["nomethod"].verdict == mclaims.NOT_MEASURABLE and "'kfac'" in v["nomethod"].why
    assert v["size"].verdict == mclaims.NOT_MEASURABLE and "n_per_axis=64" in v["size"].why
    assert v["budget"].verdict == mclaims.NOT_MEASURABLE and "50,000" in v["budget"].why
    assert v["err-ok"].verdict == mclaims.REPRODUCED
    assert v["err-bad"].verdict == mclaims.NOT_REPRODUCED


def test_verdict_gpu_records_and_memory_source_order(tmp_path):
    recs = []
    for n, (pm, sm) in {32: (60.0, 1.0), 64: (200.0, 2.0)}.items():
        recs += [make_record("pinn", n, samples=(pm,) * 5, device_name=GPU,
                             nvml_process_peak_bytes=20e9, nvml_peak_bytes=21e9),
                 make_record("spinn", n, samples=(sm,) * 5, device_name=GPU,
                             nvml_process_peak_bytes=None, nvml_peak_bytes=0.7e9)]
    v = verdicts(tmp_path, recs, [
        {"claim_id": "speed", "metric": "speedup", "baseline_method": "pinn", "method": "spinn",
         "value": 62, "device_class": "gpu"},
        {"claim_id": "mem", "metric": "memory_ratio", "baseline_method": "pinn", "method": "spinn",
         "value": 29, "device_class": "gpu"},
    ])
    assert v["speed"].verdict == mclaims.REPRODUCED and v["speed"].measured_value == pytest.approx(100)
    # the process peak is missing for spinn, so the ratio falls back to the device peak on both sides
    assert v["mem"].where["field"] == "nvml_peak_bytes"
    assert v["mem"].measured_value == pytest.approx(30.0) and v["mem"].verdict == mclaims.REPRODUCED


def test_verdict_failures(tmp_path):
    recs = [make_record("pinn", 8, status="oom", samples=(), rel_l2=None),
            make_record("spinn", 8, samples=(1,) * 5),
            make_record("kfac", 8, status="nan", samples=(), rel_l2=None)]
    v = verdicts(tmp_path, recs, [
        {"claim_id": "oom", "metric": "speedup", "baseline_method": "pinn", "method": "spinn", "value": 2},
        {"claim_id": "nan", "metric": "rel_l2", "method": "kfac", "value": 0.1, "comparison": "<="},
    ])
    assert v["oom"].verdict == mclaims.NOT_MEASURABLE and "baseline OOM" in v["oom"].why
    assert v["nan"].verdict == mclaims.NOT_REPRODUCED and "diverged" in v["nan"].why


def test_reference_claims_csv_is_complete_and_cited():
    claims = mclaims.load_claims(REPO / "results" / "reference" / "claims.csv")
    ids = {c.claim_id for c in claims}
    assert {"spinn-speedup-62x", "spinn-memory-29x", "spinn-flops-1394x", "kfac-vs-adam-heat4d",
            "kfac-vs-adam-poisson2d"} <= ids
    assert any(c.method == "causal" for c in claims) and any(c.method == "nsm" for c in claims)
    for c in claims:
        assert c.paper and c.source and c.setting and c.error_definition, c.claim_id
    mem = [c for c in claims if c.claim_id == "spinn-memory-29x"][0]
    assert "SECONDARY" in mem.source and mem.value == 29 and mem.device_class == "gpu"


def test_bad_claims_and_bad_cli_input(tmp_path, synth, capsys):
    with pytest.raises(ValueError, match="comparison '>>'"):
        mclaims.load_claims(claims_file(tmp_path, [{"claim_id": "x", "metric": "rel_l2", "method": "pinn",
                                                    "value": 1, "comparison": ">>"}]))
    res = synth["res"]
    assert main(["report", "--suite", "nosuch", "--results", str(res)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'nosuch'" in err and "synth" in err
    assert main(["report", "--suite", "synth", "--results", str(res), "--baseline", "adam"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'adam'" in err and "pinn, spinn" in err


# ---------------------------------------------------------------- a real smoke run

@pytest.fixture(scope="module")
def smoke(smoke_run):
    """The session's one ``bench run --suite smoke --report`` (tests/conftest.py): its cwd."""
    return smoke_run[0]


@pytest.mark.slow
def test_report_from_real_smoke_run(smoke):
    md = smoke / "reports" / "smoke.md"
    text = md.read_text()
    for s in SECTIONS:
        assert s in text, s
    recs = load_records(smoke / "results", "smoke")
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs)
    table = parse_tables(text)["heat, dim 1 (2 inputs)"][0]
    row = {(r["method"], r["n/axis"]): r for r in table}
    for r in recs:
        m, cells = r["metrics"], row[r["case"]["method"], str(r["case"]["n_per_axis"])]
        assert close(cells["step ms (median)"], m["step_ms"])   # one seed: pooled = the record's
        assert close(cells["rel L2"], m["rel_l2"])
        assert close(cells["XLA temp"], m["xla_temp_bytes"])
        assert close(cells["host RSS"], m["peak_rss_bytes"])
        assert close(cells["compile s"], m["compile_s"])
    assert "CPU" in text.split("## Results: ")[1].splitlines()[0]
    # 3 section figures plus one (t, x) snapshot per (1+1)-d record (bench.report.inverse)
    assert len(image_links_ok(md)) == 3 + sum(1 for r in recs if r.get("snapshot"))
    assert all(r.get("snapshot") for r in recs)
    assert "python -m bench run --suite smoke --results results --device cpu" in text
    assert "python -m bench report --suite smoke" in text


# ---------------------------------------------------------------- figure helpers

def test_scaling_exponent_and_legend_match_a_power_law():
    import pandas as pd

    from bench.report import figures as mfig

    x = np.array([64.0, 512.0, 4096.0, 32768.0])
    assert mfig.scaling_exponent(x, 3.0 * x ** 1.5) == pytest.approx(1.5)
    assert mfig.scaling_exponent([64.0], [1.0]) is None          # one size: no exponent
    df = pd.DataFrame({"label": ["pinn"] * 4 + ["spinn"] * 4, "n_points": list(x) * 2,
                       "step_ms": list(2e-3 * x) + list(0.5 * x ** (1 / 3))})
    labels = set(mfig._legend_labels(df, "step_ms"))
    assert labels == {"pinn (slope 1.00)", "spinn (slope 0.33)"}


def test_pareto_front_against_brute_force():
    from bench.report.figures import pareto_front

    rng = np.random.default_rng(0)
    pts = [tuple(p) for p in rng.uniform(0.1, 10, size=(40, 2))]
    dominated = {p for p in pts for q in pts
                 if q != p and q[0] <= p[0] and q[1] <= p[1]}
    assert set(pareto_front(pts)) == set(pts) - dominated


def test_report_tables_only_the_claims_about_methods_run_here(tmp_path):
    """A pinn/spinn report lists the SPINN claim and counts the KFAC/NSM claims in one line."""
    recs = speed_pair(8, 10.0, 1.0)
    for r in recs:
        write_record(tmp_path / "results", r)
    ratio = {"metric": "speedup", "baseline_method": "pinn"}
    path = claims_file(tmp_path, [
        {"claim_id": "spinn-fast", **ratio, "method": "spinn", "value": 5},
        {"claim_id": "kfac-fast", **ratio, "method": "kfac", "value": 2},
        {"claim_id": "kfac-err", "metric": "rel_l2", "method": "kfac", "value": 0.1, "comparison": "<="},
        {"claim_id": "nsm-fast", "metric": "speedup", "baseline_method": "nsm-fdpinn", "method": "nsm",
         "value": 10},
    ])
    rep = build(load_records(tmp_path / "results"), "synth", tmp_path / "r.md", tmp_path / "results",
                claims_path=path, figures=False)
    claims = rep.text.split("## Claims")[1].split("## Reproduce")[0]
    assert "`spinn-fast`" in claims and "**reproduced**" in claims
    assert "kfac-fast" not in claims and "nsm-fast" not in claims
    assert "Not listed: 3 claim(s) about methods not run here (kfac: 2, nsm: 1)" in claims
    assert "Summary: 1 reproduced, 3 not listed (method not run here)." in claims
    assert rep.claim_counts == {"reproduced": 1, "not listed (method not run here)": 3}
    assert len(rep.verdicts) == 4  # every claim is still evaluated (for `bench report` callers)


def test_min_steps_counts_the_steps_trained_not_the_budget(tmp_path):
    """A wall-clock budget stops a 10^6-step budget at 780 steps: a claim that needs 16k steps
    is not measurable there (it was judged 'not reproduced' against the budget)."""
    recs = [make_record("kfac", 5, steps=1_000_000, steps_done=780, rms_abs=1e-2),
            make_record("kfac", 6, steps=1_000_000, steps_done=20_000, rms_abs=1e-5)]
    claim = {"metric": "rms_abs", "method": "kfac", "value": 5.8e-5, "comparison": "<=",
             "min_steps": 16000}
    v = verdicts(tmp_path, recs[:1], [{"claim_id": "short", **claim}])["short"]
    assert v.verdict == mclaims.NOT_MEASURABLE and "ran 780 steps" in v.why and "16,000" in v.why
    v = verdicts(tmp_path, recs, [{"claim_id": "long", **claim}])["long"]
    assert v.verdict == mclaims.REPRODUCED and v.where["n_per_axis"] == 6


def test_report_baseline_defaults_to_the_suites_own(tmp_path):
    """kfac-poisson-cpu runs no `pinn`: its report takes ratios against the suite's declared
    baseline (pinn-fl, the Adam-trained PINN), and an explicit --baseline still wins."""
    from bench.report.cli import build_report

    results = tmp_path / "results"
    for m in ("pinn-fl", "kfac"):
        write_record(results, make_record(m, 30, pde="poisson", suite="kfac-poisson-cpu"))
    rep = build_report("kfac-poisson-cpu", results, tmp_path / "r.md", figures=False)
    assert "Baseline for ratios: `pinn-fl`" in rep.text and "kfac vs pinn-fl" in rep.text
    rep = build_report("kfac-poisson-cpu", results, tmp_path / "r.md", baseline="kfac", figures=False)
    assert "Baseline for ratios: `kfac`" in rep.text
    write_record(results, make_record("spinn", 8, suite="no-such-suite"))
    write_record(results, make_record("pinn", 8, suite="no-such-suite"))
    rep = build_report("no-such-suite", results, tmp_path / "s.md", figures=False)  # no suite file
    assert "Baseline for ratios: `pinn`" in rep.text


def test_a_ratio_stated_at_one_size_is_decided_there_or_by_a_rising_trend(tmp_path):
    """'62x' stated at 64 points per axis: one smaller size decides nothing either way (10x and
    100x at 16 are both not measurable); 10x at 64 refutes it; a ratio rising over two smaller
    sizes to 100x gives a lower bound at 64 that reproduces it, a falling one does not."""
    claim = {"claim_id": "c", "metric": "speedup", "baseline_method": "pinn", "method": "spinn",
             "value": 62, "stated_n_per_axis": 64}
    for pinn_ms in (10.0, 100.0):
        v = verdicts(tmp_path, speed_pair(16, pinn_ms, 1.0), [claim])["c"]
        assert v.verdict == mclaims.NOT_MEASURABLE and "stated at n/axis 64" in v.why
    assert verdicts(tmp_path, speed_pair(64, 10.0, 1.0), [claim])["c"].verdict == mclaims.NOT_REPRODUCED
    rising = speed_pair(8, 20.0, 1.0) + speed_pair(16, 100.0, 1.0)
    v = verdicts(tmp_path, rising, [claim])["c"]
    assert v.verdict == mclaims.REPRODUCED and "rising with size" in v.why
    falling = speed_pair(8, 200.0, 1.0) + speed_pair(16, 100.0, 1.0)
    assert verdicts(tmp_path, falling, [claim])["c"].verdict == mclaims.NOT_MEASURABLE


def test_a_table_mixing_code_versions_is_marked(tmp_path):
    same = [make_record("pinn", 8), make_record("spinn", 8)]
    assert "Mixed code versions" not in build(same, "synth", tmp_path / "a.md", tmp_path, figures=False).text
    mixed = [make_record("pinn", 8), make_record("spinn", 8)]
    mixed[1]["env"]["git_commit"] = "def456"
    text = build(mixed, "synth", tmp_path / "b.md", tmp_path, figures=False).text
    assert "**Mixed code versions:** the records of this table come from 2 git commits (abc123, def456)" in text


# ---------------------------------------------------------------- figures a reader can trust

def test_one_colour_per_method_everywhere_and_variants_share_it():
    from bench.report import figures as mfig

    assert mfig.method_color("pinn") == mfig.method_color("pinn [width=64]") != mfig.method_color("spinn")
    assert mfig.method_color("some-new-method") == mfig.method_color("some-new-method")  # stable hash
    styles = mfig._styles(["spinn", "pinn [a=1]", "pinn [a=2]"])
    assert styles["pinn [a=1]"][0] == styles["pinn [a=2]"][0] and styles["pinn [a=1]"][1] != styles["pinn [a=2]"][1]
    assert len(set(mfig.METHOD_COLORS.values())) == len(mfig.METHOD_COLORS)


def test_scaling_figure_hollow_unfitted_estimates_units_title_and_band(tmp_path, monkeypatch):
    """pinn's OOM size is drawn hollow and left out of its slope; memory in GiB; the title names
    suite, PDE and device; step time carries a band; a one-size section draws nothing."""
    import matplotlib.axes

    from bench.report import figures as mfig

    recs = [make_record("pinn", n, s, samples=(n * (1 + s / 10),) * 3) for n in (8, 16) for s in range(3)]
    recs += [make_record("pinn", 32, status="oom", samples=(), xla_temp_bytes=64 * 2**30)]
    recs += [make_record("spinn", n, samples=(1.0,) * 3) for n in (8, 16, 32)]
    aggs = mt.aggregate(recs)
    calls = {"plot": [], "fill": 0}
    real_plot, real_fill = matplotlib.axes.Axes.plot, matplotlib.axes.Axes.fill_between

    def plot(self, *a, **k):
        calls["plot"].append((self.get_title(), k.get("mfc"), k.get("label"), list(a[0]) if a else []))
        return real_plot(self, *a, **k)

    def fill(self, *a, **k):
        calls["fill"] += 1
        return real_fill(self, *a, **k)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", plot)
    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", fill)
    title = "synth: heat, dim 2 - " + CPU
    fig_path = tmp_path / "s.png"
    assert mfig.scaling_figure(aggs, fig_path, title)
    n32 = 32 ** 3
    hollow = [c for c in calls["plot"] if c[1] == "none"]
    assert hollow and all(c[3] == [n32] for c in hollow)              # only the OOM size is hollow
    filled_pinn = [c for c in calls["plot"] if c[1] is None and c[2] and c[2].startswith("pinn")]
    assert filled_pinn and all(n32 not in c[3] for c in filled_pinn)  # never on the fitted line
    assert calls["fill"] >= 2                                          # a band per method on step time
    # XLA temp grows like n_per_axis (slope 1/3 in points) at the sizes that ran; the 64 GiB
    # estimate of the OOM size would make it steep if it were fitted
    # (step time and XLA bytes: 0.33; host RSS: flat)
    legend = {c[2] for c in calls["plot"] if c[2] and c[2].startswith("pinn (")}
    assert legend == {"pinn (slope 0.33)", "pinn (slope 0.00)"}
    one_size = mt.aggregate([make_record("pinn", 8), make_record("spinn", 8)])
    assert not mfig.scaling_figure(one_size, tmp_path / "one.png", title)
    assert not mfig.pareto_figure(one_size.iloc[:1], tmp_path / "p.png")
    assert mfig.byte_unit(3 * 2**30) == (2**30, "GiB") and mfig.byte_unit(5 * 2**20) == (2**20, "MiB")


def test_figure_titles_name_suite_pde_and_device(synth):
    from PIL import Image

    paths = image_links_ok(synth["out"])
    assert paths
    text = synth["out"].read_text()
    assert "no data to plot" not in text
    for p in paths:
        with Image.open(p) as im:
            assert im.size[0] > 300


def test_a_variant_label_names_a_default_setting_as_default():
    """The eps schedule the suite left at its default is labelled ``eps=default`` beside its
    ``eps=[0.0]`` ablation, never ``eps=None``."""
    import pandas as pd

    from bench.variants import config_json, variant_labels

    a = make_record("causal", 32)
    b = make_record("causal", 32, seed=1)
    b["case"]["method_params"] = {"eps": [0.0]}
    rows = pd.DataFrame([{"device_name": CPU, "pde": "heat", "dim": 2, "method": "causal",
                          "config": config_json(r["case"])} for r in (a, b)])
    assert list(variant_labels(rows)) == ["eps=default", "eps=[0.0]"]
