"""Neural Spectral Method (NSM) and its grid-based "PINN loss" baseline.

Du, Chalapathi, Krishnapriyan, "Neural Spectral Methods: Self-supervised learning in the
spectral domain", ICLR 2024, arXiv 2312.05225 (REFERENCES.md 2.7, 1.3, 3.3). Our own
implementation on current JAX (the authors' MIT code pins jax 0.4.7); nothing is pasted.

The model learns a solution operator phi -> u of a *parametric* PDE (``pdes.nsm_poisson``,
``pdes.reaction_diffusion``) with no solution data:

* Every field is a coefficient array in the PDE's tensor basis (Fourier on periodic axes,
  Chebyshev on the others and on time; ``methods/spectral.py``), with ``modes`` coefficients per
  axis and the same number of collocation nodes.
* Network (an FNO acting on coefficients, paper sec. 3.2 / repo ``model/fno``): the input is
  phi's coefficients (truncated or zero-padded to the modes) concatenated with the coefficients
  of the coordinate functions; lift Dense(4h) -> s -> Dense(h) -> s; ``depth`` x [spectral conv
  (one h x h matrix per mode) + Dense(h) channel mix] -> s; project Dense(h) -> s -> Dense(4h)
  -> s -> Dense(1). Dense layers are linear on the coefficients; their bias is added to the
  constant mode only, which is exactly a bias on the grid values. **Every activation s is
  applied on the collocation grid**: inverse transform, s, transform.
* ``conv = "complex"`` (default where the last axis is Fourier) multiplies each complex Fourier
  mode of the last axis by a complex h x h matrix, stored as two real arrays (REFERENCES 2.7:
  complex leaves did not train with jax.grad + optax); ``conv = "real"`` uses one real matrix
  per real basis function, as the authors' repo does.
* The output transform (mollifier, scale 1e-3 as in the repo) enforces the BC/IC exactly:
  periodic ``u = s (v - v(0))``; initial value ``u = phi + s t v``; Dirichlet
  ``u = s v prod_i sin(pi x_i)``.
* Spectral loss: derivatives act on coefficients, products are formed on the collocation grid,
  the residual's coefficients R_k are taken back by the transform, and the loss is
  ``mean_batch sum_k gamma_k R_k^2``: ``gamma = 1`` ("unit", the paper's sum of squared
  coefficients) or the Parseval weights ("parseval": then the loss equals the grid quadrature of
  R^2 exactly).
* A fresh batch of GP inputs is drawn **inside the step** from a PRNG key carried in the state
  (the paper draws 16 new inputs per step), so ``sample`` returns an empty batch and the
  worker's ``resample_every`` has no effect; GP sampling is part of the timed step.
* Accuracy is measured as the paper does (REFERENCES 3.3): the relative L2 error per held-out
  instance on the PDE's evaluation grid, averaged over the ``n_test`` instances (hook
  ``evaluate``), recorded as ``rel_l2_per_instance_mean`` and as ``rel_l2``.
* Inference against the output resolution (``infer_res``) is returned as programs to time and
  cost (hook ``inference_programs``); the JAX backend times them, the method never does.

Single-instance mode (pinnbench's leaderboard, not in the paper): on a non-parametric PDE with
an exact solution, NSM solves that *one* problem, a parametric family of one. There is no GP
input and no batch: phi is fixed (the initial condition u*(0, x), constant in t, for a
time-dependent PDE; zero otherwise), so the input channel carries the problem's data and the
network, loss and optimizer are those of operator learning. The basis follows the domain and the
conditions (``Nsm.single_instance_kinds``): Fourier on the PDE's ``periodic_axes``, Chebyshev on
the other spatial axes and on time, each axis mapped affinely from [0, 1] onto the PDE's bounds
(derivatives scaled by the axis length). Boundary data enter by the output transform, as the
paper's mollifier does: ``u = u0 + s t v prod_a sin(pi x_a)`` (time-dependent; the product over
the non-periodic spatial axes), ``u = s v prod_a sin(pi x_a)`` (stationary), or
``u = u*(0) + s (v - v(0))`` (stationary, all axes periodic: the constant the PDE leaves free is
pinned to the exact value). So the mode needs zero Dirichlet data on every non-periodic face
(``supports`` checks u* there) and the default conditions (IC and Dirichlet data, no custom
residual); the error is the harness's (``predict`` against u* at held-out random points), not the
per-instance protocol of operator learning, and no inference programs are timed (there is no
family to infer over). What differs from the paper's setting: the network never generalises
over inputs, it fits one solution, so it competes with the PINNs as a solver of one PDE.

``nsm-fdpinn`` is the paper's "PINN loss" baseline (repo "FNO+PINN"), here with the *same*
network and mollifier: the output is evaluated on a uniform grid of ``fd_grid`` points per axis
and the residual is taken by second-order finite differences (periodic wrap on Fourier axes,
one-sided at the ends of non-periodic axes); the loss is the grid mean of R^2. Only the loss
differs from ``nsm``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pdes import Fields

from . import spectral
from .jaxutil import JaxMethod, count_params
from .optim import optax_step

ACTS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "gelu": jax.nn.gelu, "sin": jnp.sin}
TRANSFORMS = ("periodic", "initial", "dirichlet")


class SpectralFields(Fields):
    """Fields of coefficient arrays ``(B, *modes, C)``: spectral derivatives, grid values.

    ``bounds`` (one ``(lo, hi)`` per axis; default the unit cube the bases live on) maps each
    axis affinely onto the PDE's domain: coordinates are physical and a k-th derivative along
    an axis of length L is the basis derivative over L^k."""

    def __init__(self, basis: spectral.TensorBasis, coef, phi, time_dependent: bool,
                 bounds=None):
        bounds = bounds or [(0.0, 1.0)] * basis.d
        coords = [lo + (hi - lo) * c[None] for c, (lo, hi) in zip(basis.grid_coords(), bounds)]
        super().__init__(jnp, coords, time_dependent)
        self.basis = basis
        self.coef = coef
        self.phi = phi
        self.lengths = [float(hi - lo) for lo, hi in bounds]

    def _partial(self, idx, c):
        coef = self.coef
        scale = 1.0
        for a in sorted(set(idx)):
            k = idx.count(a)
            coef = self.basis.deriv(coef, a, k)
            scale = scale * self.lengths[a] ** k
        out = self.basis.to_grid(coef)[..., c]
        return out if scale == 1.0 else out / scale


class FDFields(Fields):
    """Second-order finite differences of grid values ``(B, *grid)`` on a uniform grid."""

    def __init__(self, values, phi, periodic: list[bool], axes: list[np.ndarray], dtype,
                 time_dependent: bool):
        d = len(axes)
        coords = []
        for a, x in enumerate(axes):
            shape = [1] * (d + 1)
            shape[a + 1] = len(x)
            coords.append(jnp.asarray(x.reshape(shape), dtype))
        super().__init__(jnp, coords, time_dependent)
        self.values = values
        self.phi = phi
        self.periodic = periodic
        self.h = [1.0 / len(x) if p else 1.0 / (len(x) - 1) for x, p in zip(axes, periodic)]

    def _partial(self, idx, c):
        u = self.values
        for a in sorted(set(idx)):
            k = idx.count(a)
            while k > 0:
                o = 2 if k >= 2 else 1
                u = fd(u, a + 1, o, self.h[a], self.periodic[a])
                k -= o
        return u


def fd(u, axis: int, order: int, h: float, periodic: bool):
    """First or second derivative along ``axis`` by second-order finite differences."""
    if periodic:
        up, um = jnp.roll(u, -1, axis), jnp.roll(u, 1, axis)
        return (up - um) / (2 * h) if order == 1 else (up - 2 * u + um) / h**2
    n = u.shape[axis]
    s = lambda i: jax.lax.slice_in_dim(u, i, i + 1, axis=axis)  # noqa: E731
    mid = lambda a, b: jax.lax.slice_in_dim(u, a, n + b, axis=axis)  # noqa: E731
    if order == 1:
        inner = (mid(2, 0) - mid(0, -2)) / (2 * h)
        lo = (-3 * s(0) + 4 * s(1) - s(2)) / (2 * h)
        hi = (3 * s(n - 1) - 4 * s(n - 2) + s(n - 3)) / (2 * h)
    else:
        inner = (mid(2, 0) - 2 * mid(1, -1) + mid(0, -2)) / h**2
        lo = (2 * s(0) - 5 * s(1) + 4 * s(2) - s(3)) / h**2
        hi = (2 * s(n - 1) - 5 * s(n - 2) + 4 * s(n - 3) - s(n - 4)) / h**2
    return jnp.concatenate([lo, inner, hi], axis=axis)


class Nsm(JaxMethod):
    optimizer_steps = False  # its step draws the input batch: first-order optimizers only
    name = "nsm"
    description = ("Neural Spectral Method: FNO on spectral coefficients, spectral residual loss "
                   "(parametric PDEs)")
    citation = "Du, Chalapathi, Krishnapriyan, ICLR 2024, arXiv 2312.05225"
    points_kind = "spectral"
    defaults = {"width": 64, "depth": 4, "activation": "relu", "batch": 16, "conv": "auto",
                "mollifier_scale": 1e-3, "loss_weights": "unit", "time_modes": 0,
                "decay_steps": 0, "decay_rate": 1e-3, "clip": 0.0,
                "infer_res": [32, 64, 128, 256], "infer_repeats": 5}
    choices = {"activation": tuple(ACTS), "conv": ("auto", "real", "complex"),
               "loss_weights": ("unit", "parseval")}

    def __init__(self, pde, n_per_axis, params=None, dtype="float32"):
        super().__init__(pde, n_per_axis, params, dtype)
        reason = self.supports(pde)
        if reason:
            raise ValueError(f"method {self.name!r} cannot run PDE {pde.name!r}: {reason}")
        p = self.params
        for k in ("width", "depth", "batch", "infer_repeats"):
            if p[k] < 1:
                raise ValueError(f"method.{self.name}.{k} = {p[k]!r} must be positive")
        if p["time_modes"] < 0 or p["decay_steps"] < 0 or p["clip"] < 0:
            raise ValueError(f"method.{self.name}: time_modes, decay_steps and clip must not be "
                             "negative")
        if not p["infer_res"] or any(isinstance(r, bool) or not isinstance(r, int) or r < 2
                                     for r in p["infer_res"]):
            raise ValueError(f"method.{self.name}.infer_res = {p['infer_res']!r} must be a "
                             "non-empty list of integers >= 2")
        if self.n_per_axis < 2:
            raise ValueError(f"method.{self.name}: n_per_axis (modes per axis) = "
                             f"{self.n_per_axis} must be >= 2")
        self.single = not pde.parametric
        self.kinds = pde.basis_kinds() if not self.single else self.single_instance_kinds(pde)
        self.bounds = [(0.0, 1.0)] * len(self.kinds) if not self.single else \
            [(float(lo), float(hi)) for lo, hi in pde.bounds()]
        if self.single:
            self.evaluate = None  # the harness's error: predict against u* (module docstring)
        self.modes = tuple(
            (p["time_modes"] or self.n_per_axis) if (pde.time_dependent and a == 0)
            else self.n_per_axis for a in range(len(self.kinds)))
        self.basis = spectral.TensorBasis(
            [spectral.make(k, n) for k, n in zip(self.kinds, self.modes)], self.jdtype)
        self.in_basis = spectral.TensorBasis(
            [spectral.make(k, n) for k, n in (pde.input_grid() if not self.single
                                              else zip(self.kinds, self.modes))], self.jdtype)
        self.conv = p["conv"]
        if self.conv == "auto":
            self.conv = "complex" if self.kinds[-1] == "fourier" else "real"
        if self.conv == "complex" and self.kinds[-1] != "fourier":
            raise ValueError(f"method.{self.name}.conv = 'complex' needs a Fourier last axis "
                             f"(axes: {', '.join(self.kinds)}; valid: real)")
        self.act = ACTS[p["activation"]]
        # coefficients of the coordinate functions x_a on the model grid: (*modes, n_in)
        coords = np.stack(np.meshgrid(*self.basis.grid(), indexing="ij"), -1)
        self.coord_coef = self.basis.from_grid(jnp.asarray(coords, self.jdtype))
        self._eval_cache: dict = {}
        if self.single:
            self.transform_kind = self.single_instance_transform(pde)
            self.phi_coef = self.basis.from_grid(self.fixed_input()[None, ..., None])

    # -- single-instance mode (module docstring) -----------------------------------------------
    @staticmethod
    def single_instance_kinds(pde) -> list[str]:
        """The basis per input axis (time first): Fourier on the PDE's periodic axes, Chebyshev
        on the other spatial axes and on time."""
        return ["fourier" if a in pde.periodic_axes and not (pde.time_dependent and a == 0)
                else "chebyshev" for a in range(pde.n_in)]

    @staticmethod
    def single_instance_transform(pde) -> str:
        if pde.time_dependent:
            return "initial-dirichlet"
        if all(a in pde.periodic_axes for a in range(pde.n_in)):
            return "periodic-pinned"
        return "dirichlet-sine"

    def physical_grid(self) -> list:
        """The collocation nodes as physical coordinates, broadcastable slabs (numpy)."""
        return [lo + (hi - lo) * c for c, (lo, hi) in
                zip(self.basis.grid_coords(np), self.bounds)]

    def fixed_input(self):
        """phi on the model grid: u*(0, x), constant in t, for a time-dependent PDE; else 0."""
        shape = self.modes
        if not self.pde.time_dependent:
            return jnp.zeros(shape, self.jdtype)
        coords = self.physical_grid()
        coords[0] = np.zeros_like(coords[0]) + self.bounds[0][0]
        u0 = np.asarray(self.pde.exact(coords, np), np.float64)
        return jnp.asarray(np.broadcast_to(u0, shape), self.jdtype)

    @classmethod
    def single_instance_reason(cls, pde) -> str | None:
        """None if the single-instance mode can solve ``pde``, else a one-line reason."""
        if pde.solution != "exact":
            return "single-instance mode needs an exact solution (for the IC and the error)"
        if pde.n_out != 1:
            return "systems (n_out > 1) are not supported"
        periodic = set(pde.periodic_axes)
        for cond in pde.conditions():
            if cond.residual is not None:
                return (f"condition {cond.name!r} has its own residual: the output transform "
                        "enforces an IC and zero Dirichlet data only")
            if pde.time_dependent and cond.axis == 0 and cond.side != "lo":
                return f"condition {cond.name!r} at the end of time: not an initial condition"
        bounds = [(float(lo), float(hi)) for lo, hi in pde.bounds()]
        rng = np.random.default_rng(0)
        first = 1 if pde.time_dependent else 0
        pts = [lo + (hi - lo) * rng.random(64) for lo, hi in bounds]
        scale = max(1.0, float(np.max(np.abs(pde.exact(pts, np)))))
        for a in range(first, pde.n_in):
            if a in periodic:
                continue
            for side, v in (("lo", bounds[a][0]), ("hi", bounds[a][1])):
                face = [p.copy() for p in pts]
                face[a] = np.full(64, v)
                worst = float(np.max(np.abs(pde.exact(face, np))))
                if worst > 1e-9 * scale:
                    return (f"non-zero Dirichlet data on the face {pde.axis_names()[a]} = {v:g} "
                            f"(max |u*| = {worst:.3g}): the sine mollifier enforces zero data only "
                            "(a lifting of non-homogeneous boundary data is not implemented)")
        return None

    # -- what this method can run ------------------------------------------------------------
    @classmethod
    def supports(cls, pde) -> str | None:
        if not pde.parametric:
            return cls.single_instance_reason(pde)
        kinds = pde.basis_kinds()  # a parametric PDE is a pdes.base.ParametricPDE
        if not kinds or any(k not in spectral.BASES for k in kinds):
            return f"no spectral basis for the domain (axes: {kinds})"
        if pde.output_transform not in TRANSFORMS:
            return f"no exact output transform for {pde.output_transform!r}"
        if pde.n_out != 1:
            return "systems (n_out > 1) are not supported"
        return None

    # -- parameters --------------------------------------------------------------------------
    def init_params(self, key):
        p, dt = self.params, self.jdtype
        h = p["width"]
        n_in = 1 + len(self.modes)
        keys = iter(jax.random.split(key, 8 + 3 * p["depth"]))

        def dense(i, o):
            w = jax.random.normal(next(keys), (i, o), dt) / math.sqrt(i)  # LeCun normal
            return {"w": w, "b": jnp.zeros((o,), dt)}

        def conv():
            scale = 1.0 / (h * h)  # N(0, 1) / (h_in h_out), as in the paper's code
            if self.conv == "real":
                return {"w": scale * jax.random.normal(next(keys), self.modes + (h, h), dt)}
            half = self.modes[:-1] + (self.modes[-1] // 2 + 1, h, h)
            return {"wr": scale * jax.random.normal(next(keys), half, dt),
                    "wi": scale * jax.random.normal(next(keys), half, dt)}

        return {"lift1": dense(n_in, 4 * h), "lift2": dense(4 * h, h),
                "layers": [{"conv": conv(), "mix": dense(h, h)} for _ in range(p["depth"])],
                "proj1": dense(h, h), "proj2": dense(h, 4 * h), "out": dense(4 * h, 1)}

    def n_params(self, state) -> int:
        return count_params(state["params"])

    def learning_rate(self):
        p = self.params
        return (optax.exponential_decay(p["lr"], p["decay_steps"], p["decay_rate"])
                if p["decay_steps"] else p["lr"])

    def clip_norm(self) -> float:
        return self.params["clip"]

    def init(self, key):
        k_p, k_s = jax.random.split(key)
        params = self.init_params(k_p)
        return {"params": params, "opt": self.optimizer().init(self, params), "key": k_s}

    # -- the network -------------------------------------------------------------------------
    def _dense(self, lay, x):
        y = x @ lay["w"]
        const = (0,) * len(self.modes)  # the constant mode of every basis is index 0
        return y.at[(slice(None),) + const].add(lay["b"])

    def _sigma(self, x):
        return self.basis.from_grid(self.act(self.basis.to_grid(x)))

    def _conv(self, c, x):
        d = len(self.modes)
        letters = "cdefgh"[:d]
        if self.conv == "real":
            return jnp.einsum(f"b{letters}i,{letters}io->b{letters}o", x, c["w"])
        f = self.basis.bases[-1]  # Fourier: [a_0..a_m, b_1..b_s] -> complex c_k = a_k - i b_k
        m, s = f.m, f.n_sin
        re = x[..., : m + 1, :]
        im = jnp.zeros_like(re).at[..., 1: s + 1, :].set(-x[..., m + 1:, :])
        spec = f"b{letters}i,{letters}io->b{letters}o"
        ore = jnp.einsum(spec, re, c["wr"]) - jnp.einsum(spec, im, c["wi"])
        oim = jnp.einsum(spec, re, c["wi"]) + jnp.einsum(spec, im, c["wr"])
        return jnp.concatenate([ore, -oim[..., 1: s + 1, :]], axis=-2)

    def input_coef(self, phi_grid):
        """phi on the PDE's input grid (B, *grid) -> coefficients (B, *modes, 1)."""
        coef = self.in_basis.from_grid(phi_grid[..., None].astype(self.jdtype))
        return self.in_basis.resize(coef, self.modes)

    def apply(self, params, phi_coef):
        """phi coefficients (B, *modes, 1) -> u coefficients (B, *modes, 1), BC/IC exact."""
        B = phi_coef.shape[0]
        x = jnp.concatenate(
            [phi_coef, jnp.broadcast_to(self.coord_coef, (B,) + self.coord_coef.shape)], -1)
        x = self._sigma(self._dense(params["lift1"], x))
        x = self._sigma(self._dense(params["lift2"], x))
        for lay in params["layers"]:
            x = self._sigma(self._conv(lay["conv"], x) + self._dense(lay["mix"], x))
        x = self._sigma(self._dense(params["proj1"], x))
        x = self._sigma(self._dense(params["proj2"], x))
        v = self._dense(params["out"], x)
        return self.mollify(v, phi_coef)

    def mollify(self, v, phi_coef):
        """The output transform (REFERENCES 2.7 'Mollifier'), scale ``mollifier_scale``."""
        scale = self.params["mollifier_scale"]
        kind = self.transform_kind if self.single else self.pde.output_transform
        const = (slice(None),) + (0,) * len(self.modes)
        if kind in ("initial-dirichlet", "dirichlet-sine", "periodic-pinned"):
            return self.mollify_single(v, phi_coef, scale, kind)
        if kind == "periodic":
            v0 = self.basis.value_at_origin(v).reshape(v.shape[0], -1)
            return v.at[const].add(-v0) * scale
        coords = self.basis.grid_coords()
        vals = self.basis.to_grid(v)
        if kind == "initial":
            return self.basis.from_grid(vals * (scale * coords[0][..., None])) + phi_coef
        mol = scale
        for c in coords:
            mol = mol * jnp.sin(jnp.pi * c)
        return self.basis.from_grid(vals * mol[..., None])

    def mollify_single(self, v, phi_coef, scale, kind):
        """The single-instance transforms (module docstring): IC + zero Dirichlet data exact."""
        if kind == "periodic-pinned":
            v0 = self.basis.value_at_origin(v).reshape(v.shape[0], -1)
            u0 = float(np.asarray(self.pde.exact([np.full(1, lo) for lo, _ in self.bounds], np)).ravel()[0])
            const = (slice(None),) + (0,) * len(self.modes)
            return (v.at[const].add(-v0) * scale).at[const].add(u0)
        coords = self.basis.grid_coords()
        timed = kind == "initial-dirichlet"
        mol = scale * coords[0] if timed else scale
        for a in range(1 if timed else 0, len(self.modes)):
            if self.kinds[a] != "fourier":
                mol = mol * jnp.sin(jnp.pi * coords[a])
        out = self.basis.from_grid(self.basis.to_grid(v) * mol[..., None])
        return out + phi_coef if timed else out

    # -- training ----------------------------------------------------------------------------
    def sample(self, key):
        return {}  # inputs are drawn inside the step from the state's key (module docstring)

    def draw(self, key):
        phi_grid = self.pde.sample_inputs(key, self.params["batch"], self.jdtype)
        return self.input_coef(phi_grid)

    def loss(self, params, phi_coef):
        return self.spectral_loss(self.apply(params, phi_coef), phi_coef)

    def spectral_loss(self, u, phi_coef):
        """The spectral residual loss of u's coefficients (B, *modes, 1) (module docstring)."""
        f = SpectralFields(self.basis, u, self.basis.to_grid(phi_coef)[..., 0],
                           self.pde.time_dependent, self.bounds)
        R = jnp.broadcast_to(self.pde.residual(f), u.shape[:-1])
        Rc = self.basis.from_grid(R[..., None])[..., 0]
        w = self.basis.gamma() if self.params["loss_weights"] == "parseval" else 1.0
        res = jnp.mean(jnp.sum(w * Rc * Rc, axis=tuple(range(1, Rc.ndim))))
        return res, {"res": res}

    def step(self, state, batch):
        key, k_draw = jax.random.split(state["key"])
        phi_coef = self.phi_coef if self.single else self.draw(k_draw)
        params, opt, loss, terms = optax_step(self.transform(), self.loss, state["params"],
                                              state["opt"], phi_coef)
        return {"params": params, "opt": opt, "key": key}, {"loss": loss, **terms}

    # -- evaluation (worker hook) ------------------------------------------------------------
    def _test(self):
        if "test" not in self._eval_cache:
            phi = self.pde.test_inputs()
            axes = self.pde.eval_axes()
            ref = self.pde.reference(phi, axes)
            self._eval_cache["test"] = (jnp.asarray(phi, self.jdtype), axes,
                                        jnp.asarray(ref, self.jdtype))
        return self._eval_cache["test"]

    def solve(self, params, phi_grid, axes_or_mats):
        """Inputs on the PDE's input grid -> u on the tensor grid of ``axes`` (B, *res)."""
        u = self.apply(params, self.input_coef(phi_grid))
        return self.basis.evaluate(u, mats=axes_or_mats)[..., 0]

    def evaluate(self, state, final: bool = False) -> dict:
        """Per-instance relative L2 on the held-out instances (paper's metric, REFERENCES 3.3).

        With ``final`` it adds what the final record names about them (``n_test``,
        ``eval_grid``, and ``infer_batch``, the batch of :meth:`inference_programs`).
        """
        phi, axes, ref = self._test()
        if "eval" not in self._eval_cache:
            mats = self.basis.eval_matrices(axes)
            self._eval_cache["eval"] = jax.jit(lambda p, x: self.solve(p, x, mats))
        pred = self._eval_cache["eval"](state["params"], phi)
        diff = (pred - ref).reshape(ref.shape[0], -1)
        refn = ref.reshape(ref.shape[0], -1)
        per = jnp.linalg.norm(diff, axis=1) / jnp.linalg.norm(refn, axis=1)
        out = {"rel_l2_per_instance_mean": float(per.mean()),
               "rel_l2": float(per.mean()),
               "rel_l2_per_instance_max": float(per.max()),
               "rel_l2_global": float(jnp.linalg.norm(diff) / jnp.linalg.norm(refn)),
               "rms_abs": float(jnp.sqrt(jnp.mean(diff * diff))),
               "max_abs": float(jnp.max(jnp.abs(diff)))}
        if final:
            out["infer_batch"] = int(phi[: self.params["batch"]].shape[0])
            out["n_test"] = int(ref.shape[0])
            out["eval_grid"] = [len(a) for a in axes]
        return out

    def inference_programs(self, state) -> list:
        """One batch (``batch`` held-out inputs) of inference, model + evaluation of the series
        on a uniform grid of r points per axis, for each r in ``infer_res``: the backend times
        each (``infer_ms``) and reads its FLOPs (``infer_flops``, deterministic, unlike the time
        on a shared CPU) against the output resolution, which the spectral representation
        leaves free. None in single-instance mode (one problem: no batch of inputs)."""
        if self.single:
            return []
        phi = self._test()[0][: self.params["batch"]]
        progs = []
        for r in self.params["infer_res"]:
            mats = self.basis.eval_matrices([b.uniform(int(r)) for b in self.basis.bases])
            progs.append((int(r), lambda p, x, mats=mats: self.solve(p, x, mats),
                          (state["params"], phi), self.params["infer_repeats"]))
        return progs

    def predict(self, state, points):
        """u of the first held-out instance at scattered points (n, n_in); in single-instance
        mode u of the one problem at physical points."""
        if self.single:
            lo = jnp.asarray([b[0] for b in self.bounds], points.dtype)
            L = jnp.asarray([b[1] - b[0] for b in self.bounds], points.dtype)
            u = self.apply(state["params"], self.phi_coef)[0]
            return self.basis.evaluate_points(u, (points - lo) / L)[:, 0]
        phi, _, _ = self._test()
        u = self.apply(state["params"], self.input_coef(phi[:1]))[0]
        return self.basis.evaluate_points(u, points)[:, 0]

    # -- records -----------------------------------------------------------------------------
    def batch_size(self) -> int:
        return 1 if self.single else self.params["batch"]

    def size_info(self):
        return {"n_points": int(np.prod(self.modes)) * self.batch_size(),
                "n_points_kind": "spectral", "modes": list(self.modes),
                "grid": list(self.modes), "batch": self.batch_size(),
                "basis": self.kinds}

    def describe(self):
        if self.single:
            return {"loss": f"spectral: sum_k gamma_k R_k^2 ({self.params['loss_weights']} weights), "
                            "one fixed problem",
                    "mode": "single-instance: phi fixed (IC or zero), no GP inputs, batch 1",
                    "derivatives": "spectral (coefficient space); products on the collocation grid",
                    "conv": self.conv, "output_transform": self.transform_kind,
                    "basis_bounds": self.bounds,
                    "accuracy": "rel. L2 of predict against u* at held-out random points"}
        return {"loss": f"spectral: sum_k gamma_k R_k^2 ({self.params['loss_weights']} weights), "
                        "batch mean",
                "derivatives": "spectral (coefficient space); products on the collocation grid",
                "conv": self.conv, "output_transform": self.pde.output_transform,
                "inputs": "fresh GP batch drawn inside the step (resample_every unused)",
                "accuracy": "per-instance rel. L2 averaged over held-out instances"}


