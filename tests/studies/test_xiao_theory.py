"""Xiao study: phase quantities against the notes' §1.1 table recomputed independently (erf
closed forms iterated here), Table 1 asymptotes of the sweeps on small synthetic problems,
the dropout plateau of eq. 85, and eta_theory's normalisation against finite nets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from depthlab.kernels.phase import critical_w_var, phase_point
from depthlab.studies.xiao import data as xdata
from depthlab.studies.xiao import sweep as xsweep
from depthlab.studies.xiao import train as xtrain
from depthlab.studies.xiao.table1 import ordered_rate

B = 0.1849
STUDY = {"activation": "erf", "b_var": B, "filter_size": 3, "data": {"seed": 0}}


def _erf_phase(w, b):
    """q*, chi_1, c*, chi_c* by plain fixed-point iteration of the erf closed forms."""
    q = 1.0
    for _ in range(20000):
        q = w * (2 / math.pi) * math.asin(2 * q / (1 + 2 * q)) + b
    chi1 = w * (4 / math.pi) / math.sqrt(1 + 4 * q)
    c = 0.5
    for _ in range(200000):
        c = (w * (2 / math.pi) * math.asin(2 * q * c / (1 + 2 * q)) + b) / q
    chic = w * (4 / math.pi) / math.sqrt((1 + 2 * q) ** 2 - 4 * q * q * c * c)
    return q, chi1, c, chic


# the notes' §1.1 table at sigma_b^2 = 0.1849: sigma_w^2 -> (q*, chi_1, xi)
TABLE = {0.5: (.310, .425, 1.17), 1.0: (.528, .722, 3.06), 1.4: (.763, .886, 8.22),
         1.6: (.894, .952, 20.5), 2.2: (1.322, 1.117, 4.96), 3.0: (1.941, 1.290, 2.38),
         4.0: (2.755, 1.469, 1.69)}


@pytest.mark.parametrize("w", sorted(TABLE))
def test_phase_point_against_independent_iteration(w):
    p = phase_point(w, B, "erf")
    q, chi1, c, chic = _erf_phase(w, B)
    assert p.q_star == pytest.approx(q, rel=1e-9)
    assert p.chi_1 == pytest.approx(chi1, rel=1e-9)
    if chi1 > 1:
        assert p.c_star == pytest.approx(c, abs=1e-7)
        assert p.chi_c == pytest.approx(chic, rel=1e-6)
        xi = -1 / (math.log(chic) - math.log(chi1))
    else:
        assert p.c_star == 1.0
        xi = -1 / math.log(chi1)
    tq, tchi, txi = TABLE[w]
    assert q == pytest.approx(tq, abs=6e-4) and chi1 == pytest.approx(tchi, abs=6e-4)
    assert xi == pytest.approx(txi, rel=6e-3)
    assert (p.xi_star if chi1 > 1 else p.xi_1) == pytest.approx(xi, rel=1e-6)


def test_critical_line():
    assert critical_w_var(0.1849, "erf") == pytest.approx(1.7578, abs=1e-4)
    assert critical_w_var(0.18, "erf") == pytest.approx(1.7476, abs=1e-4)
    _, chi1, _, _ = _erf_phase(critical_w_var(B, "erf"), B)
    assert chi1 == pytest.approx(1.0, abs=1e-9)


def _sweep(arch, w, depths, m, k):
    x = xdata.synthetic_images(m, k, 0)
    return xsweep.compute(STUDY, {"w_var": w, "arch": arch, "depths": depths,
                                  "group": "phase", "w_label": "t"}, {"x": x})


@pytest.mark.parametrize("arch", ["fc", "cnn_f", "cnn_p"])
def test_table1_critical_kappa(arch):
    m, k, L = 6, 3, 400
    d = k * k if arch == "cnn_p" else 1
    out = _sweep(arch, critical_w_var(B, "erf"), [L], m, k)
    limit = (m * d + 2) / 2
    assert abs(out["kappa"][-1] - limit) <= 3 * math.log(L) / L * limit
    assert out["kappa"][-1] < limit  # approached from below (O(log l / l) correction)


def test_table1_chaotic_and_ordered():
    chaotic = _sweep("fc", 2.5, [5, 60], 8, 3)
    assert chaotic["kappa"][-1] - 1 < 1e-3 < chaotic["kappa"][0] - 1
    depths = list(range(10, 120, 10))
    ordered = _sweep("fc", 1.2, depths, 8, 3)
    chi = phase_point(1.2, B, "erf").chi_1
    rate, n = ordered_rate(np.asarray(depths, float), ordered["kappa"])
    assert n >= 5 and rate == pytest.approx(-math.log(chi), rel=0.05)
    p = phase_point(1.2, B, "erf")
    assert ordered["lambda_max"][-1] / 8 == pytest.approx(p.q_star / (1 - p.chi_1), rel=1e-3)


def test_dropout_plateau_eq85():
    """Notes §1.5 (verified values): m = 20, sigma_w^2 = 1.2, sigma_b^2 = 0.18."""
    study = {**STUDY, "b_var": 0.18}
    x = xdata.synthetic_images(20, 3, 1)
    out = xsweep.compute(study, {"w_var": 1.2, "arch": "fc", "depths": [100], "group": "phase",
                                 "w_label": "t", "dropout_keep": [0.9, 0.7, 0.5]}, {"x": x})
    p = phase_point(1.2, 0.18, "erf")
    p_star = p.q_star / (1 - p.chi_1)
    for keep, got, ref in zip([0.9, 0.7, 0.5], out["kappa_dropout"][0],
                              [191.108, 50.287, 22.123], strict=True):
        eq85 = 20 * p_star / ((1 / keep - 1) * (p_star - 0.18)) + 1
        assert eq85 == pytest.approx(ref, abs=2e-3)
        assert got == pytest.approx(eq85, rel=1e-4)


def test_eta_theory_normalisation_top_mode():
    """With loss (1/2n) sum ||f - y||^2, GD multiplies the residual's top NTK mode by
    1 - rho * 2: a wide finite net's top mode shrinks at rho = 0.8 and grows at rho = 1.25."""
    torch.manual_seed(0)
    n, depth, width, w = 8, 2, 2048, 1.5
    x = xdata.synthetic_images(n, 2, 3).reshape(n, -1)
    y = np.zeros((n, 1))
    lmax, eta = xtrain.analytic_eta(x, depth, w, B)
    from depthlab.kernels.layers import kernel_sweep

    ntk = kernel_sweep({"activation": "erf", "w_var": w, "b_var": B}, [depth], x)[depth][1]
    v = np.linalg.eigh(ntk)[1][:, -1]
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    growth = {}
    for rho in (0.8, 1.25):
        params = xtrain.init_params(x.shape[1], width, depth, 1, [0])
        for p in (p for wb in params for p in wb):
            p.requires_grad_(True)
        proj = []
        for _ in range(4):
            out = xtrain.forward(params, xt, w, B)[0]
            proj.append(float(np.abs(v @ (out - yt).detach().numpy()[:, 0])))
            loss = ((out - yt) ** 2).sum() / (2 * n)
            grads = torch.autograd.grad(loss, [p for wb in params for p in wb])
            with torch.no_grad():
                for p, g in zip((p for wb in params for p in wb), grads, strict=True):
                    p.sub_(rho * eta * g)
        growth[rho] = proj[-1] / proj[0]
    assert growth[0.8] < 0.6 ** 3 * 2 and growth[1.25] > 1.5 ** 3 / 2


def test_trainer_edge_on_tiny_problem():
    """train_members: far below eta_theory nothing diverges, far above everything does."""
    data = xdata.labelled_set({"source": "digits"}, 32, 16, 0)
    x = data["x_train"].reshape(32, -1)
    lmax, eta = xtrain.analytic_eta(x, 3, 1.5, B)
    assert eta == pytest.approx(2 * 32 / lmax)
    rows = xtrain.train_members(data, 3, 256, 1.5, B, [0.5, 8.0], [0, 1], 30, eta)
    status = {(r["rho"], r["seed"]): r["status"] for r in rows}
    assert all(status[(0.5, s)] != "diverged" for s in (0, 1))
    assert all(status[(8.0, s)] == "diverged" for s in (0, 1))
