"""The results store: atomic records, quarantine of corrupt files, the flat export view."""

import json
import math

from bench import store


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


def test_corrupt_record_is_quarantined_not_dropped_silently(tmp_path):
    store.write_record(tmp_path, _rec("good"))
    bad = tmp_path / "s" / "bad.json"
    bad.write_text('{"case_id": "bad", "sta')
    recs = store.load_records(tmp_path)
    assert [r["case_id"] for r in recs] == ["good"]
    assert not bad.exists()
    assert len(list((tmp_path / "s").glob("bad.json.corrupt-*"))) == 1


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
