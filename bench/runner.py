"""Run cases, each in a fresh worker process, and store one record per case.

The worker writes its partial record after every phase; the parent applies the per-case
timeout, turns a dead worker into a record (``timeout``, ``error`` with the signal, ``oom``
when the worker itself reported it) and merges whatever the worker had measured. Records are
written atomically, so Ctrl-C (or SIGTERM) at any moment keeps every record already written;
the first Ctrl-C stops after the current case, a second one stops at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import store
from bench.suite import Case

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RunState:
    stop_requested: bool = False
    interrupts: int = 0
    current: subprocess.Popen | None = None
    done: list = field(default_factory=list)


def existing(results: Path, case: Case) -> dict | None:
    path = store.record_path(results, case.suite, case.case_id)
    return store.read_record(path) if path.exists() else None


def worker_env(case: Case) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # LAPACK (jaxlib's CPU eigh/cholesky/triangular solve, numpy) runs on small matrices here;
    # multi-threaded OpenBLAS spins and was 10-50x slower on a loaded 2-core CPU (KFAC solves).
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def run_case(case: Case, state: RunState | None = None) -> dict:
    """Run one case in a worker process and return its record (never raises for the case)."""
    state = state or RunState()
    with tempfile.TemporaryDirectory(prefix="pinnbench-") as tmp:
        cpath, opath = Path(tmp) / "case.json", Path(tmp) / "out.json"
        cpath.write_text(json.dumps(case.to_dict()))
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(cpath), str(opath)],
            cwd=str(ROOT), env=worker_env(case), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        state.current = proc
        timed_out = False
        try:
            _, err = proc.communicate(timeout=case.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc)
            _, err = proc.communicate()
        finally:
            state.current = None
        wall = time.perf_counter() - t0
        rec = None
        if opath.exists():
            try:
                rec = json.loads(opath.read_text())
            except ValueError:
                rec = None
    if rec is None:
        rec = {"case_id": case.case_id, "suite": case.suite, "case": case.to_dict(),
               "metrics": {}, "curve": [], "env": {}, "phase": "start"}
    finished = rec.get("phase") == "done"
    rc = proc.returncode
    if timed_out:
        rec["status"] = "timeout"
        rec["error"] = f"exceeded the {case.timeout_s:g} s timeout in phase {rec.get('phase')!r}"
    elif not finished or rc != 0:
        if rc is not None and rc < 0:
            name = signal.Signals(-rc).name
            rec["status"] = "error"
            rec["error"] = f"worker killed by {name} in phase {rec.get('phase')!r}"
            if -rc == signal.SIGKILL:
                rec["error"] += " (the kernel OOM killer sends SIGKILL too)"
        else:
            rec["status"] = "error"
            tail = (err or "").strip().splitlines()[-1:] or ["no output"]
            rec["error"] = f"worker exited with code {rc}: {tail[0][:300]}"
    rec["runner"] = {"returncode": rc, "wall_s": wall, "timeout_s": case.timeout_s,
                     "stderr_tail": (err or "")[-2000:] if rec.get("status") != "ok" else "",
                     "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return rec


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_cases(cases: list[Case], results: Path, fresh: bool = False, progress=None) -> RunState:
    """Run ``cases`` in order; skip those already recorded with a final status unless fresh.

    ``progress(event, case, record)`` is called with event "skip", "start" or "done".
    """
    state = RunState()

    def on_signal(signum, frame):
        state.interrupts += 1
        state.stop_requested = True
        if state.interrupts > 1 and state.current is not None:
            _kill(state.current)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for case in cases:
            if state.stop_requested:
                break
            prev = None if fresh else existing(results, case)
            if prev is not None and prev.get("status") in store.FINAL:
                state.done.append(prev)
                if progress:
                    progress("skip", case, prev)
                continue
            if progress:
                progress("start", case, None)
            rec = run_case(case, state)
            if state.interrupts > 1:
                break  # killed on purpose: do not record a half case
            store.write_record(results, rec)
            state.done.append(rec)
            if progress:
                progress("done", case, rec)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return state
