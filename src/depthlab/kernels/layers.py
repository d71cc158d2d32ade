r"""Infinite-width NNGP and NTK kernels of fully connected networks, layer by layer.

Style follows neural-tangents ``stax``: every layer kind is one small function that maps
a :class:`KernelState` to a new :class:`KernelState`; networks are compositions
(:func:`serial`). There are no special cases for particular architectures.

State
-----
A :class:`KernelState` holds, in float64,

* ``nngp`` -- :math:`\Sigma(x_i, x'_j)`, shape ``(n1, n2)`` (or ``(n,)`` in *diagonal
  mode*, where entry ``i`` is :math:`\Sigma(x_i, x_i)`),
* ``ntk``  -- :math:`\Theta(x_i, x'_j)`, same shape,
* ``diag1``/``diag2`` -- the variances :math:`\Sigma(x_i, x_i)`, :math:`\Sigma(x'_j, x'_j)`,
* ``same`` -- the two input sets are the same points in the same order, so entry
  ``[i, i]`` is a self pair.  Those entries are then computed through the exact
  diagonal recursion, so the diagonal of a train x train Gram equals
  :func:`kernel_diag` bit for bit.

Layer updates
-------------
``dense(w_var, b_var)``:
    :math:`\Sigma' = w\,\Sigma + b`,  :math:`\Theta' = w\,\Theta + \Sigma'`.
``input_layer(x1, x2, w_var, b_var)``:
    the first dense layer applied to the linear kernel :math:`x\cdot x'/d`:
    :math:`\Sigma_0 = w\,x\cdot x'/d + b`, :math:`\Theta_0 = \Sigma_0` (``d`` = input dim).
activation :math:`\phi` (``relu()``, ``erf()``, ``identity()``, generic ``pointwise()``):
    with :math:`(u, v) \sim N(0, \Lambda)`, :math:`\Lambda = [[\Sigma_{11}, \Sigma_{12}],
    [\Sigma_{12}, \Sigma_{22}]]`:
    :math:`\Sigma' = E[\phi(u)\phi(v)]`, :math:`\Theta' = \Theta\,E[\phi'(u)\phi'(v)]`,
    variances :math:`E[\phi(u)^2]`.  The weight variance lives in the following dense layer.

A depth-``L`` fully connected network (:func:`fc_kernel`) is
``input_layer -> [activation -> dense] x L``; ``L = 0`` is the linear model.  The last
dense layer is the readout, so for ReLU with weight variance ``w`` this gives
:math:`\Theta_l = \dot\Sigma_l \Theta_{l-1} + \Sigma_l` with :math:`\dot\Sigma_l =
w\,E[\phi'\phi']`, identical to eq. (S3) of Mori & Ueda (Arora et al.'s formula with
:math:`\dot\Sigma^{(L+1)} = 1`).

Conventions
-----------
**Mori-Ueda / Jacot** (supp. A of Mori & Ueda; Jacot et al.), ``beta = 0.1``::

    spec = {"activation": "relu", "w_var": 2.0, "b_var": 0.01,
            "first_w_var": 1.0, "first_b_var": 0.01}          # == he_relu_spec(0.1)

    Sigma_0  = x.x'/d + beta^2                   (first layer: w_var = 1)
    Sigma_l  = 2 E[relu(u) relu(v)] + beta^2     (hidden and readout: w_var = 2)
    Theta_0  = Sigma_0,  Theta_l = Sigma_dot_l Theta_{l-1} + Sigma_l

(The paper's text writes ``sqrt(2 / n_{l-1})`` for every layer, but its eq. (S1)
``Sigma_0 = x.x'/d + beta^2`` requires ``w_var = 1`` in the first layer; we follow (S1).)
Worked example, ``d = 2``, ``x = (1, 1)``, ``x' = (1, -1)``, ``beta = 0.1``, depth 1:
``Sigma_0(x, x) = 1.01``, ``Sigma_0(x, x') = 0.01``; the ReLU angle is
``theta = arccos(0.01/1.01)``, so ``Sigma_1(x, x') = 2 * 1.01 / (2 pi) * (sin theta + (pi -
theta) cos theta) + 0.01 = 0.3365..``, ``Sigma_dot_1 = (pi - theta)/pi = 0.5032..`` and
``Theta_1(x, x') = 0.5032.. * 0.01 + 0.3365.. = 0.3415..``; on the diagonal
``Sigma_l(x, x) = |x|^2/d + (l + 1) beta^2`` (``= 1.02`` here) and
``Theta_1(x, x) = 1.01 + 1.02 = 2.03``.

**neural-tangents NTK parameterisation** (``stax.Dense(W_std=sw, b_std=sb,
parameterization="ntk")``): all layers ``w_var = sw**2``, ``b_var = sb**2``, i.e.
``Sigma_0 = sw^2 x.x'/d + sb^2``; ``first_w_var``/``first_b_var`` are left unset.

Numerics
--------
The ReLU update never forms ``arccos``.  With ``s = sqrt(Sigma11 Sigma22)``,
``a = s - Sigma12 >= 0`` and ``b = s + Sigma12 >= 0`` (so ``sqrt(det Lambda) =
sqrt(a b)``) the angle is ``theta = 2 arctan(sqrt(a / b))`` -- exactly 0 for parallel and
exactly pi for antiparallel pairs, accurate for small angles and cheaper than ``arccos``
or ``arctan2``.  Pairs whose ``1 - cos theta`` is below ``_SNAP = 64 eps`` (angle
below ~1.7e-7, i.e. parallel up to rounding, e.g. a test point duplicated in the train
set) are snapped to ``theta = 0`` instead of acquiring a spurious ``theta ~ 1e-8``; the
relative error this causes in ``Sigma_dot`` is below 6e-8, and pairs at larger angles
are untouched (accuracy ~ eps/theta, the conditioning of the problem).  Self pairs
(``same=True``) take the diagonal recursion directly.  This is stable at depth >= 1000 (tested).

Speed
-----
:func:`kernel_sweep` evaluates Grams tile by tile (tiles stay in L2 cache through all
layers), computes only the upper triangle of symmetric Grams and spreads tiles over
threads (NumPy releases the GIL inside ufunc loops); every depth of a sweep comes from
one recursion.  See ``benchmarks/gram_throughput.py``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

__all__ = [
    "KernelState",
    "KernelSpec",
    "Layer",
    "dense",
    "input_layer",
    "relu",
    "erf",
    "identity",
    "pointwise",
    "activation",
    "serial",
    "fc_kernel",
    "kernel_sweep",
    "kernel_matrices",
    "kernel_diag",
    "he_relu_spec",
    "sweep_panel",
    "default_threads",
    "with_overrides",
    "ACTIVATIONS",
]

_TWO_PI = 2.0 * math.pi
_SNAP = 64 * np.finfo(np.float64).eps
_SNAP_TAN = math.sqrt(_SNAP / 2)  # tan(theta/2) below which 1 - cos(theta) < _SNAP
DEFAULT_TILE = 128


# --------------------------------------------------------------------------------------
# State and composition
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelState:
    """Kernels between two input sets after some layers (float64 NumPy arrays).

    ``nngp``/``ntk`` have shape ``(n1, n2)``, or ``(n,)`` in diagonal mode (self pairs
    only, ``diag1 is diag2``).  ``same`` marks the two sets as identical (square Gram
    whose ``[i, i]`` entries are self pairs).  Layers never modify their input state.
    """

    nngp: np.ndarray
    ntk: np.ndarray
    diag1: np.ndarray
    diag2: np.ndarray
    same: bool = False

    @property
    def diagonal(self) -> bool:
        return self.nngp.ndim == 1


Layer = Callable[[KernelState], KernelState]


def serial(*layers: Layer) -> Layer:
    """Compose layers left to right."""

    def apply(state: KernelState) -> KernelState:
        for layer in layers:
            state = layer(state)
        return state

    apply.__qualname__ = "serial(" + ", ".join(getattr(f, "__qualname__", "?") for f in layers)
    apply.__qualname__ += ")"
    return apply


def dense(w_var: float, b_var: float) -> Layer:
    """Dense layer: ``nngp' = w nngp + b`` (and variances), ``ntk' = w ntk + nngp'``."""
    w_var = float(w_var)
    b_var = float(b_var)

    def layer(state: KernelState) -> KernelState:
        d1 = state.diag1 * w_var
        d1 += b_var
        if state.diagonal:
            nngp = d1
            d2 = d1
        else:
            d2 = d1 if state.same else state.diag2 * w_var + b_var
            nngp = state.nngp * w_var
            nngp += b_var
        ntk = state.ntk * w_var
        ntk += nngp
        return KernelState(nngp, ntk, d1, d2, state.same)

    layer.__qualname__ = f"dense({w_var:g}, {b_var:g})"
    return layer


