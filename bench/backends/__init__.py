"""One seam per framework (bench.backends.base.Backend): ``jax`` and ``torch``.

Registry: ``Method.framework`` -> backend class. Adding a framework is one module here with a
``Backend`` subclass and one line in :data:`BACKENDS`. The framework itself is imported only
when a backend configures it, so importing this package is cheap.
"""

from __future__ import annotations

from bench.backends.base import NO_NVML, Backend, CaseOOM
from bench.backends.jax import JaxBackend
from bench.backends.torch import TorchBackend

BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (JaxBackend, TorchBackend)}


def get(framework: str) -> type[Backend]:
    if framework not in BACKENDS:
        raise ValueError(f"no backend for framework {framework!r} (valid: {', '.join(sorted(BACKENDS))})")
    return BACKENDS[framework]


__all__ = ["BACKENDS", "NO_NVML", "Backend", "CaseOOM", "get"]
