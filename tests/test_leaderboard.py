"""The leaderboard: ``methods = "all"`` suites expand from the registry (plugins included) into
one method x PDE matrix with a support matrix of the refused pairs; NSM's single-instance mode
solves one fixed problem with its spectral fields; the report ranks by time to target."""

from __future__ import annotations

import math
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import methods
import pdes
from bench import suite as msuite
from bench.suite import SuiteError, load, parse

FAMILIES = {"pinn": {"pinn", "pinn-fl", "pinn-torch"}, "causal": {"causal", "spinn-causal"},
            "spinn": {"spinn", "spinn-lowrank"}, "kfac": {"kfac", "kfac-star"}, "nsm": {"nsm"}}


def families(ms) -> set[str]:
    return {f for f, members in FAMILIES.items() if members & set(ms)}


def entries(name):
    raw = tomllib.loads((msuite.SUITES_DIR / f"{name}.toml").read_text())
    return raw, raw["matrix"]


def expected_methods(raw, entry):
    """What the registry says should run: every method not excluded whose hooks accept the PDE."""
    pde = pdes.build(entry["pde"], entry["dim"], **entry.get("pde_params", {}))
    excl = set(raw.get("exclude", [])) | set(entry.get("exclude", []))
    run, refused = set(), set()
    for m in methods.REGISTRY.names():
        if m in excl:
            continue
        cls = methods.get(m)
        (refused if cls.missing_requirement() or cls.supports(pde) else run).add(m)
    return run, refused


@pytest.mark.parametrize("name", ["leaderboard", "leaderboard-gpu"])
def test_leaderboard_expands_to_the_registry_matrix(name):
    raw, ents = entries(name)
    s = load(name)
    assert raw["methods"] == "all"
    for e in ents:
        label = msuite.problem_label(e["pde"], e["dim"], e.get("pde_params", {}))
        got = {c.method for c in s.cases if msuite.problem_label(c.pde, c.dim, c.pde_params) == label}
        refused = {r.method for r in s.refused if r.problem == label}
        run, no = expected_methods(raw, e)
        assert got == run and refused == no, label
        assert all(r.reason and "\n" not in r.reason for r in s.refused)
    # one budget, one point count per axis, >= 3 seeds, a target error for every case
    assert len({c.max_seconds for c in s.cases}) == 1 and s.cases[0].max_seconds > 0
    assert len({c.n_per_axis for c in s.cases}) == 1
    assert all(c.target_error > 0 and c.target_rel_l2 == 0 for c in s.cases)
    seeds = {}
    for c in s.cases:
        seeds.setdefault((c.pde, c.dim, c.method), set()).add(c.seed)
    assert min(len(v) for v in seeds.values()) >= 3
    # all five families on a time-dependent PDE with >= 2 spatial dimensions; two more PDEs
    # shared by >= 4 families
    fams = {}
    for c in s.cases:
        fams.setdefault((c.pde, c.dim), set()).add(c.method)
    five = [k for k, ms in fams.items() if families(ms) == set(FAMILIES)
            and pdes.get(k[0]).time_dependent and k[1] >= 2]
    assert five
    assert sum(1 for k, ms in fams.items() if k not in five and len(families(ms)) >= 4) >= 2


def test_cpu_leaderboard_fits_its_30_minute_budget_by_estimate():
    """Budget + start-up per case (the estimate's start-up figure) within 25 of the 30 minutes."""
    from bench.estimate import STARTUP_S

    s = load("leaderboard")
    total = sum(c.max_seconds + STARTUP_S for c in s.cases)
    assert total <= 25 * 60, f"{len(s.cases)} cases ~ {total / 60:.1f} min"


class _PluginMethod(methods.get("pinn")):
    name = "zz-plugin"
    description = "a test plugin: the pinn, under another name, refusing Poisson"

    @classmethod
    def supports(cls, pde):
        return "the plugin refuses poisson" if pde.name == "poisson" else super().supports(pde)


@pytest.fixture
def plugin():
    methods.REGISTRY.add("zz-plugin", _PluginMethod)
    try:
        yield "zz-plugin"
    finally:
        del methods.REGISTRY.items["zz-plugin"]


def test_a_method_registered_later_joins_the_leaderboard(plugin):
    s = load("leaderboard")
    got = {(c.pde, c.seed) for c in s.cases if c.method == plugin}
    assert {p for p, _ in got} == {"heat", "flow-mixing"} and len(got) == 6
    (r,) = [r for r in s.refused if r.method == plugin]
    assert r.pde == "poisson" and r.reason == "the plugin refuses poisson"
    # and leaves with it: a suite naming its methods is not touched
    assert plugin not in load("smoke").methods


BASE = {"pde": "heat", "dim": 1, "steps": 2, "methods": "all"}


