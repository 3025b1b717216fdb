"""Executors: where and in which order the cases of a sweep run, behind one interface.

* ``local`` (default): one case at a time on this machine, each in a fresh worker process
  (``bench.runner.run_case``). Cases are interleaved across methods (A B A B ...) and repeated
  in rounds (``--rounds``), so slow drift of the machine (thermal state, other load) spreads
  over every method instead of biasing whichever ran last.
* ``submitit``: one job per case through the submitit package: SLURM job arrays on a cluster
  (one GPU per job, ``--slurm-partition``, ``--max-parallel`` concurrent jobs), or submitit's
  local executor where there is no SLURM (that is how the tests run it). Each job writes its
  own record by case id into the shared results directory, so merging is reading the
  directory; there is no database and no lock on a network filesystem. Ray is not needed.

Both skip cases whose record has a final status (``resume``, the default; idempotent), and
both stop after the current case(s) on the first Ctrl-C / SIGTERM, keeping every record.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from itertools import zip_longest
from pathlib import Path

from bench import record, store
from bench.errors import BenchError
from bench.guard import clean_stale_tmp
from bench.procs import RunState, kill_group
from bench.runner import ROOT, existing, run_case
from bench.suite import Case

NAMES = ("local", "submitit")


def interleave(cases: list[Case]) -> list[Case]:
    """Run order: round by round; within a round, methods alternate (A B A B ...), each
    method's cases keeping their suite order."""
    out: list[Case] = []
    for r in sorted({c.round for c in cases}):
        by_method: dict[str, list[Case]] = {}
        for c in cases:
            if c.round == r:
                by_method.setdefault(c.method, []).append(c)
        for group in zip_longest(*by_method.values()):
            out.extend(c for c in group if c is not None)
    return out


def to_run(case: Case, results: Path, resume: bool, rerun_stale: dict | None = None) -> dict | None:
    """The stored final record that lets ``case`` be skipped, or None if it must run.

    With ``rerun_stale`` (the current ``store.code_version()``), a record made by another git
    commit or other package versions (``store.stale_reason``) is re-run instead of reused.

    A corrupt or half-written record is set aside (``runner.existing``, saying so) and re-run;
    ``error`` records (crash, signal, lost job) are re-run; the other statuses are final.
    """
    if not resume:
        return None
    prev = existing(results, case, set_aside=True)
    if prev is not None and rerun_stale is not None and store.stale_reason(prev, rerun_stale):
        return None
    return prev if prev is not None and prev.get("status") in store.FINAL else None


@contextmanager
def _stop_on_signals(state: RunState, on_second=None):
    """First SIGINT/SIGTERM: stop after the current case; second: ``on_second()`` too."""

    def handler(signum, frame):
        state.interrupts += 1
        state.stop_requested = True
        if state.interrupts > 1 and on_second is not None:
            on_second()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Executor:
    """``run(cases, results, resume, progress) -> RunState``; ``progress(event, case, rec)``
    gets "skip", "start" and "done" events; a ``progress.tick(case, info)`` method, where there
    is one, gets the live progress of the case in flight (local executor). ``state.done`` lists
    every record of the run (skipped and new)."""

    name = "?"

    def order(self, cases: list[Case]) -> list[Case]:
        return interleave(cases)

    #: ``store.code_version()`` when stale records are to be re-run (``--rerun-stale``), else None
    rerun_stale: dict | None = None

    def run(self, cases, results: Path, resume: bool = True, progress=None) -> RunState:
        raise NotImplementedError


class LocalExecutor(Executor):
    name = "local"

    def run(self, cases, results: Path, resume: bool = True, progress=None) -> RunState:
        state = RunState(on_tick=getattr(progress, "tick", None))
        clean_stale_tmp()

        def kill_current():
            if state.current is not None:
                kill_group(state.current)

        with _stop_on_signals(state, kill_current):
            for case in self.order(cases):
                if state.stop_requested:
                    break
                prev = to_run(case, results, resume, self.rerun_stale)
                if prev is not None:
                    state.done.append(prev)
                    if progress:
                        progress("skip", case, prev)
                    continue
                if progress:
                    progress("start", case, None)
                rec = run_case(case, state)
                rec["runner"]["executor"] = "local"
                if state.interrupts > 1:
                    break  # killed on purpose: do not record a half case
                state.done.append(rec)
                if not save(results, rec, state):
                    break  # the next record would not be written either: stop cleanly
                if progress:
                    progress("done", case, rec)
        return state


