"""Lee et al.'s deep-narrow init and scaled NTK, against independent truth: the init's
structure and exact zero output, the finite-depth NTK formula vs two empirical NTK paths,
Monte Carlo of the arc-cosine kernel and of the init kernel's convergence to Theta~inf,
kernel GD vs its explicit iteration, and the baseline's collapse at depth 200."""

import math

import numpy as np
import pytest
import torch

from depthlab.kernels.empirical import empirical_ntk_structured
from depthlab.models.packed_fc import FCEnsemble, deep_narrow_width
from depthlab.studies.lee.kernels import (
    arccos1,
    empirical_scaled_ntk,
    finite_init_kernel,
    kernel_gd,
    limit_kernel,
    sample_init_kernel,
    shift_inputs,
)
from depthlab.training.packed_sgd import Member, TrainConfig, train_members


def _dn(d, depth, k, c_l=1.0, seeds=(1, 2, 3), **kw):
    return FCEnsemble(d, depth, deep_narrow_width(d, k), k, list(seeds), init="deep_narrow",
                      init_params={"C_L": c_l, **kw}, dtype=torch.float64)


def _sequential(model, m):
    """Member m as an nn.Sequential of nn.Linear (weights transposed to torch's layout)."""
    layers = []
    for i, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        lin = torch.nn.Linear(w.shape[1], w.shape[2]).double()
        lin.weight.data = w[m].detach().T.clone()
        lin.bias.data = b[m, 0].detach().clone()
        layers.append(lin)
        if i < len(model.weights) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def test_deep_narrow_weights_and_exact_zero_output(one_thread):
    d, k, c_l, depth = 3, 2, 7.5, 6
    model = _dn(d, depth, k, c_l, seeds=range(200), rho=0.5, beta=2.0)
    n = d + k + 1
    w1, b1 = model.weights[0].detach(), model.biases[0].detach()
    assert w1.shape == (200, d, n)
    assert torch.equal(w1[:, :, :d], c_l * torch.eye(d, dtype=torch.float64).expand(200, d, d))
    assert torch.all(w1[:, :, d + 1:] == 0) and torch.all(b1[:, 0, :d] == 0)
    assert torch.all(b1[:, 0, d + 1:] == c_l)
    for w, b in zip(model.weights[1:-1], model.biases[1:-1], strict=True):
        w, b = w.detach(), b.detach()
        assert torch.equal(w[:, :d, :d], torch.eye(d, dtype=torch.float64).expand(200, d, d))
        assert torch.all(w[:, d, :] == 0)  # the random neuron feeds nothing at init
        eye_k = torch.eye(k, dtype=torch.float64).expand(200, k, k)
        assert torch.equal(w[:, d + 1:, d + 1:], eye_k)
        assert torch.all(w[:, d + 1:, :d + 1] == 0) and torch.all(w[:, :d, d + 1:] == 0)
        assert torch.all(b[:, 0, :d] == 0) and torch.all(b[:, 0, d + 1:] == 0)
    wl, bl = model.weights[-1].detach(), model.biases[-1].detach()
    assert torch.all(wl[:, :d + 1] == 0) and torch.all(bl == -c_l)
    # u ~ N(0, rho^2 / d), v ~ N(0, C_L^2 beta^2): moments over 200 members x 6 layers
    u = torch.cat([w.detach()[:, :d, d].reshape(-1) for w in model.weights[:-1]])
    v = torch.cat([b.detach()[:, 0, d] for b in model.biases[:-1]])
    assert float(u.var()) == pytest.approx(0.25 / d, rel=0.15)
    assert float(v.var()) == pytest.approx((c_l * 2.0) ** 2, rel=0.15)
    x = torch.rand(50, d, dtype=torch.float64)
    assert torch.all(model(x) == 0)  # exactly: relu(C_L) - C_L
    # the same member does not depend on the pack
    alone = _dn(d, depth, k, c_l, seeds=[7, 7], rho=0.5, beta=2.0)
    packed = _dn(d, depth, k, c_l, seeds=[3, 7], rho=0.5, beta=2.0)
    for a, b in zip(alone.weights, packed.weights, strict=True):
        assert torch.equal(a[0], b[1])


