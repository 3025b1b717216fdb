"""Issue 20: nothing measured is lost, nothing foreign is touched, no input ends in a traceback.

One test (or a few) per point of the issue. Workers are replaced by a stub (``_fake_run``)
wherever what is tested is the harness around them, so these tests start no JAX worker
except the concurrency drill.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bench import cli, executors, guard, sizes, store
from bench import runner as mrunner
from bench import suite as msuite
from bench.errors import BenchError
from bench.suite import Case, SuiteError

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
pde = "heat"
dim = 1
methods = ["pinn"]
n_per_axis = [4, 5]
steps = 2
timing_samples = 2
eval_points = 16
timeout_s = 120

[method.pinn]
width = 4
depth = 2
"""


def _suite(tmp_path, text=TINY, name="tiny.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _fake_run(calls):
    def run_case(case, state=None):
        calls.append(case.case_id)
        return {"case_id": case.case_id, "suite": case.suite, "case": case.to_dict(), "status": "ok",
                "error": None, "phase": "done", "metrics": {"step_ms": 1.5, "rel_l2": 0.25},
                "curve": [], "env": {}, "runner": {"wall_s": 0.1}}
    return run_case


def _main(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_error_line(err: str) -> str:
    """The one error line (a read command may first warn, one line per file it skipped)."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("bench: warning: skipped ")]
    assert len(lines) == 1, err
    assert lines[0].startswith("bench: error: ") and "Traceback" not in err
    return lines[0]


# -- 1. the results directory is probed; a record that cannot be written is kept ------------------

def _no_case_may_run(monkeypatch):
    def boom(case, state=None):
        raise AssertionError("a case ran although the results directory cannot take a record")
    monkeypatch.setattr(executors, "run_case", boom)


def test_results_that_is_a_file_refuses_before_running(tmp_path, capsys, monkeypatch):
    _no_case_may_run(monkeypatch)
    target = tmp_path / "results"
    target.write_text("not a directory")
    rc, _, err = _main(["run", "--suite", _suite(tmp_path), "--results", target], capsys)
    assert rc == 2
    assert "is not a directory" in _one_error_line(err)
    assert target.read_text() == "not a directory"


def test_results_below_a_file_refuses_before_running(tmp_path, capsys, monkeypatch):
    _no_case_may_run(monkeypatch)
    (tmp_path / "f").write_text("x")
    rc, _, err = _main(["run", "--suite", _suite(tmp_path), "--results", tmp_path / "f" / "tiny"], capsys)
    assert rc == 2
    assert "cannot take a record" in _one_error_line(err)


@pytest.fixture
def readonly_dir(tmp_path):
    """A read-only filesystem (a small tmpfs mounted ro) where this user may mount one, else a
    directory without write permission where the test is not root."""
    d = tmp_path / "ro"
    d.mkdir()
    if shutil.which("mount") and os.geteuid() == 0:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(d)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            try:
                yield d, "read-only file system"
            finally:
                subprocess.run(["umount", str(d)], capture_output=True)
            return
    if os.geteuid() == 0:
        pytest.skip("root ignores permissions and cannot mount a read-only tmpfs here")
    d.chmod(0o555)
    try:
        yield d, "permission denied"
    finally:
        d.chmod(0o755)


def test_drill_readonly_results_refuses_before_running(readonly_dir, tmp_path, capsys, monkeypatch):
    d, why = readonly_dir
    _no_case_may_run(monkeypatch)
    rc, _, err = _main(["run", "--suite", _suite(tmp_path), "--results", d], capsys)
    assert rc == 2
    line = _one_error_line(err)
    assert why in line and "nothing was run" in line


def test_full_disk_refuses_before_running(tmp_path, capsys, monkeypatch):
    _no_case_may_run(monkeypatch)
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(guard.os, "write", full)
    rc, _, err = _main(["run", "--suite", _suite(tmp_path), "--results", tmp_path / "res"], capsys)
    monkeypatch.setattr(guard.os, "write", real_write)
    assert rc == 2
    assert "no space left on device" in _one_error_line(err)
    assert not [p for p in (tmp_path / "res").iterdir()]  # the probe file is gone


def test_record_write_failure_keeps_the_measurement_and_stops_cleanly(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(executors, "run_case", _fake_run(calls))
    results = tmp_path / "res"
    real_replace = os.replace

    def enospc(src, dst, *a, **k):  # the disk fills up after the probe
        if Path(dst).parent.name == "tiny":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(store.os, "replace", enospc)
    rc, _, err = _main(["run", "--suite", _suite(tmp_path), "--results", results], capsys)
    assert rc == 1
    line = _one_error_line(err)
    kept = results.with_name("res.unsaved") / f"tiny--{calls[0]}.json"
    assert str(kept) in line and "No space left on device" in line
    rec = json.loads(kept.read_text())
    assert rec["metrics"]["step_ms"] == 1.5 and rec["case_id"] == calls[0]
    assert len(calls) == 1  # stopped after the case whose record could not be written
    assert not list((results / "tiny").glob(".*.tmp"))


def test_record_kept_on_stderr_when_nothing_is_writable(tmp_path, capsys, monkeypatch):
    rec = _fake_run([])(msuite.load(str(_suite(tmp_path))).cases[0])
    monkeypatch.setattr(store, "write_json_atomic", lambda path, obj: (_ for _ in ()).throw(
        OSError(errno.EROFS, "Read-only file system")))
    state = mrunner.RunState()
    assert not executors.save(tmp_path / "res", rec, state)
    err = capsys.readouterr().err
    assert json.loads(err.strip().splitlines()[-1])["metrics"]["rel_l2"] == 0.25
    assert "stderr" in state.write_error and state.stop_requested


# -- 2. suite names are sanitised -------------------------------------------------------------------

@pytest.mark.parametrize("fname, name", [("...toml", "suite"), ("..x.toml", "x"), ("a b$.toml", "a_b_"),
                                         ("tiny.toml", "tiny")])
def test_suite_names_stay_inside_results(tmp_path, fname, name, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(executors, "run_case", _fake_run(calls))
    path = _suite(tmp_path, name=fname)
    assert msuite.load(str(path)).name == name
    results = tmp_path / "deep" / "res"
    rc, _, _ = _main(["run", "--suite", path, "--results", results], capsys)
    assert rc == 0
    written = sorted(p for p in (tmp_path / "deep").rglob("*.json"))
    assert len(written) == 2 and all(p.parent == results / name for p in written)


def test_write_record_refuses_a_path_outside_results(tmp_path):
    with pytest.raises(ValueError):
        store.write_record(tmp_path / "res", {"suite": "..", "case_id": "x", "status": "ok"})
    assert not (tmp_path / "x.json").exists()


# -- 3. one run per results directory and suite ------------------------------------------------------

def test_concurrent_runs_one_refuses_and_a_stale_lock_is_taken_over(tmp_path, capsys, monkeypatch):
    """A real ``bench run`` (its worker hangs after compiling) holds the directory; a second
    ``bench run`` on it refuses naming the holder. The holder is then SIGKILLed: its lock is
    stale and is taken over with a note, and its per-case temp folder is removed."""
    path = _suite(tmp_path)
    results, tmpdir = tmp_path / "res", tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PINNBENCH_INJECT": "hang@heat", "TMPDIR": str(tmpdir)}
    cmd = [sys.executable, "-m", "bench", "run", "--suite", str(path), "--results", str(results),
           "--device", "cpu"]
    a = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        lock = results / ".lock-tiny"
        deadline = time.monotonic() + 240
        while not (lock.exists() and list(tmpdir.glob(f"pinnbench-{a.pid}-*"))):
            assert a.poll() is None, a.stderr.read().decode()
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.2)
        b = subprocess.run(cmd, cwd=ROOT, env={**env, "PINNBENCH_INJECT": ""}, capture_output=True,
                           text=True, timeout=240)
        assert b.returncode == 2
        line = _one_error_line(b.stderr)
        assert f"PID {a.pid}" in line and "in use" in line and "--wait" in line
        assert not (results / "tiny").exists() or not list((results / "tiny").glob("*.json"))
    finally:
        os.killpg(a.pid, signal.SIGKILL)
        a.wait()
    assert lock.exists()  # a SIGKILLed run cannot clean up: stale now
    calls = []
    monkeypatch.setattr(executors, "run_case", _fake_run(calls))
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    rc, _, err = _main(["run", "--suite", path, "--results", results], capsys)
    assert rc == 0 and len(calls) == 2
    assert "took over the stale lock" in err and f"PID {a.pid}" in err
    assert not lock.exists()  # released at the end
    assert not list(tmpdir.glob(f"pinnbench-{a.pid}-*"))


def _hold_lock(results: Path, suite: str, seconds: float) -> subprocess.Popen:
    code = ("import sys, time; from bench.guard import RunLock\n"
            f"with RunLock({str(results)!r}, {suite!r}):\n"
            "    print('held', flush=True); time.sleep(float(sys.argv[1]))\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(seconds)], cwd=ROOT, stdout=subprocess.PIPE,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_wait_runs_once_the_holder_is_done(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(executors, "run_case", _fake_run(calls))
    results = tmp_path / "res"
    results.mkdir()
    holder = _hold_lock(results, "tiny", 1.5)
    try:
        rc, _, err = _main(["run", "--suite", _suite(tmp_path), "--results", results, "--wait"], capsys)
    finally:
        holder.wait()
    assert rc == 0 and len(calls) == 2
    assert "waiting for the run holding" in err and f"PID {holder.pid}" in err


def test_a_lock_of_another_host_is_not_stale(tmp_path):
    results = tmp_path / "res"
    results.mkdir()
    (results / ".lock-tiny").write_text(json.dumps({"pid": 2**22 + 7, "host": "elsewhere", "started": "t"}))
    with pytest.raises(BenchError, match="host elsewhere"):
        guard.RunLock(results, "tiny").acquire()


# -- 4. impossible sizes are oom with the estimate ---------------------------------------------------

def _case(**kw) -> Case:
    d = dict(suite="s", pde="heat", dim=1, method="pinn", n_per_axis=4, seed=0, steps=2)
    d.update(kw)
    return Case(**d)


@pytest.mark.parametrize("case, needle", [
    (_case(method="spinn", n_per_axis=9223372036854775807), "points"),
    (_case(dim=4, n_per_axis=10000), "1e+20 points"),
    (_case(method_params={"width": 100000000000}), "parameters"),
    (_case(method="spinn", dim=1000, n_per_axis=9223372036854775807), "~1e"),
])
def test_impossible_sizes_are_oom_with_the_estimate(case, needle):
    rec = sizes.oom_record(case)
    assert rec is not None and rec["status"] == "oom"
    assert needle in rec["error"] and "not run" in rec["error"]
    assert rec["metrics"]["estimate_log10_bytes"] > 12
    json.dumps(store.json_safe(rec), allow_nan=False)  # storable as it is


def test_sizes_that_fit_are_not_estimated_oom():
    assert sizes.oom_record(_case()) is None
    assert sizes.oom_record(_case(method="spinn", dim=3, n_per_axis=64)) is None
    # grid-free never forms the grid: n_per_axis**n_in is not what it stores
    assert sizes.oom_record(_case(method="spinn-lowrank", dim=4, n_per_axis=10000)) is None


def test_huge_suite_sizes_end_as_final_oom_records(tmp_path, capsys):
    text = ('pde = "heat"\ndim = 4\nmethods = ["pinn"]\nn_per_axis = [10000]\nsteps = 2\n'
            '[[matrix]]\n[[matrix]]\nmethods = ["spinn"]\ndim = 1\nn_per_axis = [9223372036854775807]\n'
            '[[matrix]]\ndim = 1\nn_per_axis = [4]\nmethod = { pinn = { width = 100000000000 } }\n')
    path = _suite(tmp_path, text, "huge.toml")
    results = tmp_path / "res"
    rc, out, err = _main(["run", "--suite", path, "--results", results], capsys)  # no worker starts
    assert rc == 0 and "Traceback" not in err
    recs = [json.loads(p.read_text()) for p in (results / "huge").glob("*.json")]
    assert len(recs) == 3 and all(r["status"] == "oom" and "size estimate" in r["error"] for r in recs)
    rc, out, _ = _main(["run", "--suite", path, "--results", results], capsys)
    assert out.count("already recorded (oom), skipped") == 3  # never retried


# -- 5. ranges, not only types -----------------------------------------------------------------------

BASE = {"pde": "heat", "dim": 1, "methods": ["pinn"], "n_per_axis": [4], "steps": 2}


@pytest.mark.parametrize("extra, needle", [
    ({"method": {"pinn": {"width": 0}}}, "method.pinn.width = 0 is not valid (valid: an integer >= 1)"),
    ({"method": {"pinn": {"width": -16}}}, "method.pinn.width = -16"),
    ({"method": {"pinn": {"depth": -1}}}, "method.pinn.depth = -1"),
    ({"method": {"pinn": {"lr": -0.001}}}, "method.pinn.lr = -0.001 is not valid (valid: a number > 0)"),
    ({"method": {"pinn": {"lr": 0}}}, "method.pinn.lr = 0"),
    ({"method": {"pinn": {"resample_every": -1}}}, "method.pinn.resample_every = -1"),
    ({"methods": ["spinn"], "method": {"spinn": {"rank": 0}}}, "method.spinn.rank = 0"),
    ({"methods": ["causal"], "method": {"causal": {"n_t": -3}}}, "method.causal.n_t = -3"),
    ({"pde_params": {"kappa": True}}, "pde_params.kappa = True must be a number, not a boolean"),
    ({"steps": 2**64}, "'steps' = 18446744073709551616 is not a 64-bit integer"),
    ({"method": {"pinn": {"width": 2**70}}}, "not a 64-bit integer"),
])
def test_values_out_of_range_are_one_line_errors(extra, needle):
    with pytest.raises(SuiteError) as e:
        msuite.parse({**BASE, **extra}, "x")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_ranges_accept_the_shipped_suites_and_zero_switches():
    for name in msuite.available_suites():
        msuite.load(name)
    msuite.parse({**BASE, "method": {"pinn": {"resample_every": 0}}}, "x")  # 0 = never resample
    msuite.parse({**BASE, "methods": ["causal"], "method": {"causal": {"n_t": 0, "eps": [0.0]}}}, "x")


def test_a_method_may_declare_its_own_ranges(monkeypatch):
    import methods

    monkeypatch.setattr(methods.get("pinn"), "ranges", {"width": msuite.Range(8, 64, integer=True)},
                        raising=False)
    with pytest.raises(SuiteError, match=r"width = 4 is not valid \(valid: an integer from 8 to 64\)"):
        msuite.parse({**BASE, "method": {"pinn": {"width": 4}}}, "x")


# -- 6. deep nesting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "a = " + "[" * 600 + "]" * 600,
    "a = " + "{b=" * 400 + "1" + "}" * 400,
    "[" + ".".join(["a"] * 1000) + "]\nx = 1\n",
])
def test_deep_nesting_is_one_line(tmp_path, text, capsys):
    rc, _, err = _main(["run", "--suite", _suite(tmp_path, text, "deep.toml"), "--dry-run"], capsys)
    assert rc == 2
    assert "nested" in _one_error_line(err)


def test_deep_tables_given_to_parse_are_one_line():
    raw = {**BASE}
    inner = raw
    for _ in range(5000):
        inner["pde_params"] = {}
        inner = inner["pde_params"]
    with pytest.raises(SuiteError, match="nested more than"):
        msuite.parse(raw, "x")


# -- 7. output paths ---------------------------------------------------------------------------------

@pytest.fixture
def results_with_records(tmp_path):
    res = tmp_path / "res"
    case = msuite.load(str(_suite(tmp_path))).cases[0]
    store.write_record(res, _fake_run([])(case))
    return res


@pytest.mark.parametrize("where, needle", [("missing/out.csv", "does not exist"), ("adir", "is a directory")])
def test_export_output_paths(results_with_records, tmp_path, where, needle, capsys):
    (tmp_path / "adir").mkdir()
    rc, _, err = _main(["export", "--results", results_with_records, "-o", tmp_path / where], capsys)
    assert rc == 2 and needle in _one_error_line(err)
    assert not list(tmp_path.rglob(".*.tmp"))


def test_export_write_failure_leaves_no_temporary_file(results_with_records, tmp_path, capsys, monkeypatch):
    import pandas as pd

    def fail(self, path, **kw):
        Path(path).write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    rc, _, err = _main(["export", "--results", results_with_records, "-o", tmp_path / "x.csv"], capsys)
    assert rc == 2 and "No space left" in _one_error_line(err)
    assert not (tmp_path / "x.csv").exists() and not list(tmp_path.glob(".x.csv.*"))


@pytest.mark.parametrize("where, needle", [("afile/r.md", "is not a directory"), ("adir", "is a directory"),
                                          ("afile/sub/r.md", "is not a directory")])
def test_report_out_paths(results_with_records, tmp_path, where, needle, capsys):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    rc, _, err = _main(["report", "--suite", "tiny", "--results", results_with_records, "--out",
                        tmp_path / where, "--no-figures"], capsys)
    assert rc == 2 and needle in _one_error_line(err)
    assert not list(tmp_path.rglob(".*.tmp"))


# -- 8. the smaller points ---------------------------------------------------------------------------

def test_suite_paths_that_are_not_files_are_named(tmp_path):
    (tmp_path / "dir.toml").mkdir()
    os.mkfifo(tmp_path / "fifo.toml")
    os.symlink(tmp_path / "loop.toml", tmp_path / "loop.toml")
    os.symlink("/dev/zero", tmp_path / "zero.toml")
    os.symlink(tmp_path / "gone", tmp_path / "broken.toml")
    expect = {"dir.toml": "is a directory", "fifo.toml": "is a FIFO", "loop.toml": "symbolic link loop",
              "zero.toml": "is a character device", "broken.toml": "broken symbolic link",
              "missing.toml": "does not exist"}
    for name, needle in expect.items():
        with pytest.raises(SuiteError, match=needle):
            msuite.load(str(tmp_path / name))


def test_a_bom_is_named(tmp_path):
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + TINY.encode())
    with pytest.raises(SuiteError, match="byte-order mark"):
        msuite.load(str(p))


@pytest.mark.parametrize("argv", [["--threshold", "-5%"], ["--threshold=-5%"]])
def test_negative_threshold_is_a_value_not_a_flag(tmp_path, argv, capsys):
    rc, _, err = _main(["compare", tmp_path, tmp_path, *argv], capsys)
    assert rc == 2
    assert "--threshold '-5%' is not valid" in _one_error_line(err)


def test_phases_are_saved_on_entry_and_named_in_error_records(tmp_path, monkeypatch):
    """A kill in a phase must find that phase on disk; an exception names it."""
    from bench import loop, worker

    seen = []
    out = tmp_path / "out.json"

    def fake_runner(case, rec, checkpoint):
        for phase in ("build", "compile", "train"):
            loop.enter(rec, phase, checkpoint)
            seen.append(json.loads(out.read_text())["phase"])
        raise ValueError("boom")

    monkeypatch.setattr(worker, "run_method", fake_runner)
    rec = worker.run(_case(), out)
    assert seen == ["build", "compile", "train"]
    assert rec["failed_phase"] == "train" and rec["error"].startswith("in phase 'train': ValueError: boom")


def test_loop_saves_first_step_and_train(monkeypatch):
    from types import SimpleNamespace

    from bench import loop

    rec, phases = {"metrics": {}, "curve": []}, []
    M = SimpleNamespace(params={}, curve_keys=())
    case = _case(steps=3, timing_samples=1)
    loop.train(case, M, rec, lambda s, b: (s, {"loss": 1.0}), lambda t: t, lambda d: None,
               lambda s, final=False: {}, 0, None, checkpoint=lambda: phases.append(rec["phase"]))
    assert phases[:2] == ["first_step", "train"]


def test_stale_temp_folders_of_dead_runners_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = tmp_path / f"pinnbench-{dead.pid}-abc"
    mine = tmp_path / f"pinnbench-{os.getpid()}-def"
    other = tmp_path / "pinnbench-xyz"  # not ours to judge: untouched
    for d in (old, mine, other):
        d.mkdir()
    assert guard.clean_stale_tmp(str(tmp_path)) == [old]
    assert not old.exists() and mine.exists() and other.exists()


def test_run_case_temp_folder_names_its_runner(monkeypatch):
    assert guard.tmp_prefix() == f"pinnbench-{os.getpid()}-"


def test_a_directory_named_like_a_record_and_a_misshapen_record(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(executors, "run_case", _fake_run(calls))
    path = _suite(tmp_path)
    cases = msuite.load(str(path)).cases
    results = tmp_path / "res"
    (results / "tiny" / f"{cases[0].case_id}.json").mkdir(parents=True)
    (results / "tiny" / f"{cases[1].case_id}.json").write_text(json.dumps(
        {"case_id": cases[1].case_id, "status": "ok", "metrics": [1, 2], "case": "x"}))
    for argv in (["export", "--results", results], ["report", "--suite", "tiny", "--results", results,
                                                     "--out", tmp_path / "r.md", "--no-figures"]):
        rc, _, err = _main(argv, capsys)
        assert rc == 2 and "no records" in _one_error_line(err)
        assert "structure is wrong" in err  # the misshapen record is named, and left alone
    rc, _, err = _main(["run", "--suite", path, "--results", results], capsys)
    assert rc == 1  # the directory in the way: that record is kept elsewhere, one line
    assert "IsADirectoryError" in _one_error_line(err) or "Is a directory" in err
    assert (results / "tiny" / f"{cases[0].case_id}.json").is_dir()  # not touched


def test_no_cgroup_oom_counter_means_no_host_wide_guess(monkeypatch):
    real = mrunner.Path

    class P(type(real())):
        def read_text(self, *a, **k):
            if str(self).startswith("/sys/fs/cgroup") or str(self) == "/proc/self/cgroup":
                raise FileNotFoundError(str(self))
            if str(self) == "/proc/vmstat":
                return "nr_free_pages 1\noom_kill 5\n"
            return super().read_text(*a, **k)

    monkeypatch.setattr(mrunner, "Path", P)
    assert mrunner.oom_kills() is None


def test_ctrl_c_while_waiting_is_one_line(tmp_path, monkeypatch):
    results = tmp_path / "res"
    results.mkdir()
    holder = {"pid": os.getppid(), "host": guard.socket.gethostname(), "started": "t"}  # alive
    (results / ".lock-tiny").write_text(json.dumps(holder))

    def ctrl_c(s):
        raise KeyboardInterrupt

    monkeypatch.setattr(guard.time, "sleep", ctrl_c)
    with pytest.raises(guard.Interrupted) as e:
        guard.RunLock(results, "tiny", wait=True, note=lambda m: None).acquire()
    assert e.value.exit_code == 130 and f"PID {os.getppid()}" in str(e.value)
    assert json.loads((results / ".lock-tiny").read_text()) == holder  # the holder's lock is untouched


def test_report_out_on_a_readonly_place(results_with_records, readonly_dir, capsys):
    d, _ = readonly_dir
    rc, _, err = _main(["report", "--suite", "tiny", "--results", results_with_records, "--out",
                        d / "sub" / "r.md", "--no-figures"], capsys)
    assert rc == 2 and "not writable" in _one_error_line(err)


def test_a_sigkill_without_the_cgroup_counter_is_an_error_that_says_so(monkeypatch):
    class KilledWorker:  # a worker the kernel (or anyone) SIGKILLed before it wrote anything
        pid, returncode = 2**22 + 11, -signal.SIGKILL

        def __init__(self, *a, **k):
            pass

        def communicate(self, timeout=None):
            return "", ""

    monkeypatch.setattr(mrunner, "oom_kills", lambda: None)
    monkeypatch.setattr(mrunner.subprocess, "Popen", KilledWorker)
    rec = mrunner.run_case(_case())
    assert rec["status"] == "error" and rec["signal"] == "SIGKILL"
    assert "killed by signal 9; no cgroup OOM counter to tell an OOM kill" in rec["error"]


@pytest.mark.parametrize("limit_gb, at_least, at_most", [(0.0, 1, 3), (50.0, 8, 40)])
def test_the_watchdog_reads_rss_seldom_unless_a_limit_needs_it(monkeypatch, limit_gb, at_least, at_most):
    """Each RSS read walks the process table and costs the timed worker CPU (a 50 ms cadence
    slowed a 1.5 s step by 17-19% on 2 cores): without a memory limit the watchdog reads the
    RSS once per ``RSS_POLL_S``, with one every ``RSS_POLL_LIMIT_S``, and waits on the
    process between reads. A stand-in worker that sleeps 1.2 s shows the cadence."""
    reads = []
    real_popen = subprocess.Popen

    def popen(argv, **kw):
        return real_popen([sys.executable, "-c", "import time; time.sleep(1.2)"], **kw)

    monkeypatch.setattr(mrunner.subprocess, "Popen", popen)
    monkeypatch.setattr(mrunner, "_tree_rss", lambda pid: reads.append(pid) or 1)
    case = Case(suite="t", pde="heat", dim=1, method="pinn", n_per_axis=4, seed=0,
                memory_limit_gb=limit_gb)
    rec = mrunner.run_case(case)
    assert rec["runner"]["wall_s"] >= 1.2
    assert at_least <= len(reads) <= at_most, len(reads)