def _row_sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _as_inputs(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"inputs must be a 2-D array (n, d), got shape {x.shape}")
    return x


def _state_from_gram(
    gram: np.ndarray,
    sq1: np.ndarray,
    sq2: np.ndarray,
    d: int,
    w_var: float,
    b_var: float,
    same: bool,
) -> KernelState:
    """Input-layer state from raw inner products ``gram = x1 @ x2.T`` and squared norms."""
    scale = float(w_var) / d
    d1 = sq1 * scale
    d1 += b_var
    d2 = d1 if same else sq2 * scale + b_var
    nngp = gram * scale
    nngp += b_var
    if same:
        np.fill_diagonal(nngp, d1)
    return KernelState(nngp, nngp.copy(), d1, d2, same)


def input_layer(
    x1: Any,
    x2: Any = None,
    w_var: float = 1.0,
    b_var: float = 0.0,
    *,
    diagonal: bool = False,
) -> KernelState:
    """Create the state after the first dense layer: ``Sigma_0 = w x.x'/d + b = Theta_0``.

    ``x2=None`` (or ``x2 is x1``) means the same set (``same=True``).  With
    ``diagonal=True`` only self pairs of ``x1`` are tracked (shape ``(n,)``).
    """
    x1 = _as_inputs(x1)
    d = x1.shape[1]
    sq1 = _row_sq_norms(x1)
    if diagonal:
        if x2 is not None and x2 is not x1:
            raise ValueError("diagonal mode takes a single input set")
        d1 = sq1 * (float(w_var) / d)
        d1 += b_var
        return KernelState(d1, d1.copy(), d1, d1, True)
    same = x2 is None or x2 is x1
    x2 = x1 if same else _as_inputs(x2)
    if x2.shape[1] != d:
        raise ValueError(f"input dims differ: {x1.shape} vs {x2.shape}")
    sq2 = sq1 if same else _row_sq_norms(x2)
    return _state_from_gram(x1 @ x2.T, sq1, sq2, d, w_var, b_var, same)


