r"""Mean-field phase diagram of fully connected networks (Poole, Schoenholz, Xiao et al.).

For weight/bias variances :math:`(\sigma_w^2, \sigma_b^2)` = ``(w_var, b_var)`` and an
activation :math:`\phi` the pre-activation kernel of two inputs evolves layer by layer as

* variance map :math:`q \mapsto \sigma_w^2 E[\phi(\sqrt q z)^2] + \sigma_b^2`, with fixed
  point :math:`q^*`;
* correlation map (at :math:`q = q^*`) :math:`c \mapsto (\sigma_w^2 E[\phi(u)\phi(v)] +
  \sigma_b^2) / q^*`, :math:`(u, v)` of variance :math:`q^*` and correlation ``c``, with
  stable fixed point :math:`c^*`;
* slopes :math:`\chi_1 = \sigma_w^2 E[\phi'(\sqrt{q^*} z)^2]` (the slope of the correlation
  map at ``c = 1``) and :math:`\chi_{c^*} = \sigma_w^2 E[\phi'(u)\phi'(v)]` at :math:`c^*`;
* depth scales :math:`\xi_1 = -1/\ln\chi_1`, :math:`\xi_{c^*} = -1/\ln\chi_{c^*}`
  (Schoenholz et al.'s correlation depth scale) and Xiao et al.'s generalisation depth of
  the chaotic phase :math:`\xi_* = -1/(\ln\chi_{c^*} - \ln\chi_1)` (footnote to their eq. 17).
  A non-positive logarithm is a growth, not a decay: ``xi_1 < 0`` in the chaotic phase, and
  a zero logarithm gives ``inf``.

Phases (Xiao et al. §4): *ordered* :math:`\chi_1 < 1` (:math:`c^* = 1`, NTK condition number
diverges like :math:`\chi_1^{-l}/l`), *critical* :math:`\chi_1 = 1` (condition number tends
to a constant, eqs. 24 and 46), *chaotic* :math:`\chi_1 > 1` (:math:`c^* < 1`, condition
number :math:`\to 1`, predictor decays over :math:`\xi_*` layers).

All Gaussian expectations come from the analytic activation layers of
:mod:`depthlab.kernels.layers` (closed form for ``relu``/``erf``; quadrature for the other
entries of ``ACTIVATIONS``): a diagonal-mode :class:`KernelState` pushed through the
activation gives :math:`E[\phi^2]`, and starting it with ``ntk = 1`` makes the new ``ntk``
exactly :math:`E[\phi'\phi']`.  Nothing here is a second implementation of the kernels.

ReLU (and ``identity``) are positively homogeneous: the variance map is linear,
:math:`q \mapsto \sigma_w^2 q / 2 + \sigma_b^2`, and :math:`\chi_1 = \sigma_w^2/2` does not
depend on ``q``.  For :math:`\sigma_w^2 < 2` the fixed point is :math:`\sigma_b^2 / (1 -
\sigma_w^2/2)`; at :math:`\sigma_w^2 = 2, \sigma_b^2 = 0` every variance is fixed, so
:math:`q^*` is the input variance ``q0``; above (or with a bias) the variance grows without
bound: ``q_star = inf``, ``c_star = 1`` (the bias-free arc-cosine map, which is what the
correlation map tends to, has ``c = 1`` as its only attractor) and the phase is
"chaotic" only in the sense :math:`\chi_1 > 1`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.optimize

from depthlab.kernels.layers import ACTIVATIONS, KernelState

__all__ = [
    "PhasePoint",
    "phase_point",
    "variance_map",
    "correlation_map",
    "slope",
    "fixed_point_q",
    "fixed_point_c",
    "classify_phase",
    "depth_scale",
    "critical_w_var",
    "ntk_limit_structure",
    "kappa_limit",
    "CRITICAL_OFFDIAG_RATIO",
]

# E[phi(sqrt(q) z)^2] = k q for positively homogeneous activations
_HOMOGENEOUS = {"relu": 0.5, "relu_quad": 0.5, "identity": 1.0, "linear": 1.0}

CRITICAL_OFFDIAG_RATIO = {"relu": 0.25, "relu_quad": 0.25}
"""On the critical line ``Theta^(l)(x, x') / Theta^(l)(x, x) -> r`` for ``x != x'``:
ReLU ``r = 1/4`` (Xiao eqs. 44-46), activations with a smooth (C^3) dual kernel ``r = 1/3``
(eqs. 23-24, the default for names not listed)."""

PHASE_TOL = 1e-9
_RTOL = 4 * np.finfo(np.float64).eps  # brentq's smallest allowed rtol


def _activation_moments(activation: str, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(E[phi(sqrt(q) z)^2], E[phi'(sqrt(q) z)^2])`` from the analytic layer."""
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    state = KernelState(q, np.ones_like(q), q, q, True)
    out = ACTIVATIONS[activation]()(state)
    return out.nngp, out.ntk


def _cross_moments(activation: str, q: float, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` for variances ``q`` and correlations ``c``."""
    c = np.atleast_1d(np.asarray(c, dtype=np.float64))
    n = c.size
    d1 = np.full(1, float(q))
    d2 = np.full(n, float(q))
    state = KernelState((c * q)[None, :], np.ones((1, n)), d1, d2, False)
    out = ACTIVATIONS[activation]()(state)
    return out.nngp[0], out.ntk[0]


def _check(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")


def variance_map(q: Any, w_var: float, b_var: float, activation: str = "erf") -> np.ndarray:
    """``q -> w_var E[phi(sqrt(q) z)^2] + b_var`` (one layer of the diagonal NNGP)."""
    _check(activation)
    return w_var * _activation_moments(activation, q)[0] + b_var


def correlation_map(
    c: Any, q: float, w_var: float, b_var: float, activation: str = "erf"
) -> np.ndarray:
    """``c -> (w_var E[phi(u) phi(v)] + b_var) / q`` with ``Var u = Var v = q``, corr ``c``.

    Normalising by ``q`` (not by the new variance) is the correlation map *at the fixed
    point* ``q = q*``, where the two agree; this is the map whose slope is ``chi``.
    """
    _check(activation)
    return (w_var * _cross_moments(activation, q, c)[0] + b_var) / q


def slope(c: Any, q: float, w_var: float, activation: str = "erf") -> np.ndarray:
    """``chi_c = w_var E[phi'(u) phi'(v)]``; ``c = 1`` gives ``chi_1``."""
    _check(activation)
    c = np.atleast_1d(np.asarray(c, dtype=np.float64))
    if q == 0.0:
        # variance zero: u = v = 0 whatever c
        return w_var * _activation_moments(activation, np.zeros(c.size))[1]
    return w_var * _cross_moments(activation, q, c)[1]


def fixed_point_q(
    w_var: float, b_var: float, activation: str = "erf", q0: float = 1.0
) -> float:
    """Stable fixed point ``q*`` of the variance map (``inf`` if the variance diverges).

    Homogeneous activations use the closed form (module doc; ``q0`` is the input variance,
    used only on the marginal line ``w_var * k = 1, b_var = 0``).  Otherwise ``q*`` is the
    largest root of ``V(q) - q`` bracketed from above by doubling and found by ``brentq``;
    for ``b_var = 0`` and ``phi(0) = 0`` the root ``q = 0`` is returned when it is stable
    (``w_var phi'(0)^2 <= 1``).  The map is concave for the bounded activations this is
    meant for (erf, tanh), so the positive root is unique.
    """
    _check(activation)
    w_var, b_var = float(w_var), float(b_var)
    if activation in _HOMOGENEOUS:
        s = w_var * _HOMOGENEOUS[activation]
        if s < 1.0:
            return b_var / (1.0 - s)
        if s == 1.0 and b_var == 0.0:
            return float(q0)
        return math.inf

    def g(q: float) -> float:
        return float(variance_map(q, w_var, b_var, activation)[0]) - q

    q_hi = max(1.0, 2.0 * (w_var + b_var))
    while g(q_hi) > 0.0:
        q_hi *= 2.0
        if q_hi > 1e15:
            return math.inf
    g0 = g(0.0)
    if g0 < 0.0:  # pragma: no cover - V(0) >= 0 always
        raise ArithmeticError("variance map below the identity at q = 0")
    if g0 == 0.0:
        if float(slope(1.0, 0.0, w_var, activation)[0]) <= 1.0:
            return 0.0
        q_lo = q_hi
        while g(q_lo) <= 0.0:
            q_lo *= 0.5
            if q_lo < 1e-300:  # pragma: no cover - slope > 1 guarantees a bracket
                return 0.0
    else:
        q_lo = 0.0
    return float(scipy.optimize.brentq(g, q_lo, q_hi, xtol=1e-300, rtol=_RTOL))


def fixed_point_c(
    q_star: float,
    w_var: float,
    b_var: float,
    activation: str = "erf",
    chi_1: float | None = None,
    tol: float = PHASE_TOL,
) -> float:
    """Stable fixed point ``c*`` of the correlation map at ``q*``.

    ``c = 1`` is always a fixed point and is the stable one iff ``chi_1 <= 1`` (ordered and
    critical; ``chi_1 <= 1 + tol`` counts as critical, as in :func:`classify_phase`).  In
    the chaotic phase the stable ``c* < 1`` is the largest root of
    ``R(c) - c`` below 1: located on a grid (uniform on [-1, 1) plus points geometrically
    close to 1, so that ``c*`` just below 1 near the critical line is still bracketed) and
    refined by ``brentq``.
    """
    if not math.isfinite(q_star) or q_star == 0.0:
        return 1.0
    if chi_1 is None:
        chi_1 = float(slope(1.0, q_star, w_var, activation)[0])
    if chi_1 <= 1.0 + tol:
        return 1.0

    def g(c: Any) -> np.ndarray:
        return correlation_map(c, q_star, w_var, b_var, activation) - c

    near_one = 1.0 - np.logspace(-2, -15, 27)
    grid = np.unique(np.concatenate([np.linspace(-1.0, 1.0, 401)[:-1], near_one]))
    vals = g(grid)
    # last + -> - sign change (R(c) < c just below 1 in the chaotic phase)
    idx = np.nonzero((vals[:-1] >= 0.0) & (vals[1:] < 0.0))[0]
    if idx.size == 0:
        return 1.0  # pragma: no cover - chi_1 > 1 within rounding of 1
    i = int(idx[-1])
    if vals[i] == 0.0:
        return float(grid[i])
    root = scipy.optimize.brentq(
        lambda c: float(g(c)[0]), grid[i], grid[i + 1], xtol=1e-15, rtol=_RTOL
    )
    return float(root)


def classify_phase(chi_1: float, tol: float = PHASE_TOL) -> str:
    """``"ordered"`` (``chi_1 < 1 - tol``), ``"chaotic"`` (``> 1 + tol``) or ``"critical"``."""
    if chi_1 < 1.0 - tol:
        return "ordered"
    if chi_1 > 1.0 + tol:
        return "chaotic"
    return "critical"


def depth_scale(log_rate: float) -> float:
    """``-1 / log_rate`` (``inf`` for a zero rate): the e-folding depth of ``exp(log_rate l)``."""
    return math.inf if log_rate == 0.0 else -1.0 / log_rate


@dataclass(frozen=True)
class PhasePoint:
    """Mean-field quantities at one ``(w_var, b_var, activation)`` (module doc)."""

    activation: str
    w_var: float
    b_var: float
    q_star: float
    c_star: float
    chi_1: float
    chi_c: float
    xi_1: float
    xi_c: float
    xi_star: float
    phase: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def phase_point(
    w_var: float, b_var: float, activation: str = "erf", *, q0: float = 1.0, tol: float = PHASE_TOL
) -> PhasePoint:
    """All phase quantities of one hyperparameter point (see the module doc)."""
    _check(activation)
    w_var, b_var = float(w_var), float(b_var)
    q_star = fixed_point_q(w_var, b_var, activation, q0)
    if math.isfinite(q_star):
        chi_1 = float(slope(1.0, q_star, w_var, activation)[0])
    elif activation in _HOMOGENEOUS:  # chi_1 does not depend on q
        chi_1 = float(slope(1.0, 1.0, w_var, activation)[0])
    else:
        chi_1 = math.inf
    c_star = fixed_point_c(q_star, w_var, b_var, activation, chi_1, tol)
    if c_star == 1.0 or not math.isfinite(q_star):
        chi_c = chi_1
    else:
        chi_c = float(slope(c_star, q_star, w_var, activation)[0])
    log1 = math.log(chi_1) if chi_1 > 0 else -math.inf
    logc = math.log(chi_c) if chi_c > 0 else -math.inf
    return PhasePoint(
        activation=activation,
        w_var=w_var,
        b_var=b_var,
        q_star=q_star,
        c_star=c_star,
        chi_1=chi_1,
        chi_c=chi_c,
        xi_1=depth_scale(log1),
        xi_c=depth_scale(logc),
        xi_star=depth_scale(logc - log1),
        phase=classify_phase(chi_1, tol),
    )


def critical_w_var(
    b_var: float, activation: str = "erf", *, bracket: tuple[float, float] = (1e-3, 1e3)
) -> float:
    """``w_var`` on the order-to-chaos line at this ``b_var``: root of ``chi_1(w_var) = 1``.

    ``brentq`` on ``bracket``.  Known values: ReLU 2 (any ``b_var``), erf ``pi/4`` at
    ``b_var = 0`` (there ``q* = 0`` and ``chi_1 = w_var (2/sqrt(pi))^2``).  Just above
    ``pi/4`` at ``b_var = 0``, ``chi_1 - 1`` is only quadratic in the distance, so the root
    is accurate to ~1e-7 there; elsewhere to ~1e-12.
    """

    def f(w: float) -> float:
        return phase_point(w, b_var, activation).chi_1 - 1.0

    return float(scipy.optimize.brentq(f, *bracket, xtol=1e-14, rtol=_RTOL))


def ntk_limit_structure(point: PhasePoint) -> tuple[float, float]:
    """``(diag, offdiag)`` of the large-depth NTK ``Theta* = (diag - offdiag) I + offdiag 11^T``
    up to the phase's diverging normalisation (Xiao §4):

    * ordered: ``Theta -> p* 11^T`` with ``p* = q* / (1 - chi_1)`` (eq. 18), no normalisation;
    * critical: ``Theta / (l q*) -> (1 - r) I + r 11^T`` with ``r`` of
      :data:`CRITICAL_OFFDIAG_RATIO` (eqs. 23-24, 44-46);
    * chaotic: ``Theta / p(l) -> I`` (the diagonal grows like ``chi_1^l``, eq. 15; the
      off-diagonal stays finite, eq. 16).
    """
    if point.phase == "ordered":
        p_star = point.q_star / (1.0 - point.chi_1)
        return p_star, p_star
    if point.phase == "critical":
        return 1.0, CRITICAL_OFFDIAG_RATIO.get(point.activation, 1.0 / 3.0)
    return 1.0, 0.0


def kappa_limit(point: PhasePoint, m: int) -> float:
    """Large-depth limit of ``kappa = lambda_max / lambda_bulk`` of the ``m x m`` NTK:
    ordered ``inf``, chaotic 1, critical ``1 + m r / (1 - r)`` -- ``(m + 3)/3`` for ReLU
    (Xiao eq. 46), ``(m + 2)/2`` for erf (eq. 24)."""
    diag, off = ntk_limit_structure(point)
    bulk = diag - off
    return math.inf if bulk <= 0.0 else (bulk + m * off) / bulk
