"""NVML memory measurement and the worker's GPU allocator settings.

Everywhere: ``bench.measure.memory`` gets a fake ``pynvml`` at its import boundary
(``memory._pynvml``) that replays scripted device memory and process lists, and fails the way the
real library does (subclasses of the real ``pynvml.NVMLError``). Under ``@pytest.mark.gpu``: the
real NVML, which must see memory grow when JAX allocates on the GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pynvml
import pytest

from bench import worker
from bench.measure import memory
from bench.measure import nvml as mnvml
from bench.suite import Case

ROOT = Path(__file__).resolve().parents[1]
MiB = 2**20
OTHER_PID = 999_999_999  # no process of ours


class FakeNvml:
    """Just enough of pynvml for bench.measure.memory; memory and processes are settable."""

    NVMLError = pynvml.NVMLError

    def __init__(self, used=0, total=80 * 1024 * MiB, procs=None, name=b"NVIDIA Fake 80GB",
                 driver="580.65.06", count=1, init_error=None, procs_error=None):
        self.used, self.total = used, total
        self.procs = [] if procs is None else procs  # list of (pid, usedGpuMemory or None)
        self.name, self.driver, self.count = name, driver, count
        self.init_error, self.procs_error = init_error, procs_error
        self.mem_error = None
        self.energy_mj, self.util_gpu = 0, 0       # GPU time: energy counter and utilisation
        self.energy_error = self.util_error = None
        self.graphics = []                          # graphics processes: list of pids
        self.uuids = [f"GPU-{i}a{i}b0000-1111-2222-3333-44445555666{i}".encode() for i in range(8)]
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def _call(self, name):
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def nvmlInit(self):
        self._call("init")
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self):
        self._call("shutdown")

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index):
        if not 0 <= index < self.count:
            raise pynvml.NVMLError_InvalidArgument()
        return ("handle", index)

    def nvmlDeviceGetMemoryInfo(self, handle):
        self._call("meminfo")
        if self.mem_error is not None:
            raise self.mem_error
        with self.lock:
            used = self.used
        return SimpleNamespace(total=self.total, used=used, free=self.total - used)

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        if self.procs_error is not None:
            raise self.procs_error
        with self.lock:
            return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in self.procs]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self._call("energy")
        if self.energy_error is not None:
            raise self.energy_error
        with self.lock:
            return self.energy_mj

    def nvmlDeviceGetUtilizationRates(self, handle):
        if self.util_error is not None:
            raise self.util_error
        with self.lock:
            return SimpleNamespace(gpu=self.util_gpu, memory=0)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle):
        with self.lock:
            return [SimpleNamespace(pid=p, usedGpuMemory=None) for p in self.graphics]

    def nvmlDeviceGetName(self, handle):
        return self.name

    def nvmlDeviceGetUUID(self, handle):
        return self.uuids[handle[1]]

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def set(self, used=None, procs=None):
        with self.lock:
            if used is not None:
                self.used = used
            if procs is not None:
                self.procs = procs


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nv = FakeNvml()
    monkeypatch.setattr(memory, "_pynvml", lambda: nv)
    return nv


@pytest.fixture
def restore_environ():
    """os.environ and JAX's platform config as they were (setup_platform changes both)."""
    import jax

    saved, platforms = dict(os.environ), jax.config.jax_platforms
    yield
    os.environ.clear()
    os.environ.update(saved)
    jax.config.update("jax_platforms", platforms)