# --------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------

# An activation is described by two functions of the pre-activation covariance:
#   cross(n, d1, d2) -> (E[phi(u)phi(v)], E[phi'(u)phi'(v)])   for n (p, q), d1 (p,), d2 (q,)
#   diag(d)          -> (E[phi(u)^2],     E[phi'(u)^2])         for d (n,)
CrossFn = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
DiagFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def activation(cross: CrossFn, diag: DiagFn, name: str = "activation") -> Layer:
    """Build an activation layer from its cross and diagonal expectation functions."""

    def layer(state: KernelState) -> KernelState:
        k1_d1, k0_d1 = diag(state.diag1)
        if state.diagonal:
            return KernelState(k1_d1, state.ntk * k0_d1, k1_d1, k1_d1, True)
        if state.same:
            k1_d2 = k1_d1
        else:
            k1_d2, _ = diag(state.diag2)
        k1, k0 = cross(state.nngp, state.diag1, state.diag2)
        if state.same:
            np.fill_diagonal(k1, k1_d1)
            np.fill_diagonal(k0, k0_d1)
        k0 *= state.ntk
        return KernelState(k1, k0, k1_d1, k1_d2, state.same)

    layer.__qualname__ = name
    return layer


def _relu_cross(n: np.ndarray, d1: np.ndarray, d2: np.ndarray):
    # Arc-cosine kernels of order 1 and 0 (Cho & Saul):
    #   E[relu relu] = sqrt(det)/(2 pi) + n (pi - theta)/(2 pi),  E[step step] = (pi - theta)/(2 pi)
    # with s = sqrt(d1 d2), a = s - n, b = s + n, det = a b, tan(theta/2) = sqrt(a/b).
    # (pi - theta)/(2 pi) = 1/2 - arctan(sqrt(a/b))/pi.  In-place updates keep the
    # temporaries to three tile-sized arrays; the hot path makes 14 passes.
    s1 = np.sqrt(d1)
    s2 = s1 if d2 is d1 else np.sqrt(d2)
    a = np.multiply.outer(s1, s2)
    b = a + n
    a -= n
    np.maximum(a, 0.0, out=a)
    if b.size and b.min() > 0.0:
        a *= b
        np.sqrt(a, out=a)  # sqrt(det Lambda)
        t = np.divide(a, b)  # tan(theta / 2)
    else:
        # antiparallel pairs (b = 0: theta = pi) or zero-variance inputs (a = b = 0,
        # angle undefined: treated as parallel)
        np.maximum(b, 0.0, out=b)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.divide(a, b)
        np.nan_to_num(t, copy=False, nan=0.0, posinf=np.inf)
        np.sqrt(t, out=t)
        a *= b
        np.sqrt(a, out=a)
    if t.size and t.min() < _SNAP_TAN:
        # parallel up to rounding: exactly theta = 0 and det = 0
        snap = t < _SNAP_TAN
        np.copyto(t, 0.0, where=snap)
        np.copyto(a, 0.0, where=snap)
    np.arctan(t, out=t)
    t /= -math.pi
    t += 0.5  # (pi - theta) / (2 pi), exactly 1/2 at theta = 0 and 0 at theta = pi
    k1 = np.multiply(t, n, out=b)
    a /= _TWO_PI
    k1 += a
    return k1, t


