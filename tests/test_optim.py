"""The first-order optimizer registry (methods/optim.py) and its use by the JAX methods."""

import jax
import jax.numpy as jnp
import pytest

import methods
import pdes
from methods import optim


def test_build_and_refuse():
    tx = optim.build({"optimizer": "adam", "lr": 0.5})
    state = tx.init(jnp.ones(3))
    updates, _ = tx.update(jnp.ones(3), state)
    assert jnp.allclose(updates, -0.5)  # adam's first step is -lr * sign(g)
    with pytest.raises(ValueError, match=r"unknown optimizer 'nope' \(valid: adam"):
        optim.build({"optimizer": "nope", "lr": 0.1})


def test_every_first_order_choice_is_registered():
    """A method that offers an optimizer other than its own second-order ones gets it here."""
    own = {"kfac", "kfac-star"}
    for name in methods.REGISTRY.names():
        cls = methods.get(name)
        if cls.framework != "jax":
            continue
        offered = set(cls.choices.get("optimizer", ("adam",))) - own
        assert offered <= set(optim.OPTIMIZERS), (name, offered)


def test_the_optimizer_is_built_once():
    M = methods.get("pinn")(pdes.build("heat", 1), 4, {"width": 8, "depth": 1})
    assert M.optimizer() is M.optimizer()
    state = M.init(jax.random.PRNGKey(0))
    state, metrics = M.step(state, M.sample(jax.random.PRNGKey(1)))
    assert jnp.isfinite(metrics["loss"])