def wait_for(cond, timeout=10.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out waiting for the sampler thread")
        time.sleep(0.002)


# -- fake NVML: the sampler ---------------------------------------------------------------------

def test_sample_tracks_device_and_process_peaks(fake):
    me = os.getpid()
    trace = [  # (device used, process list)
        (1000 * MiB, [(OTHER_PID, 900 * MiB)]),
        (3000 * MiB, [(me, 1500 * MiB), (OTHER_PID, 900 * MiB)]),
        (2500 * MiB, [(me, 2100 * MiB), (OTHER_PID, 100 * MiB)]),
        (1200 * MiB, [(me, 300 * MiB), (OTHER_PID, 4000 * MiB)]),
    ]
    s = memory.NvmlSampler()
    assert s.available and s.reason is None
    for used, procs in trace:
        fake.set(used, procs)
        s.sample()
    p = s.peaks()
    assert p["nvml_peak_bytes"] == max(u for u, _ in trace)
    # our PID only: the other process's 4000 MiB is not ours
    assert p["nvml_process_peak_bytes"] == max(m for _, ps in trace for pid, m in ps if pid == me)
    assert p["nvml_samples"] == len(trace)
    assert p["nvml_reason"] is None


def test_sampler_thread_sees_a_transient_peak(fake):
    fake.set(500 * MiB, [(os.getpid(), 100 * MiB)])
    s = memory.NvmlSampler(interval=0.001).start()
    assert s.device_baseline == 500 * MiB
    for used in (2000 * MiB, 7000 * MiB, 900 * MiB):
        seen = fake.calls["meminfo"]
        fake.set(used, [(os.getpid(), used - 400 * MiB)])
        wait_for(lambda: fake.calls["meminfo"] >= seen + 2)  # sampled at least once since set()
    p = s.stop()
    assert p["nvml_peak_bytes"] == 7000 * MiB
    assert p["nvml_process_peak_bytes"] == 6600 * MiB
    assert p["nvml_baseline_bytes"] == 500 * MiB
    assert p["nvml_samples"] >= 3
    assert fake.calls["init"] == 1 and fake.calls["shutdown"] == 1
    assert not s._thread.is_alive()


@pytest.mark.parametrize("procs,procs_error", [
    ([(OTHER_PID, 900 * MiB)], None),          # PID namespace: the driver lists host PIDs
    ([(os.getpid(), None)], None),             # usedGpuMemory not reported (NVML_VALUE_NOT_AVAILABLE)
    ([], pynvml.NVMLError_NotSupported()),     # per-process query unsupported
], ids=["other-pid", "no-used-memory", "not-supported"])
def test_process_peak_falls_back_with_a_reason(fake, procs, procs_error):
    fake.procs, fake.procs_error = procs, procs_error
    s = memory.NvmlSampler()
    for used in (100 * MiB, 800 * MiB, 300 * MiB):
        fake.set(used)
        s.sample()
    p = s.peaks()
    assert p["nvml_peak_bytes"] == 800 * MiB  # the device figure survives
    assert p["nvml_process_peak_bytes"] is None
    assert "no usedGpuMemory for this PID" in p["nvml_reason"]
    assert "nvml_peak_bytes" in p["nvml_reason"]  # tells the reader what to use instead


def test_sampling_failure_keeps_what_was_measured(fake):
    fake.set(1234 * MiB, [(os.getpid(), 1000 * MiB)])
    s = memory.NvmlSampler(interval=0.001).start()
    wait_for(lambda: s.n_samples >= 2)
    fake.mem_error = pynvml.NVMLError_GpuIsLost()
    wait_for(lambda: not s._thread.is_alive())
    p = s.stop()
    assert p["nvml_peak_bytes"] == 1234 * MiB
    assert p["nvml_process_peak_bytes"] == 1000 * MiB
    assert p["nvml_reason"].startswith("NVML sampling failed")
    assert "GPU is lost" in p["nvml_reason"]


@pytest.mark.parametrize("error", [pynvml.NVMLError_LibraryNotFound(),
                                   pynvml.NVMLError_DriverNotLoaded()],
                         ids=["library-not-found", "driver-not-loaded"])
def test_no_driver_is_not_available_with_reason(fake, error):
    fake.init_error = error
    assert isinstance(error, pynvml.NVMLError)
    s = memory.NvmlSampler()
    assert not s.available
    assert s.reason == f"NVML not available: {type(error).__name__}: {error}"
    assert s.start()._thread is None  # no thread without NVML
    p = s.stop()
    assert p == {"nvml_peak_bytes": None, "nvml_process_peak_bytes": None,
                 "nvml_baseline_bytes": None, "nvml_samples": 0, "nvml_index": None,
                 "nvml_reason": s.reason}
    assert "shutdown" not in fake.calls  # never shut down what did not start
    assert memory.nvml_device_count() == 0
    assert memory.nvml_info() == {}


def test_missing_pynvml_module_is_not_available(monkeypatch):
    def missing():
        raise ModuleNotFoundError("No module named 'pynvml'")

    monkeypatch.setattr(memory, "_pynvml", missing)
    s = memory.NvmlSampler()
    assert not s.available
    assert "ModuleNotFoundError" in s.reason and "pynvml" in s.reason
    assert s.stop()["nvml_peak_bytes"] is None
    assert memory.nvml_device_count() == 0
    assert memory.nvml_info() == {}


def test_bad_device_index_is_not_available(fake):
    fake.count = 2
    s = memory.NvmlSampler(cuda_ordinal=5)
    assert not s.available
    assert "NVMLError_InvalidArgument" in s.reason and "CUDA device 5" in s.reason
    assert fake.calls["init"] == fake.calls["shutdown"] == 1  # nothing left initialised


# -- CUDA ordinal -> NVML index ------------------------------------------------------------------
# NVML numbers all GPUs and ignores CUDA_VISIBLE_DEVICES; JAX and torch number the visible ones.

@pytest.mark.parametrize("mask,ordinal,index", [
    (None, 0, 0), (None, 2, 2),                      # no mask: the same numbering (PCI_BUS_ID order)
    ("3", 0, 3), ("2,0", 0, 2), ("2, 0", 1, 0),      # NVML indices in the mask
    ("GPU-3a3b0000-1111-2222-3333-444455556663", 0, 3),  # a full UUID
    ("1,GPU-5a5b", 1, 5), ("6a6b", 0, 6),            # unique UUID prefixes, with or without GPU-
])
def test_cuda_ordinal_maps_to_the_nvml_device(fake, monkeypatch, mask, ordinal, index):
    fake.count = 8
    if mask is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mask)
    assert memory.nvml_index(fake, ordinal) == index
    s = memory.NvmlSampler(cuda_ordinal=ordinal)
    assert s.available and s.handle == ("handle", index)
    assert s.stop()["nvml_index"] == index
    assert memory.nvml_info(ordinal)["nvml_index"] == index


