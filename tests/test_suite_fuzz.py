"""Property tests: malformed suite files never escape the loader as anything but SuiteError.

Two layers are fuzzed: the TOML text (random edits of a valid suite, random bytes) through
``bench.suite.load``, and the parsed tables (valid keys with wrong values, unknown keys, nested
junk) through ``bench.suite.parse``. Whatever the input, the loader either returns a suite whose
cases all have distinct ids, or raises ``SuiteError`` with a one-line message.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import suite as msuite
from bench.suite import SuiteError

VALID = """\
description = "fuzz base"
pde = "heat"
dim = [1, 2]
methods = ["pinn", "spinn"]
n_per_axis = [4, 6]
steps = 5
seeds = 2
timeout_s = 30
memory_limit_gb = 1.5
rounds = 2

[method.pinn]
width = 8
depth = 2
lr = 0.001

[method.spinn]
rank = 4
steps = 3

[[matrix]]
dim = 1

[[matrix]]
dim = 3
precision = "high"
"""

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _check_outcome(load):
    """Run ``load()``: a valid suite (distinct ids) or a one-line SuiteError, nothing else."""
    try:
        s = load()
    except SuiteError as e:
        msg = str(e)
        assert msg and "\n" not in msg
        return None
    ids = [c.case_id for c in s.cases]
    assert ids and len(ids) == len(set(ids))
    for c in s.cases:
        assert c.dim >= 1 and c.n_per_axis >= 1 and c.steps >= 1 and c.timeout_s > 0
        assert math.isfinite(c.timeout_s) and math.isfinite(c.memory_limit_gb)
        assert 0 <= c.seed < 2**32
        assert c.n_per_axis < 2**63 and c.steps < 2**63
        _assert_in_range(c)
    return s


def _assert_in_range(c) -> None:
    """A valid suite's values are in range, not only of the right type (issue 20)."""
    import methods
    import pdes

    ranges = {**msuite.PARAM_RANGES, **getattr(methods.get(c.method), "ranges", {})}
    for k, v in c.method_params.items():
        for x in v if isinstance(v, list) else [v]:
            if k in ranges:
                assert ranges[k].check(x), (c.method, k, x)
            if isinstance(x, int):
                assert -(2**63) <= x < 2**63
    for k, v in c.pde_params.items():
        assert not isinstance(v, bool) or isinstance(pdes.get(c.pde).defaults.get(k), bool), (k, v)


def test_base_suite_is_valid(tmp_path):
    p = tmp_path / "base.toml"
    p.write_text(VALID)
    s = msuite.load(str(p))
    # 2 matrix entries x 2 methods x 2 sizes x 2 seeds x 2 rounds
    assert len(s.cases) == 32
    assert {c.round for c in s.cases} == {0, 1}
    assert {c.steps for c in s.cases if c.method == "spinn"} == {3}


@st.composite
def text_edits(draw):
    """The valid suite with a few random edits: deletions, insertions, replaced spans."""
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        ins = draw(st.one_of(
            st.text(max_size=6),
            st.sampled_from(["-1", "0", "nan", "inf", "1e400", "[]", "{}", "true", '"x"',
                             "99999999999999999999", "\n[method.nope]\n", "\n[[matrix]]\n",
                             "\nrounds = 0\n", "\nseeds = 1001\n", "\ndim = 0\n", "'''",
                             "\ufeff", "9223372036854775808", "\nwidth = 0\n", "\nlr = -1e-3\n",
                             "\nrank = 0\n", "\ndepth = -1\n", "\nresample_every = -1\n",
                             "\npde_params = {kappa = true}\n", "[" * 40, "{a=" * 40]),
        ))
        text = text[:i] + ins + text[j:]
    return text


@SETTINGS
@given(text=text_edits())
def test_edited_toml_text_only_raises_suite_error(tmp_path, text):
    p = tmp_path / "fuzz.toml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check_outcome(lambda: msuite.load(str(p)))


@SETTINGS
@given(data=st.binary(max_size=200))
def test_random_bytes_only_raise_suite_error(tmp_path, data):
    p = tmp_path / "bytes.toml"
    p.write_bytes(data)
    _check_outcome(lambda: msuite.load(str(p)))


#: boundary values and wrong types that a hand-written suite plausibly contains
INTERESTING = [
    -1, 0, 1, 3, 2**40, 2**64, -0.5, 0.0, 1e-9, math.nan, math.inf, -math.inf, "", "x", "heat",
    "pinn", "spinn", "float16", True, [], [0], [-1], [1, 1], [2, "a"], ["pinn", "pinn"], ["nope"],
    {}, {"a": 1}, {"kappa": "x"}, {"kappa": [1]}, {"kappa": math.nan}, {"pinn": 5}, [{}], [[1]],
]
interesting = st.sampled_from(INTERESTING)
scalars = st.one_of(
    st.integers(-3, 20), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=8),
)
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)
values = st.one_of(interesting, interesting, junk)
KEYS = list(msuite.SUITE_KEYS) + ["width", "rank", "nonsense"]
METHOD_KEYS = ["width", "depth", "rank", "lr", "activation", "resample_every", "steps", "n_per_axis",
               "dtype", "timeout_s", "memory_limit_gb", "bogus"]
method_table = st.dictionaries(st.sampled_from(METHOD_KEYS), values, max_size=3)
method_tables = st.dictionaries(st.sampled_from(["pinn", "spinn", "nope"]),
                                st.one_of(method_table, method_table, values), max_size=2)
matrix_entry = st.dictionaries(st.sampled_from(KEYS + ["method"]),
                               st.one_of(values, method_tables), max_size=3)


