"""pinn-torch (methods/pinn_torch.py) and the torch backend (bench/backends/torch.py)."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", True)

import methods  # noqa: E402
import pdes  # noqa: E402
from bench.suite import Case  # noqa: E402


@pytest.mark.parametrize("pde_name,dim", [("heat", 2), ("poisson", 3), ("helmholtz", 2)])
def test_pinn_torch_loss_equals_pinn_loss(pde_name, dim):
    """Same flax params copied into torch, same points: same loss terms in float64."""
    pde = pdes.build(pde_name, dim)
    cfg = {"width": 12, "depth": 2}
    ref = methods.get("pinn")(pde, 3, cfg, "float64")
    tm = methods.get("pinn-torch")(pde, 3, cfg, "float64")
    params = ref.init_params(jax.random.PRNGKey(0))
    batch = ref.sample(jax.random.PRNGKey(1))
    loss, terms = jax.jit(ref.loss)(params, batch)
    state = tm.load_flax(tm.init(0), params)
    tb = {"interior": torch.as_tensor(np.asarray(batch["interior"])),
          "faces": [torch.as_tensor(np.asarray(x)) for x in batch["faces"]]}
    tloss, tterms = tm.loss(state["model"], tb)
    np.testing.assert_allclose(float(tloss.detach()), float(loss), rtol=1e-12)
    for k in terms:
        np.testing.assert_allclose(float(tterms[k].detach()), float(terms[k]), rtol=1e-11, atol=1e-15)
    pts = jax.random.uniform(jax.random.PRNGKey(2), (10, pde.n_in), jnp.float64)
    np.testing.assert_allclose(tm.predict(state, torch.as_tensor(np.asarray(pts))).numpy(),
                               ref.predict_params(params, pts), rtol=1e-13)


def test_torch_fields_mixed_derivative_matches_finite_difference():
    pde = pdes.build("heat", 1)
    tm = methods.get("pinn-torch")(pde, 3, {"width": 8, "depth": 2}, "float64")
    model = tm.init(1)["model"]
    from methods.pinn_torch import TorchFields

    X = torch.rand(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    f = TorchFields(model, X, True)
    h = 1e-4
    e = lambda i: torch.eye(2, dtype=torch.float64)[i] * h  # noqa: E731
    u = lambda Y: model(Y)[:, 0].detach()  # noqa: E731
    fd = (u(X + e(0) + e(1)) - u(X + e(0) - e(1)) - u(X - e(0) + e(1)) + u(X - e(0) - e(1))) / (4 * h * h)
    np.testing.assert_allclose(f.dd("t", 0).detach(), fd, rtol=1e-5, atol=1e-7)
    fd2 = (u(X + e(1)) - 2 * u(X) + u(X - e(1))) / (h * h)
    np.testing.assert_allclose(f.lap().detach(), fd2, rtol=1e-4, atol=1e-6)


def test_init_matches_flax_glorot_normal_statistics():
    tm = methods.get("pinn-torch")(pdes.build("poisson", 2), 3, {"width": 256, "depth": 2})
    W = tm.init(0)["model"][2].weight.detach()
    std = (2.0 / 512) ** 0.5
    assert abs(float(W.std()) / std - 1) < 0.03
    assert float(W.abs().max()) <= 2 * std / 0.87962566103423978 + 1e-7
    assert float(tm.init(0)["model"][0].bias.detach().abs().max()) == 0.0


def test_worker_runs_a_torch_case(tmp_path):
    from bench import worker

    case = Case(suite="t", pde="heat", dim=1, method="pinn-torch", n_per_axis=4, seed=0, steps=7,
                timing_samples=3, eval_points=64, method_params={"width": 8, "depth": 1})
    rec = worker.run(case, tmp_path / "r.json")
    assert rec["status"] == "ok", rec.get("traceback", rec["error"])
    m = rec["metrics"]
    assert m["steps_done"] == 7 and m["n_samples"] >= 3 and m["step_ms"] > 0
    assert m["flops_per_step"] > 0 and m["step_ms_min"] > 0
    assert rec["env"]["backend"] == "torch" and rec["env"]["torch_num_threads"] >= 1
    assert {"rel_l2", "rms_abs", "max_abs"} <= set(m) and rec["curve"][0]["step"] == 1
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "ok"
