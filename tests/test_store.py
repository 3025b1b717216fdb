"""The results store: atomic records, read-only reading (foreign and corrupt files are skipped,
never renamed), record permissions, the schema check, the flat export view."""

import hashlib
import json
import math
import os
import stat

import pytest

from bench import store
from bench.cli import main
from bench.errors import BenchError


def _rec(case_id="c1", status="ok", **metrics):
    return {"case_id": case_id, "suite": "s", "status": status,
            "case": {"pde": "heat", "dim": 1, "method": "pinn", "n_per_axis": 4, "seed": 0},
            "size": {"n_points": 16}, "metrics": metrics, "env": {}}


def test_write_then_load_roundtrip_and_schema(tmp_path):
    p = store.write_record(tmp_path, _rec(step_ms=1.5))
    assert p == tmp_path / "s" / "c1.json"
    (rec,) = store.load_records(tmp_path)
    assert rec["schema"] == store.SCHEMA_VERSION and rec["metrics"]["step_ms"] == 1.5
    assert not [f for f in p.parent.iterdir() if f.name.startswith(".")]  # no temp file left


def test_non_finite_values_are_stored_as_null(tmp_path):
    store.write_record(tmp_path, _rec(rel_l2=math.nan, step_ms=math.inf))
    raw = json.loads((tmp_path / "s" / "c1.json").read_text())
    assert raw["metrics"] == {"rel_l2": None, "step_ms": None}