def test_init_validation():
    with pytest.raises(ValueError, match="width = d \\+ n_out \\+ 1"):
        FCEnsemble(3, 4, 7, 2, [0], init="deep_narrow")
    with pytest.raises(ValueError, match="unknown"):
        FCEnsemble(3, 4, 6, 2, [0], init="deep_narrow", init_params={"C": 1})
    with pytest.raises(ValueError, match="> 0"):
        FCEnsemble(3, 4, 6, 2, [0], init="deep_narrow", init_params={"C_L": 0})
    with pytest.raises(ValueError, match="takes no init_params"):
        FCEnsemble(3, 4, 6, 2, [0], init="he_uniform", init_params={"C_L": 1})
    with pytest.raises(ValueError, match="input_shift"):
        shift_inputs(np.ones(3), 1.0)
    assert np.allclose(shift_inputs(np.zeros(2), 0.01), 0.01)


@pytest.mark.parametrize("init,w_bound,b_bound", [("torch_default", 1.0, 1.0),
                                                  ("he_uniform", math.sqrt(6.0), 0.0)])
def test_uniform_baselines(init, w_bound, b_bound):
    model = FCEnsemble(400, 2, 300, 10, [0, 1], init=init)
    w, b = model.weights[1].detach(), model.biases[1].detach()
    limit = w_bound / math.sqrt(300)
    assert float(w.abs().max()) <= limit and float(w.abs().max()) > 0.99 * limit
    assert float(w.var()) == pytest.approx(limit**2 / 3, rel=0.02)  # U(-a, a): a^2 / 3
    assert float(b.abs().max()) <= b_bound / math.sqrt(300) + 1e-12
    if b_bound == 0:
        assert torch.all(b == 0)


@pytest.mark.parametrize("depth,d,k,c_l", [(3, 2, 1, 1.0), (50, 5, 3, 7.5), (20, 2, 2, 0.7)])
def test_finite_ntk_formula_equals_empirical(one_thread, depth, d, k, c_l):
    model = _dn(d, depth, k, c_l)
    rng = np.random.default_rng(depth)
    x1, x2 = rng.random((9, d)) + 0.01, rng.random((5, d))
    formula = finite_init_kernel(model, x1, x2)
    packed = empirical_scaled_ntk(model, x1, x2)  # (M, K, n1, n2)
    for kk in range(k):
        np.testing.assert_allclose(packed[:, kk], formula, rtol=1e-10, atol=0)
    for m in range(3):
        full = empirical_ntk_structured(_sequential(model, m), x1, x2, trace=False)
        scaled = full / (depth * c_l**2)
        np.testing.assert_allclose(np.einsum("ijkk->kij", scaled), packed[m], rtol=1e-10)
        off = scaled * (1 - np.eye(k))[None, None]
        assert np.all(off == 0)  # off-diagonal output blocks vanish exactly at init
        # the sampled draws without the net give the same kernel
        np.testing.assert_allclose(
            sample_init_kernel(x1, x2, depth=depth, n_out=k, seed=[1, 2, 3][m], C_L=c_l),
            formula[m], rtol=1e-12)


def test_arccos_kernel_monte_carlo():
    rng = np.random.default_rng(0)
    s1, s2, c = 1.5, 1.2, 0.9
    chol = np.linalg.cholesky([[s1, c], [c, s2]])
    z = rng.standard_normal((2_000_000, 2)) @ chol.T
    prod = np.maximum(z[:, 0], 0) * np.maximum(z[:, 1], 0)
    assert abs(prod.mean() - arccos1(s1, s2, c)) < 4 * prod.std() / math.sqrt(len(prod))
    # toy values of the notes: Theta~inf(x0, x(gamma)) = 2.750 at pi/4, 2.450 at gamma_1
    x0 = np.full((1, 2), 2**-0.5)
    g = np.array([np.linspace(0, np.pi / 2, 220)[10], np.pi / 4])
    row = limit_kernel(x0, np.c_[np.cos(g), np.sin(g)])[0]
    assert row == pytest.approx([2.4502, 2.7500], abs=1e-4)