@pytest.mark.parametrize("mask,ordinal,why", [
    ("1", 1, "not in CUDA_VISIBLE_DEVICES"), ("", 0, "not in CUDA_VISIBLE_DEVICES"),
    ("GPU-9", 0, "matches 0 NVML devices"), ("GPU-", 0, "matches 8 NVML devices"),
    ("MIG-0a0b0000-1111-2222-3333-444455556660", 0, "MIG slice"),
])
def test_a_device_nvml_cannot_name_is_not_sampled(fake, monkeypatch, mask, ordinal, why):
    """A wrong GPU's memory would be a silent lie: no sampling, and the reason on the record."""
    fake.count = 8
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mask)
    with pytest.raises(ValueError, match=why):
        memory.nvml_index(fake, ordinal)
    s = memory.NvmlSampler(cuda_ordinal=ordinal)
    assert not s.available and why in s.reason
    assert s.stop()["nvml_peak_bytes"] is None
    info = memory.nvml_info(ordinal)
    assert "gpu_name" not in info and why in info["nvml_reason"]


# -- fake NVML: device count and info -----------------------------------------------------------

@pytest.mark.parametrize("count", [1, 4])
def test_device_count(fake, count):
    fake.count = count
    assert memory.nvml_device_count() == count
    assert fake.calls["init"] == fake.calls["shutdown"] == 1


@pytest.mark.parametrize("name,driver", [(b"NVIDIA H100 80GB HBM3", b"550.54.15"),
                                         ("NVIDIA H200", "580.65.06")], ids=["bytes", "str"])
def test_nvml_info_decodes_and_reports_total(fake, name, driver):
    fake.name, fake.driver, fake.total = name, driver, 81559 * MiB
    info = memory.nvml_info(0)
    as_str = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
    assert info == {"gpu_name": as_str(name), "driver": as_str(driver),
                    "gpu_total_bytes": 81559 * MiB, "nvml_index": 0}
    assert fake.calls["shutdown"] == 1


def test_real_nvml_without_gpu_reports_why():
    """This machine's real pynvml: without a driver, a clean 'not available' with the NVML error."""
    if memory.nvml_device_count() > 0:
        pytest.skip("an NVIDIA GPU is visible here; the gpu-marked tests cover the real NVML")
    s = memory.NvmlSampler()
    assert not s.available
    assert s.reason.startswith("NVML not available: NVMLError_")
    assert s.stop()["nvml_reason"] == s.reason


# -- the worker's allocator setting -------------------------------------------------------------

