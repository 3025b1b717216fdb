"""The layering rule, checked from the sources: bench -> methods -> pdes, no arrow back, no cycle.

The graph is built with ``ast`` from every module of ``bench/``, ``methods/`` and ``pdes/``,
counting every import (module level and inside functions: a deferred import is still a
dependency). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to
``pkg``. A submodule's implicit import of its parent package is not an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "methods", "pdes")
#: which top-level package may import which (the layering rule)
ALLOWED = {"bench": {"bench", "methods", "pdes"}, "methods": {"methods", "pdes"}, "pdes": {"pdes"}}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The in-tree modules that module ``name`` (file ``path``) imports."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # ``import a.b.c`` of a module: the longest known prefix
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``g`` as a path ``[a, b, ..., a]``, or None (iterative DFS)."""
    color = dict.fromkeys(g, 0)  # 0 new, 1 on the stack, 2 done
    for root in sorted(g):
        if color[root]:
            continue
        stack = [(root, iter(sorted(g[root])))]
        path = [root]
        color[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
                path.pop()
            elif color.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif color.get(nxt) == 0:
                color[nxt] = 1
                stack.append((nxt, iter(sorted(g[nxt]))))
                path.append(nxt)
    return None


def test_graph_sees_the_known_edges():
    g = graph()
    assert "bench.loop" in g["bench.worker"]
    assert "pdes" in g["methods"] or "pdes.base" in g["methods"]
    assert "methods.base" in g["methods.pinn"]  # relative import resolved


def test_find_cycle_detects_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("pkg", PACKAGES)
def test_layering(pkg):
    bad = sorted(f"{a} imports {b}" for a, deps in graph().items() if a.split(".")[0] == pkg
                 for b in deps if b.split(".")[0] not in ALLOWED[pkg])
    assert not bad, "; ".join(bad)


def test_every_backend_fills_the_interface():
    import inspect

    from bench.backends import BACKENDS, Backend

    assert {"jax", "torch"} <= set(BACKENDS)
    for name, cls in BACKENDS.items():
        assert issubclass(cls, Backend) and cls.name == name
        assert not inspect.isabstract(cls), f"{name}: abstract hooks left: {sorted(cls.__abstractmethods__)}"


def test_every_registered_method_fills_the_interface():
    """Walk every method: a Method subclass with the trainer hooks overridden, a framework
    that has a backend, and the optional hooks of the declared types."""
    import methods
    from bench.backends import BACKENDS
    from methods.base import Method

    required = ("init", "sample", "step", "predict", "size_info", "n_params")
    for name in methods.REGISTRY.names():
        cls = methods.get(name)
        assert issubclass(cls, Method), name
        missing = [h for h in required if getattr(cls, h) is getattr(Method, h)]
        assert not missing, f"{name}: hooks not implemented: {missing}"
        assert cls.framework in BACKENDS, f"{name}: framework {cls.framework!r} has no backend"
        assert isinstance(cls.curve_keys, tuple), name
        assert cls.evaluate is None or callable(cls.evaluate), name
        assert cls.all_defaults()["optimizer"] in cls.optimizers(), name


def test_every_optimizer_declares_its_hooks():
    """Every registered optimizer is an ``Optimizer``; a first-order one is a ``FirstOrder``
    optax entry, any other implements ``init`` and ``step`` itself; its defaults name its
    hyper-parameters and its choices only those."""
    from methods import optim

    for name, opt in optim.OPTIMIZERS.items():
        assert isinstance(opt, optim.Optimizer) and opt.name == name and opt.citation, name
        if not isinstance(opt, optim.FirstOrder):
            for hook in ("init", "step"):
                assert getattr(type(opt), hook) is not getattr(optim.Optimizer, hook), (name, hook)
        assert set(opt.choices) <= set(opt.defaults), name


def test_a_method_with_its_own_step_declares_it():
    """A JAX method whose ``step`` is not ``JaxMethod.step`` (the optimizer's) says so with
    ``optimizer_steps = False``, so that optimizers with a step of their own refuse it."""
    import methods
    from methods.jaxutil import JaxMethod

    for name in methods.REGISTRY.names():
        cls = methods.get(name)
        if cls.framework != "jax":
            continue
        own = cls.step is not JaxMethod.step
        assert cls.optimizer_steps == (not own), name


def test_every_method_follows_its_frameworks_contract():
    """JAX methods subclass ``JaxMethod``, torch methods ``TorchMethod`` (integer seeds, eager
    steps, a device set by the backend): two explicit interfaces, no third by accident."""
    import methods
    from methods.base import TorchMethod
    from methods.jaxutil import JaxMethod

    contract = {"jax": JaxMethod, "torch": TorchMethod}
    for name in methods.REGISTRY.names():
        cls = methods.get(name)
        assert issubclass(cls, contract[cls.framework]), name
