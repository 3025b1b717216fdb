"""Test-only fault injection into the worker, shared by every backend.

``PINNBENCH_INJECT="action@substring[,...]"``: for each case whose id contains ``substring``,
at the named phase (only ``compiled`` is used: after compiling, before the first step), do
``kill`` (SIGKILL self), ``hang`` (sleep, for timeouts), ``raise`` (an exception), or a signal
name such as ``SIGSEGV`` (send it to self).
"""

from __future__ import annotations

import os
import signal
import time

ENV = "PINNBENCH_INJECT"


def inject(case_id: str, phase: str) -> None:
    """Apply the injected fault that matches ``case_id`` at ``phase``, if any."""
    spec = os.environ.get(ENV, "")
    for item in filter(None, spec.split(",")):
        action, _, match = item.partition("@")
        if match and match in case_id and phase == "compiled":
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif action == "hang":
                time.sleep(3600)
            elif action == "raise":
                raise RuntimeError("injected failure")
            elif action.startswith("SIG") and hasattr(signal, action):
                os.kill(os.getpid(), getattr(signal, action))
