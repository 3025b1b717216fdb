"""References live in the repository: every ``REFERENCES.md <section>`` citation in a tracked file
resolves to a section of the repository's REFERENCES.md, and no tracked source file cites a path
outside the repository (an absolute machine path)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: absolute paths of one machine (a repository file is cited relative to the repository root)
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|home|Users|mnt|scratch|root|data|opt|srv)/[\w.-]+")
CITATION = re.compile(r"REFERENCES\.md,? (?:§)?(\d+(?:\.\d+)?)")


def tracked(*patterns) -> list[Path]:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", *patterns], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / p for p in out.splitlines() if (ROOT / p).is_file()]


def test_no_tracked_source_cites_a_path_outside_the_repository():
    bad = []
    for p in tracked("*.py", "*.toml", "*.csv", "*.ini", "*.cfg"):
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                bad.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert not bad, "machine paths:\n" + "\n".join(bad)


def test_machine_path_pattern_catches_what_it_should():
    root = "/"  # the examples are built so that this file does not itself hold a machine path
    assert MACHINE_PATH.search(f"(sources: {root}work/shared/REFERENCES.md 3.1)")
    assert MACHINE_PATH.search(f"see {root}home/alice/notes.md")
    assert not MACHINE_PATH.search("results/reference/claims.csv and REFERENCES.md 3.1")


def test_every_references_citation_resolves_to_a_section_of_the_repository_file():
    ref = ROOT / "REFERENCES.md"
    assert ref.is_file(), "REFERENCES.md is missing from the repository root"
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", ref.read_text(), re.M))
    cited = {}
    for p in tracked("*.py", "*.toml", "*.md"):
        if p == ref:
            continue
        for sec in CITATION.findall(p.read_text(errors="replace")):
            cited.setdefault(sec, p.relative_to(ROOT))
    assert cited, "no citation found: the pattern is wrong"
    missing = {s: str(p) for s, p in cited.items() if s not in sections}
    assert not missing, f"cited sections not in REFERENCES.md: {missing}"