def save(results: Path, rec: dict, state: RunState | None = None) -> bool:
    """Write ``rec``; when that fails (disk full, read-only, a directory in the way), keep the
    measurement (``store.keep_unsaved``), put the one-line reason in ``state.write_error`` and
    return False."""
    try:
        store.write_record(results, rec)
        return True
    except (OSError, ValueError) as e:
        where = store.keep_unsaved(results, rec, e)
        why = f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"
        msg = (f"could not write the record of {rec.get('case_id')} under {str(results)!r} ({why}); "
               f"the measurement is kept in {where}")
        if state is not None:
            state.write_error = msg
            state.stop_requested = True
        return False


def submitit_job(case_dict: dict, results: str) -> str:
    """Body of one submitit job: run the case in a worker, write its record; its status."""
    case = Case.from_dict(case_dict)
    state = RunState()

    def on_term(signum, frame):  # scancel / preemption: take the worker down with the job
        if state.current is not None:
            kill_group(state.current)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    rec = run_case(case, state)
    try:
        import submitit

        job_id = submitit.JobEnvironment().job_id
    except Exception:
        job_id = None
    rec["runner"].update(executor="submitit", job_id=job_id)
    js = RunState()
    if not save(Path(results), rec, js):
        raise RuntimeError(js.write_error)
    return rec["status"]


def slurm_available() -> bool:
    return shutil.which("sbatch") is not None


def slurm_partitions() -> list[str] | None:
    """Partition names from ``sinfo`` (None where sinfo is missing or fails)."""
    if shutil.which("sinfo") is None:
        return None
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return sorted({p.strip().rstrip("*") for p in out.stdout.split() if p.strip()})


