"""Claims verdicts on synthetic records: the claim's setting, its variant, its tolerance, and
FLOPs with the methods' loop corrections (bench.report.claims, bench.measure.xla)."""

from __future__ import annotations

import csv

import pytest
from test_report import claims_file, close, make_record, parse_tables

from bench.cli import main
from bench.measure.xla import step_flops, uncounted_custom_calls
from bench.report import claims as mclaims
from bench.report import tables as mt
from bench.report.markdown import build
from bench.store import flatten, write_record

SCHEDULE = [0.01, 0.1, 1.0, 10.0, 100.0]


def verdict(tmp_path, records, row):
    claims = mclaims.load_claims(claims_file(tmp_path, [{"claim_id": "c", **row}]))
    return mclaims.evaluate(claims[0], mt.aggregate(records), records)


def with_settings(rec, *, pde_params=None, params=None, suite_params=None, n_params=None, max_seconds=None):
    """``rec`` with resolved PDE/method parameters (``params``: what the method resolved,
    ``suite_params``: what the suite set), as bench.worker writes them."""
    rec["pde"]["params"] = dict(pde_params or {})
    rec["case"]["pde_params"] = dict(pde_params or {})
    rec["case"]["method_params"] = dict(suite_params or {})
    rec["case"]["max_seconds"] = max_seconds
    rec["method"] = {"name": rec["case"]["method"], "params": {**(params or {}), **(suite_params or {})},
                     "n_params": n_params}
    rec["case_id"] += "-" + "-".join(f"{k}{v}" for k, v in (suite_params or {}).items()).replace(" ", "")
    return rec


def causal_records(schedule_err, ablation_err, pinn_err=0.1):
    """pinn vs causal with the eps schedule (its default) and the eps = 0 ablation."""
    adv = {"c": 80.0, "t_end": 1.0}
    return [with_settings(make_record("pinn", 32, pde="advection", dim=1, rel_l2=pinn_err), pde_params=adv),
            with_settings(make_record("causal", 32, pde="advection", dim=1, rel_l2=schedule_err),
                          pde_params=adv, params={"eps": SCHEDULE}),
            with_settings(make_record("causal", 32, pde="advection", dim=1, rel_l2=ablation_err),
                          pde_params=adv, params={"eps": SCHEDULE}, suite_params={"eps": [0.0]})]


ADVECTION = {"metric": "error_ratio", "baseline_method": "pinn", "method": "causal", "pde": "advection",
             "value": 1.46, "tolerance": "band", "band": "2", "pde_params": "c=80"}


def test_an_ablation_that_would_flip_the_verdict_does_not_decide(tmp_path):
    """The schedule gives 0.1/0.07 = 1.43x (in the band: reproduced); the eps = 0 ablation
    0.1/0.2 = 0.5x (not reproduced), and its label sorts first. Named, only the schedule
    decides; unnamed, the two variants match and neither decides."""
    recs = causal_records(schedule_err=0.07, ablation_err=0.2)
    named = verdict(tmp_path, recs, {**ADVECTION, "method_params": f"eps={SCHEDULE}"})
    assert named.verdict == mclaims.REPRODUCED
    assert named.measured_value == pytest.approx(0.1 / 0.07)
    schedule_id = recs[1]["case_id"]
    assert named.method_case_ids == [schedule_id] and named.baseline_case_ids == [recs[0]["case_id"]]
    flipped = verdict(tmp_path, causal_records(schedule_err=0.2, ablation_err=0.07),
                      {**ADVECTION, "method_params": f"eps={SCHEDULE}"})
    assert flipped.verdict == mclaims.NOT_REPRODUCED  # the ablation's 1.43x is not taken instead
    unnamed = verdict(tmp_path, recs, ADVECTION)
    assert unnamed.verdict == mclaims.NOT_MEASURABLE and "2 variants of causal" in unnamed.why
    ablation = verdict(tmp_path, recs, {**ADVECTION, "method_params": "eps=[0.0]"})
    assert ablation.method_case_ids == [recs[2]["case_id"]] and ablation.verdict == mclaims.NOT_REPRODUCED


