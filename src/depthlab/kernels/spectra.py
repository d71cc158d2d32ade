r"""Spectral trainability and generalisation metrics of NTK/NNGP Grams (Xiao et al. §3-4).

Trainability
------------
Gradient flow on the MSE moves the training residual along eigenvector ``i`` of
:math:`\Theta_{train,train}` like :math:`e^{-\eta\lambda_i t}` (Xiao eq. 8).  The largest
stable learning rate is :math:`\eta_{theory} = 2/\lambda_{max}`, and with it the slowest mode
converges at a rate set by the condition number.  At large depth the spectrum is one large
eigenvalue (close to the constant "DC" mode, eq. 22: about the sum of a row) and a bulk of
``m - 1`` nearly degenerate ones, so Xiao et al. use

* :math:`\lambda_{bulk}` ("lambda_rest"): the mean of the eigenvalues other than
  :math:`\lambda_{max}`, i.e. ``(trace - lambda_max) / (m - 1)``; for a Gram of the limiting
  form ``a I + b 11^T`` it is exactly ``a``, the eigenvalue of every non-constant mode;
* :math:`\kappa = \lambda_{max} / \lambda_{bulk}` -- the condition number of their Table 1
  and Figure 1.  ``kappa_min = lambda_max / lambda_min`` (the textbook condition number,
  the dashed lines of their Figure 1) and ``lambda_second`` are reported too; all three
  ratios share the large-depth limits.

Generalisation
--------------
The mean predictor :math:`P(\Theta) = \Theta_{test,train} (\Theta_{train,train} + \sigma
I)^{-1}` (eq. 6; ``sigma = reg`` is the regulariser Xiao et al. add in the ordered phase,
where the limit Gram is singular) and the *residual predictor*
:math:`\Delta^{(l)} Y = (P(\Theta^{(l)}) - P(\Theta^*)) Y` (eq. 9): the part of the
prediction that still depends on the data at depth ``l``.  The limiting kernels have the
structure ``Theta*_dd = (diag - off) I + off 11^T``, ``Theta*_td = off 11^T``, whose
predictor :func:`structured_limit_predictor` gives in closed form (the phase module's
:func:`~depthlab.kernels.phase.ntk_limit_structure` supplies ``diag, off``); ``P(Theta*) Y``
is a constant test prediction, and is zero for balanced labels.

All functions take float64 NumPy Grams; the ``depth_*`` helpers take the
``{depth: (nngp, ntk)}`` dicts of :func:`~depthlab.kernels.layers.kernel_sweep`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg

__all__ = [
    "Spectrum",
    "eigenvalues",
    "lambda_bulk",
    "spectrum",
    "condition_number",
    "eta_theory",
    "depth_spectra",
    "predictor_apply",
    "mean_predictor",
    "structured_limit_predictor",
    "residual_predictor",
    "depth_residuals",
]

_KIND_INDEX = {"nngp": 0, "ntk": 1}


class Spectrum(NamedTuple):
    lambda_max: float
    lambda_min: float
    lambda_second: float
    lambda_bulk: float  # mean of all eigenvalues but the largest
    kappa: float  # lambda_max / lambda_bulk (Xiao et al.)
    kappa_min: float  # lambda_max / lambda_min
    eta_theory: float  # 2 / lambda_max


def _square(gram: Any) -> np.ndarray:
    k = np.asarray(gram, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise ValueError(f"need a non-empty square Gram, got shape {k.shape}")
    return k


def eigenvalues(gram: Any) -> np.ndarray:
    """Eigenvalues of the symmetric part of ``gram``, largest first (LAPACK ``syevd``)."""
    k = _square(gram)
    return np.linalg.eigvalsh(0.5 * (k + k.T))[::-1]


def lambda_bulk(evals: Any) -> float:
    """Mean of all eigenvalues except the largest (``evals`` sorted largest first)."""
    ev = np.asarray(evals, dtype=np.float64)
    return float(ev[1:].mean()) if ev.size > 1 else float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def spectrum(gram: Any) -> Spectrum:
    """Trainability summary of one Gram (module doc)."""
    ev = eigenvalues(gram)
    lmax, lmin = float(ev[0]), float(ev[-1])
    bulk = lambda_bulk(ev)
    return Spectrum(
        lambda_max=lmax,
        lambda_min=lmin,
        lambda_second=float(ev[1]) if ev.size > 1 else float("nan"),
        lambda_bulk=bulk,
        kappa=_ratio(lmax, bulk),
        kappa_min=_ratio(lmax, lmin),
        eta_theory=eta_theory(lmax),
    )


def condition_number(gram: Any, kind: str = "bulk") -> float:
    """``lambda_max / lambda_bulk`` (``"bulk"``, Xiao et al.), ``/ lambda_min`` (``"min"``)
    or ``/ lambda_second`` (``"second"``)."""
    s = spectrum(gram)
    denom = {"bulk": s.lambda_bulk, "min": s.lambda_min, "second": s.lambda_second}
    if kind not in denom:
        raise ValueError(f"kind must be one of {sorted(denom)}, got {kind!r}")
    return _ratio(s.lambda_max, denom[kind])


def eta_theory(gram_or_lambda_max: Any) -> float:
    """Largest stable gradient-descent learning rate on the MSE, ``2 / lambda_max``."""
    lmax = (
        float(gram_or_lambda_max)
        if np.ndim(gram_or_lambda_max) == 0
        else float(eigenvalues(gram_or_lambda_max)[0])
    )
    return 2.0 / lmax


def depth_spectra(
    sweep: Mapping[int, tuple[np.ndarray, np.ndarray]], kind: str = "ntk"
) -> dict[str, np.ndarray]:
    """Spectrum of every depth of a train x train :func:`kernel_sweep` result, as arrays
    keyed ``"depth"`` and by the :class:`Spectrum` fields (depths ascending)."""
    idx = _KIND_INDEX[kind]
    depths = sorted(sweep)
    rows = [spectrum(sweep[L][idx]) for L in depths]
    out = {"depth": np.asarray(depths, dtype=np.int64)}
    for i, name in enumerate(Spectrum._fields):
        out[name] = np.asarray([r[i] for r in rows], dtype=np.float64)
    return out


def _regularized(k_train_train: Any, reg: float) -> np.ndarray:
    k_dd = _square(k_train_train)
    return k_dd + float(reg) * np.eye(k_dd.shape[0]) if reg else k_dd


def predictor_apply(
    k_test_train: Any, k_train_train: Any, y: Any, reg: float = 0.0
) -> np.ndarray:
    """``P(Theta) Y = K_td (K_dd + reg I)^{-1} Y`` by one symmetric solve (no inverse)."""
    z = scipy.linalg.solve(
        _regularized(k_train_train, reg), np.asarray(y, dtype=np.float64), assume_a="sym"
    )
    return np.asarray(k_test_train, dtype=np.float64) @ z


def mean_predictor(k_test_train: Any, k_train_train: Any, reg: float = 0.0) -> np.ndarray:
    """The linear operator ``P(Theta) = K_td (K_dd + reg I)^{-1}``, shape (n_test, n_train)."""
    k_td = np.asarray(k_test_train, dtype=np.float64)
    return scipy.linalg.solve(_regularized(k_train_train, reg), k_td.T, assume_a="sym").T


def structured_limit_predictor(
    n_test: int, n_train: int, diag: float, offdiag: float, reg: float = 0.0
) -> np.ndarray:
    """``P(Theta*)`` for ``Theta*_dd = (diag - offdiag) I + offdiag 11^T`` and
    ``Theta*_td = offdiag 11^T``: ``offdiag / (diag - offdiag + reg + n_train offdiag) 11^T``
    (Sherman-Morrison).  Zero for ``offdiag = 0`` (chaotic phase)."""
    den = float(diag) - float(offdiag) + float(reg) + n_train * float(offdiag)
    coef = 0.0 if offdiag == 0 else float(offdiag) / den
    return np.full((int(n_test), int(n_train)), coef)


def residual_predictor(
    k_test_train: Any, k_train_train: Any, y: Any, p_limit: Any, reg: float = 0.0
) -> np.ndarray:
    """``Delta^(l) Y = (P(Theta^(l)) - P(Theta*)) Y`` (Xiao eq. 9), shape of ``K_td Y``.

    ``p_limit`` is ``P(Theta*)`` as an (n_test, n_train) array (e.g. from
    :func:`structured_limit_predictor`).
    """
    y = np.asarray(y, dtype=np.float64)
    return predictor_apply(k_test_train, k_train_train, y, reg) - np.asarray(p_limit) @ y


def depth_residuals(
    sweep_train: Mapping[int, tuple[np.ndarray, np.ndarray]],
    sweep_test: Mapping[int, tuple[np.ndarray, np.ndarray]],
    y: Any,
    p_limit: Any,
    reg: float = 0.0,
    kind: str = "ntk",
) -> dict[int, np.ndarray]:
    """``{depth: Delta^(l) Y}`` from train x train and test x train sweeps of the same depths."""
    idx = _KIND_INDEX[kind]
    return {
        L: residual_predictor(sweep_test[L][idx], sweep_train[L][idx], y, p_limit, reg)
        for L in sorted(sweep_train)
    }
