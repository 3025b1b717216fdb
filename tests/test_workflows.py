"""The GitHub workflow files: valid YAML, and every command they name exists.

Checked against the code, not a copy of it: tox envs against tox.ini, ``python -m bench ...``
lines against ``bench.cli``'s own argument parser (subcommands and options), suite names
against ``bench/suites``, version pins against pyproject.toml, and the names the workflows
rely on (the ``heat4d-gpu`` suite, the ``compare`` subcommand, ``.ci/run``) must exist.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(wf: dict) -> dict:
    return wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on:` key as True


def tox_envs() -> set[str]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "tox.ini")
    return {"py"} | {s.split(":", 1)[1] for s in cfg.sections() if s.startswith("testenv:")}


def expand(text: str, env: dict) -> str:
    """Shell-style $VAR / ${VAR} from the workflow's env; unknown ones are left as they are.
    A value that is a GitHub expression (``${{ ... }}``) becomes the word GH_EXPR."""
    def value(m):
        v = env.get(m.group(1))
        return m.group(0) if v is None else re.sub(r"\$\{\{.*?\}\}", "GH_EXPR", str(v))

    return re.sub(r"\$\{?(\w+)\}?", value, text)


def commands(wf: dict):
    """(job, step name, argv) for every simple command in every `run:` script."""
    for job_name, job in wf["jobs"].items():
        for step in job["steps"]:
            if "run" not in step:
                continue
            env = {**wf.get("env", {}), **job.get("env", {}), **step.get("env", {})}
            script = step["run"].replace("\\\n", " ")
            for line in script.splitlines():
                for part in re.split(r"\|\||&&|\||;", expand(line, env)):
                    try:
                        argv = shlex.split(part.strip(), comments=True)
                    except ValueError:
                        continue
                    if argv:
                        yield job_name, step.get("name", "?"), argv


def all_commands():
    for name in ("ci.yml", "gpu.yml"):
        for job, step, argv in commands(load(name)):
            yield name, job, step, argv


def bench_argvs():
    for name, job, step, argv in all_commands():
        if argv[:3] == ["python", "-m", "bench"]:
            yield name, step, argv[3:]


@pytest.mark.parametrize("name", ["ci.yml", "gpu.yml"])
def test_workflow_is_valid_yaml_with_jobs(name):
    wf = load(name)
    assert isinstance(wf, dict) and wf.get("name")
    assert triggers(wf), f"{name}: no `on:` triggers"
    for job_name, job in wf["jobs"].items():
        assert job.get("runs-on"), f"{name}:{job_name} has no runs-on"
        assert job["steps"] and all(("run" in s) != ("uses" in s) for s in job["steps"])


def test_gpu_workflow_targets_a_self_hosted_gpu_runner():
    wf = load("gpu.yml")
    runs_on = [job["runs-on"] for job in wf["jobs"].values()]
    assert runs_on and all(set(r) >= {"self-hosted", "gpu"} for r in runs_on)
    assert "workflow_dispatch" in triggers(wf)
    assert "refresh_baseline" in triggers(wf)["workflow_dispatch"]["inputs"]


def test_gpu_workflow_runs_the_gpu_tests_benchmarks_suite_and_compare():
    argvs = [argv for _, _, argv in commands(load("gpu.yml"))]
    flat = [" ".join(a) for a in argvs]
    assert any(a[:5] == ["python", "-m", "pytest", "-m", "gpu"] for a in argvs), flat
    assert any(a[:3] == ["tox", "-e", "bench-compare"] for a in argvs)
    runs = [a for a in argvs if a[:4] == ["python", "-m", "bench", "run"]]
    assert runs and all("--device" in a and a[a.index("--device") + 1] == "gpu" for a in runs)
    assert any(a[:4] == ["python", "-m", "bench", "compare"] for a in argvs)
    uploads = [s for s in load("gpu.yml")["jobs"]["gpu"]["steps"]
               if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads and uploads[0].get("if") == "${{ always() }}"
    paths = uploads[0]["with"]["path"]
    assert "results-gpu/" in paths and "reports/" in paths and ".benchmarks/*.json" in paths


def test_tox_envs_named_in_workflows_exist():
    envs = tox_envs()
    assert {"py", "lint", "bench", "bench-compare", "gpu"} <= envs
    named = [(n, a[a.index("-e") + 1]) for n, _, _, a in all_commands() if a[0] == "tox" and "-e" in a]
    assert named
    for wf_name, env in named:
        assert env in envs, f"{wf_name}: tox -e {env} (valid: {', '.join(sorted(envs))})"


def test_bench_cli_lines_parse_with_the_real_parser():
    """Every `python -m bench ...` line parses with bench.cli's parser."""
    from bench.cli import build_parser

    parser = build_parser()
    checked = 0
    for wf_name, step, args in bench_argvs():
        try:
            ns = parser.parse_args(args)
        except SystemExit:
            pytest.fail(f"{wf_name} step {step!r}: `python -m bench {' '.join(args)}` does not parse")
        checked += 1
        if ns.command == "run":
            from bench.suite import available_suites

            assert ns.suite in available_suites(), f"{wf_name}: unknown suite {ns.suite!r}"
    assert checked >= 1


