"""Which device a run uses: ``--device auto|cpu|gpu`` resolved against what this machine has
(NVML's GPUs, JAX's CUDA plugin) and what the suite's methods need (their frameworks)."""

from __future__ import annotations

import sys

from bench.errors import BenchError

#: where a CUDA build of JAX lives (jax[cuda12] / jax[cuda13] install these plugins)
JAX_CUDA_MODULES = ("jax_plugins.xla_cuda13", "jax_plugins.xla_cuda12", "jax_cuda13_plugin",
                    "jax_cuda12_plugin")


def jax_has_cuda() -> bool:
    """Whether a CUDA plugin for JAX is installed (found without starting any backend: the
    parent process must not take GPU memory from the workers)."""
    import importlib.util

    for name in JAX_CUDA_MODULES:
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def resolve_device(choice: str, frameworks=("jax",)) -> str:
    """``auto``: the GPU when NVML sees one and JAX can use it (or the suite is torch-only),
    else the CPU, saying why on stderr when a GPU is there but unusable. ``gpu``: refuse with
    the reason when it cannot work."""
    from bench.measure.memory import nvml_device_count

    if choice == "cpu":
        return choice
    n = nvml_device_count()
    no_jax = "jax" in frameworks and not jax_has_cuda()
    if choice == "gpu":
        if n == 0:
            raise BenchError("--device gpu: no NVIDIA GPU visible through NVML (valid here: cpu, auto)")
        if no_jax:
            raise BenchError("--device gpu: JAX has no CUDA plugin (pip install 'jax[cuda13]==0.10.2', or "
                             "cuda12 for older drivers); valid here: cpu, auto")
        return choice
    if n > 0 and no_jax:
        sys.stderr.write("bench: note: an NVIDIA GPU is visible but JAX has no CUDA plugin "
                         "(pip install 'jax[cuda13]==0.10.2'): running on the cpu\n")
        return "cpu"
    return "gpu" if n > 0 else "cpu"


def suite_frameworks(s) -> set:
    import methods

    return {methods.get(c.method).framework for c in s.cases}
