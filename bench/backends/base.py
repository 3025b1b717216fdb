"""The backend interface: the hooks the neutral driver (``bench.worker``) calls.

A backend is built for one case and owns everything framework-specific: configuring the
framework (precision, threads, x64), seeds and generators, compiling or tracing the step and
its compiled-cost/FLOP probe, synchronising the device, the evaluation points, and the memory
probes around the training. The driver never imports a framework itself. Adding a framework
is one module in ``bench/backends/`` with a :class:`Backend` subclass and one line in
``bench/backends/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager

#: metrics every backend fills when it is not a GPU run (no NVML sampling)
NO_NVML = {"nvml_peak_bytes": None, "nvml_process_peak_bytes": None,
           "nvml_reason": "not a GPU run (no NVIDIA device in use)"}


class CaseOOM(Exception):
    """The case cannot fit (e.g. the compiled memory analysis exceeds what is available)."""


class Backend(ABC):
    """The hooks of one framework, for one case. Call order (``bench.worker.run_method``):
    ``configure`` -> ``attach`` -> ``compile`` -> ``check_fits`` -> ``memory_probe`` around
    ``init``/``first_batch``/``evaluator``/``bench.loop.train`` (with ``step``, ``sync``,
    ``resample``) and the final evaluation with ``inference``, and
    ``init``/``first_batch``/``step``/``resample`` again to replay a NaN."""

    #: ``Method.framework`` values this backend runs
    name: str = ""
    #: the GPU-telemetry window ``bench.loop.train`` opens around each timed chunk (set by
    #: ``memory_probe`` where NVML samples the run; None: no telemetry)
    window = None
    #: whether ``fused`` can run several optimizer steps in one compiled call (case key
    #: ``fused_steps``; suite validation refuses ``fused_steps > 1`` for a backend without it)
    can_fuse: bool = False

    def __init__(self, case):
        self.case = case

    @abstractmethod
    def configure(self) -> dict:
        """Set the framework up for the case (precision, dtype, threads, device); return the
        environment facts to record (``rec["env"]``)."""

    def attach(self, M) -> None:
        """Bind the built method to this backend (e.g. the device it runs on)."""
        self.M = M

    @abstractmethod
    def compile(self, rec: dict) -> None:
        """Compile or trace the training step; record ``n_params``, ``lower_s``/``compile_s``,
        the compiled memory and cost analysis or the FLOP count (``rec["metrics"]``)."""

    def check_fits(self, rec: dict) -> None:
        """Raise :class:`CaseOOM` if the compiled step cannot fit; default: no check."""

    @abstractmethod
    def init(self):
        """A fresh initial training state (deterministic: the same on every call)."""

    @abstractmethod
    def first_batch(self):
        """The first batch of training points (deterministic), ready on the device."""

    @abstractmethod
    def resample(self, done: int):
        """The batch drawn after ``done`` steps (deterministic in ``done``), ready."""

    @abstractmethod
    def step(self, state, batch):
        """One training step: ``(state, batch) -> (state, metrics)``."""

    def fused(self):
        """``(F, fused_step)``: ``fused_step(state, batch)`` runs F optimizer steps in one
        compiled call (built by ``compile`` for ``case.fused_steps = F > 1``) and returns the
        last step's metrics; ``(1, None)``: one call per step. Default: ``(1, None)``."""
        return 1, None

    def matmul_program(self, n: int, dtype: str):
        """A zero-argument callable running one ``n x n`` by ``n x n`` matmul in ``dtype`` on the
        case's device (compiled, inputs ready), its output for ``sync``: the roofline's
        micro-benchmark (``bench.measure.peak`` times it); None: this backend cannot run it in
        ``dtype`` (e.g. float64 in a JAX process without x64). Default: None."""
        return None

    @abstractmethod
    def sync(self, tree=None) -> None:
        """Wait until the device has finished computing ``tree`` (everything queued)."""

    @abstractmethod
    def evaluator(self, pde):
        """``evaluate(state, final=False) -> {rel_l2, rms_abs, max_abs, ...}`` for the case, on
        the held-out points of ``held_out`` (the same for every framework)."""

    def inference(self, state) -> dict:
        """Time and cost the method's ``inference_programs(state)`` once training is done:
        ``{infer_res, infer_ms, infer_flops}`` for the final metrics, {} when it has none.
        Default: a backend that cannot run programs refuses any."""
        if self.M.inference_programs(state):
            raise NotImplementedError(f"the {self.name} backend cannot time a method's inference programs")
        return {}

    @abstractmethod
    def predict(self, state, points):
        """u at ``points`` (a float64 numpy array (k, n_in)) as a numpy array (the report's
        solution snapshots)."""

    def held_out(self, pde):
        """The case's held-out evaluation points, float64 numpy (``bench.evalpoints``: drawn from
        the case seed with one generator, so every framework scores on the same points)."""
        from bench.evalpoints import eval_points

        return eval_points(pde.bounds(), self.case.eval_points, self.case.seed)

    @contextmanager
    def memory_probe(self, rec: dict):
        """Around the training: peak memory probes into ``rec["metrics"]``; default none."""
        from bench.measure import nvml as mnvml

        try:
            yield
        finally:
            rec["metrics"].update(NO_NVML)
            rec["metrics"].update(mnvml.unavailable(NO_NVML["nvml_reason"]))