def test_all_and_exclude_are_validated():
    s = parse({**BASE, "exclude": ["pinn-torch", "kfac"]}, "x")
    assert "pinn-torch" not in s.methods and "kfac" not in s.methods and "pinn" in s.methods
    for bad, needle in [({"methods": "every"}, "'methods' = 'every' is not valid"),
                        ({"methods": ["pinn"], "exclude": ["spinn"]}, "applies to methods = 'all' only"),
                        ({"exclude": ["nope"]}, "exclude: unknown method 'nope'"),
                        ({"exclude": "pinn"}, "must be array"),
                        ({"exclude": ["pinn", 3]}, "must be a list of method names"),
                        ({"exclude": methods.REGISTRY.names()}, "leaves no method")]:
        with pytest.raises(SuiteError, match=needle) as e:
            parse({**BASE, **bad}, "x")
        assert "\n" not in str(e.value)


def test_a_named_method_that_cannot_run_stays_an_error():
    with pytest.raises(SuiteError, match="cannot run PDE 'poisson'"):
        parse({"pde": "poisson", "dim": 2, "methods": ["causal"]}, "x")
    s = parse({"pde": "poisson", "dim": 2, "methods": "all"}, "x")
    assert "causal" not in s.methods
    assert any(r.method == "causal" and "time-dependent" in r.reason for r in s.refused)


def test_named_suites_keep_their_cases_and_ids():
    """methods = [...] suites expand as before: no refusal list, the same ids."""
    s = load("heat4d")
    assert not s.refused
    assert all(c.case_id.startswith(f"heat4-{c.method}-n{c.n_per_axis}-s") for c in s.cases)
    assert s.cases[0].target_error == 0.0  # not hashed: ids of the shipped records unchanged


