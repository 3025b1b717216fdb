"""Reports regenerable from a clone: ``bench report`` ships the records it was built from
(``reports/<suite>/records.jsonl.gz``, deterministic bytes) and rebuilds the same tables from them;
a report of records from a modified tree is loudly marked; every committed report that ships data
regenerates to the tables it shows."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import store
from bench.cli import main
from tests import test_cli
from tests.test_report import make_record, parse_tables

ROOT = Path(__file__).resolve().parents[1]
# the CLI tests' two tiny cases, evaluated every 3 steps (a curve with errors to ship)
TINY = test_cli.TINY.replace("eval_points = 64\n", "eval_points = 64\neval_every = 3\n")


def tables(text: str) -> dict:
    return parse_tables(text)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real two-case run and its report (figures off: tables are what is compared)."""
    tmp = tmp_path_factory.mktemp("tiny")
    suite = tmp / "tinyship.toml"
    suite.write_text(TINY)
    results = tmp / "results"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results", str(results),
                        "--device", "cpu"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    out = tmp / "reports" / "tinyship.md"
    assert main(["report", "--suite", "tinyship", "--results", str(results), "--out", str(out), "--no-figures"]) == 0
    return {"tmp": tmp, "results": results, "out": out}


def test_report_ships_its_records_with_curves_deterministically(tiny):
    data = store.shipped_path(tiny["out"])
    assert data == tiny["out"].parent / "tinyship" / "records.jsonl.gz" and data.is_file()
    raw = data.read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip mtime 0
    shipped = store.read_shipped(data)
    recs = store.load_records(tiny["results"], "tinyship")
    assert sorted(r["case_id"] for r in shipped) == sorted(r["case_id"] for r in recs)
    assert all(r["curve"] for r in shipped)  # the curves travel too
    again = tiny["tmp"] / "again.jsonl.gz"
    store.write_shipped(again, list(reversed(recs)))
    assert again.read_bytes() == raw  # same records, same bytes, whatever the order


def test_report_rebuilt_from_shipped_data_has_identical_tables(tiny, tmp_path):
    data = store.shipped_path(tiny["out"])
    out2 = tmp_path / "rebuilt.md"
    assert main(["report", "--suite", "tinyship", "--from", str(data), "--out", str(out2), "--no-figures"]) == 0
    a, b = tiny["out"].read_text(), out2.read_text()
    assert tables(a) and tables(a) == tables(b)
    assert f"records shipped in `{data.as_posix()}`" in b


def test_without_records_the_shipped_data_is_used(tiny, tmp_path, capsys):
    empty = tmp_path / "results"
    empty.mkdir()
    before = store.shipped_path(tiny["out"]).read_bytes()
    assert main(["report", "--suite", "tinyship", "--results", str(empty), "--out", str(tiny["out"]),
                 "--no-figures"]) == 0
    assert "shipped data" in capsys.readouterr().err
    assert store.shipped_path(tiny["out"]).read_bytes() == before  # the input is left as it is


def test_bad_shipped_data_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "records.jsonl.gz"
    bad.write_bytes(b"not gzip")
    assert main(["report", "--suite", "x", "--from", str(bad), "--out", str(tmp_path / "x.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a gzip file" in err
    with gzip.open(bad, "wt") as fh:
        fh.write('{"case_id": "a", "status": "ok", "schema": 7}\n')
    assert main(["report", "--suite", "x", "--from", str(bad), "--out", str(tmp_path / "x.md")]) == 2
    assert "schema 7" in capsys.readouterr().err


def test_records_from_a_dirty_tree_are_loudly_marked(tmp_path):
    from bench.report.markdown import build

    clean = [make_record("pinn", 8), make_record("spinn", 8)]
    assert "WARNING" not in build(clean, "synth", tmp_path / "a.md", tmp_path, figures=False).text
    dirty = [make_record("pinn", 8), make_record("spinn", 8)]
    dirty[0]["env"]["git_commit"] = "abc123-dirty"
    text = build(dirty, "synth", tmp_path / "b.md", tmp_path, figures=False).text
    head = text.split("## Environment")[0]
    assert "**WARNING: not reproducible from a commit.** 1 of 2 records were made from a modified " \
           "working tree (abc123-dirty)" in head


COMMITTED = sorted(p for p in (ROOT / "reports").glob("*.md") if store.shipped_path(p).is_file())


@pytest.mark.parametrize("report", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_every_committed_report_regenerates_from_its_shipped_data(report, tmp_path):
    out = tmp_path / report.name
    assert main(["report", "--suite", report.stem, "--from", str(store.shipped_path(report)), "--out", str(out),
                 "--no-figures"]) == 0
    assert tables(out.read_text()) == tables(report.read_text())
