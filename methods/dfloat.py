"""Double-float (float32 pair) arithmetic for `methods.cp`'s float32 Gram loss, without float64.

The grid-free loss ``c^T (G_1 * ... * G_d) c`` (`methods.cp.Grid.inner`) is a sum of products of
large terms that cancel as the residual shrinks: at a relative residual rho the float32 value
carries an error of about eps * |terms|^2 = (eps / rho^2) * loss, while the dense float32 loss
(residual formed point by point, then squared) is off by about (eps / rho) * loss. Orthogonalising
the factors does not remove this (the core tensor's Gram is the same sum); only more precise
arithmetic on the Gram entries, their Hadamard product and the final sum does. This module gives
that precision (~2^-45 relative to the terms) with float32 operations only, so it runs wherever
float32 does and never switches JAX's x64 mode:

* `gram` -- ``X^T Y`` as an unevaluated pair (hi, lo) by the error-free splitting of Ozaki,
  Ogita, Oishi & Rump, "Error-free transformations of matrix multiplication by using fast
  routines of matrix multiplication and its applications", Numer. Algorithms 59 (2012): each
  column is cut into slices of b bits on a per-column power-of-two grid, with
  b = (24 - ceil(log2 N)) // 2, so every slice-pair product X_k^T Y_l is exact in float32 (any
  summation order); K = ceil(26 / b) slices, the pairs with k + l <= K + 1 exact, the remaining
  tail (|tail| <= 2^-(K b) N max|x| max|y|) in plain float32 -- K (K + 1) / 2 + K + 1 matmuls in
  all (10 for N <= 64, 28 for N = 10^4; x^T x: 8 and 19, the pair (j, i) being the transpose of
  (i, j)), at ``Precision.HIGHEST`` so a GPU never uses TF32.
* `two_sum` / `two_prod` / `df_mul` -- Knuth's TwoSum and Dekker's TwoProduct (splitting by
  rounding to 12 bits, not by Veltkamp's 4097 * x, so an FMA-contracting compiler cannot break
  it): Dekker, "A floating-point technique for extending the available precision", Numer. Math.
  18 (1971); the pair products are the "double-word" arithmetic of Joldes, Muller & Popescu,
  ACM TOMS 44 (2017), algorithm 12 (without its FMA).
* `exact_sum` -- a sum of L floats by the same slicing (slices of 24 - ceil(log2 L) - 1 bits on
  one power-of-two grid: each slice sums exactly), the slice totals joined by TwoSum.

Every function is elementwise or a matmul and is traced once; none is differentiated (the
caller attaches the plain float32 formula's derivative, see `methods.cp.Grid.inner`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_HIGHEST = jax.lax.Precision.HIGHEST
MANTISSA = 24  # float32 significand bits


def two_sum(a, b):
    """s + e == a + b exactly, s = fl(a + b) (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fast_two_sum(a, b):
    """As `two_sum` for |a| >= |b| (Dekker)."""
    s = a + b
    return s, b - (s - a)


def _split(a):
    """a == hi + lo with hi, lo of at most 12 significant bits: hi is a with its 12 low
    significand bits cleared (a bit mask, so no compiler contraction or rounding mode affects it)."""
    bits = jax.lax.bitcast_convert_type(a, jnp.uint32)
    hi = jax.lax.bitcast_convert_type(bits & jnp.uint32(0xFFFFF000), a.dtype)
    return hi, a - hi


def two_prod(a, b):
    """p + e == a * b exactly, p = fl(a * b) (Dekker's TwoProduct; no FMA needed)."""
    ah, al = _split(a)
    bh, bl = _split(b)
    p = a * b
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def df_mul(x, y):
    """Product of two double-floats (hi, lo): relative error ~2^-44."""
    (xh, xl), (yh, yl) = x, y
    p, e = two_prod(xh, yh)
    return _fast_two_sum(p, e + (xh * yl + xl * yh))


def _grid_unit(m):
    """The smallest power of two >= m, elementwise, at least 2^-64 (so no slice grid below it
    reaches float32's subnormals; a column that small is negligible)."""
    _, e = jnp.frexp(jnp.maximum(m, 2.0 ** -64))
    return jnp.ldexp(jnp.ones_like(m), e)


def _slices(x, unit, bits: int, k: int):
    """x == sum(slices) + rest; slice j holds multiples of unit * 2^-(j+1)bits of size <= 2^bits
    (unit broadcast against x, a power of two). Also the remainders after each slice."""
    out, rests, rest = [], [], x
    for j in range(k):
        u = unit * (2.0 ** (-(j + 1) * bits))
        s = jnp.round(rest / u) * u
        rest = rest - s
        out.append(s)
        rests.append(rest)
    return out, rests


def slice_bits(n: int) -> int:
    """Bits per slice for an exact length-n float32 dot product of slices."""
    return max(1, (MANTISSA - math.ceil(math.log2(max(n, 1)))) // 2)


def n_slices(n: int) -> int:
    return math.ceil(26 / slice_bits(n))


def gram(x, y=None):
    """x^T y (x: (N, P), y: (N, Q), float32; y = None: x^T x) as a double-float pair (hi, lo),
    |error| about 2^-(K b) * eps * N * max|x_p| * max|y_q| per entry (module docstring)."""
    sym = y is None
    y = x if sym else y
    n = x.shape[0]
    if n == 1:
        return two_prod(x[0][:, None], y[0][None, :])
    b, k = slice_bits(n), n_slices(n)
    xs, xr = _slices(x, _grid_unit(jnp.max(jnp.abs(x), axis=0))[None, :], b, k)
    ys, yr = (xs, xr) if sym else _slices(y, _grid_unit(jnp.max(jnp.abs(y), axis=0))[None, :], b, k)

    def mm(a, c):
        return jnp.matmul(a.T, c, precision=_HIGHEST)

    # the tail in plain float32: x's slice i against y's rest after k + 1 - i slices, and x's
    # rest after k slices against all of y (each <= 2^-(k b) of the scale)
    parts = [mm(xr[k - 1], y)] + [mm(xs[i], yr[k - 1 - i]) for i in range(k)]
    for i in range(k):  # exact slice pairs (i, j), i + j <= k - 1 (0-based)
        for j in range(k - i):
            if sym and j < i:
                continue
            p = mm(xs[i], ys[j])
            parts += [p, p.T] if sym and j > i else [p]  # (j, i) is the transpose of (i, j)
    hi, lo = parts[0], jnp.zeros_like(parts[0])
    for p in parts[1:]:  # smallest first
        hi, e = two_sum(hi, p)
        lo = lo + e
    return hi, lo


def exact_sum(x):
    """sum(x) of a float32 array as a double-float pair: a pairwise tree of TwoSums (every level
    exact), the rounding errors of all levels summed in float32 (|error| ~ eps^2 log2(L) sum|x|)."""
    x = jnp.ravel(x)
    errs = []
    while x.shape[0] > 1:
        if x.shape[0] % 2:
            x = jnp.concatenate([x, jnp.zeros((1,), x.dtype)])
        x, e = two_sum(x[0::2], x[1::2])
        errs.append(jnp.sum(e))
    lo = sum(errs) if errs else jnp.zeros((), x.dtype)
    return x[0], lo