class NsmFdPinn(Nsm):
    name = "nsm-fdpinn"
    description = ("NSM network trained with the grid 'PINN loss': finite-difference residual on a "
                   "uniform grid (paper baseline)")
    citation = "Du, Chalapathi, Krishnapriyan, ICLR 2024, arXiv 2312.05225, 'PINN loss' baseline"
    points_kind = "grid"
    defaults = {**Nsm.defaults, "fd_grid": 64}

    @classmethod
    def supports(cls, pde) -> str | None:
        if not pde.parametric:
            return ("single-instance mode is nsm's (spectral loss); this finite-difference "
                    "baseline of the paper runs operator learning (parametric PDEs) only")
        return super().supports(pde)

    def __init__(self, pde, n_per_axis, params=None, dtype="float32"):
        super().__init__(pde, n_per_axis, params, dtype)
        g = self.params["fd_grid"]
        if g < 4:
            raise ValueError(f"method.{self.name}.fd_grid = {g} must be >= 4")
        self.fd_axes = [b.uniform(g) for b in self.basis.bases]
        self.fd_mats = self.basis.eval_matrices(self.fd_axes)
        self.periodic = [b.periodic for b in self.basis.bases]

    def loss(self, params, phi_coef):
        u = self.basis.evaluate(self.apply(params, phi_coef), mats=self.fd_mats)[..., 0]
        phi = self.basis.evaluate(phi_coef, mats=self.fd_mats)[..., 0]
        f = FDFields(u, phi, self.periodic, self.fd_axes, self.jdtype, self.pde.time_dependent)
        R = self.pde.residual(f)
        res = jnp.mean(R * R)
        return res, {"res": res}

    def size_info(self):
        g = self.params["fd_grid"]
        return {**super().size_info(), "n_points": g ** len(self.modes) * self.params["batch"],
                "n_points_kind": "grid", "grid": [g] * len(self.modes)}

    def describe(self):
        return {**super().describe(),
                "loss": "grid mean of the finite-difference residual squared",
                "derivatives": "second-order finite differences on a uniform grid"}