def test_a_setting_mismatch_is_not_measurable_and_names_the_setting(tmp_path):
    recs = causal_records(schedule_err=0.07, ablation_err=0.2)
    for r in recs:
        r["pde"]["params"]["c"] = r["case"]["pde_params"]["c"] = 5.0
    v = verdict(tmp_path, recs, {**ADVECTION, "method_params": f"eps={SCHEDULE}"})
    assert v.verdict == mclaims.NOT_MEASURABLE
    assert "c = 5, the claim needs c = 80" in v.why and v.method_case_ids == []
    # the network size and the equal wall-clock budget of an equal-time claim
    kfac = [with_settings(make_record("pinn", 5, pde="heat", dim=4, rms_abs=1e-3), n_params=449,
                          max_seconds=120),
            with_settings(make_record("kfac", 5, pde="heat", dim=4, rms_abs=1e-4), n_params=449,
                          params={"optimizer": "kfac"}, max_seconds=120)]
    row = {"metric": "error_ratio", "field": "rms_abs", "baseline_method": "pinn", "method": "kfac",
           "value": 15.3, "tolerance": "band", "band": "2", "n_params": 10065, "max_seconds": 3000,
           "method_params": "optimizer=kfac"}
    v = verdict(tmp_path, kfac, row)
    assert v.verdict == mclaims.NOT_MEASURABLE and "parameters = 449, the claim needs parameters = 10,065" in v.why
    for r in kfac:
        r["method"]["n_params"] = 10065
    v = verdict(tmp_path, kfac, row)
    assert v.verdict == mclaims.NOT_MEASURABLE and "budget (s) = 120, the claim needs" in v.why
    for r in kfac:
        r["case"]["max_seconds"] = 3000.0
    assert verdict(tmp_path, kfac, row).verdict == mclaims.REPRODUCED  # 10x: inside 15.3 / 2 .. 15.3 * 2


@pytest.mark.parametrize("pinn_flops, outcome", [(1400e6, mclaims.REPRODUCED), (3000e6, mclaims.EXCEEDED),
                                                 (500e6, mclaims.NOT_REPRODUCED)])
def test_a_point_figure_is_tested_within_its_band(tmp_path, pinn_flops, outcome):
    recs = [make_record("pinn", 64, flops_per_step=pinn_flops), make_record("spinn", 64, flops_per_step=1e6)]
    v = verdict(tmp_path, recs, {"metric": "flops_ratio", "baseline_method": "pinn", "method": "spinn",
                                 "value": 1394, "tolerance": "band", "band": "2", "stated_n_per_axis": 64})
    assert v.verdict == outcome and v.measured_value == pytest.approx(pinn_flops / 1e6)


def test_a_point_figure_stated_at_a_size_is_not_placed_in_its_band_from_smaller_sizes(tmp_path):
    """1,888x at n = 32 (the audit's case) does not reproduce '1,394x at 64^3'; with a rising
    trend over two sizes it only bounds the value at 64 from below."""
    row = {"metric": "flops_ratio", "baseline_method": "pinn", "method": "spinn", "value": 1394,
           "tolerance": "band", "band": "2", "stated_n_per_axis": 64}
    at32 = [make_record("pinn", 32, flops_per_step=1888e6), make_record("spinn", 32, flops_per_step=1e6)]
    assert verdict(tmp_path, at32, row).verdict == mclaims.NOT_MEASURABLE
    at16 = [make_record("pinn", 16, flops_per_step=500e6), make_record("spinn", 16, flops_per_step=1e6)]
    v = verdict(tmp_path, at16 + at32, row)
    assert v.verdict == mclaims.NOT_MEASURABLE and "cannot place it in the band" in v.why
    at32[0]["metrics"]["flops_per_step"] = 4000e6
    assert verdict(tmp_path, at16 + at32, row).verdict == mclaims.EXCEEDED


def test_a_claim_on_another_quantity_is_not_comparable(tmp_path):
    recs = [make_record("spinn", 64, pde="navier-stokes", dim=2, rel_l2=0.036)]
    v = verdict(tmp_path, recs, {"metric": "rel_l2", "method": "spinn", "value": 0.0363, "comparison": "<=",
                                 "comparable": "vorticity error on other data"})
    assert v.verdict == mclaims.NOT_COMPARABLE and v.why == "vorticity error on other data"
    ref = {c.claim_id: c for c in mclaims.load_claims(mclaims.Path("results/reference/claims.csv"))}
    assert "vorticity" in ref["spinn-ns3-rel_l2"].comparable
    assert "seed blog" in ref["spinn-memory-29x"].source and "whole-process" in ref["spinn-memory-29x"].error_definition


# ---------------------------------------------------------------- FLOPs with loops counted

LAPACK = ["lapack_dpotrf_ffi", "lapack_dsyevd_ffi"]


