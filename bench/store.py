"""The results store: one JSON record per case under ``<results>/<suite>/<case_id>.json``.

Records are written atomically (temp file in the same directory, fsync, rename), so an
interrupted sweep never leaves a half-written record behind, and jobs on many machines merge by
reading the directory. A record that does not parse is quarantined (renamed to
``*.corrupt-<time>``) and its case counts as not run.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

SCHEMA_VERSION = 1
#: statuses that are final outcomes of a case: a rerun skips them unless --fresh
FINAL = ("ok", "oom", "nan", "timeout")

#: export columns, in order (the flat view of a record)
COLUMNS = [
    "suite", "case_id", "pde", "dim", "method", "label", "variant", "n_per_axis", "n_points",
    "n_points_kind", "seed", "round", "steps", "steps_done", "dtype", "device", "device_name", "status", "error",
    "step_ms", "step_ms_iqr", "compile_s", "lower_s", "first_step_s", "xla_temp_bytes",
    "xla_arg_bytes", "xla_out_bytes", "xla_total_bytes", "flops_per_step", "peak_rss_bytes",
    "nvml_peak_bytes", "nvml_process_peak_bytes", "device_peak_bytes", "rel_l2", "rms_abs",
    "max_abs", "final_loss", "train_s", "time_to_target_s", "n_params", "method_params",
    "pde_params", "git_commit",
]


def _clean(obj):
    """JSON-safe copy: NaN/inf become None (records never carry made-up values)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / jax scalars
        return _clean(obj.item())
    return obj


def write_json_atomic(path: Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_clean(obj), fh, indent=1, sort_keys=False, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def record_path(results: Path, suite: str, case_id: str) -> Path:
    return Path(results) / suite / f"{case_id}.json"


def write_record(results: Path, record: dict) -> Path:
    record = {"schema": SCHEMA_VERSION, **record}
    path = record_path(results, record["suite"], record["case_id"])
    write_json_atomic(path, record)
    return path


def quarantine(path: Path) -> Path:
    dest = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, dest)
    return dest


def read_record(path: Path) -> dict | None:
    """The record at ``path``; None (after quarantining it) if it is corrupt."""
    try:
        with open(path) as fh:
            rec = json.load(fh)
        if not isinstance(rec, dict) or "case_id" not in rec or "status" not in rec:
            raise ValueError("not a pinnbench record")
        return rec
    except (ValueError, UnicodeDecodeError):
        quarantine(Path(path))
        return None


def load_records(results: Path, suite: str | None = None) -> list[dict]:
    """Every valid record under ``results`` (or its ``suite`` subdirectory)."""
    root = Path(results)
    if suite is not None:
        root = root / suite
    if not root.exists():
        return []
    out = []
    for path in sorted(root.rglob("*.json")):
        if path.name.startswith(".") or "reference" in path.parts:
            continue
        rec = read_record(path)
        if rec is not None:
            out.append(rec)
    return out


def flatten(rec: dict) -> dict:
    """The export row of a record: COLUMNS first, then any other scalar metric."""
    case = rec.get("case", {})
    m = rec.get("metrics", {}) or {}
    env = rec.get("env", {}) or {}
    size = rec.get("size", {}) or {}
    row = {
        "suite": rec.get("suite"), "case_id": rec.get("case_id"), "pde": case.get("pde"),
        "dim": case.get("dim"), "method": case.get("method"),
        "n_per_axis": case.get("n_per_axis"), "n_points": size.get("n_points"),
        "n_points_kind": size.get("n_points_kind"), "seed": case.get("seed"),
        "round": case.get("round", 0),
        "steps": case.get("steps"), "dtype": case.get("dtype"), "device": case.get("device"),
        "device_name": env.get("device_name"), "status": rec.get("status"),
        "error": rec.get("error"), "n_params": (rec.get("method") or {}).get("n_params"),
        "git_commit": env.get("git_commit"),
        "method_params": json.dumps(case.get("method_params") or {}, sort_keys=True, default=str),
        "pde_params": json.dumps(case.get("pde_params") or {}, sort_keys=True, default=str),
    }
    for k, v in m.items():
        if not isinstance(v, (list, dict)):
            row.setdefault(k, v)
    return {**{c: row.get(c) for c in COLUMNS}, **{k: v for k, v in row.items() if k not in COLUMNS}}


def records_frame(records: list[dict]):
    """One export row per record; ``variant``/``label`` tell apart runs of one method with
    different settings (bench.variants), as the report and the run summary do."""
    import pandas as pd

    from bench.variants import config_json, labels, variant_labels

    rows = [flatten(r) for r in records]
    df = pd.DataFrame(rows, columns=list(dict.fromkeys(COLUMNS + [k for r in rows for k in r])))
    if not df.empty:
        scope = df.assign(config=[config_json(r.get("case") or {}) for r in records])
        df["variant"] = variant_labels(scope)
        df["label"] = labels(df["method"], df["variant"])
    return df