def _checksums(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_corrupt_record_is_skipped_with_a_warning_and_left_alone(tmp_path, capsys):
    store.write_record(tmp_path, _rec("good"))
    bad = tmp_path / "s" / "bad.json"
    bad.write_text('{"case_id": "bad", "sta')
    before = _checksums(tmp_path)
    recs = store.load_records(tmp_path)
    assert [r["case_id"] for r in recs] == ["good"]
    assert _checksums(tmp_path) == before
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.json" in err[0] and err[0].startswith("bench: warning:")


FOREIGN = {"meta.json": '{"note": "written by a colleague"}\n',
           "bench.json": '{"machine_info": {}, "benchmarks": [{"name": "t", "stats": {}}]}\n'}


@pytest.mark.parametrize("argv", [["list"], ["export", "--results", "{r}"],
                                  ["export", "--results", "{r}", "--suite", "s", "-o", "{o}/x.csv"],
                                  ["report", "--suite", "s", "--results", "{r}", "--out", "{o}/s.md",
                                   "--no-figures"],
                                  ["compare", "{r}", "{r}", "--suite", "s"]])
def test_read_commands_change_no_file_under_results(tmp_path, capsys, argv):
    """A meta.json and a pytest-benchmark JSON beside the records: each read command skips
    them with a one-line warning and leaves every file byte for byte as it was."""
    results, out = tmp_path / "results", tmp_path / "out"
    out.mkdir()
    for cid, ms in (("c1", 1.0), ("c2", 2.0)):
        r = _rec(cid, step_ms=ms)
        r["case"]["n_per_axis"] = int(ms) * 4
        store.write_record(results, r)
    for name, text in FOREIGN.items():
        (results / "s" / name).write_text(text)
    before = _checksums(results)
    rc = main([a.format(r=results, o=out) for a in argv])
    assert rc in (0, 1)
    assert _checksums(results) == before
    assert sorted(p.name for p in (results / "s").iterdir()) == ["bench.json", "c1.json", "c2.json", "meta.json"]
    if argv[0] != "list":
        warnings = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
        assert any("meta.json" in w for w in warnings) and any("bench.json" in w for w in warnings)


def test_run_sets_aside_the_corrupt_record_of_a_case_it_is_about_to_run(tmp_path, capsys):
    from bench.runner import existing
    from bench.suite import Case

    case = Case(suite="s", pde="heat", dim=1, method="pinn", n_per_axis=4, seed=0)
    path = store.record_path(tmp_path, "s", case.case_id)
    path.parent.mkdir(parents=True)
    path.write_text('{"case_id": "x", "sta')
    assert existing(tmp_path, case) is None and path.exists()  # reading: left alone
    assert existing(tmp_path, case, set_aside=True) is None
    assert not path.exists() and len(list(path.parent.glob(f"{path.name}.corrupt-*"))) == 1
    assert "set aside" in capsys.readouterr().err


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_records_get_the_permissions_of_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        p = store.write_record(tmp_path, _rec())
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_unknown_schema_is_refused_with_a_clear_message(tmp_path):
    p = store.write_record(tmp_path, _rec())
    raw = json.loads(p.read_text())
    p.write_text(json.dumps({**raw, "schema": 99}))
    with pytest.raises(BenchError, match=r"schema 99 .*reads: 1"):
        store.load_records(tmp_path)
    assert json.loads(p.read_text())["schema"] == 99  # refused, not rewritten


def test_flat_view_leaves_missing_metrics_empty(tmp_path):
    df = store.records_frame([_rec(step_ms=2.0), _rec("c2", status="oom")])
    assert list(df.columns[: len(store.COLUMNS)]) == store.COLUMNS
    assert df.loc[0, "step_ms"] == 2.0
    assert df.loc[1, "step_ms"] is None or math.isnan(df.loc[1, "step_ms"])
    assert df.loc[1, "status"] == "oom"


def test_export_names_round_params_and_variants():
    def rec(cid, params, rnd=0, method="causal"):
        r = _rec(cid, step_ms=1.0)
        r["case"] = {**r["case"], "method": method, "method_params": params, "round": rnd}
        return r

    df = store.records_frame([rec("a", {"eps": [1.0]}), rec("a-r1", {"eps": [1.0]}, rnd=1),
                              rec("b", {"eps": [0.0]}), rec("c", {"width": 8}, method="pinn")])
    assert list(df["round"]) == [0, 1, 0, 0]
    assert list(df["variant"]) == ["eps=[1.0]", "eps=[1.0]", "eps=[0.0]", ""]
    assert list(df["label"]) == ["causal [eps=[1.0]]", "causal [eps=[1.0]]", "causal [eps=[0.0]]", "pinn"]
    assert json.loads(df.loc[3, "method_params"]) == {"width": 8}


def test_export_and_report_share_one_flat_view():
    """A record is flattened once (``bench.record.flat``): the export orders it, the report row
    is it plus its reading of partial records and the non-scalar parts (samples, curve)."""
    from bench.case import EXPORT_KEYS
    from bench.record import flat
    from bench.report.tables import COMPILE_COLUMNS, RUN_COLUMNS, record_row

    r = _rec(step_ms=2.0, step_ms_samples=[1.0, 2.0], first_step_s=0.5, flops_per_step=10.0)
    base = flat(r)
    assert store.flatten(r) == {**{c: base.get(c) for c in store.COLUMNS}, **base}
    assert list(store.flatten(r))[: len(store.COLUMNS)] == store.COLUMNS
    assert set(EXPORT_KEYS) <= set(store.COLUMNS)  # every exported case field has its column
    row = record_row(r)
    assert set(row) == set(base) | {"n_in", "config", "samples", "curve", "versions", "step_ms_iqr",
                                    *COMPILE_COLUMNS, *RUN_COLUMNS}
    assert row["samples"] == [1.0, 2.0] and row["first_step_s"] == base["first_step_s"] == 0.5
    assert row["flops_per_step"] == base["flops_per_step"] == 10.0
    # the report's reading of a partial record: a device name that says it was not recorded
    partial = {"case_id": "p", "status": "ok", "case": {"pde": "heat", "device": "cuda"}}
    assert flat(partial)["device_name"] is None and flat(partial)["round"] == 0
    assert record_row(partial)["device"] == "gpu"
    assert record_row(partial)["device_name"] == "cuda (device name not recorded)"


def test_stale_records_are_detected_and_rerun_only_on_request(tmp_path):
    from bench.executors import to_run
    from bench.suite import Case

    now = {"git_commit": "b" * 40, "versions": {"jax": "0.10.2", "torch": "2.13.0"}}
    case = Case(suite="s", pde="heat", dim=1, method="pinn", n_per_axis=4, seed=0)
    rec = {**_rec(case.case_id), "env": {"git_commit": "b" * 40, "versions": {"jax": "0.10.2", "torch": "2.13.0"}}}
    assert store.stale_reason(rec, now) is None
    other_commit = {**rec, "env": {**rec["env"], "git_commit": "a" * 40}}
    assert "git aaaaaaaaaaaa -> bbbbbbbbbbbb" in store.stale_reason(other_commit, now)
    other_jax = {**rec, "env": {**rec["env"], "versions": {"jax": "0.9.0", "torch": "2.13.0"}}}
    assert store.stale_reason(other_jax, now) == "jax 0.9.0 -> 0.10.2"
    assert store.stale_reason({**rec, "env": {}}, now) is None  # nothing recorded: nothing to say
    store.write_record(tmp_path, other_jax)
    assert to_run(case, tmp_path, resume=True)["case_id"] == case.case_id      # reused by default
    assert to_run(case, tmp_path, resume=True, rerun_stale=now) is None        # --rerun-stale
    store.write_record(tmp_path, rec)
    assert to_run(case, tmp_path, resume=True, rerun_stale=now) is not None    # current: reused
