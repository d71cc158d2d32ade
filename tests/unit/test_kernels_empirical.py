"""Analytic kernels vs Monte Carlo over random initialisations of wide finite nets.

Tolerance: the max over entries of |MC mean - analytic| relative to the largest kernel
entry must be below 4% for the wide nets (width 2048 at depth 1, 1024 at depth 3;
observed 0.6-2.4%); the MC error is dominated by the per-init fluctuation
~ 1/sqrt(width * n_inits), so it must be at least 2x smaller than at width 128 with the
same inits (observed 4x).  Seeds are fixed, so the test is
deterministic.  The NNGP estimate averages the readout analytically
(``feature_nngp``), an unbiased per-init estimate with far less noise than f(x) f(x').

The structured (per-layer) and NTK-vector-product empirical NTKs must equal the
``torch.func`` Jacobian contraction to 1e-10 relative to the largest entry in float64
(observed ~3e-16).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthlab.kernels import he_relu_spec, kernel_matrices
from depthlab.kernels.empirical import (
    empirical_ntk,
    empirical_ntk_structured,
    feature_nngp,
    ntk_relative_change,
    ntk_vector_product,
)
from depthlab.models import FCSpec, fc_net


def mori_ueda_net(d, width, depth, beta=0.1, seed=0, *, n_out=1, dtype=torch.float64):
    """Mori & Ueda's ReLU net (supp. A) in NTK parameterisation, from the shared builder."""
    spec = FCSpec(activation="relu", w_var=2.0, first_w_var=1.0, b_std=beta)
    return fc_net(d, width, depth, spec, seed=seed, n_out=n_out, dtype=dtype)

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
    nngp, ntk = kernel_matrices(he_relu_spec(BETA), depth, x)
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


def deep_narrow_mlp(d_in: int, d_out: int, depth: int, seed: int) -> torch.nn.Sequential:
    """Lee et al.'s deep narrow ReLU MLP shape: width d_in + d_out + 1, plain nn.Linear."""
    torch.manual_seed(seed)
    width = d_in + d_out + 1
    layers: list[torch.nn.Module] = [torch.nn.Linear(d_in, width), torch.nn.ReLU()]
    for _ in range(depth - 2):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(width, d_out))
    return torch.nn.Sequential(*layers).double()


def mixed_mlp() -> torch.nn.Sequential:
    """Standard parameterisation, nesting, a bias-free layer and smooth activations."""
    torch.manual_seed(7)
    nn = torch.nn
    inner = nn.Sequential(nn.Linear(9, 6, bias=False), nn.GELU())
    return nn.Sequential(
        nn.Linear(5, 9), nn.Tanh(), inner, nn.Linear(6, 6), nn.Softplus(), nn.Linear(6, 2)
    ).double()


NETS = {
    "mori_ueda_multi": lambda: mori_ueda_net(5, 16, 3, BETA, seed=1, n_out=3),
    "mori_ueda_linear": lambda: mori_ueda_net(5, 16, 0, BETA, seed=2),
    "mixed": mixed_mlp,
    "deep_narrow": lambda: deep_narrow_mlp(5, 1, 30, seed=3),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_structured_and_ntk_vp_equal_jacobian_contraction(name):
    net = NETS[name]()
    rng = np.random.default_rng(11)
    x1, x2 = rng.normal(size=(7, 5)), rng.normal(size=(4, 5))
    for trace in (True, False):
        for a, b in ((x1, None), (x1, x2)):
            ref = empirical_ntk(net, a, b, trace=trace, block_size=3)
            tol = 1e-10 * np.abs(ref).max()
            for method in ("structured", "ntk_vp"):
                got = empirical_ntk(net, a, b, trace=trace, method=method, block_size=3)
                assert got.shape == ref.shape
                np.testing.assert_allclose(got, ref, rtol=0, atol=tol, err_msg=method)
    same = empirical_ntk_structured(net, x1)
    assert np.array_equal(same, same.T)
    # matrix-free product with the full (untraced) operator
    full = empirical_ntk(net, x1, x2, trace=False)
    v = rng.normal(size=(4, full.shape[-1]))
    np.testing.assert_allclose(
        ntk_vector_product(net, x1, x2, v),
        np.einsum("ijab,jb->ia", full, v),
        rtol=0,
        atol=1e-10 * np.abs(full).max() * np.abs(v).sum(),
    )


def test_structured_ntk_refuses_what_it_cannot_handle():
    lin = torch.nn.Linear(3, 3).double()
    with pytest.raises(TypeError, match="used twice"):
        empirical_ntk_structured(torch.nn.Sequential(lin, torch.nn.ReLU(), lin), np.ones((2, 3)))
    with pytest.raises(TypeError, match="not a dense layer"):
        norm = torch.nn.Sequential(lin, torch.nn.LayerNorm(3).double())
        empirical_ntk_structured(norm, np.ones((2, 3)))
    with pytest.raises(ValueError, match="method"):
        empirical_ntk(lin, np.ones((2, 3)), method="bogus")


def test_ntk_relative_change():
    theta0 = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert ntk_relative_change(theta0, theta0) == 0.0
    assert ntk_relative_change(1.5 * theta0, theta0) == pytest.approx(0.5, rel=1e-15)
    delta = np.array([[0.0, 0.3], [0.3, 0.0]])
    expect = np.sqrt(2 * 0.09) / np.sqrt(4 + 1 + 1 + 4)
    assert ntk_relative_change(theta0 + delta, theta0) == pytest.approx(expect, rel=1e-14)
    with pytest.raises(ValueError, match="shapes"):
        ntk_relative_change(theta0, theta0[:1])
