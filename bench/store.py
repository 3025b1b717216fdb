"""The results store: one JSON record per case under ``<results>/<suite>/<case_id>.json``.

Records are written atomically (temp file in the same directory, fsync, rename), so an
interrupted sweep never leaves a half-written record behind, and jobs on many machines merge by
reading the directory. Records get the permissions of the process umask (group/world readable by
default), so a shared results directory is readable by colleagues.

Reading never changes a file: ``load_records`` (behind ``list``, ``export``, ``report`` and
``compare``) skips a file that does not parse or is not a pinnbench record with a one-line
warning on stderr. Only ``bench run``, about to re-run a case, sets aside the corrupt record at
that case's path (``set_aside``: renamed to ``*.corrupt-<time>``) and says so. A record whose
``schema`` is not one this version reads is refused (``BadRecord``/``BenchError``), never guessed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.errors import BenchError

SCHEMA_VERSION = 1
#: schema versions this code reads (a record without ``schema`` predates the field: version 1)
READABLE_SCHEMAS = (1,)
#: statuses that are final outcomes of a case: a rerun skips them unless --fresh
FINAL = ("ok", "oom", "nan", "timeout")
#: every status a record can have (a record with another is not well formed)
STATUSES = (*FINAL, "error")

#: export columns, in order (of the flat view of a record, ``bench.record.flat``; the case columns
#: among them are the ``export`` fields of ``bench.case.Case``)
COLUMNS = [
    "suite", "case_id", "pde", "dim", "method", "label", "variant", "n_per_axis", "n_points",
    "n_points_kind", "seed", "round", "steps", "fused_steps", "steps_done", "dtype", "device", "device_name",
    "status", "error",
    "step_ms", "step_ms_iqr", "compile_s", "lower_s", "first_step_s", "xla_temp_bytes",
    "xla_arg_bytes", "xla_out_bytes", "xla_total_bytes", "flops_per_step", "achieved_gflops",
    "peak_fraction", "harness_overhead", "peak_rss_bytes",
    "nvml_peak_bytes", "nvml_process_peak_bytes", "device_peak_bytes", "rel_l2", "rms_abs",
    "max_abs", "final_loss", "train_s", "time_to_target_s", "n_params", "method_params",
    "pde_params", "git_commit",
]


def json_safe(obj):
    """JSON-safe copy: NaN/inf become None (records never carry made-up values)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / jax scalars
        return json_safe(obj.item())
    return obj


def _umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it is racy)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    """Mode of a new record: what ``open(path, "w")`` would give (0o666 minus the umask);
    ``mkstemp`` alone would leave it 0o600, unreadable to anyone else."""
    return 0o666 & ~_umask()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """``data`` into ``path`` atomically: a temporary file beside it (mode as ``open`` would
    give), fsync, rename; the temporary file is removed on any failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, obj) -> None:
    """``obj`` as JSON (``json_safe``: NaN/inf as null) into ``path``, atomically."""
    text = json.dumps(json_safe(obj), indent=1, sort_keys=False, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def record_path(results: Path, suite: str, case_id: str) -> Path:
    return Path(results) / suite / f"{case_id}.json"


def write_record(results: Path, record: dict) -> Path:
    record = {"schema": SCHEMA_VERSION, **record}
    path = record_path(results, record["suite"], record["case_id"])
    root = Path(os.path.abspath(results))
    if Path(os.path.abspath(path)).parent.parent != root:  # a suite or case id with "/" or ".."
        raise ValueError(f"record path {str(path)!r} is not a file of one suite directory of {str(results)!r}")
    write_json_atomic(path, record)
    return path


def keep_unsaved(results: Path, record: dict, exc: BaseException) -> str:
    """A record that could not be written to ``results`` (``exc``): keep the measurement in
    ``<results>.unsaved/<suite>--<case_id>.json`` next to the results directory, else print it
    as one JSON line on stderr. Returns where it went (for the one-line message)."""
    record = {"schema": SCHEMA_VERSION, **record,
              "unsaved": {"results": str(results), "error": f"{type(exc).__name__}: {exc}"}}
    name = f"{record.get('suite')}--{record.get('case_id')}.json".replace("/", "_").lstrip(".")
    dest = Path(os.path.abspath(results)).with_name(f"{Path(os.path.abspath(results)).name}.unsaved") / name
    try:
        write_json_atomic(dest, record)
        return str(dest)
    except (OSError, ValueError, TypeError):
        sys.stderr.write(json.dumps(json_safe(record), default=str) + "\n")
        sys.stderr.flush()
        return "stderr (one JSON line above)"


class BadRecord(ValueError):
    """A file under the results directory that is not a record this code can read.

    ``kind``: "corrupt" (does not parse: a half-written or damaged record), "foreign" (valid
    JSON of something else, e.g. a ``meta.json`` or a pytest-benchmark file) or "schema" (a
    pinnbench record of a schema version this code does not read)."""

    def __init__(self, path: Path, kind: str, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.kind, self.why = Path(path), kind, why


def warn(msg: str) -> None:
    sys.stderr.write(f"bench: warning: {' '.join(str(msg).split())}\n")


def set_aside(path: Path) -> Path:
    """Rename a corrupt record to ``*.corrupt-<time>`` (only ``run`` does this, for a case it is
    about to re-run); returns the new path."""
    path = Path(path)
    dest = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, dest)
    return dest


#: parts of a record that readers index into, and the type each must have when present
RECORD_PARTS = {"case": dict, "metrics": dict, "env": dict, "size": dict, "method": dict, "curve": list,
                "runner": dict}


def well_formed(rec) -> bool:
    """Whether ``rec`` has the structure of a record (a JSON document that parses can still be
    a list, or a record whose ``metrics`` is a number: readers would crash on it)."""
    if not isinstance(rec, dict) or not isinstance(rec.get("case_id"), str) or rec.get("status") not in STATUSES:
        return False
    if not isinstance(rec.get("suite", ""), str):
        return False
    return all(rec.get(k) is None or isinstance(rec[k], t) for k, t in RECORD_PARTS.items())


#: the old name of set_aside
quarantine = set_aside


def check_schema(rec: dict, path: Path | str = "record") -> dict:
    """``rec`` if its ``schema`` is one this code reads, else BadRecord(kind="schema")."""
    v = rec.get("schema", 1)
    if isinstance(v, bool) or v not in READABLE_SCHEMAS:
        raise BadRecord(Path(path), "schema",
                        f"record schema {v!r} is not one this pinnbench reads (reads: "
                        f"{', '.join(map(str, READABLE_SCHEMAS))}); update pinnbench to read it")
    return rec


def parse_record(path: Path) -> dict:
    """The record at ``path``; BadRecord when it is corrupt, foreign or of an unknown schema.
    Never changes the file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            rec = json.load(fh)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRecord(path, "corrupt", f"does not parse as JSON ({type(e).__name__})") from None
    if not isinstance(rec, dict) or "case_id" not in rec or "status" not in rec:
        raise BadRecord(path, "foreign", "valid JSON but not a pinnbench record (no case_id/status)")
    if not well_formed(rec):
        raise BadRecord(path, "corrupt", "a record whose structure is wrong (a part of the wrong type)")
    return check_schema(rec, path)