@st.composite
def suite_tables(draw):
    """A valid base table with some keys replaced by junk, some added, some removed."""
    import tomllib

    raw = tomllib.loads(VALID)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["set", "drop", "method", "matrix"]))
        if action == "set":
            raw[draw(st.sampled_from(KEYS))] = draw(values)
        elif action == "drop" and raw:
            raw.pop(draw(st.sampled_from(sorted(raw))))
        elif action == "method":
            raw["method"] = draw(method_tables)
        else:
            raw["matrix"] = draw(st.one_of(values, st.lists(matrix_entry, max_size=3)))
    return raw


def test_every_key_with_every_bad_value():
    """Exhaustive companion of the property test: each key (top level, in [[matrix]], in a
    [method.NAME] table) set to each boundary value / wrong type, one at a time."""
    import tomllib

    base = tomllib.loads(VALID)
    n = 0
    for value in INTERESTING:
        for key in KEYS:
            _check_outcome(lambda: msuite.parse({**base, key: value}, "k"))
            matrix = [dict(base["matrix"][0], **{key: value})]
            _check_outcome(lambda: msuite.parse({**base, "matrix": matrix}, "m"))
            n += 2
        for key in METHOD_KEYS:
            tables = {**base["method"], "pinn": {**base["method"]["pinn"], key: value}}
            _check_outcome(lambda: msuite.parse({**base, "method": tables}, "t"))
            n += 1
        _check_outcome(lambda: msuite.parse({**base, "method": {"pinn": value}}, "v"))
    assert n > 1000


@settings(SETTINGS, max_examples=300)
@given(raw=suite_tables())
def test_malformed_tables_only_raise_suite_error(raw):
    _check_outcome(lambda: msuite.parse(raw, "fuzz"))


@SETTINGS
@given(seeds=st.one_of(st.none(), st.integers(-2, 4), st.sampled_from([1000, 1001, 10**6])),
       rounds=st.one_of(st.none(), st.integers(-2, 4), st.sampled_from([101, 10**6])),
       mfilter=st.one_of(st.none(), st.lists(st.sampled_from(["pinn", "spinn", "nope"]),
                                             min_size=1, max_size=2)))
def test_cli_overrides_only_raise_suite_error(tmp_path, seeds, rounds, mfilter):
    p = tmp_path / "base.toml"
    p.write_text(VALID)
    s = _check_outcome(lambda: msuite.load(str(p), methods_filter=mfilter, seeds=seeds, rounds=rounds))
    if s is not None and rounds is not None:
        assert {c.round for c in s.cases} == set(range(rounds))


def test_specific_bad_values_name_the_value():
    import tomllib

    cases = {
        "timeout_s = nan": "nan",
        "dim = 0": "'dim' = 0",
        "seeds = 1001": "1001",
        'dtype = "float16"': "float16",
        "rounds = 0": "rounds = 0",
        'methods = ["pinn", "pinn"]': "appears twice",
        "memory_limit_gb = -1": "memory_limit_gb",
        "[method.pinn]\nwidth = 'wide'": "'wide'",
        "[method.pinn]\nactivation = 'relu'": "relu",
        "pde_params = {kappa = 'x'}": "kappa",
    }
    base = 'pde = "heat"\n'
    for extra, needle in cases.items():
        raw = tomllib.loads(base + extra)
        raw.setdefault("methods", ["pinn"])
        try:
            msuite.parse(raw, "t")
        except SuiteError as e:
            assert needle in str(e), (extra, str(e))
        else:
            raise AssertionError(f"{extra!r} was accepted")


@st.composite
def nested_documents(draw):
    """Documents nested from harmless to far beyond any parser's recursion limit."""
    depth = draw(st.one_of(st.integers(1, 40), st.integers(40, 3000)))
    kind = draw(st.sampled_from(["array", "inline", "header", "pde_params"]))
    if kind == "array":
        return "x = " + "[" * depth + "1" + "]" * depth + "\n" + VALID
    if kind == "inline":
        return "x = " + "{a=" * depth + "1" + "}" * depth + "\n" + VALID
    body = ("[" + ".".join(["a"] * depth) + "]" if kind == "header" else "[pde_params" + ".k" * depth + "]")
    return VALID.replace("[method.pinn]", body + "\nb = 1\n\n[method.pinn]", 1)


def _cli_outcome(tmp_path, text: str, capsys) -> None:
    """``bench run --dry-run`` on the document: exit 0 with a valid suite, or exit 2 with one
    line; any traceback fails the test (the exception propagates)."""
    from bench import cli

    p = tmp_path / "doc.toml"
    p.write_bytes(text.encode("utf-8", "surrogatepass"))
    rc = cli.main(["run", "--suite", str(p), "--dry-run", "--device", "cpu"])
    err = capsys.readouterr().err
    if rc == 0:
        _check_outcome(lambda: msuite.load(str(p)))
    else:
        assert rc == 2, err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("bench: error: "), err


@settings(SETTINGS, max_examples=60)
@given(text=st.one_of(nested_documents(), text_edits(), text_edits().map(lambda t: "\ufeff" + t)))
def test_documents_end_in_a_valid_suite_or_one_line(tmp_path, capsys, text):
    _cli_outcome(tmp_path, text, capsys)


@SETTINGS
@given(text=nested_documents())
def test_nesting_at_any_depth_is_a_suite_or_a_suite_error(tmp_path, text):
    p = tmp_path / "nest.toml"
    p.write_text(text)
    _check_outcome(lambda: msuite.load(str(p)))
