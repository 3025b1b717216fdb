"""Run one case in a fresh worker process and turn whatever happened into one record.

The worker writes its partial record after every phase; the parent applies the per-case
timeout and the memory limit, turns a dead worker into a record (``timeout``; ``oom`` when the
worker reported it, when the memory watchdog killed it, or when the kernel OOM killer did;
``error`` with the signal name otherwise) and merges whatever the worker had measured.
Records are written atomically, so Ctrl-C (or SIGTERM) at any moment keeps every record
already written; the first Ctrl-C stops after the current case, a second one stops at once.

How cases are scheduled (order, rounds, parallel jobs) is the executors' business
(``bench.executors``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import guard, record, sizes, store
from bench.errors import BenchError
from bench.procs import RunState, kill_group
from bench.suite import Case

ROOT = Path(__file__).resolve().parents[1]
#: seconds between two looks of the watchdog at the worker's exit and timeout (a wait on the
#: process: no work for the CPU the worker is being timed on)
POLL_S = 0.05
#: seconds between two reads of the worker tree's RSS: often where a memory limit must catch a
#: growing worker, seldom where it is only the sampled peak. Each read walks the process table
#: (psutil ``children``); at every 50 ms it slowed a 1.5 s PINN step on the 2-core CPU by 17-19%
#: (measured: Helmholtz 3-d N = 32, 1,303-1,505 ms alone, 1,554-1,757 ms beside such a poller),
#: so the timed worker is left alone unless a limit needs the reads
RSS_POLL_S = 1.0
RSS_POLL_LIMIT_S = 0.1


#: seconds between two looks at the worker's live progress (``on_tick``)
TICK_S = 0.5


def _live(opath: Path, ppath: Path) -> dict:
    """What the worker last said of itself: its progress report, else its partial record's
    phase (written after every phase), else that it is starting."""
    for path in (ppath, opath):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        return info if path == ppath else {"phase": info.get("phase") or "start"}
    return {"phase": "start"}


def existing(results: Path, case: Case, set_aside: bool = False) -> dict | None:
    """The stored record of ``case`` (None if absent). A corrupt or foreign file at its path
    counts as absent; with ``set_aside`` (``run``, about to re-run the case) it is renamed to
    ``*.corrupt-<time>`` and a line on stderr says so, else it is left alone with a warning."""
    path = store.record_path(results, case.suite, case.case_id)
    if not path.is_file():  # absent, or not a file (a directory named <case_id>.json)
        return None
    try:
        return store.parse_record(path)
    except store.BadRecord as e:
        if e.kind == "schema":
            raise BenchError(f"{e} (not overwritten)") from None
        if not set_aside:
            store.warn(f"skipped {e}")
            return None
        dest = store.set_aside(path)
        sys.stderr.write(f"bench: note: {path} {e.why}: set aside as {dest.name}; the case is re-run\n")
        return None


def worker_env(case: Case) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # LAPACK (jaxlib's CPU eigh/cholesky/triangular solve, numpy) runs on small matrices here;
    # multi-threaded OpenBLAS spins and was 10-50x slower on a loaded 2-core CPU (KFAC solves).
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def oom_kills() -> int | None:
    """The kernel's count of OOM kills in this process's cgroup (cgroup v2 ``memory.events``);
    None where it cannot be read. The host-wide ``/proc/vmstat`` count is no substitute: an OOM
    kill anywhere else on the host during a case would label that case ``oom``."""
    try:
        cg = Path("/proc/self/cgroup").read_text().strip().splitlines()[-1].split(":", 2)[2]
        for line in Path(f"/sys/fs/cgroup{cg}/memory.events").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return None


def _tree_rss(pid: int) -> int:
    """Resident set size of a process and its children, in bytes (0 once it is gone)."""
    try:
        import psutil

        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except Exception:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except Exception:
            pass
    return total


def _size(case: Case, rec: dict) -> str:
    n_points = (rec.get("size") or {}).get("n_points")
    pts = f", n_points={n_points}" if n_points else ""
    return f"{case.method} n_per_axis={case.n_per_axis}{pts} dim={case.dim}"


def run_case(case: Case, state: RunState | None = None) -> dict:
    """Run one case in a worker process and return its record (never raises for the case)."""
    state = state or RunState()
    limit = int(case.memory_limit_gb * 2**30) if case.memory_limit_gb else 0
    too_big = sizes.oom_record(case)  # an impossible size never starts a worker
    if too_big is not None:
        return too_big
    kills0 = oom_kills()
    with tempfile.TemporaryDirectory(prefix=guard.tmp_prefix()) as tmp:
        cpath, opath = Path(tmp) / "case.json", Path(tmp) / "out.json"
        ppath = Path(tmp) / "progress.json"
        cpath.write_text(json.dumps(case.to_dict()))
        env = worker_env(case)
        if state.on_tick is not None:
            from bench.loop import PROGRESS_ENV

            env[PROGRESS_ENV] = str(ppath)
        t0 = last_tick = last_rss = time.perf_counter()
        rss_every = RSS_POLL_LIMIT_S if limit else RSS_POLL_S
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(cpath), str(opath)],
            cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        state.current = proc
        timed_out, over, peak = False, None, 0
        try:
            while True:
                try:
                    _, err = proc.communicate(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if state.on_tick is not None and time.perf_counter() - last_tick >= TICK_S:
                    last_tick = time.perf_counter()
                    state.on_tick(case, {**_live(opath, ppath), "wall_s": last_tick - t0})
                now = time.perf_counter()
                rss = 0
                if now - last_rss >= rss_every:
                    last_rss = now
                    rss = _tree_rss(proc.pid)
                    peak = max(peak, rss)
                if limit and rss > limit:
                    over = rss
                elif now - t0 > case.timeout_s:
                    timed_out = True
                else:
                    continue
                kill_group(proc)
                _, err = proc.communicate()
                break
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
        rec = record.skeleton(case)  # the worker wrote nothing: status and error are set below
    rec["case"] = case.to_dict()
    finished = rec.get("phase") == "done"
    rc = proc.returncode
    m = rec.setdefault("metrics", {})
    phase = rec.get("phase")
    if over is not None:
        rec["status"] = "oom"
        rec["error"] = (f"worker RSS {over / 2**30:.3g} GiB exceeded the memory limit "
                        f"{case.memory_limit_gb:g} GB in phase {phase!r} ({_size(case, rec)}); killed")
        m.update(oom_phase=phase, oom_rss_bytes=over, memory_limit_bytes=limit)
    elif timed_out:
        rec["status"] = "timeout"
        rec["error"] = f"exceeded the {case.timeout_s:g} s timeout in phase {phase!r}"
    elif not finished or rc != 0:
        if rc is not None and rc < 0:
            name = signal.Signals(-rc).name
            kills1 = oom_kills()
            if -rc == signal.SIGKILL and kills0 is not None and kills1 is not None and kills1 > kills0:
                rec["status"] = "oom"
                rec["error"] = (f"worker killed by the kernel OOM killer (SIGKILL) in phase {phase!r} "
                                f"({_size(case, rec)}; last RSS seen {peak / 2**30:.3g} GiB)")
                m.update(oom_phase=phase, oom_rss_bytes=peak)
            else:
                rec["status"] = "error"
                rec["error"] = f"worker killed by signal {name} in phase {phase!r}"
                if -rc == signal.SIGKILL and (kills0 is None or kills1 is None):
                    rec["error"] += (f" (killed by signal {-rc}; no cgroup OOM counter to tell an OOM "
                                     "kill)")
            rec["signal"] = name
        else:
            rec["status"] = "error"
            tail = (err or "").strip().splitlines()[-1:] or ["no output"]
            rec["error"] = f"worker exited with code {rc}: {tail[0][:300]}"
    elif rec.get("status") == "oom" and "oom_rss_bytes" not in m:
        rec["error"] = f"{rec.get('error')} ({_size(case, rec)})"
    rec["runner"] = {"returncode": rc, "wall_s": wall, "timeout_s": case.timeout_s,
                     "memory_limit_bytes": limit or None, "peak_rss_sampled_bytes": peak or None,
                     "stderr_tail": (err or "")[-2000:] if rec.get("status") != "ok" else "",
                     "finished": record.now()}
    return rec