def _relu_diag(d: np.ndarray):
    return d * 0.5, np.full_like(d, 0.5)


def relu() -> Layer:
    """ReLU, closed form (arc-cosine kernel)."""
    return activation(_relu_cross, _relu_diag, "relu")


_ERF_K1 = 2.0 / math.pi
_ERF_K0 = 4.0 / math.pi


def _erf_cross(n: np.ndarray, d1: np.ndarray, d2: np.ndarray):
    # E[erf(u) erf(v)] = 2/pi arcsin(2 n / sqrt((1 + 2 d1)(1 + 2 d2)))
    # E[erf'(u) erf'(v)] = 4/pi / sqrt((1 + 2 d1)(1 + 2 d2) - 4 n^2)
    e1 = np.sqrt(1.0 + 2.0 * d1)
    e2 = e1 if d2 is d1 else np.sqrt(1.0 + 2.0 * d2)
    den = np.multiply.outer(e1, e2)
    r = np.multiply(n, 2.0)
    r /= den
    np.clip(r, -1.0, 1.0, out=r)
    k0 = np.subtract(1.0, r)
    k0 *= 1.0 + r
    np.sqrt(k0, out=k0)
    k0 *= den
    np.divide(_ERF_K0, k0, out=k0)
    np.arcsin(r, out=r)
    r *= _ERF_K1
    return r, k0


def _erf_diag(d: np.ndarray):
    return _ERF_K1 * np.arcsin(2.0 * d / (1.0 + 2.0 * d)), _ERF_K0 / np.sqrt(1.0 + 4.0 * d)


def erf() -> Layer:
    """``erf`` activation, closed form (Williams 1997)."""
    return activation(_erf_cross, _erf_diag, "erf")


def identity() -> Layer:
    """Linear activation ``phi(u) = u``."""
    return activation(
        lambda n, d1, d2: (n.copy(), np.ones_like(n)),
        lambda d: (d.copy(), np.ones_like(d)),
        "identity",
    )


# ---- generic activations by quadrature -----------------------------------------------