def _case(device: str, **kw) -> Case:
    base = dict(suite="t", pde="heat", dim=1, method="pinn", n_per_axis=4, seed=0, steps=2,
                device=device, method_params={"width": 8, "depth": 1}, eval_points=16,
                timing_samples=1)
    return Case(**{**base, **kw})


def test_setup_platform_gpu_disables_preallocation(restore_environ):
    for k in ("XLA_PYTHON_CLIENT_PREALLOCATE", "JAX_PLATFORMS", "CUDA_DEVICE_ORDER"):
        os.environ.pop(k, None)
    set_ = worker.setup_platform(_case("gpu"))
    assert set_ == {"JAX_PLATFORMS": "cuda", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                    "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # CUDA numbers GPUs as NVML does
    assert os.environ["JAX_PLATFORMS"] == "cuda"
    import jax  # imported before the call (bench.suite imports it): the config must follow too

    assert jax.config.jax_platforms == "cuda"


def test_setup_platform_gpu_keeps_and_records_an_explicit_setting(restore_environ):
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "true"
    os.environ["CUDA_DEVICE_ORDER"] = "FASTEST_FIRST"
    os.environ.pop("JAX_PLATFORMS", None)
    set_ = worker.setup_platform(_case("gpu"))
    assert set_["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"  # recorded as what was in force
    assert set_["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"


def test_setup_platform_cpu_leaves_the_allocator_alone(restore_environ):
    os.environ.pop("XLA_PYTHON_CLIENT_PREALLOCATE", None)
    os.environ.pop("CUDA_DEVICE_ORDER", None)
    set_ = worker.setup_platform(_case("cpu"))
    assert set_ == {"JAX_PLATFORMS": "cpu"}
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in os.environ
    assert "CUDA_DEVICE_ORDER" not in os.environ
    import jax

    assert jax.config.jax_platforms == "cpu"


def _run_worker(tmp_path, case: Case,
                env_drop=("XLA_PYTHON_CLIENT_PREALLOCATE", "JAX_PLATFORMS", "CUDA_DEVICE_ORDER")):
    case_file, out = tmp_path / "case.json", tmp_path / "rec.json"
    case_file.write_text(json.dumps(case.to_dict()))
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run([sys.executable, "-m", "bench.worker", str(case_file), str(out)], cwd=ROOT,
                   env=env, timeout=300, check=True, capture_output=True)
    return json.loads(out.read_text())


def test_worker_records_the_allocator_setting_of_a_gpu_case(tmp_path):
    """A fresh worker for a GPU case: the record carries PREALLOCATE=false as set before JAX."""
    rec = _run_worker(tmp_path, _case("gpu"))
    assert rec["env"]["platform_env"]["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert rec["env"]["env_vars"]["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert rec["env"]["platform_env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    if memory.nvml_device_count() == 0:
        # no CUDA here: the case fails; it must not quietly run on the CPU instead
        assert rec["status"] == "error"
        assert rec["env"].get("device_platform") is None
        assert "step_ms" not in rec["metrics"]


# -- real NVML on a GPU ---------------------------------------------------------------------------

ALLOC_SCRIPT = r"""
import json, os, time
import jax, jax.numpy as jnp
from bench.measure.memory import NvmlSampler
dev = jax.devices("gpu")[0]
jnp.zeros(1).block_until_ready()             # start the CUDA context before the baseline
s = NvmlSampler(cuda_ordinal=0, interval=0.005).start()
time.sleep(0.1)
x = jax.device_put(jnp.ones((N_BYTES // 4,), jnp.float32), dev).block_until_ready()
time.sleep(0.3)
peaks = s.stop()
peaks["allocator_peak"] = dev.memory_stats().get("peak_bytes_in_use")
print("RESULT " + json.dumps(peaks))
"""


@pytest.mark.gpu
def test_real_sampler_sees_a_jax_allocation():
    n_bytes = 1024 * MiB
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "JAX_PLATFORMS": "cuda",
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", ALLOC_SCRIPT.replace("N_BYTES", str(n_bytes))],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    p = json.loads(line[len("RESULT "):])
    assert p["nvml_samples"] >= 10
    # whole-device figure: grew by at least the array (other processes may add, never subtract
    # on an otherwise idle GPU)
    assert p["nvml_peak_bytes"] - p["nvml_baseline_bytes"] >= 0.9 * n_bytes
    assert p["allocator_peak"] >= n_bytes
    if p["nvml_process_peak_bytes"] is not None:  # driver lists our PID
        assert p["nvml_process_peak_bytes"] >= n_bytes
    else:
        assert "no usedGpuMemory" in p["nvml_reason"]


@pytest.mark.gpu
def test_real_nvml_info():
    assert memory.nvml_device_count() >= 1
    info = memory.nvml_info(0)
    assert info["gpu_name"] and info["driver"]
    assert info["gpu_total_bytes"] > 1024 * MiB


@pytest.mark.gpu
def test_worker_gpu_case_measures_device_memory(tmp_path):
    rec = _run_worker(tmp_path, _case("gpu", steps=4))
    assert rec["status"] == "ok", rec.get("error")
    m = rec["metrics"]
    assert rec["env"]["platform_env"]["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert rec["env"]["device_platform"] == "gpu"
    assert m["device_peak_bytes"] and m["device_peak_bytes"] > 0
    assert m["nvml_peak_bytes"] and m["nvml_peak_bytes"] >= m["nvml_baseline_bytes"]
    # without preallocation the allocator peak is the case's, far below the device's memory
    assert m["device_peak_bytes"] < 0.5 * m["device_limit_bytes"]
    # GPU time: a value or the reason NVML gave none, never a made-up figure
    for value, reason in (("nvml_energy_per_step_j", "nvml_energy_reason"),
                          ("nvml_gpu_util_mean", "nvml_util_reason"),
                          ("nvml_contaminated", "nvml_contamination_reason")):
        assert value in m and reason in m
        assert m[value] is not None or m[reason]
    if m["nvml_energy_per_step_j"] is not None:
        assert m["nvml_energy_per_step_j"] > 0 and m["nvml_energy_steps"] >= 1


# -- fake NVML: GPU time over the timed chunks, foreign processes (bench.measure.nvml) ----------

def test_energy_and_utilisation_count_the_timed_chunks_only(fake):
    me = os.getpid()
    fake.set(1000 * MiB, [(me, 900 * MiB)])
    fake.energy_mj = 10_000_000
    s = memory.NvmlSampler()
    w = s.window
    s.sample()                                 # outside a chunk: no utilisation sample
    for chunk_mj, util, steps in ((5000, 80, 10), (3000, 60, 5)):
        w.enter()
        fake.energy_mj += chunk_mj
        fake.util_gpu = util
        s.sample()
        w.exit(steps)
        fake.energy_mj += 99_000               # evaluation between chunks: not counted
        fake.util_gpu = 3
        s.sample()
    t = s.telemetry()
    assert t["nvml_energy_j"] == pytest.approx(8.0)
    assert t["nvml_energy_steps"] == 15
    assert t["nvml_energy_per_step_j"] == pytest.approx(8.0 / 15)
    assert t["nvml_energy_timed_s"] > 0
    assert t["nvml_power_mean_w"] == pytest.approx(8.0 / t["nvml_energy_timed_s"])
    assert t["nvml_gpu_util_samples"] == 2
    assert t["nvml_gpu_util_mean"] == pytest.approx(70.0) and t["nvml_gpu_util_max"] == 80
    assert t["nvml_energy_reason"] is None and t["nvml_util_reason"] is None
    assert t["nvml_contaminated"] is False and t["nvml_foreign_pids"] == []


@pytest.mark.parametrize("which", ["energy", "util"])
def test_unsupported_gpu_time_is_null_with_the_reason(fake, which):
    setattr(fake, f"{which}_error", pynvml.NVMLError_NotSupported())
    s = memory.NvmlSampler()
    s.window.enter()
    fake.energy_mj += 500
    s.sample()
    s.window.exit(4)
    t = s.telemetry()
    if which == "energy":
        assert t["nvml_energy_j"] is None and t["nvml_energy_per_step_j"] is None
        assert "nvmlDeviceGetTotalEnergyConsumption" in t["nvml_energy_reason"]
        assert "Not Supported" in t["nvml_energy_reason"]
        assert t["nvml_gpu_util_samples"] == 1          # the other figure survives
    else:
        assert t["nvml_gpu_util_mean"] is None and t["nvml_gpu_util_samples"] == 0
        assert "nvmlDeviceGetUtilizationRates" in t["nvml_util_reason"]
        assert t["nvml_energy_j"] == pytest.approx(0.5)


def test_no_timed_chunk_gives_no_gpu_time(fake):
    s = memory.NvmlSampler()
    s.sample()
    t = s.telemetry()
    assert t["nvml_energy_j"] is None and t["nvml_energy_reason"] == "no timed chunk ran"
    assert t["nvml_gpu_util_mean"] is None and "no NVML sample" in t["nvml_util_reason"]


@pytest.mark.parametrize("trace,graphics,want,foreign,why", [
    ([[("me", 1)], [("me", 2)]], [], False, [], None),
    ([[("me", 1)], [("me", 2), (OTHER_PID, 5)], [("me", 2)]], [], True, [OTHER_PID], "other process"),
    ([[("me", 1)]], [OTHER_PID + 1], True, [OTHER_PID + 1], "other process"),      # a graphics client
    ([[(OTHER_PID, 1)], [(OTHER_PID, 2)]], [], False, [], "PID namespace"),        # one PID: the worker
    ([[(OTHER_PID, 1)], [(OTHER_PID, 2), (OTHER_PID + 7, 3)]], [], True,
     [OTHER_PID, OTHER_PID + 7], "only one of them this worker"),
    ([[], []], [], None, [], "cannot check"),
], ids=["alone", "foreign-compute", "foreign-graphics", "pid-namespace-alone", "pid-namespace-two",
        "nothing-listed"])
def test_foreign_process_marks_the_whole_gpu_figures(fake, trace, graphics, want, foreign, why):
    me = os.getpid()
    fake.graphics = graphics
    s = memory.NvmlSampler()
    for procs in trace:
        fake.set(2000 * MiB, [(me if p == "me" else p, m * MiB) for p, m in procs])
        s.sample()
    t = s.stop() | s.telemetry()
    assert t["nvml_contaminated"] is want
    assert t["nvml_foreign_pids"] == foreign
    if why is None:
        assert t["nvml_contamination_reason"] is None
    else:
        assert why in t["nvml_contamination_reason"]
    assert t["nvml_peak_bytes"] == 2000 * MiB  # marked, never changed


def test_unreadable_process_list_cannot_check(fake):
    fake.procs_error = pynvml.NVMLError_NotSupported()
    s = memory.NvmlSampler()
    s.sample()
    t = s.telemetry()
    assert t["nvml_contaminated"] is None and "cannot check" in t["nvml_contamination_reason"]


def test_without_nvml_every_gpu_time_field_is_null_with_the_reason(fake):
    fake.init_error = pynvml.NVMLError_DriverNotLoaded()
    s = memory.NvmlSampler()
    t = s.telemetry()
    assert s.window is None
    assert set(t) == set(mnvml.FIELDS)
    assert all(t[k] is None for k in ("nvml_energy_j", "nvml_gpu_util_mean", "nvml_contaminated"))
    assert t["nvml_energy_reason"] == t["nvml_util_reason"] == s.reason


def test_the_loop_opens_the_window_around_timed_chunks_only():
    """enter/exit bracket every timed chunk: nothing else (first steps, evaluation, resampling)
    happens inside, and the chunks' steps add up to the timed steps."""
    from bench import loop

    events, inside = [], {"on": False}

    class Window:
        def enter(self):
            assert not inside["on"]
            inside["on"] = True
            events.append("enter")

        def exit(self, k):
            assert inside["on"]
            inside["on"] = False
            events.append(k)

    def evaluate(state):
        assert not inside["on"], "evaluation ran inside the timed window"
        return {"rel_l2": 0.5}

    def resample(done):
        assert not inside["on"], "resampling ran inside the timed window"
        return done

    case = SimpleNamespace(steps=37, timing_samples=4, eval_every=0, max_seconds=0, target_rel_l2=0)
    M = SimpleNamespace(params={"resample_every": 5}, curve_keys=())
    rec = {"metrics": {}, "curve": []}
    r = loop.train(case, M, rec, lambda s, b: (s + 1, {"loss": 1.0}), lambda x: x, resample, evaluate,
                   0, 0, window=Window())
    ks = [e for e in events if e != "enter"]
    assert events == [x for k in ks for x in ("enter", k)]
    assert r.done == 37 and sum(ks) == 37 - 2  # steps 1 and 2 run alone, untimed
