"""The optimizer registry: case parameter ``optimizer`` -> an :class:`Optimizer`.

An optimizer is chosen independently of the method (optax's design): every method whose loss
supports it accepts it, with its own hyper-parameters as case parameters next to the method's
(their defaults declared here, on the optimizer). The interface declares every hook with its
default:

* ``supports(method_cls, pde=None, params=None) -> str | None``  why it cannot drive a method
  (None: it can); suite validation and method construction both ask, so a refused combination
  is a one-line error before anything runs
* ``check(params, where)``                    range checks of its hyper-parameters
* ``init(method, params) -> opt_state``
* ``step(method, state, batch) -> (state, metrics)``  one training step; pure and jittable
* ``describe(method) -> dict``                facts for the record (e.g. FLOP loop corrections)

First-order optimizers are :class:`FirstOrder` entries around an optax transformation and share
one step (:func:`optax_step`: value and gradient of ``method.objective``, update, apply).
Second-order optimizers with a step of their own (KFAC, KFAC*: ``methods/kfac.py``) register
themselves in :data:`OPTIMIZERS` at import. Adding one is a class (or a :class:`FirstOrder`
entry) and one ``register`` call.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import optax


class Optimizer:
    """Base class: every hook with its default (a first-order optimizer needs none of them)."""

    name: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    #: hyper-parameters with their defaults (case parameters of the method it drives)
    defaults: ClassVar[dict[str, Any]] = {}
    #: valid values of its string hyper-parameters
    choices: ClassVar[dict[str, tuple]] = {}

    def supports(self, method_cls, pde=None, params=None) -> str | None:
        """None if this optimizer can train ``method_cls`` (on ``pde`` with ``params`` when
        given), else a one-line reason."""
        return None

    def check(self, params: dict, where: str) -> None:
        """Raise ValueError naming ``where`` for a hyper-parameter out of its range."""

    def init(self, method, params):
        raise NotImplementedError

    def step(self, method, state, batch):
        raise NotImplementedError

    def describe(self, method) -> dict:
        return {}


def optax_step(tx: optax.GradientTransformation, objective: Callable, params, opt_state, *args):
    """The one optax step: ``objective(params, *args) -> (loss, aux)``; returns
    ``(params, opt_state, loss, aux)`` after one update of ``tx``."""
    import jax

    (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(params, *args)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, aux


class FirstOrder(Optimizer):
    """An optax transformation of the method's resolved parameters, with the method's learning
    rate (a float or an optax schedule: ``method.learning_rate()``) and optional global-norm
    clipping (``method.clip_norm()``)."""

    def __init__(self, name: str, make: Callable[[dict, Any], optax.GradientTransformation],
                 citation: str, defaults: dict | None = None):
        self.name, self._make, self.citation = name, make, citation
        self.defaults = dict(defaults or {})

    def supports(self, method_cls, pde=None, params=None):
        if method_cls.framework == "jax":
            return None
        own = method_cls.native_optimizers
        if self.name in own:
            return None
        return (f"method {method_cls.name!r} ({method_cls.framework}) trains with its framework's "
                f"own optimizers ({', '.join(own) or 'none'}), not optax's {self.name!r}")

    def transform(self, method) -> optax.GradientTransformation:
        tx = self._make(method.params, method.learning_rate())
        clip = method.clip_norm()
        return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx

    def init(self, method, params):
        return method.transform().init(params)

    def step(self, method, state, batch):
        params, opt, loss, terms = optax_step(method.transform(), method.objective,
                                              state["params"], state["opt"], batch)
        return {**state, "params": params, "opt": opt}, {"loss": loss, **terms}


#: name -> optimizer; ``register`` adds one (methods/kfac.py adds kfac and kfac-star)
OPTIMIZERS: dict[str, Optimizer] = {}


def register(opt: Optimizer) -> Optimizer:
    if opt.name in OPTIMIZERS:
        raise ValueError(f"optimizer {opt.name!r} is registered twice")
    OPTIMIZERS[opt.name] = opt
    return opt


register(FirstOrder("adam", lambda p, lr: optax.adam(lr),
                    "Kingma & Ba, 'Adam: A Method for Stochastic Optimization', ICLR 2015"))
register(FirstOrder("sgd", lambda p, lr: optax.sgd(lr, momentum=p["momentum"] or None),
                    "stochastic gradient descent with optional heavy-ball momentum "
                    "(Polyak 1964); the KFAC-PINN paper's SGD baseline (Dangel et al., "
                    "NeurIPS 2024)", defaults={"momentum": 0.0}))


class Lbfgs(Optimizer):
    """optax's L-BFGS (``optax.lbfgs``: two-loop recursion, ``memory_size`` pairs, zoom line
    search with the strong Wolfe conditions) on the full batch of the step. The line search is
    a ``while_loop`` that XLA's cost analysis counts once: its FLOPs are a lower bound."""

    name = "lbfgs"
    citation = ("Liu & Nocedal, 'On the limited memory BFGS method for large scale "
                "optimization', Math. Program. 45 (1989); optax.lbfgs")
    defaults = {"memory_size": 10}

    def supports(self, method_cls, pde=None, params=None):
        if method_cls.framework != "jax" or not method_cls.optimizer_steps:
            return (f"lbfgs needs a JAX method whose step is the optimizer's (a line search on "
                    f"``objective``); {method_cls.name!r} has a step of its own")
        return None

    def check(self, p, where):
        if p["memory_size"] < 1:
            raise ValueError(f"{where}.memory_size = {p['memory_size']} must be >= 1")

    def _tx(self, method):
        return optax.lbfgs(memory_size=method.params["memory_size"])

    def init(self, method, params):
        return self._tx(method).init(params)

    def step(self, method, state, batch):
        import jax

        params = state["params"]
        (loss, terms), grads = jax.value_and_grad(method.objective, has_aux=True)(params, batch)
        updates, opt = self._tx(method).update(
            grads, state["opt"], params, value=loss, grad=grads,
            value_fn=lambda q: method.objective(q, batch)[0])
        return {**state, "params": optax.apply_updates(params, updates), "opt": opt}, {"loss": loss, **terms}

    def describe(self, method):
        return {"optimizer": self.name,
                "flops_note": "the zoom line search is a while_loop counted once by XLA's cost "
                              "analysis: flops_per_step is a lower bound",
                "flops_uncounted_loops": "L-BFGS zoom line search (while_loop)"}


register(Lbfgs())


def get(name: str) -> Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (valid: {', '.join(sorted(OPTIMIZERS))})")
    return OPTIMIZERS[name]


def valid_for(method_cls) -> list[str]:
    """Names of the optimizers that can train ``method_cls`` (registry order)."""
    return [n for n, o in OPTIMIZERS.items() if o.supports(method_cls) is None]


def build(params: dict) -> optax.GradientTransformation:
    """The optax transformation of the first-order optimizer ``params["optimizer"]`` with the
    constant learning rate ``params["lr"]`` (for code outside a method, e.g. tests)."""
    opt = get(params["optimizer"])
    if not isinstance(opt, FirstOrder):
        raise ValueError(f"optimizer {opt.name!r} is not a first-order (optax) optimizer")
    return opt._make({**opt.defaults, **params}, params["lr"])
