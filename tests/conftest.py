"""Shared pytest hooks: the ``gpu`` marker.

Tests marked ``@pytest.mark.gpu`` need an NVIDIA GPU visible through NVML *and* a CUDA build of
JAX; anywhere else they are skipped with the reason found (no driver, or CPU-only jaxlib). The
marker is declared in ``pyproject.toml``; ``tox -e gpu`` / ``pytest -m gpu`` selects these tests.

On a GPU runner set ``PINNBENCH_REQUIRE_GPU=1`` (the GPU workflow does): then a missing GPU or a
CPU-only jaxlib is a usage error, not a quiet skip of every GPU test.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def gpu_unavailable_reason() -> str | None:
    """None when an NVIDIA GPU with CUDA JAX is usable here, else why not (one line)."""
    from bench.measure.memory import nvml_device_count

    n = nvml_device_count()
    if n == 0:
        return "needs an NVIDIA GPU: NVML sees no device (no driver or no GPU on this machine)"
    try:
        import jax

        devs = jax.devices("gpu")
    except Exception as e:  # CPU-only jaxlib raises RuntimeError: unknown backend
        msg = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        return (f"needs CUDA JAX: NVML sees {n} GPU(s) but jax has no gpu backend ({msg}); "
                "pip install 'jax[cuda13]==0.10.2' (or cuda12)")
    if not devs:
        return f"needs CUDA JAX: NVML sees {n} GPU(s) but jax.devices('gpu') is empty"
    return None


def pytest_configure(config):
    # pyproject.toml declares it too; registering here keeps --strict-markers working when the
    # tests run from a tree without that config
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU with CUDA JAX (skipped elsewhere)")
    # On a GPU, JAX would otherwise grab 75% of device memory at its first use in this process,
    # starving the worker subprocesses the tests start and hiding allocations from NVML. Set
    # before any test touches a JAX backend; an explicit value in the environment wins.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def pytest_collection_modifyitems(config, items):
    gpu_items = [it for it in items if it.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    reason = gpu_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("PINNBENCH_REQUIRE_GPU", "").strip() not in ("", "0"):
        raise pytest.UsageError(f"PINNBENCH_REQUIRE_GPU is set but gpu tests cannot run: {reason}")
    skip = pytest.mark.skip(reason=reason)
    for it in gpu_items:
        it.add_marker(skip)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One real ``bench run --suite smoke --device cpu --report`` for the whole test session
    (about 25 s on 2 cores), run in a scratch directory: ``(cwd, completed process)``; the
    records are under ``cwd / "results" / "smoke"``, the report under ``cwd / "reports"``.
    Tests that use it only read what it wrote."""
    cwd = tmp_path_factory.mktemp("smoke")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-m", "bench", "run", "--suite", "smoke", "--results",
                        "results", "--device", "cpu", "--report"], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    return cwd, p