_QUAD_RADIUS = 10.0  # Gaussian tail beyond 10 sigma: < 1e-22
_QUAD_BUDGET = 2_000_000  # function evaluations per chunk


def _gauss_hermite(deg: int):
    z, w = np.polynomial.hermite_e.hermegauss(deg)
    return z, w / math.sqrt(_TWO_PI)


def _gauss_legendre_pieces(
    lo: float, hi: float, breaks: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes/weights (standard-normal weight included) on [lo, hi], split at
    ``breaks`` (shape ``S + (k,)``); returns arrays of shape ``S + ((k + 1) m,)``."""
    x, w = np.polynomial.legendre.leggauss(m)
    pts = np.clip(np.sort(breaks, axis=-1), lo, hi)
    shape = pts.shape[:-1]
    edges = np.concatenate([np.full(shape + (1,), lo), pts, np.full(shape + (1,), hi)], axis=-1)
    half = 0.5 * (edges[..., 1:] - edges[..., :-1])
    mid = 0.5 * (edges[..., 1:] + edges[..., :-1])
    nodes = (mid[..., None] + half[..., None] * x).reshape(shape + (-1,))
    weights = (half[..., None] * w).reshape(shape + (-1,))
    weights = weights * np.exp(-0.5 * nodes**2) / math.sqrt(_TWO_PI)
    return nodes, weights


def pointwise(
    fn: Callable[[np.ndarray], np.ndarray],
    dfn: Callable[[np.ndarray], np.ndarray],
    *,
    deg: int = 48,
    kinks: Sequence[float] = (),
    name: str = "pointwise",
) -> Layer:
    """Generic activation by tensor-product quadrature over the bivariate Gaussian.

    Writes ``u = s1 z1``, ``v = s2 (c z1 + sqrt(1 - c^2) z2)`` with independent standard
    normal ``z1, z2`` and integrates ``z2`` then ``z1``.  For smooth ``fn`` this is
    Gauss-Hermite with ``deg`` nodes per axis: spectrally accurate (~1e-15) while the
    pre-activation standard deviation is O(1) on the scale of ``fn``'s features; larger
    variances need a larger ``deg`` (e.g. ``erf`` at variance 4 needs ~100 nodes for
    1e-10).  Gauss-Hermite only
    converges algebraically across a kink, so for activations with kinks (or jumps of
    ``dfn``) at the given points, pass ``kinks``: each axis is then integrated by
    Gauss-Legendre (``deg`` nodes per piece) on [-10, 10] split at the points where ``u``
    or ``v`` cross a kink -- accurate to ~1e-12 unless ``|c|`` is within ~1e-4 of 1.
    Costs ``O(deg^2)`` evaluations per pair: meant for small Grams and for checking
    closed forms.
    """
    kinks_arr = np.asarray(sorted(kinks), dtype=np.float64)

    def diag(d: np.ndarray):
        s = np.sqrt(d)[:, None]
        if kinks_arr.size:
            with np.errstate(divide="ignore", invalid="ignore"):
                br = kinks_arr[None, :] / s
            br = np.where(np.isfinite(br), br, _QUAD_RADIUS)
            z, w = _gauss_legendre_pieces(-_QUAD_RADIUS, _QUAD_RADIUS, br, deg)
        else:
            z, w = _gauss_hermite(deg)
            z, w = z[None, :], w[None, :]
        u = s * z
        return (fn(u) ** 2 * w).sum(-1), (dfn(u) ** 2 * w).sum(-1)

    def cross_flat(n: np.ndarray, d1: np.ndarray, d2: np.ndarray):
        s1 = np.sqrt(d1)
        s2 = np.sqrt(d2)
        c = np.clip(n / (s1 * s2), -1.0, 1.0)
        cp = np.sqrt((1.0 - c) * (1.0 + c))
        if kinks_arr.size:
            with np.errstate(divide="ignore", invalid="ignore"):
                br1 = kinks_arr[None, :] / s1[:, None]
                # also split where v's kink sits for z2 = 0 (sharp when c' -> 0)
                br1b = kinks_arr[None, :] / (s2 * c)[:, None]
            br1b = np.where(np.isfinite(br1b), br1b, _QUAD_RADIUS)
            z1, w1 = _gauss_legendre_pieces(
                -_QUAD_RADIUS, _QUAD_RADIUS, np.concatenate([br1, br1b], -1), deg
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                br2 = (
                    kinks_arr[None, None, :] / s2[:, None, None] - c[:, None, None] * z1[..., None]
                ) / cp[:, None, None]
            br2 = np.where(np.isfinite(br2), br2, _QUAD_RADIUS)
            z2, w2 = _gauss_legendre_pieces(-_QUAD_RADIUS, _QUAD_RADIUS, br2, deg)
        else:
            z, w = _gauss_hermite(deg)
            z1 = np.broadcast_to(z, (n.size, deg))
            w1 = np.broadcast_to(w, (n.size, deg))
            z2 = np.broadcast_to(z, (n.size, deg, deg))
            w2 = np.broadcast_to(w, (n.size, deg, deg))
        u = s1[:, None] * z1
        v = s2[:, None, None] * (c[:, None, None] * z1[..., None] + cp[:, None, None] * z2)
        inner_f = (fn(v) * w2).sum(-1)
        inner_df = (dfn(v) * w2).sum(-1)
        k1 = (fn(u) * inner_f * w1).sum(-1)
        k0 = (dfn(u) * inner_df * w1).sum(-1)
        return k1, k0

    def cross(n: np.ndarray, d1: np.ndarray, d2: np.ndarray):
        shape = n.shape
        nf = n.ravel()
        d1f = np.broadcast_to(d1[:, None], shape).ravel()
        d2f = np.broadcast_to(d2[None, :], shape).ravel()
        per_pair = (deg * (2 * kinks_arr.size + 1) if kinks_arr.size else deg) ** 2
        chunk = max(1, _QUAD_BUDGET // per_pair)
        k1 = np.empty(nf.size)
        k0 = np.empty(nf.size)
        for i in range(0, nf.size, chunk):
            sl = slice(i, i + chunk)
            k1[sl], k0[sl] = cross_flat(nf[sl], d1f[sl], d2f[sl])
        return k1.reshape(shape), k0.reshape(shape)

    return activation(cross, diag, name)


def _softplus(u: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, u)


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * u))


def _erf_fn(u: np.ndarray) -> np.ndarray:
    from scipy.special import erf as _erf

    return _erf(u)


def _erf_dfn(u: np.ndarray) -> np.ndarray:
    return (2.0 / math.sqrt(math.pi)) * np.exp(-(u**2))


def _tanh_dfn(u: np.ndarray) -> np.ndarray:
    return 1.0 / np.cosh(u) ** 2


ACTIVATIONS: dict[str, Callable[[], Layer]] = {
    "relu": relu,
    "erf": erf,
    "identity": identity,
    "linear": identity,
    "tanh": lambda: pointwise(np.tanh, _tanh_dfn, name="tanh"),
    "softplus": lambda: pointwise(_softplus, _sigmoid, name="softplus"),
    "relu_quad": lambda: pointwise(
        lambda u: np.maximum(u, 0.0),
        lambda u: (u > 0).astype(np.float64),
        kinks=(0.0,),
        name="relu_quad",
    ),
    "erf_quad": lambda: pointwise(_erf_fn, _erf_dfn, name="erf_quad"),
}
"""Activation layers by spec name.  ``*_quad`` are quadrature versions used for checks."""


# --------------------------------------------------------------------------------------
# Specs and fully connected networks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelSpec:
    """Kernel of a fully connected network, as the workflow's config describes it.

    ``first_w_var``/``first_b_var`` default to ``w_var``/``b_var`` (NTK parameterisation
    with identical layers).
    """

    activation: str = "relu"
    w_var: float = 2.0
    b_var: float = 0.0
    first_w_var: float | None = None
    first_b_var: float | None = None

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; known: {sorted(ACTIVATIONS)}"
            )
        for name in ("w_var", "b_var", "first_w_var", "first_b_var"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite non-negative number, got {value}")

    @classmethod
    def coerce(cls, spec: KernelSpec | Mapping[str, Any]) -> KernelSpec:
        if isinstance(spec, KernelSpec):
            return spec
        known = {f.name for f in fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(
                f"unknown kernel spec key(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**dict(spec))

    from_dict = coerce

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def input_w_var(self) -> float:
        return self.w_var if self.first_w_var is None else self.first_w_var

    @property
    def input_b_var(self) -> float:
        return self.b_var if self.first_b_var is None else self.first_b_var

    def hidden_layer(self) -> Layer:
        """One hidden layer: activation then dense (the last one is the readout)."""
        return serial(ACTIVATIONS[self.activation](), dense(self.w_var, self.b_var))


def he_relu_spec(beta: float = 0.1) -> dict[str, Any]:
    """Spec dict of the ReLU FC kernel with He variances: first layer w_var = 1, then 2, every
    bias variance beta^2 (the Mori-Ueda / Jacot convention of the module doc)."""
    b = float(beta) ** 2
    return {"activation": "relu", "w_var": 2.0, "b_var": b, "first_w_var": 1.0, "first_b_var": b}


def fc_kernel(
    depth: int,
    activation: str = "relu",
    w_var: float = 2.0,
    b_var: float = 0.0,
    first_w_var: float | None = None,
    first_b_var: float | None = None,
) -> Callable[..., KernelState]:
    """``kernel_fn(x1, x2=None, diagonal=False) -> KernelState`` of a depth-``depth`` net:
    ``input_layer -> [activation -> dense] x depth``."""
    spec = KernelSpec(activation, w_var, b_var, first_w_var, first_b_var)
    body = serial(*[spec.hidden_layer() for _ in range(int(depth))])

    def kernel_fn(x1: Any, x2: Any = None, *, diagonal: bool = False) -> KernelState:
        state = input_layer(x1, x2, spec.input_w_var, spec.input_b_var, diagonal=diagonal)
        return body(state)

    return kernel_fn


# --------------------------------------------------------------------------------------
# Tiled, threaded evaluation of whole Grams
# --------------------------------------------------------------------------------------


def _normalize_depths(depths: int | Iterable[int]) -> list[int]:
    ds = [int(depths)] if np.ndim(depths) == 0 else [int(d) for d in depths]  # type: ignore[arg-type]
    if not ds or min(ds) < 0:
        raise ValueError(f"depths must be non-negative integers, got {depths!r}")
    return sorted(set(ds))


def default_threads() -> int:
    """Threads for Gram tiles: ``DEPTHLAB_THREADS``, else ``OMP_NUM_THREADS`` (Snakemake
    sets it to the rule's ``threads``), else the CPUs this process may run on."""
    for var in ("DEPTHLAB_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def sweep_panel(
    spec: KernelSpec | Mapping[str, Any],
    depths: int | Iterable[int],
    xa: Any,
    xb: Any,
    *,
    prefix_same: bool = False,
    tile: int = DEFAULT_TILE,
    n_threads: int | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Kernels between the rows ``xa`` (na, d) and ``xb`` (nb, d) at several depths.

    ``prefix_same=True`` declares ``xa == xb[:na]``: the leading ``na x na`` block is then a
    symmetric Gram of which only upper tiles are computed (and mirrored, exactly
    symmetric, diagonal via the exact diagonal recursion).  Returns
    ``{depth: (nngp, ntk)}`` with arrays of shape ``(na, nb)``.  Building block of
    :func:`kernel_sweep` and of row-blocked Gram files.
    """
    spec = KernelSpec.coerce(spec)
    ds = _normalize_depths(depths)
    xa = _as_inputs(xa)
    xb = _as_inputs(xb)
    na, nb = xa.shape[0], xb.shape[0]
    d = xa.shape[1]
    if xb.shape[1] != d:
        raise ValueError(f"input dims differ: {xa.shape} vs {xb.shape}")
    if prefix_same and na > nb:
        raise ValueError("prefix_same needs xa to be a prefix of xb")
    n_threads = default_threads() if n_threads is None else max(1, int(n_threads))
    tile = max(8, int(tile))

    sq_b = _row_sq_norms(xb)
    sq_a = sq_b[:na] if prefix_same else _row_sq_norms(xa)
    out = {L: (np.empty((na, nb)), np.empty((na, nb))) for L in ds}
    if na == 0 or nb == 0:
        return out
    # Raw inner products in one threaded BLAS call, parked in an output buffer: each tile
    # reads its own region before writing it, and mirror writes land in the lower
    # triangle, which no tile reads.
    gram = out[ds[-1]][1]
    np.matmul(xa, xb.T, out=gram)

    w0, b0 = spec.input_w_var, spec.input_b_var
    hidden = spec.hidden_layer()
    wanted = set(ds)
    max_depth = ds[-1]

    tiles: list[tuple[int, int, int, int]] = []
    for i0 in range(0, na, tile):
        i1 = min(i0 + tile, na)
        if prefix_same:
            for j0 in range(i0, na, tile):
                tiles.append((i0, i1, j0, min(j0 + tile, na)))
            start = na
        else:
            start = 0
        for j0 in range(start, nb, tile):
            tiles.append((i0, i1, j0, min(j0 + tile, nb)))

    def work(t: tuple[int, int, int, int]) -> None:
        i0, i1, j0, j1 = t
        same = prefix_same and i0 == j0
        g = gram[i0:i1, j0:j1]
        if same:
            upper = np.triu(g)
            g = upper + np.triu(g, 1).T
        state = _state_from_gram(g, sq_a[i0:i1], sq_b[j0:j1], d, w0, b0, same)
        mirror = prefix_same and j0 < na and not same
        for L in range(max_depth + 1):
            if L:
                state = hidden(state)
            if L in wanted:
                for dst, src in zip(out[L], (state.nngp, state.ntk), strict=True):
                    dst[i0:i1, j0:j1] = src
                    if mirror:
                        dst[j0:j1, i0:i1] = src.T

    if n_threads == 1 or len(tiles) == 1:
        for t in tiles:
            work(t)
    else:
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            list(pool.map(work, tiles))
    return out


def kernel_sweep(
    spec: KernelSpec | Mapping[str, Any],
    depths: int | Iterable[int],
    x1: Any,
    x2: Any = None,
    *,
    tile: int = DEFAULT_TILE,
    n_threads: int | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{depth: (nngp, ntk)}`` for all requested depths from one recursion.

    ``x2=None``, ``x2 is x1`` or ``x2`` equal to ``x1`` gives a symmetric Gram (upper
    tiles only, exactly symmetric, diagonal equal to :func:`kernel_diag`).
    """
    x1 = _as_inputs(x1)
    if x2 is not None and x2 is not x1:
        x2 = _as_inputs(x2)
        if not (x2.shape == x1.shape and np.array_equal(x1, x2)):
            return sweep_panel(spec, depths, x1, x2, tile=tile, n_threads=n_threads)
    return sweep_panel(spec, depths, x1, x1, prefix_same=True, tile=tile, n_threads=n_threads)


def kernel_matrices(
    spec: KernelSpec | Mapping[str, Any],
    depth: int,
    x1: Any,
    x2: Any = None,
    **kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """``(nngp, ntk)`` Grams of shape ``(n1, n2)`` at one depth."""
    return kernel_sweep(spec, [depth], x1, x2, **kwargs)[int(depth)]


def kernel_diag(
    spec: KernelSpec | Mapping[str, Any], depth: int, x: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``(nngp_diag, ntk_diag)``: self kernels ``k(x_i, x_i)``, shape ``(n,)``."""
    spec = KernelSpec.coerce(spec)
    state = input_layer(x, None, spec.input_w_var, spec.input_b_var, diagonal=True)
    hidden = spec.hidden_layer()
    for _ in range(int(depth)):
        state = hidden(state)
    return state.nngp, state.ntk


def with_overrides(spec: KernelSpec | Mapping[str, Any], **changes: Any) -> KernelSpec:
    """A copy of ``spec`` with some fields changed."""
    return replace(KernelSpec.coerce(spec), **changes)