def test_names_the_workflows_rely_on_exist():
    from bench.cli import build_parser
    from bench.suite import available_suites

    assert "heat4d-gpu" in available_suites()
    build_parser().parse_args(["compare", "a", "b", "--threshold", "10%"])  # SystemExit if absent
    assert (ROOT / ".ci" / "run").is_file()


def test_gpu_suite_and_compare_syntax_use_the_documented_form():
    runs = [a for _, _, a in bench_argvs() if a[0] == "run"]
    assert any(a[a.index("--suite") + 1] == "heat4d-gpu" for a in runs)
    (cmp,) = [a for _, _, a in bench_argvs() if a[0] == "compare"]
    positional = cmp[1:cmp.index("--threshold")]
    assert len(positional) == 2 and positional[1] == "results-gpu"
    threshold = cmp[cmp.index("--threshold") + 1]
    if threshold == "GH_EXPR%":  # ${{ inputs.threshold || 'N' }}: a dispatch input, N by default
        expr = load("gpu.yml")["jobs"]["gpu"]["env"]["BENCH_THRESHOLD"]
        threshold = re.search(r"\|\|\s*'([^']*)'", expr).group(1) + "%"
    assert re.fullmatch(r"\d+(\.\d+)?%", threshold)


def test_ci_workflow_runs_the_ci_script_and_lint():
    argvs = [a for _, _, a in commands(load("ci.yml"))]
    assert ["bash", ".ci/run"] in argvs
    assert ["tox", "-e", "lint"] in argvs


def test_version_pins_match_pyproject():
    """CUDA JAX in the GPU job is a version pyproject allows; torch is the extra's exact pin."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {Requirement(d).name: Requirement(d) for d in project["dependencies"]}
    (torch_pin,) = [Requirement(d) for d in project["optional-dependencies"]["torch"]]
    env = load("gpu.yml")["jobs"]["gpu"]["env"]
    assert env["JAX_VERSION"] in deps["jax"].specifier and env["JAX_VERSION"] in deps["jaxlib"].specifier
    assert env["JAX_CUDA_EXTRA"] in ("cuda12", "cuda13")
    assert str(torch_pin.specifier) == f"=={env['TORCH_VERSION']}"
    installs = [a for _, _, a in commands(load("gpu.yml")) if a[1:4] == ["-m", "pip", "install"]]
    wanted = {f"jax[{env['JAX_CUDA_EXTRA']}]=={env['JAX_VERSION']}", f"torch=={env['TORCH_VERSION']}"}
    assert any(wanted <= set(a) for a in installs), installs
    # CI installs through .ci/run's own venv: torch comes from the test extra's exact pin, and
    # the workflow puts the CPU wheel index on pip's path, so it is never a CUDA build
    test_extra = [Requirement(d) for d in project["optional-dependencies"]["test"]]
    assert [str(r) for r in test_extra if r.name == "torch"] == [str(torch_pin)]
    ci_env = load("ci.yml")["jobs"]["test"]["env"]
    assert ci_env["PIP_EXTRA_INDEX_URL"].rstrip("/").endswith("/whl/cpu")


def test_require_gpu_turns_the_skip_into_an_error(tmp_path):
    """PINNBENCH_REQUIRE_GPU=1 (set by the GPU workflow) fails a run whose gpu tests cannot run."""
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_g.py").write_text("import pytest\n\n@pytest.mark.gpu\ndef test_g():\n    pass\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = lambda extra: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
        cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True, timeout=300)
    # by path: ``import conftest`` may resolve to tests/benchmarks/conftest.py (same module name)
    import importlib.util

    spec = importlib.util.spec_from_file_location("pinnbench_tests_conftest", ROOT / "tests" / "conftest.py")
    root_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root_conftest)
    reason = root_conftest.gpu_unavailable_reason()
    if reason is None:
        pytest.skip("a usable GPU is here: nothing to skip or refuse")
    quiet = run({"PINNBENCH_REQUIRE_GPU": ""})
    assert quiet.returncode == 0 and "1 skipped" in quiet.stdout and "needs" in quiet.stdout
    strict = run({"PINNBENCH_REQUIRE_GPU": "1"})
    assert strict.returncode != 0
    assert "PINNBENCH_REQUIRE_GPU is set but gpu tests cannot run" in strict.stdout + strict.stderr