def kfac_pair():
    """pinn-fl 67.2 MFLOP; kfac: 472 MFLOP counted by XLA + 774 MFLOP its lax.map line search
    misses (describe()'s flops_correction), with LAPACK calls XLA does not count."""
    base = make_record("pinn-fl", 5, pde="heat", dim=4, dtype="float64", flops_per_step=67.2e6,
                       flops_uncounted_calls=[])
    kfac = make_record("kfac", 5, pde="heat", dim=4, dtype="float64", flops_per_step=472e6,
                       flops_uncounted_calls=LAPACK)
    kfac["method"] = {"name": "kfac", "params": {}, "flops_correction": 774e6}
    return base, kfac


def test_a_kfac_records_flops_in_the_report_are_the_corrected_figure(tmp_path):
    base, kfac = kfac_pair()
    assert step_flops(kfac["metrics"], kfac["method"]) == (pytest.approx(1246e6), LAPACK)
    results = tmp_path / "results"
    for r in (base, kfac):
        write_record(results, r)
    path = claims_file(tmp_path, [{"claim_id": "flops", "metric": "flops_ratio", "baseline_method": "pinn-fl",
                                   "method": "kfac", "value": 0.05, "comparison": ">="}])
    rep = build([base, kfac], "synth", tmp_path / "r.md", results, baseline="pinn-fl", claims_path=path,
                figures=False)
    tables = parse_tables(rep.text)
    rows = {r["method"]: r for r in tables["heat, dim 4 (5 inputs)"][0]}
    assert rows["kfac"]["GFLOP/step"].startswith(">= ") and close(rows["kfac"]["GFLOP/step"][3:], 1.246)
    assert rows["pinn-fl"]["GFLOP/step"] == "0.0672"  # no uncounted call: not a bound
    assert "lapack_dpotrf_ffi, lapack_dsyevd_ffi" in rep.text and "lower bound" in rep.text
    ratio = tables["Ratios against `pinn-fl`"][0][0]
    assert ratio["FLOP ratio"].startswith("<= ") and close(ratio["FLOP ratio"][3:], 67.2 / 1246)
    v = rep.verdicts[0]
    assert v.measured_value == pytest.approx(67.2 / 1246) and v.verdict == mclaims.REPRODUCED
    assert flatten(kfac)["flops_per_step"] == pytest.approx(1246e6)
    assert flatten(kfac)["flops_per_step_xla"] == pytest.approx(472e6)
    with open(rep.verdicts_csv, newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["claim_id"] == "flops" and row["method_case_ids"] == kfac["case_id"]
    assert row["baseline_case_ids"] == base["case_id"]


def test_uncounted_custom_calls_are_named_from_the_compiled_hlo():
    import jax
    import jax.numpy as jnp

    def f(a):
        s = a @ a.T + 4.0 * jnp.eye(4)
        return jnp.sum(jnp.linalg.eigh(s)[0]) + jnp.sum(jnp.linalg.cholesky(s))

    text = jax.jit(f).lower(jnp.ones((4, 4))).compile().as_text()
    calls = uncounted_custom_calls(text)
    assert len(calls) >= 2 and all("lapack" in c or "solver" in c for c in calls)
    assert uncounted_custom_calls(jax.jit(lambda a: a @ a).lower(jnp.ones((4, 4))).compile().as_text()) == []
    assert uncounted_custom_calls('custom_call_target="Sharding"') == []


def test_the_cli_prints_the_reports_claims_count(tmp_path, capsys):
    results = tmp_path / "results"
    for r in [make_record("pinn", 8, samples=(10.0,) * 5), make_record("spinn", 8, samples=(1.0,) * 5)]:
        write_record(results, r)
    path = claims_file(tmp_path, [
        {"claim_id": "fast", "metric": "speedup", "baseline_method": "pinn", "method": "spinn", "value": 5},
        {"claim_id": "kfac", "metric": "rel_l2", "method": "kfac", "value": 0.1, "comparison": "<="}])
    assert main(["report", "--suite", "synth", "--results", str(results), "--out", str(tmp_path / "r.md"),
                 "--claims", str(path), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "claims: 1 reproduced, 1 not listed (method not run here)" in printed
    assert "Summary: 1 reproduced, 1 not listed (method not run here)." in (tmp_path / "r.md").read_text()


def test_kfacs_loop_correction_brings_the_map_count_to_the_unrolled_count():
    """The figure the report shows for line_search = "map" (XLA count + describe()'s
    flops_correction) is the FLOP count of the same step with the 31 trials unrolled."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import methods
    import pdes
    from bench.measure.xla import cost_stats

    pde = pdes.build("poisson", 2)
    counts, raw = {}, {}
    for mode in ("map", "unrolled"):
        M = methods.get("kfac")(pde, 6, {"widths": [8, 6], "line_search": mode, "n_interior": 64,
                                         "n_boundary": 16}, "float64")
        state = jax.eval_shape(M.init, jax.random.PRNGKey(0))
        batch = jax.eval_shape(M.sample, jax.random.PRNGKey(1))
        compiled = jax.jit(M.step).lower(state, batch).compile()
        raw[mode] = cost_stats(compiled)
        counts[mode] = step_flops(raw[mode], M.facts())[0]
    assert raw["map"]["flops_per_step"] < 0.8 * raw["unrolled"]["flops_per_step"]  # the undercount
    assert counts["map"] == pytest.approx(counts["unrolled"], rel=0.05)
    assert "lapack_dpotrf_ffi" in raw["map"]["flops_uncounted_calls"]  # the Kronecker-sum solve


def test_a_statistic_over_runs_needs_that_many_runs(tmp_path):
    """The KFAC paper's optimizer table is a mean over 10 runs: 3 seeds cannot test it (the
    verdict names the run count), 10 seeds in the setting can; the median over the runs is
    compared with the band."""
    def runs(n, err):
        out = []
        for s in range(n):
            r = with_settings(make_record("pinn-fl", 5, pde="heat", dim=4, rel_l2=err * (1 + 0.01 * s)),
                              params={"optimizer": "sgd"}, suite_params={"optimizer": "sgd"},
                              n_params=10065, max_seconds=3000.0)
            r["case"]["seed"] = s
            r["case_id"] += f"-s{s}"
            out.append(r)
        return out

    row = {"metric": "rel_l2", "method": "pinn-fl", "pde": "heat", "dim": 4, "value": 6.77e-3,
           "comparison": "<=", "tolerance": "band", "band": "0.00205..0.0115",
           "method_params": "optimizer=sgd", "n_params": 10065, "max_seconds": 3000, "min_runs": 10}
    few = verdict(tmp_path, runs(3, 6e-3), row)
    assert few.verdict == mclaims.NOT_MEASURABLE
    assert "3 ok runs here, the claim is a statistic over >= 10 runs" in few.why
    enough = runs(10, 6e-3)
    v = verdict(tmp_path, enough, row)
    assert v.verdict == mclaims.REPRODUCED and sorted(v.method_case_ids) == sorted(r["case_id"] for r in enough)
    assert verdict(tmp_path, runs(10, 5e-2), row).verdict == mclaims.NOT_REPRODUCED


def test_an_inverse_claim_is_decided_by_the_records_at_its_noise_level(tmp_path):
    """Clean and 1%-noise runs of one method are two variants: a claim that does not name the
    noise level cannot be decided; named (``inverse_params``), only that level's record decides,
    and a forward record never matches."""
    def inv(noise, err):
        r = with_settings(make_record("pinn", 32, pde="burgers", dim=1, final_coef_lambda_2_rel_err=err))
        r["case"]["inverse"] = {"learn": ["lambda_1", "lambda_2"], "n_data": 2000, "noise": noise}
        r["case_id"] += f"-noise{noise}"
        return r

    recs = [inv(0.0, 5e-4), inv(0.01, 0.5)]
    row = {"metric": "value", "field": "final_coef_lambda_2_rel_err", "method": "pinn", "pde": "burgers",
           "value": 1.162e-3, "comparison": "<="}
    unnamed = verdict(tmp_path, recs, row)
    assert unnamed.verdict == mclaims.NOT_MEASURABLE and "2 variants of pinn" in unnamed.why
    clean = verdict(tmp_path, recs, {**row, "inverse_params": "noise=0.0; n_data=2000"})
    assert clean.verdict == mclaims.REPRODUCED and clean.method_case_ids == [recs[0]["case_id"]]
    noisy = verdict(tmp_path, recs, {**row, "inverse_params": "noise=0.01"})
    assert noisy.verdict == mclaims.NOT_REPRODUCED and noisy.method_case_ids == [recs[1]["case_id"]]
    other = verdict(tmp_path, recs, {**row, "inverse_params": "n_data=500"})
    assert other.verdict == mclaims.NOT_MEASURABLE and "n_data = 2000, the claim needs n_data = 500" in other.why
    forward = with_settings(make_record("pinn", 32, pde="burgers", dim=1, final_coef_lambda_2_rel_err=1e-4))
    assert verdict(tmp_path, [forward], {**row, "inverse_params": "noise=0.0"}).verdict == mclaims.NOT_MEASURABLE
