"""Tidy tables of records (``bench export --what``, ``bench.api.results``).

* ``cases``: one row per record, the store's flat view (``store.records_frame``) plus the
  environment columns;
* ``curves``: long format, one row per record x training-curve point (step, train_s, loss,
  the errors where evaluated, method extras such as causal ``min_w``), with the case keys;
* ``env``: one row per record, its environment (package versions, device, CPU, load, commit).

Every column has a stable dtype whatever the records hold (strings ``string``, counts
``Int64``, measurements ``float64``; a column empty everywhere gets its declared dtype, or
``float64`` if undeclared), so tables exported on different machines (a CPU run and a GPU run)
concatenate without ``object`` columns.
"""

from __future__ import annotations

#: environment columns (also appended to the cases table): name -> how to read it from env
ENV_COLUMNS = {
    "backend": ("backend",), "device_kind": ("device_kind",), "device_name": ("device_name",),
    "gpu_driver": ("driver_version",), "cpu_model": ("cpu_model",), "cpu_count": ("cpu_count",),
    "hostname": ("hostname",), "python": ("python",), "platform": ("platform",),
    "jax_version": ("versions", "jax"), "jaxlib_version": ("versions", "jaxlib"),
    "flax_version": ("versions", "flax"), "optax_version": ("versions", "optax"),
    "numpy_version": ("versions", "numpy"), "torch_version": ("versions", "torch"),
    "pinnbench_version": ("versions", "pinnbench"), "git_commit": ("git_commit",),
}
#: case keys repeated on every curve row
CURVE_KEYS = ["suite", "case_id", "pde", "dim", "method", "label", "n_per_axis", "seed", "round",
              "dtype", "device", "status"]

STRING = {"suite", "case_id", "pde", "method", "label", "variant", "n_points_kind", "dtype", "device",
          "device_name", "status", "error", "method_params", "pde_params", "git_commit", "backend",
          "device_kind", "gpu_driver", "cpu_model", "hostname", "python", "platform", "stop_reason",
          "oom_phase", "nvml_reason", "flops_note",
          *(k for k in ENV_COLUMNS if k.endswith("_version"))}
COUNT = {"dim", "n_per_axis", "n_points", "seed", "round", "steps", "steps_done", "n_params",
         "cpu_count", "step", "resamples", "steps_per_sample", "steps_to_target"}


def _get(env: dict, path: tuple):
    v = env
    for k in path:
        v = v.get(k) if isinstance(v, dict) else None
    return v


def env_row(rec: dict) -> dict:
    env = rec.get("env") or {}
    row = {k: _get(env, p) for k, p in ENV_COLUMNS.items()}
    load = env.get("loadavg")
    row["loadavg_1m"] = load[0] if isinstance(load, (list, tuple)) and load else None
    return row


def stable_dtypes(df):
    """Declared dtypes for the known columns; an all-empty undeclared column becomes float64."""
    import pandas as pd

    for c in df.columns:
        col = df[c]
        if c in STRING:
            df[c] = col.astype("string")
        elif c in COUNT:
            num = pd.to_numeric(col, errors="coerce")
            whole = num.dropna()
            df[c] = num.astype("Int64") if (whole == whole.round()).all() else num.astype("float64")
        elif col.isna().all():
            df[c] = col.astype("float64")
        elif col.dtype == object:
            conv = pd.to_numeric(col, errors="coerce")
            df[c] = conv if conv.notna().sum() == col.notna().sum() else col.astype("string")
    return df


def cases_frame(records: list[dict]):
    import pandas as pd

    from bench.store import records_frame

    df = records_frame(records)
    env = pd.DataFrame([env_row(r) for r in records], columns=[*ENV_COLUMNS, "loadavg_1m"])
    for c in env.columns:
        if c not in df.columns or df[c].isna().all():
            df[c] = env[c].values if len(df) else env[c]
    return stable_dtypes(df)


def curves_frame(records: list[dict]):
    import pandas as pd

    from bench.store import records_frame

    base = records_frame(records)
    rows = []
    for (_, b), rec in zip(base.iterrows(), records):
        keys = {k: b.get(k) for k in CURVE_KEYS}
        for point in rec.get("curve") or []:
            rows.append({**keys, **{k: v for k, v in point.items() if not isinstance(v, (list, dict))}})
    first = ["step", "train_s", "loss", "rel_l2"]
    cols = list(dict.fromkeys(CURVE_KEYS + first + [k for r in rows for k in r]))
    return stable_dtypes(pd.DataFrame(rows, columns=cols))


def env_frame(records: list[dict]):
    import pandas as pd

    rows = [{"suite": r.get("suite"), "case_id": r.get("case_id"), **env_row(r)} for r in records]
    return stable_dtypes(pd.DataFrame(rows, columns=["suite", "case_id", *ENV_COLUMNS, "loadavg_1m"]))
