"""The optimizer registry (methods/optim.py): every method x optimizer pair, presets and
canonical names, refused combinations, and the one optax step."""

import jax
import jax.numpy as jnp
import optax
import pytest

import methods
import pdes
from bench import suite
from methods import optim


def test_build_and_refuse():
    tx = optim.build({"optimizer": "adam", "lr": 0.5})
    state = tx.init(jnp.ones(3))
    updates, _ = tx.update(jnp.ones(3), state)
    assert jnp.allclose(updates, -0.5)  # adam's first step is -lr * sign(g)
    with pytest.raises(ValueError, match=r"unknown optimizer 'nope' \(valid: adam"):
        optim.build({"optimizer": "nope", "lr": 0.1})
    with pytest.raises(ValueError, match="not a first-order"):
        optim.build({"optimizer": "kfac", "lr": 0.1})


def test_every_method_x_optimizer_pair_is_decided_by_the_registry():
    """Walk every registered method and optimizer: a method's valid optimizers are exactly
    those whose ``supports`` accepts it, its default is one of them, and every refusal is a
    one-line reason naming the valid choices."""
    for name in methods.REGISTRY.names():
        cls = methods.get(name)
        valid = cls.optimizers()
        assert cls.all_defaults()["optimizer"] in valid, name
        assert "adam" in valid, name  # every method trains with Adam
        for opt in optim.OPTIMIZERS:
            reason = cls.optimizer_reason(opt)
            assert (reason is None) == (opt in valid), (name, opt)
            if reason:
                assert "\n" not in reason and "valid: " in reason and opt in reason


def test_first_order_optimizers_train_every_jax_method_kfac_only_forward_laplacian():
    jax_methods = [n for n in methods.REGISTRY.names() if methods.get(n).framework == "jax"]
    for n in jax_methods:
        assert {"adam", "sgd"} <= set(methods.get(n).optimizers()), n
    fl = {n for n in jax_methods if {"kfac", "kfac-star"} <= set(methods.get(n).optimizers())}
    assert fl == {"pinn-fl", "kfac", "kfac-star"}
    assert methods.get("pinn-torch").optimizers() == ["adam"]


def test_a_refused_combination_is_a_one_line_suite_error():
    raw = {"pde": "heat", "dim": 1, "methods": ["pinn"], "method": {"pinn": {"optimizer": "kfac"}}}
    with pytest.raises(suite.SuiteError) as e:
        suite.parse(raw, "t")
    msg = str(e.value)
    assert "\n" not in msg and "optimizer = 'kfac'" in msg and "forward-Laplacian" in msg
    assert "valid: adam, sgd" in msg
    # an optimizer's hyper-parameter without that optimizer is an unknown parameter
    raw["method"] = {"pinn": {"damping": 1e-3}}
    with pytest.raises(suite.SuiteError, match="unknown parameter 'damping'.*optimizer 'adam'"):
        suite.parse(raw, "t")
    # KFAC's factors need a PDE it has them for; refused at validation, not at run time
    raw = {"pde": "navier-stokes", "dim": 2, "methods": ["pinn-fl"],
           "method": {"pinn-fl": {"optimizer": "kfac"}}}
    with pytest.raises(suite.SuiteError, match=r"cannot run PDE 'navier-stokes': needs a scalar PDE"):
        suite.parse(raw, "t")
    with pytest.raises(ValueError, match="n_out"):  # and by the method, built directly
        methods.get("pinn-fl")(pdes.build("navier-stokes", 2), 3, {"optimizer": "kfac"})


def test_one_computation_one_name():
    """A preset and its base with the preset's optimizer are one case (one id); a preset with
    another optimizer is that optimizer's name."""
    assert methods.canonical("pinn-fl", {"optimizer": "kfac"}) == ("kfac", {})
    assert methods.canonical("kfac", {"optimizer": "kfac-star", "ema": 0.9}) == ("kfac-star", {"ema": 0.9})
    assert methods.canonical("kfac", {"optimizer": "adam"}) == ("pinn-fl", {})
    assert methods.canonical("kfac", {"optimizer": "sgd"}) == ("pinn-fl", {"optimizer": "sgd"})
    assert methods.canonical("pinn", {"lr": 0.1}) == ("pinn", {"lr": 0.1})

    def ids(mname, tbl):
        raw = {"pde": "poisson", "dim": 2, "methods": [mname], "method": {mname: tbl}}
        return [c.case_id for c in suite.parse(raw, "t").cases]

    assert ids("pinn-fl", {"optimizer": "kfac-star"}) == ids("kfac-star", {})
    assert ids("kfac", {"optimizer": "kfac-star"}) == ids("kfac-star", {})
    assert ids("kfac", {"optimizer": "adam"}) == ids("pinn-fl", {})
    raw = {"pde": "poisson", "dim": 2, "methods": ["kfac-star", "pinn-fl"],
           "method": {"pinn-fl": {"optimizer": "kfac-star"}}}
    with pytest.raises(suite.SuiteError, match="appears twice"):
        suite.parse(raw, "t")


