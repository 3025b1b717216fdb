"""The README's two fresh-machine commands, `.ci/run` and pyproject's extras agree.

* ``.ci/run`` runs the README's test command verbatim, inside a virtual environment it makes
  without system site-packages;
* each command's install line names only extras that pyproject.toml defines;
* every third-party package the tests (and the harness) import is installed by the test
  command: its distribution is a dependency, direct or transitive, of the core requirements
  plus the extras that command names;
* the main job's install leaves out the test tools and PyTorch;
* a torch method without torch installed is a one-line error naming the fix (its absence
  simulated, not depended on).
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
#: the project's own modules: its packages, and the test modules (tests import each other's helpers)
LOCAL = {"bench", "methods", "pdes", "tests"} | {p.stem for p in (ROOT / "tests").rglob("*.py")}


def readme_commands() -> tuple[str, str]:
    """(main job, test command): the two ```bash blocks of the fresh-machine section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands on a fresh machine", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert len(blocks) == 2, blocks
    main, test = (b.strip() for b in blocks)
    assert "\n" not in main and "\n" not in test
    return main, test


def install_extras(command: str) -> set[str]:
    """Extras named by the `pip install -e ...` part of a command."""
    m = re.search(r"pip install\s+(?:-\S+\s+)*-e\s+(\S+)", command)
    assert m, command
    target = m.group(1).strip("\"'")
    inner = re.fullmatch(r"\.(?:\[([^\]]*)\])?", target)
    assert inner, f"install target {target!r} is not the project (.)"
    return {e.strip() for e in (inner.group(1) or "").split(",") if e.strip()}


def test_ci_script_runs_the_readme_test_command_in_a_fresh_venv():
    _, test = readme_commands()
    script = (ROOT / ".ci" / "run").read_text()
    lines = [ln.strip() for ln in script.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines[-1] == test, "the last command of .ci/run must be the README's test command"
    assert any(re.match(r"python3? -m venv ", ln) for ln in lines)
    assert "--system-site-packages" not in script
    venv_at = next(i for i, ln in enumerate(lines) if re.match(r"python3? -m venv ", ln))
    activate_at = next(i for i, ln in enumerate(lines) if ln.startswith("source ") and "activate" in ln)
    assert venv_at < activate_at < len(lines) - 1
    assert "mktemp -d" in script and "trap" in script and "rm -rf" in script  # thrown away at the end
    assert "unset PYTHONPATH" in script


def test_readme_commands_name_only_existing_extras():
    main, test = readme_commands()
    extras = set(PROJECT["optional-dependencies"])
    for cmd in (main, test):
        named = install_extras(cmd)
        assert named <= extras, f"{cmd!r} names extras {sorted(named - extras)} (valid: {sorted(extras)})"
    assert "python -m bench run --suite heat4d" in main
    assert "python -m pytest" in test


def _requirement_names(extras: set[str]) -> set[str]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for e in extras:
        reqs += [Requirement(r) for r in PROJECT["optional-dependencies"][e]]
    return {canonicalize_name(r.name) for r in reqs}


def test_main_job_installs_no_test_tools_and_no_torch():
    main, _ = readme_commands()
    names = _requirement_names(install_extras(main))
    assert not names & {"torch", "pytest", "pytest-benchmark", "hypothesis", "tox", "ruff", "submitit"}
    # the main job's suite has no method that needs an optional package
    import methods
    from bench.suite import load

    assert all(not methods.get(c.method).requires for c in load("heat4d").cases)


def _closure(names: set[str]) -> set[str]:
    """The installed distributions these names pull in, transitively (markers evaluated,
    extras of dependencies ignored)."""
    seen, todo = set(), list(names)
    while todo:
        n = canonicalize_name(todo.pop())
        if n in seen:
            continue
        seen.add(n)
        try:
            reqs = md.requires(n) or []
        except md.PackageNotFoundError:
            continue
        for r in map(Requirement, reqs):
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    return seen


def _imported_modules(paths) -> dict[str, str]:
    """Top-level third-party module -> a file importing it."""
    out = {}
    for p in paths:
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL:
                    out.setdefault(top, str(p.relative_to(ROOT)))
    return out


def test_every_package_the_tests_import_comes_with_the_test_install():
    _, test = readme_commands()
    installed = _closure(_requirement_names(install_extras(test)))
    dists = md.packages_distributions()
    sources = [p for d in ("tests", "bench", "methods", "pdes") for p in (ROOT / d).rglob("*.py")]
    missing = []
    for module, where in sorted(_imported_modules(sources).items()):
        providers = {canonicalize_name(d) for d in dists.get(module, [])}
        if not providers & installed:
            missing.append(f"{module} (imported by {where}; from {sorted(providers) or 'no installed distribution'})")
    assert not missing, "not installed by the README's test command: " + "; ".join(missing)


def test_closure_check_can_fail():
    """The check above is not vacuous: without the test extra, pytest is not covered."""
    core = _closure(_requirement_names(set()))
    assert "pytest" not in core and "torch" not in core
    assert {"pytest", "torch", "submitit", "pytest-benchmark"} <= _closure(_requirement_names({"test"}))


def test_torch_method_without_torch_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    """PyTorch's absence simulated: find_spec reports no `torch`, whatever this machine has."""
    import importlib.util

    from bench import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name.split(".")[0] == "torch" else real(name, *a, **k))
    suite = tmp_path / "t.toml"
    suite.write_text('pde = "heat"\ndim = 1\nmethods = ["pinn", "pinn-torch"]\n'
                     'n_per_axis = [4]\nsteps = 2\n')
    try:
        rc = cli.main(["run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--dry-run"])
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "'pinn-torch' needs torch" in err and "pip install torch==2.13.0" in err
    assert not (tmp_path / "r").exists()


def test_torch_method_check_passes_where_torch_is_installed():
    import methods

    # torch comes with the test install, so this must hold here (no importorskip)
    assert methods.get("pinn-torch").missing_requirement() is None
    assert methods.get("pinn").missing_requirement() is None