def test_dry_run_lists_the_matrix_and_the_support_reasons(tmp_path, capsys, monkeypatch):
    from bench import cli, estimate

    real = estimate.estimate_cases
    monkeypatch.setattr(estimate, "estimate_cases", lambda cases, d, flops=True: real(cases, d, flops=False))
    rc = cli.main(["run", "--suite", "leaderboard", "--results", str(tmp_path), "--dry-run", "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0
    s = load("leaderboard")
    assert sum("estimate" in ln and "-s" in ln for ln in out.splitlines()) == len(s.cases)
    assert f"support matrix: {len(s.refused)} method x PDE pair(s)" in out
    assert "excluded by the suite: kfac-star" in out and s.excluded == ["kfac-star"]
    heat = next(c for c in s.cases if c.pde == "heat")
    ms = sorted({c.method for c in s.cases if c.pde == "heat"})
    line = next(ln for ln in out.splitlines() if ln.strip().startswith(msuite.problem_label(
        heat.pde, heat.dim, heat.pde_params) + ":"))
    assert f"{len(ms)} methods" in line and all(m in " ".join(out.split()) for m in ms)
    flat = " ".join(out.split())  # the console wraps long lines
    for r in s.refused:
        assert " ".join(f"{r.problem} {r.method} cannot: {r.reason}".split()) in flat
    assert not list(tmp_path.iterdir())


# -- NSM single-instance mode ------------------------------------------------------------------

SINGLE = [("heat", 2, {"form": "product", "c": math.pi, "kappa": 0.1}),
          ("poisson", 3, {"family": "sinprod"}),
          ("advection", 1, {})]  # Fourier in x on [0, 2 pi), Chebyshev in t


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def exact_coef(M):
    ex = np.broadcast_to(M.pde.exact(M.physical_grid(), np), M.modes)
    return M.basis.from_grid(jnp.asarray(ex)[None, ..., None])


@pytest.mark.parametrize("name,dim,params", SINGLE)
def test_nsm_single_instance_exact_solution_has_zero_spectral_residual(name, dim, params, x64):
    pde = pdes.build(name, dim, **params)
    assert methods.get("nsm").supports(pde) is None
    M = methods.get("nsm")(pde, 14, {"width": 4, "depth": 1}, "float64")
    assert M.single and M.evaluate is None  # the harness's error protocol
    assert M.kinds == ["chebyshev" if a not in pde.periodic_axes else "fourier" for a in range(pde.n_in)]
    coef = exact_coef(M)
    res = float(M.spectral_loss(coef, M.phi_coef)[0])
    # the same fields on a wrong solution (u* times 1.1, plus a bump) do not vanish
    wrong = float(M.spectral_loss(1.1 * coef + 0.01, M.phi_coef)[0])
    assert res < 1e-10 and wrong > 1e-4, (res, wrong)


def test_nsm_single_instance_transform_holds_the_ic_and_zero_boundary_data(x64):
    pde = pdes.build("heat", 2, form="product", c=math.pi, kappa=0.1)
    M = methods.get("nsm")(pde, 10, {"width": 4, "depth": 1}, "float64")
    state = M.init(jax.random.PRNGKey(0))
    X = jnp.asarray(np.random.default_rng(0).random((16, 3)))
    t0 = X.at[:, 0].set(0.0)
    ex = pde.exact([t0[:, i] for i in range(3)], jnp)
    # at t = 0 the output is the IC's interpolant on the model grid (whatever the network says)
    ic = M.basis.evaluate_points(M.phi_coef[0], t0)[:, 0]
    np.testing.assert_allclose(M.predict(state, t0), ic, atol=1e-12)
    np.testing.assert_allclose(ic, ex, atol=1e-5)  # the interpolant of u*(0, x) at 10 modes
    for a in (1, 2):
        for v in (0.0, 1.0):
            assert float(jnp.max(jnp.abs(M.predict(state, X.at[:, a].set(v))))) < 1e-10
    assert float(jnp.max(jnp.abs(M.predict(state, X) - pde.exact([X[:, i] for i in range(3)], jnp)))) > 1e-3
    assert M.size_info()["n_points"] == 10**3 and M.size_info()["batch"] == 1
    assert M.inference_programs(state) == []


def test_nsm_single_instance_step_lowers_the_loss():
    pde = pdes.build("poisson", 2, family="sinprod")
    M = methods.get("nsm")(pde, 10, {"width": 8, "depth": 1, "mollifier_scale": 1.0, "lr": 1e-2})
    state = M.init(jax.random.PRNGKey(0))
    step = jax.jit(M.step)
    first = None
    for _ in range(60):
        state, m = step(state, M.sample(None))
        first = first if first is not None else float(m["loss"])
    assert float(m["loss"]) < 0.5 * first


def test_nsm_refuses_non_zero_dirichlet_data_with_a_reason():
    for pde in (pdes.build("heat", 2), pdes.build("klein-gordon", 2)):
        why = methods.get("nsm").supports(pde)
        assert why and "non-zero Dirichlet data" in why and "\n" not in why
    why = methods.get("nsm-fdpinn").supports(pdes.build("poisson", 2, family="sinprod"))
    assert why and "operator learning" in why


# -- the report section ------------------------------------------------------------------------

def _rec(method, seed, curve, final, problem=("heat", 2, {"form": "product", "c": math.pi, "kappa": 0.1}),
         status="ok", target=0.05):
    pde, dim, params = problem
    return {"suite": "leaderboard", "case_id": f"{pde}{dim}-{method}-s{seed}", "status": status,
            "case": {"pde": pde, "dim": dim, "pde_params": params, "method": method, "seed": seed,
                     "n_per_axis": 16, "max_seconds": 8.0, "target_error": target, "device": "cpu",
                     "dtype": "float32"},
            "pde": {"dim": dim, "n_in": dim + 1, "time_dependent": True},
            "size": {"n_points": 4096, "n_points_kind": "random"},
            "env": {"device_name": "test cpu"},
            "metrics": {"rel_l2": final, "step_ms": 1.0 + seed, "peak_rss_bytes": 1e8, "steps_done": 100},
            "curve": [{"train_s": t, "rel_l2": e} for t, e in curve]}


def test_report_ranks_by_time_to_target_then_error_and_computes_its_sentences(tmp_path):
    from bench.report import leaderboard as lb

    recs = []
    for s in range(3):
        recs.append(_rec("pinn", s, [(1.0, 0.5), (3.0 + s, 0.04)], 0.03))     # reaches at 3, 4, 5 s
        recs.append(_rec("spinn", s, [(0.5, 0.2), (1.0 + s, 0.049)], 0.045))  # reaches at 1, 2, 3 s
        recs.append(_rec("nsm", s, [(1.0, 0.2), (2.0, 0.1)], 0.01 * (s + 1)))  # never: best final
    recs.append(_rec("kfac", 0, [(1.0, 0.01)], 0.01))                       # reaches in 1 of 3 runs
    recs += [_rec("kfac", s, [(1.0, 0.3)], 0.3) for s in (1, 2)]
    runs = lb.run_rows(recs)
    (problem,) = set(runs["problem"])
    t = lb.ranking(runs)
    assert list(t["method"]) == ["spinn", "pinn", "nsm", "kfac"]  # kfac: median of (1, inf, inf)
    assert t.iloc[0]["tt"] == 2.0 and (t.iloc[0]["tt_lo"], t.iloc[0]["tt_hi"]) == (1.0, 3.0)
    assert t.set_index("method").loc["nsm", "err"] == pytest.approx(0.02)
    text, figs = lb.section(recs, tmp_path / "figs", tmp_path, "leaderboard")
    assert "`spinn` reaches rel. L2 0.05 first (median 2 s over 3 runs; 3 reached it)" in text
    assert "then `pinn` (4 s)" in text and "Lowest error at the budget: `kfac` (0.01)" not in text
    assert "Lowest error at the budget: `nsm` (0.02)" in text
    assert "Cheapest step" in text
    # the support matrix names the refusals of the suite file for this PDE, and its exclusions
    assert "### Support matrix" in text and "nsm-fdpinn" in text and "excluded by the suite" in text
    assert {p.name for p in figs} >= {"fig-leaderboard-heatmap.png"} and len(figs) == 2
    assert lb.section([{**r, "case": {**r["case"], "target_error": 0.0}} for r in recs], None, tmp_path) == ("", [])
