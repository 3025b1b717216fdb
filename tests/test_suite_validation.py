"""Suite parsing and expansion."""

import pytest

from bench.suite import Case, SuiteError, load, parse

BASE = {"pde": "heat", "dim": 2, "methods": ["pinn", "spinn"], "n_per_axis": [4, 8]}


def test_expansion_is_the_product_of_methods_sizes_and_seeds():
    s = parse({**BASE, "seeds": 3}, "t")
    assert len(s.cases) == 2 * 2 * 3
    assert len({c.case_id for c in s.cases}) == 12
    assert {c.seed for c in s.cases} == {0, 1, 2}


def test_case_ids_are_stable_and_change_with_what_is_measured():
    a = parse(BASE, "t").cases[0]
    assert a.case_id == parse(BASE, "other-suite").cases[0].case_id  # suite name not hashed
    assert a.case_id == Case.from_dict(a.to_dict()).case_id
    b = parse({**BASE, "steps": 7}, "t").cases[0]
    assert a.case_id != b.case_id


def test_method_tables_set_params_and_override_sizes():
    s = parse({**BASE, "method": {"spinn": {"rank": 7, "n_per_axis": [16]}}}, "t")
    sp = [c for c in s.cases if c.method == "spinn"]
    assert [c.n_per_axis for c in sp] == [16]
    assert sp[0].method_params == {"rank": 7}


def test_matrix_entries_expand_separately():
    s = parse({"methods": ["pinn"], "n_per_axis": 4, "matrix": [{"pde": "heat", "dim": 1},
                                                                 {"pde": "poisson", "dim": [2, 3]}]}, "t")
    assert [(c.pde, c.dim) for c in s.cases] == [("heat", 1), ("poisson", 2), ("poisson", 3)]


@pytest.mark.parametrize("raw, needle", [
    ({**BASE, "methods": ["pinn", "nope"]}, "unknown method 'nope'"),
    ({**BASE, "pde": "nope"}, "unknown PDE 'nope'"),
    ({**BASE, "dim": 0}, "positive"),
    ({**BASE, "steps": "ten"}, "'steps'"),
    ({**BASE, "dtype": "float16"}, "float16"),
    ({**BASE, "method": {"pinn": {"widht": 3}}}, "'widht'"),
    ({**BASE, "method": {"pinn": {"width": "wide"}}}, "wrong type"),
    ({**BASE, "method": {"nope": {}}}, "unknown method 'nope'"),
    ({**BASE, "pde_params": {"kapa": 1}}, "'kapa'"),
    ({**BASE, "n_per_axis": []}, "empty"),
    ({"methods": ["pinn"]}, "missing key 'pde'"),
    ({**BASE, "baseline": "kfac"}, "baseline = 'kfac' is not one of the suite's methods (valid: pinn, spinn)"),
    ({**BASE, "baseline": 3}, "'baseline'"),
])
def test_validation_errors_name_the_bad_value(raw, needle):
    with pytest.raises(SuiteError) as e:
        parse(raw, "t")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_methods_filter_and_seeds_override():
    s = parse(BASE, "t", methods_filter=["spinn"], seeds=2)
    assert {c.method for c in s.cases} == {"spinn"} and len(s.cases) == 4
    with pytest.raises(SuiteError, match="'kfac'"):
        parse(BASE, "t", methods_filter=["kfac"])


def test_shipped_suites_load():
    from bench.suite import available_suites

    for name in available_suites():
        assert load(name).cases