def read_record(path: Path) -> dict | None:
    """The record at ``path``, or None (with a one-line warning) if it is corrupt or foreign.
    An unknown schema is refused (BenchError). Read-only: the file is never renamed."""
    try:
        return parse_record(path)
    except BadRecord as e:
        if e.kind == "schema":
            raise BenchError(str(e)) from None
        warn(f"skipped {e}")
        return None


def load_records(results: Path, suite: str | None = None) -> list[dict]:
    """Every valid record under ``results`` (or its ``suite`` subdirectory); other JSON files
    are skipped with a warning and left as they are."""
    root = Path(results)
    if suite is not None:
        root = root / suite
    if not root.exists():
        return []
    out = []
    for path in sorted(root.rglob("*.json")):
        if path.name.startswith(".") or "reference" in path.parts or not path.is_file():
            continue
        rec = read_record(path)
        if rec is not None:
            out.append(rec)
    return out


#: the data a report ships beside itself: ``reports/<suite>/records.jsonl.gz``
SHIPPED_NAME = "records.jsonl.gz"


def shipped_path(report_md: Path) -> Path:
    """Where the records of the report ``report_md`` (``reports/<suite>.md``) are shipped."""
    report_md = Path(report_md)
    return report_md.parent / report_md.stem / SHIPPED_NAME


def write_shipped(path: Path, records: list[dict]) -> Path:
    """The records (curves included), one JSON line each, sorted by case_id with sorted keys,
    gzip with mtime 0 and no file name: the same records give the same bytes. Atomic."""
    import gzip
    import io

    path = Path(path)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        for rec in sorted(records, key=lambda r: (str(r.get("suite")), str(r.get("case_id")))):
            line = json.dumps(json_safe(rec), sort_keys=True, separators=(",", ":"), allow_nan=False)
            gz.write(line.encode("utf-8") + b"\n")
    write_bytes_atomic(path, buf.getvalue())
    return path


def read_shipped(path: Path) -> list[dict]:
    """The records of a shipped ``records.jsonl.gz`` (BenchError if it is not one)."""
    import gzip

    path = Path(path)
    if not path.is_file():
        raise BenchError(f"--from {str(path)!r} does not exist (shipped report data is "
                         f"reports/<suite>/{SHIPPED_NAME})")
    out = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                rec = json.loads(line)
                if not isinstance(rec, dict) or "case_id" not in rec or "status" not in rec:
                    raise BenchError(f"{path}: line {i} is not a pinnbench record")
                out.append(check_schema(rec, f"{path}:{i}"))
    except BadRecord as e:
        raise BenchError(str(e)) from None
    except (OSError, ValueError, EOFError) as e:
        raise BenchError(f"{path} is not a gzip file of JSON records ({type(e).__name__}: {e})") from None
    return out


def code_version() -> dict:
    """The code that would produce a record now: git commit and package versions (the same
    fields the worker records in ``env``)."""
    from bench.measure.env import git_commit, versions

    return {"git_commit": git_commit(), "versions": versions()}


def stale_reason(rec: dict, current: dict) -> str | None:
    """Why ``rec`` was produced by other code than ``current`` (``code_version()``): another git
    commit or other package versions; None when it matches (or the record names neither)."""
    env = rec.get("env") or {}
    why = []
    old, new = env.get("git_commit"), current.get("git_commit")
    if old and new and old != new:
        why.append(f"git {old[:12]} -> {new[:12]}")
    ov, nv = env.get("versions") or {}, current.get("versions") or {}
    for k in sorted(set(ov) & set(nv)):
        if ov[k] != nv[k]:
            why.append(f"{k} {ov[k]} -> {nv[k]}")
    return "; ".join(why) or None


def flatten(rec: dict) -> dict:
    """The export row of a record (``bench.record.flat``): COLUMNS first, then any other scalar
    metric."""
    from bench.record import flat

    row = flat(rec)
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