def test_init_kernel_converges_to_limit(one_thread):
    """64 seeds: the mean of Theta~_0 is within 4 sd/sqrt(64) + bias of Theta~inf, and
    the spread falls by sqrt(10) from D = 100 to D = 1000."""
    x0 = np.full((1, 2), 2**-0.5)
    x1 = np.array([[np.cos(0.3), np.sin(0.3)]])
    pts = np.concatenate([x0, x1])
    limit = limit_kernel(x0, pts)[0]
    sds = []
    for depth in (100, 1000):
        vals = np.array([sample_init_kernel(x0, pts, depth=depth, n_out=1, seed=s, C_L=30.0)[0]
                         for s in range(64)])
        sd = vals.std(0, ddof=1)
        bias = (1.0 + 1.0 + 2.0) / depth + 0.5 / 30.0**2  # the r_1 and (x.x' + 1 + D) terms
        assert np.all(np.abs(vals.mean(0) - limit) < 4 * sd / 8 + bias)
        sds.append(sd)
    ratio = sds[1] / sds[0]
    assert np.all((ratio > 0.2) & (ratio < 0.45))  # theory 1/sqrt(10) = 0.316


def test_kernel_gd_matches_iteration():
    rng = np.random.default_rng(1)
    x = rng.random((30, 3))
    k = limit_kernel(x, n_out=2)
    y = rng.standard_normal((30, 2))
    f_eval, r_t = kernel_gd(k, k[:7], y, tau=0.3, steps=25)
    f = np.zeros((30, 2))
    for _ in range(25):
        f = f - 0.3 / 30 * k @ (f - y)
    np.testing.assert_allclose(r_t, f - y, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(f_eval, f[:7], rtol=1e-9, atol=1e-12)


def test_torch_default_baseline_collapses_at_depth_200(one_thread):
    d, width = 64, 75
    model = FCEnsemble(d, 200, width, 10, [0, 1], init="torch_default")
    x = torch.rand(64, d)
    out = model(x)
    assert float(out.detach().std(1).max()) < 1e-6  # the output no longer depends on the input
    loss = ((out - torch.rand_like(out)) ** 2).sum()
    loss.backward()
    assert torch.all(model.weights[0].grad == 0)  # no gradient reaches the first layer
    deep = _dn(d, 200, 10, seeds=[0, 1])
    deep.biases[-1].data += torch.randn(2, 1, 10, dtype=torch.float64)  # any nonzero readout
    with torch.no_grad():
        deep.weights[-2].data[:, d, d + 1:] = 0.1  # let the random neuron feed the outputs
    assert float(deep(x.double()).detach().std(1).min()) > 1e-3  # deep-narrow keeps the input


def test_packed_trainer_trains_deep_narrow_float64(one_thread):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data[:400] / 16.0, digits.target[:400]
    cfg = TrainConfig(depth=30, width=75, n_classes=10, loss="mse", batch_size=50,
                      check_every=1, max_epochs=3, init="deep_narrow",
                      init_params={"C_L": 1.0}, dtype="float64", device="cpu")
    seen = []
    res, model = train_members(x[:300], y[:300], x[300:], y[300:],
                               [Member(0, 0.005), Member(1, 0.005)], cfg, return_model=True,
                               on_epoch=lambda e, ids, pack, tr, te: seen.append(
                                   (e, ids, float(tr["loss"][0]), float(te()["error"][0]))))
    assert model.weights[0].dtype == torch.float64
    assert [s[0] for s in seen] == [1, 2, 3] and seen[0][1] == [0, 1]
    losses = [s[2] for s in seen]
    assert losses[-1] < losses[0] < 0.1  # starts at the zero output's 0.1 and falls
    assert res[0]["test_error"] < 0.8