def test_optimizer_defaults_are_the_optimizers():
    kfac, star = methods.get("kfac").all_defaults(), methods.get("kfac-star").all_defaults()
    assert kfac["damping"] == optim.get("kfac").defaults["damping"] == 1.544e-12
    assert star["damping"] == optim.get("kfac-star").defaults["damping"] == 1.2e-10
    assert methods.get("pinn-fl").resolve_params({"optimizer": "kfac-star"})["ema"] == 0.926
    assert methods.get("pinn").resolve_params({"optimizer": "sgd"})["momentum"] == 0.0


def test_the_transform_is_built_once_and_the_step_is_the_optax_step():
    M = methods.get("pinn")(pdes.build("heat", 1), 4, {"width": 8, "depth": 1, "optimizer": "sgd",
                                                       "lr": 0.05, "momentum": 0.9})
    assert M.transform() is M.transform()
    state = M.init(jax.random.PRNGKey(0))
    batch = M.sample(jax.random.PRNGKey(1))
    new, metrics = M.step(state, batch)
    # the same update by hand: optax.sgd with momentum on the gradient of the loss
    (loss, _), g = jax.value_and_grad(M.loss, has_aux=True)(state["params"], batch)
    tx = optax.sgd(0.05, momentum=0.9)
    u, _ = tx.update(g, tx.init(state["params"]), state["params"])
    ref = optax.apply_updates(state["params"], u)
    close = jax.tree_util.tree_map(lambda a, b: bool(jnp.allclose(a, b, rtol=1e-5, atol=1e-7)),
                                   new["params"], ref)
    assert all(jax.tree_util.tree_leaves(close))
    assert jnp.isclose(metrics["loss"], loss)


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_first_order_optimizers_lower_the_loss(opt):
    M = methods.get("pinn-fl")(pdes.build("poisson", 2), 4, {"widths": [8], "optimizer": opt,
                                                             "lr": 1e-2})
    state, batch = M.init(jax.random.PRNGKey(0)), M.sample(jax.random.PRNGKey(1))
    step = jax.jit(M.step)
    first = None
    for _ in range(30):
        state, m = step(state, batch)
        first = float(m["loss"]) if first is None else first
    assert float(m["loss"]) < first


def test_the_report_compares_optimizers_over_runs(tmp_path):
    """Records of one network trained by several optimizers get the optimizer section: per
    optimizer the run count, mean ± std and the median with its bootstrap CI of the final
    error, the training loss beside it, and the records that make each row."""
    import numpy as np
    from test_report import make_record

    from bench.report import optimizers as mo

    recs = []
    for opt, method, errs in (("adam", "pinn-fl", [3e-3, 4e-3, 5e-3]), ("kfac", "kfac", [6e-5, 7e-5, 8e-5])):
        for s, e in enumerate(errs):
            r = make_record(method, 5, seed=s, pde="heat", dim=4, rel_l2=e, final_loss=10 * e,
                            steps_done=100, max_seconds=25.0)
            r["method"] = {"name": method, "params": {"optimizer": opt}, "n_params": 449}
            r["case"]["max_seconds"] = 25.0
            recs.append(r)
    text, figs = mo.section(recs, tmp_path / "figs", tmp_path)
    assert "## Optimizers: heat4, D = 449 parameters" in text and "25 s wall-clock budget" in text
    adam = next(line for line in text.splitlines() if line.startswith("| adam "))
    assert "3 / 3" in adam and f"{np.mean([3e-3, 4e-3, 5e-3]):.3g} ± {np.std([3e-3, 4e-3, 5e-3], ddof=1):.3g}" in adam
    assert "0.004 [" in adam  # the median with its CI
    assert "Lowest median error here: **kfac**" in text
    assert recs[3]["case_id"] in text and len(figs) == 1 and figs[0].exists()
    # one optimizer only: no section
    assert mo.section(recs[:3], None, tmp_path) == ("", [])
