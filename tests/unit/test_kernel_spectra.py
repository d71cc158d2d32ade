"""NTK spectra (Xiao et al. §3) and mean-field phase quantities (Xiao et al. §2, §4).

Tolerances
----------
* Critical ReLU (Xiao eq. 46): ``kappa(l) = lambda_max / lambda_bulk -> (m + 3)/3`` with a
  correction ``~ (a ln l + b) / l`` (observed: ``(kappa - kappa_inf) l / ln l`` ~ 8 for
  ``l`` in [300, 1e4], ``m = 10``).  We require the relative error below 0.25% at
  ``l = 1e4`` (observed 0.18%), a monotone approach, and ``(kappa - kappa_inf) l / ln l``
  in [6, 11] from ``l = 300`` on -- i.e. the ``O(ln l / l)`` rate, not just the limit.
* Chaotic erf: ``kappa - 1 < 1e-5`` at depth 40 (observed 4e-7); the residual predictor
  decays like ``l (chi_c*/chi_1)^l`` (eq. 61), checked through the ratio of consecutive
  depths, ``|Delta(l+1)| l / (|Delta(l)| (l + 1))``, which must approach
  ``chi_c*/chi_1`` monotonically and be within 2e-3 relative for l in [40, 50]
  (observed 1.2e-3 at l = 40, 0.8e-3 at l = 50).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from depthlab.kernels import kernel_diag, kernel_sweep
from depthlab.kernels.phase import (
    classify_phase,
    critical_w_var,
    fixed_point_q,
    kappa_limit,
    ntk_limit_structure,
    phase_point,
    variance_map,
)
from depthlab.kernels.spectra import (
    condition_number,
    depth_residuals,
    depth_spectra,
    eta_theory,
    mean_predictor,
    residual_predictor,
    spectrum,
    structured_limit_predictor,
)


def unit_norm(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ---- spectra ---------------------------------------------------------------------------


def test_spectrum_of_the_limiting_structure():
    m, a, b = 7, 0.3, 1.7
    gram = a * np.eye(m) + b * np.ones((m, m))
    s = spectrum(gram)
    assert s.lambda_max == pytest.approx(a + m * b, rel=1e-14)
    assert s.lambda_bulk == pytest.approx(a, rel=1e-13)
    assert s.lambda_min == pytest.approx(a, rel=1e-13)
    assert s.kappa == pytest.approx((a + m * b) / a, rel=1e-13)
    assert s.eta_theory == eta_theory(gram) == pytest.approx(2 / (a + m * b), rel=1e-14)
    # a generic spectrum: bulk is the mean of all but the largest eigenvalue
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    ev = np.array([9.0, 3.0, 2.0, 1.5, 1.0, 0.5])
    g = (q * ev) @ q.T
    assert condition_number(g) == pytest.approx(9.0 / 1.6, rel=1e-12)
    assert condition_number(g, "min") == pytest.approx(18.0, rel=1e-12)
    assert condition_number(g, "second") == pytest.approx(3.0, rel=1e-12)


def test_structured_limit_predictor_is_the_predictor_of_the_structure():
    n_test, m, diag, off, reg = 4, 6, 2.0, 0.5, 0.3
    k_dd = (diag - off) * np.eye(m) + off * np.ones((m, m))
    k_td = off * np.ones((n_test, m))
    p = structured_limit_predictor(n_test, m, diag, off, reg)
    np.testing.assert_allclose(p, mean_predictor(k_td, k_dd, reg), rtol=1e-13)
    y = np.random.default_rng(1).normal(size=(m, 2))
    np.testing.assert_allclose(residual_predictor(k_td, k_dd, y, p, reg), 0.0, atol=1e-14)
    assert not structured_limit_predictor(2, m, 1.0, 0.0).any()  # chaotic: P(Theta*) = 0


# ---- phase quantities ------------------------------------------------------------------


def test_critical_relu_chi1_is_exactly_one():
    pt = phase_point(2.0, 0.0, "relu")
    assert pt.chi_1 == 1.0 and pt.phase == "critical" and pt.c_star == 1.0
    assert math.isinf(pt.xi_1)
    ordered = phase_point(1.5, 0.1, "relu")
    assert ordered.chi_1 == 0.75 and ordered.phase == "ordered"
    assert ordered.q_star == pytest.approx(0.1 / (1 - 0.75), rel=1e-15)
    assert ordered.xi_1 == pytest.approx(-1 / math.log(0.75), rel=1e-15)
    assert phase_point(3.0, 0.0, "relu").phase == "chaotic"
    assert classify_phase(1.0 + 1e-12) == "critical"


def test_critical_relu_kappa_approaches_xiao_eq46():
    m = 10
    x = unit_norm(m, 20, seed=0)
    spec = {"activation": "relu", "w_var": 2.0, "b_var": 0.0}
    depths = [100, 300, 1000, 3000, 10000]
    sp = depth_spectra(kernel_sweep(spec, depths, x, n_threads=1))
    limit = kappa_limit(phase_point(2.0, 0.0, "relu"), m)
    assert limit == pytest.approx((m + 3) / 3, rel=1e-15)
    err = sp["kappa"] - limit
    assert np.all(err > 0) and np.all(np.diff(err) < 0)
    assert err[-1] / limit < 2.5e-3
    rate = err * sp["depth"] / np.log(sp["depth"])
    assert np.all((rate[1:] > 6) & (rate[1:] < 11)), rate
    # eq. 46 itself: lambda_max ~ (m + 3)/4 q l, lambda_bulk ~ 3/4 q l (Theta(x, x) = (l + 1) q)
    q = kernel_diag(spec, 0, x)[0][0]
    ell = sp["depth"][-1] + 1
    assert sp["lambda_max"][-1] / (q * ell) == pytest.approx((m + 3) / 4, rel=2e-3)
    assert sp["lambda_bulk"][-1] / (q * ell) == pytest.approx(0.75, rel=2e-3)
    assert sp["kappa_min"][-1] == pytest.approx(limit, rel=3e-3)


def test_chaotic_erf_kappa_to_one_and_predictor_decay_rate():
    w_var, b_var = 4.0, 0.1
    pt = phase_point(w_var, b_var, "erf")
    assert pt.phase == "chaotic" and 0 < pt.c_star < 1 and pt.chi_c < 1 < pt.chi_1
    assert kappa_limit(pt, 12) == 1.0
    spec = {"activation": "erf", "w_var": w_var, "b_var": b_var}
    x, x_test = unit_norm(12, 8, seed=1) * np.sqrt(8), unit_norm(5, 8, seed=2) * np.sqrt(8)
    depths = list(range(1, 51))
    train = kernel_sweep(spec, depths, x, n_threads=1)
    sp = depth_spectra(train)
    assert np.all(np.diff(sp["kappa"]) < 0) and sp["kappa"][39] - 1 < 1e-5
    # Delta(l) Y ~ l (chi_c*/chi_1)^l for balanced labels (P(Theta*) Y = 0)
    y = np.tile([1.0, -1.0], 6)
    p_inf = structured_limit_predictor(5, 12, *ntk_limit_structure(pt))
    res = depth_residuals(train, kernel_sweep(spec, depths, x_test, x, n_threads=1), y, p_inf)
    norms = np.array([np.linalg.norm(res[L]) for L in depths])
    ratio = norms[1:] / norms[:-1] * np.array(depths[:-1]) / np.array(depths[1:])
    np.testing.assert_allclose(ratio[39:], pt.chi_c / pt.chi_1, rtol=2e-3)
    assert np.all(np.diff(np.abs(ratio[9:] / (pt.chi_c / pt.chi_1) - 1)) < 0)
    assert math.exp(-1 / pt.xi_star) == pytest.approx(pt.chi_c / pt.chi_1, rel=1e-14)


def test_erf_critical_line_by_root_finding():
    # b_var = 0: q* = 0 and chi_1 = w_var erf'(0)^2 = 4 w_var / pi, so w_c = pi / 4
    assert critical_w_var(0.0, "erf") == pytest.approx(math.pi / 4, abs=1e-6)
    w_c = critical_w_var(0.1, "erf")
    pt = phase_point(w_c, 0.1, "erf")
    assert pt.chi_1 == pytest.approx(1.0, abs=1e-12) and pt.phase == "critical"
    # independent check with Gauss-Hermite quadrature instead of the closed form
    assert phase_point(w_c, 0.1, "erf_quad").chi_1 == pytest.approx(1.0, abs=1e-9)
    below, above = phase_point(0.95 * w_c, 0.1, "erf"), phase_point(1.05 * w_c, 0.1, "erf")
    assert below.phase == "ordered" and below.c_star == 1.0
    assert above.phase == "chaotic" and above.c_star < 1.0
    assert critical_w_var(0.3, "relu") == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize(
    ("activation", "w_var", "b_var"),
    [("erf", 1.5, 0.2), ("erf", 4.0, 0.1), ("erf", 0.6, 0.05), ("relu", 1.5, 0.1)],
)
def test_fixed_points_match_iterating_the_maps(activation, w_var, b_var):
    q_star = fixed_point_q(w_var, b_var, activation)
    spec = {"activation": activation, "w_var": w_var, "b_var": b_var}
    x = unit_norm(3, 4, seed=3) * np.array([[0.5], [1.0], [3.0]])
    # the analytic layers iterate the variance map: deep diagonal NNGP -> q*
    np.testing.assert_allclose(kernel_diag(spec, 400, x)[0], q_star, rtol=1e-12)
    q = 2.0
    for _ in range(400):
        q = variance_map(q, w_var, b_var, activation)[0]
    assert q == pytest.approx(q_star, rel=1e-12)
    # and the correlation map: deep off-diagonal NNGP / q* -> c*
    pt = phase_point(w_var, b_var, activation)
    nngp = kernel_sweep(spec, [400], x, n_threads=1)[400][0]
    np.testing.assert_allclose(nngp[~np.eye(3, dtype=bool)] / q_star, pt.c_star, rtol=1e-9)
