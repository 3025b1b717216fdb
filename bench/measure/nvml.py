"""What NVML says of GPU time over a case's timed window, and whether the GPU was the case's alone.

Fed by ``bench.measure.memory.NvmlSampler`` (its background thread calls ``observe`` at every
sample) and by the training loop (``enter`` / ``exit`` around every timed chunk, outside the
step clock):

* ``nvml_gpu_util_mean`` / ``_max`` / ``_samples``: ``nvmlDeviceGetUtilizationRates().gpu``, the
  percentage of the driver's last sample period in which a kernel ran on the GPU, sampled only
  while a timed chunk runs. A whole-GPU figure.
* ``nvml_energy_j``, ``nvml_energy_per_step_j``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since
  the driver loaded; Volta and newer) read just before and just after every timed chunk, the
  differences summed over the chunks, divided by the steps those chunks ran;
  ``nvml_energy_timed_s`` is the wall time of those chunks and ``nvml_power_mean_w`` their mean
  power. A whole-GPU figure.
* ``nvml_foreign_pids``, ``nvml_contaminated``: processes other than the worker seen on the GPU
  at any sample of the case (compute and graphics lists). ``True`` marks the whole-GPU figures
  (``nvml_peak_bytes``, utilisation, energy) as including another process's use;
  ``nvml_process_peak_bytes`` is the worker's own.

Each value NVML cannot give is None, with the reason in the matching ``*_reason`` field.
"""

from __future__ import annotations

import threading
import time

#: the fields ``TimedWindow.result`` fills, in order
FIELDS = ("nvml_gpu_util_mean", "nvml_gpu_util_max", "nvml_gpu_util_samples", "nvml_util_reason",
          "nvml_energy_j", "nvml_energy_per_step_j", "nvml_energy_steps", "nvml_energy_timed_s",
          "nvml_power_mean_w", "nvml_energy_reason", "nvml_foreign_pids", "nvml_contaminated",
          "nvml_contamination_reason")


def unavailable(reason: str) -> dict:
    """Every telemetry field empty, each with ``reason``."""
    out = {k: None for k in FIELDS}
    out.update(nvml_gpu_util_samples=0, nvml_energy_steps=0, nvml_foreign_pids=[],
               nvml_util_reason=reason, nvml_energy_reason=reason, nvml_contamination_reason=reason)
    return out


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".strip()


class TimedWindow:
    """Utilisation and energy over the timed chunks, and the processes seen during the case.

    ``nv`` is the (initialised) pynvml module, ``handle`` the device, ``pid`` the worker's PID.
    ``enter``/``exit`` run in the training loop's thread, ``observe`` in the sampler's; NVML is
    thread-safe and the shared state is guarded by a lock.
    """

    def __init__(self, nv, handle, pid: int):
        self.nv, self.handle, self.pid = nv, handle, pid
        self.active = False
        self._lock = threading.Lock()
        self.util: list[float] = []
        self.util_reason: str | None = None
        self.energy_mj = 0
        self.energy_steps = 0
        self.timed_s = 0.0
        self.energy_reason: str | None = None
        self._e0 = self._t0 = None
        self.pids: set[int] = set()
        self.self_seen = False
        self.lists_ok = 0
        self.list_reason: str | None = None

    # -- the timed chunks (training loop) ------------------------------------------------------

    def _energy(self) -> int | None:
        if self.energy_reason is not None:
            return None
        try:
            return int(self.nv.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception as e:  # NVMLError_NotSupported before Volta, a driver without it, ...
            self.energy_reason = f"nvmlDeviceGetTotalEnergyConsumption: {_err(e)}"
            return None

    def enter(self) -> None:
        """Just before a timed chunk starts."""
        self._e0 = self._energy()
        self._t0 = time.perf_counter()
        self.active = True

    def exit(self, steps: int) -> None:
        """Just after a timed chunk of ``steps`` steps ended (after the device sync)."""
        self.active = False
        t1 = time.perf_counter()
        e1 = self._energy()
        if self._e0 is not None and e1 is not None:
            if e1 < self._e0:
                self.energy_reason = "the energy counter went backwards (driver reloaded?)"
            else:
                with self._lock:
                    self.energy_mj += e1 - self._e0
                    self.energy_steps += int(steps)
                    self.timed_s += t1 - self._t0
        self._e0 = None

    # -- every sample (sampler thread) ---------------------------------------------------------

    def observe(self, procs) -> None:
        """``procs``: (pid, used bytes) of every process NVML lists on the GPU now, or None if
        the list could not be read. Samples utilisation when a timed chunk is running."""
        with self._lock:
            if procs is None:
                self.list_reason = self.list_reason or "NVML could not list the GPU's processes"
            else:
                self.lists_ok += 1
                for pid, _mem in procs:
                    if pid == self.pid:
                        self.self_seen = True
                    else:
                        self.pids.add(int(pid))
        if self.active and self.util_reason is None:
            try:
                u = float(self.nv.nvmlDeviceGetUtilizationRates(self.handle).gpu)
            except Exception as e:
                self.util_reason = f"nvmlDeviceGetUtilizationRates: {_err(e)}"
                return
            with self._lock:
                self.util.append(u)

    # -- the record ------------------------------------------------------------------------------

    def contamination(self) -> tuple[bool | None, list[int], str | None]:
        """(contaminated, foreign PIDs, reason). The worker holds a CUDA context on the GPU for
        the whole case, so it is always one of the listed processes: where its PID is not
        visible (a PID namespace lists host PIDs), one listed PID is the worker and more than one
        means another process was there."""
        if self.lists_ok == 0:
            return None, [], (self.list_reason or "no NVML process list was read") + ": cannot check"
        if self.self_seen:
            foreign = sorted(self.pids)
        elif len(self.pids) <= 1:
            if not self.pids:
                return None, [], ("NVML listed no process on the GPU, not even this worker "
                                  "(the driver hides them): cannot check")
            return False, [], ("one process listed, taken to be this worker (its PID is not "
                               "visible through NVML: PID namespace)")
        else:
            foreign = sorted(self.pids)
            return True, foreign, (f"{len(foreign)} processes listed on the GPU during the case, only "
                                   "one of them this worker (PIDs are host PIDs: PID namespace): "
                                   "whole-GPU figures include another process")
        if foreign:
            return True, foreign, (f"{len(foreign)} other process(es) on the GPU during the case (PIDs "
                                   f"{', '.join(map(str, foreign[:8]))}): nvml_peak_bytes, utilisation "
                                   "and energy are whole-GPU figures that include them")
        return False, [], None

    def result(self) -> dict:
        with self._lock:
            util, mj, steps, secs = list(self.util), self.energy_mj, self.energy_steps, self.timed_s
        out = unavailable("")
        if util:
            out.update(nvml_gpu_util_mean=sum(util) / len(util), nvml_gpu_util_max=max(util),
                       nvml_gpu_util_samples=len(util), nvml_util_reason=None)
        else:
            out["nvml_util_reason"] = self.util_reason or "no NVML sample fell inside a timed chunk"
        if steps and self.energy_reason is None:
            j = mj / 1000.0
            out.update(nvml_energy_j=j, nvml_energy_per_step_j=j / steps, nvml_energy_steps=steps,
                       nvml_energy_timed_s=secs, nvml_power_mean_w=j / secs if secs > 0 else None,
                       nvml_energy_reason=None)
        else:
            out["nvml_energy_reason"] = self.energy_reason or "no timed chunk ran"
        c, foreign, why = self.contamination()
        out.update(nvml_contaminated=c, nvml_foreign_pids=foreign, nvml_contamination_reason=why)
        return out
