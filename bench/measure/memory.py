"""Peak memory from every available source, each under its own name, never mixed.

* ``nvml_peak_bytes``: NVML device memory used (whole GPU, all processes), sampled by a
  background thread every ``interval`` seconds; ``nvml_process_peak_bytes``: this process's
  ``usedGpuMemory`` where the driver reports it (not in PID-namespaced containers).
* ``device_peak_bytes``: the JAX allocator's ``peak_bytes_in_use`` (None on CPU).
* ``xla_*_bytes``: the compiled step's static memory analysis (works on every backend, and for
  sizes that cannot run).
* ``peak_rss_bytes``: host peak resident set size of the worker process.

Without an NVIDIA driver every NVML field is None and the reason is recorded. GPU time (utilisation
and energy over the timed chunks) and the foreign-process check ride on the same sampler
(``bench.measure.nvml``).
"""

from __future__ import annotations

import os
import resource
import sys
import threading

from bench.measure import nvml as mnvml


def peak_rss_bytes() -> int:
    """Lifetime peak RSS of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def _pynvml():
    import pynvml  # nvidia-ml-py; imports without a GPU, nvmlInit raises

    return pynvml


def nvml_device_count() -> int:
    """Number of NVIDIA GPUs visible through NVML; 0 without a driver."""
    try:
        nv = _pynvml()
        nv.nvmlInit()
    except Exception:
        return 0
    try:
        return int(nv.nvmlDeviceGetCount())
    except Exception:
        return 0
    finally:
        try:
            nv.nvmlShutdown()
        except Exception:
            pass


def nvml_index(nv, cuda_ordinal: int) -> int:
    """The NVML index of the GPU that CUDA (JAX, torch) calls ``cuda_ordinal``.

    NVML numbers every GPU of the machine in PCI bus order and ignores ``CUDA_VISIBLE_DEVICES``;
    CUDA numbers only the visible ones, in ``CUDA_DEVICE_ORDER`` (the worker sets ``PCI_BUS_ID``
    for GPU cases, so without a mask the two agree). With a mask, entry ``cuda_ordinal`` of it
    names the GPU: an NVML index, or a UUID (``GPU-...``, or a unique prefix of one). Raises
    ValueError where NVML cannot name the device (a MIG slice, a mask that does not match).
    """
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    if mask is None:
        return int(cuda_ordinal)
    entries = [e.strip() for e in mask.split(",") if e.strip()]
    if not 0 <= cuda_ordinal < len(entries):
        raise ValueError(f"CUDA device {cuda_ordinal} is not in CUDA_VISIBLE_DEVICES={mask!r}")
    entry = entries[cuda_ordinal]
    if entry.isdigit():
        return int(entry)
    if entry.startswith("MIG-"):
        raise ValueError(f"CUDA_VISIBLE_DEVICES entry {entry!r} is a MIG slice: NVML's device memory "
                         "counts the whole GPU, not the slice")
    hits = []
    for i in range(int(nv.nvmlDeviceGetCount())):
        uuid = nv.nvmlDeviceGetUUID(nv.nvmlDeviceGetHandleByIndex(i))
        uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
        if uuid.startswith(entry) or uuid.startswith("GPU-" + entry):
            hits.append(i)
    if len(hits) != 1:
        raise ValueError(f"CUDA_VISIBLE_DEVICES entry {entry!r} matches {len(hits)} NVML devices")
    return hits[0]


def nvml_info(cuda_ordinal: int = 0) -> dict:
    """Driver version, device name, total memory and NVML index of the GPU that CUDA calls
    ``cuda_ordinal`` (empty without NVML; ``nvml_reason`` when the device cannot be named)."""
    try:
        nv = _pynvml()
        nv.nvmlInit()
    except Exception:
        return {}
    try:
        index = nvml_index(nv, cuda_ordinal)
        h = nv.nvmlDeviceGetHandleByIndex(index)
        name = nv.nvmlDeviceGetName(h)
        drv = nv.nvmlSystemGetDriverVersion()
        return {"gpu_name": name.decode() if isinstance(name, bytes) else name,
                "driver": drv.decode() if isinstance(drv, bytes) else drv,
                "gpu_total_bytes": int(nv.nvmlDeviceGetMemoryInfo(h).total),
                "nvml_index": index}
    except Exception as e:
        return {"nvml_reason": f"{type(e).__name__}: {e}"}
    finally:
        try:
            nv.nvmlShutdown()
        except Exception:
            pass


class NvmlSampler:
    """Background sampler of NVML device and per-process used memory.

    ``cuda_ordinal`` is the device as CUDA (JAX, torch) numbers it; the sampler watches the NVML
    device it maps to (``nvml_index``). ``available`` is False (with ``reason``) when NVML cannot
    be initialised or cannot name the device; then ``peaks()`` returns None for every field.
    """

    def __init__(self, cuda_ordinal: int = 0, interval: float = 0.01, pid: int | None = None):
        self.cuda_ordinal, self.interval = cuda_ordinal, interval
        self.index = None
        self.pid = os.getpid() if pid is None else pid
        self.available, self.reason = False, None
        self.device_peak = self.process_peak = self.device_baseline = None
        self.n_samples = 0
        #: utilisation, energy and foreign processes over the timed chunks (None without NVML)
        self.window: mnvml.TimedWindow | None = None
        self._stop = threading.Event()
        self._thread = None
        try:
            self.nv = _pynvml()
            self.nv.nvmlInit()
        except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self.reason = f"NVML not available: {type(e).__name__}: {e}".strip()
            return
        try:
            self.index = nvml_index(self.nv, cuda_ordinal)
            self.handle = self.nv.nvmlDeviceGetHandleByIndex(self.index)
            self.available = True
            self.window = mnvml.TimedWindow(self.nv, self.handle, self.pid)
        except Exception as e:  # an index past the count, a MIG slice, a mask NVML cannot match
            self.reason = f"NVML not available for CUDA device {cuda_ordinal}: {type(e).__name__}: {e}".strip()
            try:
                self.nv.nvmlShutdown()
            except Exception:
                pass

    def sample(self) -> None:
        used = int(self.nv.nvmlDeviceGetMemoryInfo(self.handle).used)
        self.device_peak = used if self.device_peak is None else max(self.device_peak, used)
        try:
            procs = self.nv.nvmlDeviceGetComputeRunningProcesses(self.handle)
            listed = list(procs)
        except Exception:
            procs, listed = [], None
        for p in procs:
            mem = getattr(p, "usedGpuMemory", None)
            if p.pid == self.pid and mem is not None:
                self.process_peak = mem if self.process_peak is None else max(self.process_peak, mem)
        if self.window is not None:
            if listed is not None:
                try:  # a display server or other graphics client is a foreign process too
                    listed += list(self.nv.nvmlDeviceGetGraphicsRunningProcesses(self.handle))
                except Exception:
                    pass
            self.window.observe(None if listed is None else
                                [(p.pid, getattr(p, "usedGpuMemory", None)) for p in listed])
        self.n_samples += 1

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as e:
                self.reason = f"NVML sampling failed: {e}"
                return
            self._stop.wait(self.interval)

    def start(self) -> "NvmlSampler":
        if self.available:
            self.device_baseline = int(self.nv.nvmlDeviceGetMemoryInfo(self.handle).used)
            self._thread = threading.Thread(target=self._run, daemon=True, name="nvml-sampler")
            self._thread.start()
        return self

    def stop(self) -> dict:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2)
            try:
                self.sample()
            except Exception:
                pass
        if self.available:
            try:
                self.nv.nvmlShutdown()
            except Exception:
                pass
        return self.peaks()

    def telemetry(self) -> dict:
        """GPU utilisation and energy over the timed chunks, and the foreign-process check
        (``bench.measure.nvml``); every field None with the reason where NVML is not there."""
        if self.window is None:
            return mnvml.unavailable(self.reason or "NVML not available")
        return self.window.result()

    def peaks(self) -> dict:
        proc_reason = None
        if self.available and self.process_peak is None:
            proc_reason = ("NVML lists no usedGpuMemory for this PID (PID namespace or driver); "
                           "use nvml_peak_bytes on an exclusive GPU")
        return {"nvml_peak_bytes": self.device_peak,
                "nvml_process_peak_bytes": self.process_peak,
                "nvml_baseline_bytes": self.device_baseline,
                "nvml_samples": self.n_samples,
                "nvml_index": self.index,
                "nvml_reason": self.reason or proc_reason}


def jax_device_peak(device) -> dict:
    """The JAX allocator's peak and limit (None on backends without memory_stats, e.g. CPU)."""
    try:
        stats = device.memory_stats()
    except Exception:
        stats = None
    if not stats:
        return {"device_peak_bytes": None, "device_limit_bytes": None}
    return {"device_peak_bytes": stats.get("peak_bytes_in_use"),
            "device_limit_bytes": stats.get("bytes_limit")}


def available_host_bytes() -> int:
    """Memory this process may still use: the cgroup limit if set, else MemAvailable."""
    avail = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except Exception:
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            txt = open(path).read().strip()
            if txt.isdigit() and int(txt) < (1 << 60):
                avail = min(avail or int(txt), int(txt))
        except OSError:
            pass
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            avail = min(avail or soft, soft)
    except Exception:
        pass
    return int(avail or 0)