class SubmititExecutor(Executor):
    """One submitit job per case. ``cluster``: "slurm", "local" or "debug" (None: slurm where
    ``sbatch`` exists, else local). Job logs go to ``<results>/.submitit/``."""

    name = "submitit"

    def __init__(self, cluster: str | None = None, partition: str | None = None,
                 max_parallel: int = 8, gpus_per_job: int = 1, poll_s: float = 0.5):
        # submitit's import runs logging.config.dictConfig, which closes every logging handler
        # the process already has (a notebook's, pytest's capture); NOCONFIG leaves them alone
        os.environ.setdefault("SUBMITIT_LOG_LEVEL", "NOCONFIG")
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise BenchError("--executor submitit needs the submitit package "
                             "(pip install 'pinnbench[cluster]'); valid without it: local") from None
        self.cluster = cluster or ("slurm" if slurm_available() else "local")
        if self.cluster not in ("slurm", "local", "debug"):
            raise BenchError(f"submitit cluster {self.cluster!r} is not valid (valid: slurm, local, debug)")
        if partition and self.cluster != "slurm":
            raise BenchError(f"--slurm-partition {partition!r}: no SLURM on this machine (sbatch not "
                             "found); leave it out to run the jobs through submitit's local executor")
        if partition and self.cluster == "slurm":
            parts = slurm_partitions()
            if parts is not None and partition not in parts:
                raise BenchError(f"--slurm-partition {partition!r} does not exist "
                                 f"(valid: {', '.join(parts)})")
        self.partition = partition
        self.max_parallel = max_parallel
        self.gpus_per_job = gpus_per_job
        self.poll_s = poll_s

    def _executor(self, results: Path, cases: list[Case]):
        import submitit

        ex = submitit.AutoExecutor(folder=str(results / ".submitit" / "%j"), cluster=self.cluster)
        timeout_min = max(1, int(max(c.timeout_s for c in cases) / 60) + 5)
        gpus = self.gpus_per_job if any(c.device == "gpu" for c in cases) else 0
        params = dict(timeout_min=timeout_min, gpus_per_node=gpus, tasks_per_node=1,
                      name="pinnbench")
        if self.cluster == "slurm":
            params["slurm_array_parallelism"] = self.max_parallel
            if self.partition:
                params["slurm_partition"] = self.partition
        mem = max((c.memory_limit_gb for c in cases), default=0)
        if mem:
            params["mem_gb"] = int(mem) + 4  # the limit is the watchdog's; the job gets headroom
        ex.update_parameters(**params)
        return ex

    def run(self, cases, results: Path, resume: bool = True, progress=None) -> RunState:
        results = Path(results).resolve()
        state = RunState()
        todo = []
        for case in self.order(cases):
            prev = to_run(case, results, resume, self.rerun_stale)
            if prev is not None:
                state.done.append(prev)
                if progress:
                    progress("skip", case, prev)
            else:
                todo.append(case)
        if not todo:
            return state
        ex = self._executor(results, todo)
        running: dict = {}  # job -> case
        queue = list(todo)
        cancel_all = lambda: [j.cancel(check=False) for j in running]  # noqa: E731
        with _stop_on_signals(state, cancel_all), _importable():
            if self.cluster == "slurm":  # one job array; SLURM enforces max_parallel
                jobs = ex.map_array(submitit_job, [c.to_dict() for c in queue],
                                    [str(results)] * len(queue))
                running.update(zip(jobs, queue))
                queue = []
                for c in todo:
                    if progress:
                        progress("start", c, None)
            while running or queue:
                if state.stop_requested:
                    queue = []
                    if self.cluster == "slurm":  # cancel array tasks that have not started
                        for j in list(running):
                            if j.state in ("PENDING", "REQUEUED"):
                                j.cancel(check=False)
                                running.pop(j)
                while queue and len(running) < self.max_parallel and not state.stop_requested:
                    c = queue.pop(0)
                    running[ex.submit(submitit_job, c.to_dict(), str(results))] = c
                    if progress:
                        progress("start", c, None)
                for j in [j for j in running if j.done()]:
                    c = running.pop(j)
                    if state.interrupts > 1:
                        continue
                    rec = self._collect(j, c, results)
                    state.done.append(rec)
                    if progress:
                        progress("done", c, rec)
                if state.interrupts > 1 and not running:
                    break
                time.sleep(self.poll_s)
        return state

    @staticmethod
    def _collect(job, case: Case, results: Path) -> dict:
        """The record the job wrote; if the job itself died (node failure, scancel, job
        timeout) an ``error`` record naming the job, so the next run re-runs the case."""
        exc = job.exception()
        rec = existing(results, case) if exc is None else None
        if rec is None:
            msg = " ".join(str(exc or "job finished without writing a record").split())[:300]
            rec = record.skeleton(case, error=f"submitit job {job.job_id} failed: {msg}",
                                  runner={"executor": "submitit", "job_id": str(job.job_id)})
            save(results, rec)
        return rec


@contextmanager
def _importable():
    """Jobs unpickle ``bench.executors.submitit_job``: make the package importable in them
    (they inherit this environment) even when pinnbench is not installed."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), old]))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def make(name: str, slurm_partition: str | None = None, max_parallel: int | None = None,
         cluster: str | None = None) -> Executor:
    """The executor called ``name``, with its options checked (BenchError names bad values)."""
    if name not in NAMES:
        raise BenchError(f"--executor {name!r} is not valid (valid: {', '.join(NAMES)})")
    if max_parallel is not None and (isinstance(max_parallel, bool) or max_parallel < 1):
        raise BenchError(f"--max-parallel must be a positive integer, got {max_parallel}")
    if name == "local":
        if slurm_partition:
            raise BenchError(f"--slurm-partition {slurm_partition!r} needs --executor submitit "
                             "(valid executors: local, submitit)")
        if max_parallel not in (None, 1):
            raise BenchError(f"--max-parallel {max_parallel}: the local executor runs one case at a "
                             "time so timings are not contended (use --executor submitit)")
        return LocalExecutor()
    return SubmititExecutor(cluster=cluster, partition=slurm_partition,
                            max_parallel=max_parallel or 8)
