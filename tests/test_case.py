"""Case keys are declared once, on the ``bench.case.Case`` fields; every other table is derived."""

from __future__ import annotations

import dataclasses

from bench import case as mcase
from bench import suite as msuite
from bench import variants
from bench.case import Case


def test_every_field_is_declared_and_every_table_is_derived_from_the_fields():
    decl = mcase.declarations()
    assert list(decl) == [f.name for f in dataclasses.fields(Case)]
    keys = {k for d in decl.values() for k in d["keys"]}
    assert set(msuite.CASE_KEYS) == keys and set(msuite.SUITE_KEYS) >= keys
    assert msuite.CASE_KEYS is mcase.CASE_KEYS and msuite.Case is Case
    for table in (msuite.DEFAULTS, msuite.POSITIVE, msuite.METHOD_OVERRIDES, mcase.NONNEGATIVE):
        assert set(table) <= keys
    assert not set(msuite.POSITIVE) & set(mcase.NONNEGATIVE)
    assert set(msuite.CASE_KEYS) - set(msuite.DEFAULTS) == {"pde", "methods"}  # the required keys
    assert set(variants.CONFIG_KEYS) <= set(decl) and "dtype" in variants.CONFIG_KEYS
    # target_error: the leaderboard's reading of the curve (training does not stop there)
    assert set(mcase.NOT_HASHED) == {"suite", "timeout_s", "memory_limit_gb", "round", "target_error"}


def test_suite_defaults_are_the_field_defaults_where_the_field_has_one():
    for f in dataclasses.fields(Case):
        for k, key in f.metadata[mcase.META]["keys"].items():
            if key.default is mcase.UNSET and f.default is not dataclasses.MISSING:
                assert msuite.DEFAULTS[k] == f.default, k
    assert msuite.DEFAULTS["n_per_axis"] == [8] and msuite.DEFAULTS["dim"] == 1
    assert msuite.DTYPES == ("float32", "float64") and msuite.PRECISIONS == ("highest", "high", "default")


def test_case_ids_are_unchanged():
    """The ids of committed records (``reports/*/records.jsonl.gz``) hash these fields: pinned."""
    c = Case(suite="s", pde="heat", dim=2, method="pinn", n_per_axis=8, seed=3, steps=50,
             pde_params={"kappa": 0.5}, method_params={"width": 16})
    assert c.case_id == "heat2-pinn-n8-s3-cf97616d50"
    assert dataclasses.replace(c, suite="other", timeout_s=1.0, memory_limit_gb=2.0,
                               target_error=0.1).case_id == c.case_id
    inv = dataclasses.replace(c, inverse={"learn": ["kappa"]}, round=2)
    assert inv.case_id == "heat2-inv-pinn-n8-s3-78f0f88034-r2"
    assert Case.from_dict(inv.to_dict()) == inv
