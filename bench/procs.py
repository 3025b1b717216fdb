"""Worker-process plumbing shared by the runner and the executors: the sweep's run state,
killing a worker's process group, and the worker's tie to its parent."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field


@dataclass
class RunState:
    """What a sweep's signal handlers and its executor share: stop requests and the live worker."""
    stop_requested: bool = False
    interrupts: int = 0
    current: subprocess.Popen | None = None
    done: list = field(default_factory=list)
    #: one line when a record could not be written (the sweep stopped; the record was kept
    #: where the line says)
    write_error: str | None = None
    #: ``on_tick(case, info)``: the case in flight's phase (start ... train), step, loss and
    #: training time, about every ``runner.TICK_S`` while it runs (bench.progress shows it)
    on_tick: object = None


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker's whole process group (it runs in its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def die_with_parent() -> None:
    """Called by the worker first thing: get SIGKILL when the runner dies (Linux prctl
    PR_SET_PDEATHSIG), so a killed sweep leaves no orphan worker holding a GPU. Done in the
    worker rather than in a preexec_fn, which would make the runner fork a JAX process."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the runner died before we got here
            os._exit(1)
    except Exception:
        pass
