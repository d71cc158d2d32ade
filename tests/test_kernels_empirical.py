"""Analytic kernels vs Monte Carlo over random initialisations of wide finite nets.

Tolerance: the max over entries of |MC mean - analytic| relative to the largest kernel
entry must be below 4% for the wide nets (width 2048 at depth 1, 1024 at depth 3;
observed 0.6-2.4%); the MC error is dominated by the per-init fluctuation
~ 1/sqrt(width * n_inits), so it must be at least 2x smaller than at width 128 with the
same inits (observed 4x).  Seeds are fixed, so the test is
deterministic.  The NNGP estimate averages the readout analytically
(``feature_nngp``), an unbiased per-init estimate with far less noise than f(x) f(x').
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthlab.kernels import kernel_matrices, mori_ueda_spec
from depthlab.kernels.empirical import empirical_ntk, feature_nngp, mori_ueda_net

BETA = 0.1
D = 8


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # These nets are tiny; torch's OpenMP pool on a 2-core box, competing with BLAS
    # threads left spinning by earlier tests, made each call ~20x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sphere(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x * np.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True)


def mc_errors(depth: int, width: int, n_inits: int, x: np.ndarray) -> tuple[float, float]:
    nngp, ntk = kernel_matrices(mori_ueda_spec(BETA), depth, x)
    # float32 nets: the MC error (~1e-2) dwarfs float32 rounding (~1e-6)
    ntks, nngps = [], []
    for seed in range(n_inits):
        net = mori_ueda_net(D, width, depth, BETA, seed=1000 * depth + seed, dtype=torch.float32)
        ntks.append(empirical_ntk(net, x))
        nngps.append(feature_nngp(net, x))
    err_ntk = np.abs(np.mean(ntks, axis=0) - ntk).max() / np.abs(ntk).max()
    err_nngp = np.abs(np.mean(nngps, axis=0) - nngp).max() / np.abs(nngp).max()
    return float(err_ntk), float(err_nngp)


@pytest.mark.parametrize(("depth", "width", "n_inits"), [(1, 2048, 40), (3, 1024, 20)])
def test_analytic_kernels_match_wide_net_average(depth, width, n_inits):
    x = sphere(6, D, seed=0)
    wide = mc_errors(depth, width, n_inits, x)
    narrow = mc_errors(depth, 128, n_inits, x)
    assert wide[0] < 0.04 and wide[1] < 0.04, wide
    assert wide[0] < 0.5 * narrow[0], (wide, narrow)
    assert wide[1] < 0.5 * narrow[1], (wide, narrow)


def test_empirical_ntk_matches_explicit_gradients():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)
    ).double()
    x1 = np.random.default_rng(1).normal(size=(5, 4))
    x2 = np.random.default_rng(2).normal(size=(3, 4))

    def grads(x):  # (n, k, P) by plain autograd, one output at a time
        out = []
        for row in x:
            per_out = []
            for k in range(3):
                net.zero_grad()
                net(torch.as_tensor(row)[None])[0, k].backward()
                per_out.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
            out.append(torch.stack(per_out))
        return torch.stack(out).numpy()

    g1, g2 = grads(x1), grads(x2)
    full = np.einsum("iap,jbp->ijab", g1, g2)
    np.testing.assert_allclose(empirical_ntk(net, x1, x2, trace=False), full, rtol=1e-12)
    np.testing.assert_allclose(
        empirical_ntk(net, x1, x2, block_size=2), np.einsum("ijaa->ij", full), rtol=1e-12
    )
    same = empirical_ntk(net, x1, block_size=2)
    np.testing.assert_allclose(same, empirical_ntk(net, x1, x1.copy()), rtol=1e-12)
    np.testing.assert_allclose(same, same.T, rtol=1e-12)


def test_mori_ueda_net_parameterisation():
    net = mori_ueda_net(D, 16, 2, BETA, seed=3)
    first, hidden, readout = net[0], net[2], net[4]
    assert first.w_scale == pytest.approx(np.sqrt(1.0 / D))
    assert hidden.w_scale == pytest.approx(np.sqrt(2.0 / 16))
    assert readout.w_scale == pytest.approx(np.sqrt(2.0 / 16))
    assert readout.b_std == BETA
    # tilde parameters are standard normal
    w = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    assert abs(float(w.std()) - 1.0) < 0.15
    # depth 0 is the linear model: its NTK is exactly Sigma_0 = x.x'/d + beta^2
    x = sphere(4, D, seed=4)
    lin = mori_ueda_net(D, 16, 0, BETA, seed=5)
    np.testing.assert_allclose(empirical_ntk(lin, x), x @ x.T / D + BETA**2, rtol=1e-12)
