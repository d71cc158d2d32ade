"""Nichani et al.'s nets and linear-network analysis: the identity-trick operator against
torch.func.jacrev, circular padding's position-constant operator, the toy's minimum-norm
predictor (norm sqrt 2, zero on every test image), the autoencoder projector, the toy's
geometry and the Fully-Conv layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from depthlab.studies.nichani.data import BLUE, RED, ae_images, pixel_toy
from depthlab.studies.nichani.models import (
    ToeplitzNet,
    fc_baseline,
    fully_conv,
    linear_conv_net,
    linear_operator,
    min_norm_operator,
    stable_rank,
)
from depthlab.studies.nichani.runs import linear_job, train_linear


def _jacobian(model, shape):
    x0 = torch.zeros(1, *shape, dtype=torch.float64)
    jac = torch.func.jacrev(lambda x: model(x).reshape(-1))(x0)
    return jac.reshape(jac.shape[0], -1).detach().numpy()


@pytest.mark.parametrize("pool,out,padding", [(True, 1, "zero"), (False, 2, "zero"),
                                              (False, 2, "circular")])
def test_identity_trick_equals_jacobian(pool, out, padding):
    torch.manual_seed(0)
    model = linear_conv_net(2, 3, 3, out, pool=pool, padding=padding, seed=3)
    w = linear_operator(model, (2, 5, 5))
    np.testing.assert_allclose(w, _jacobian(model, (2, 5, 5)), rtol=1e-12, atol=1e-14)
    # and it is the map: W x = f(x) for a random input
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    np.testing.assert_allclose(w @ x.reshape(-1).numpy(), model(x).reshape(-1).detach().numpy(),
                               rtol=1e-10, atol=1e-12)


def test_toeplitz_operator_is_the_product_of_toeplitz_matrices():
    net = ToeplitzNet(5, 3, seed=1)
    w = linear_operator(net, (5,))
    np.testing.assert_allclose(w, _jacobian(net, (5,)), rtol=1e-12, atol=1e-14)
    mats = [t.detach().numpy() for t in net.matrices()]
    for t in mats:  # constant along every diagonal
        for k in range(-4, 5):
            assert np.ptp(np.diagonal(t, k)) == 0
    np.testing.assert_allclose(w, mats[2] @ mats[1] @ mats[0], rtol=1e-12)


def test_circular_padding_gives_a_position_constant_operator():
    model = linear_conv_net(3, 4, 4, 1, padding="circular", pool=True, seed=2)
    w = linear_operator(model, (3, 6, 6)).reshape(3, 36)
    assert np.all(np.ptp(w, axis=1) < 1e-12 * np.abs(w).max())
    zero = linear_operator(linear_conv_net(3, 4, 4, 1, padding="zero", pool=True, seed=2),
                           (3, 6, 6)).reshape(3, 36)
    assert np.all(np.ptp(zero, axis=1) > 1e-3 * np.abs(zero).max())  # zero padding is not


def test_pixel_toy_geometry():
    toy = pixel_toy(seed=0)
    x, y = toy["x_train"], toy["y_train"]
    assert x.shape == (2, 3, 6, 6) and y.tolist() == [1.0, -1.0]
    assert x[0, BLUE, 0, 0] == 1 and x[1, RED, 0, 0] == 1 and x.sum() == 2
    xt, yt = toy["x_test"], toy["y_test"]
    assert xt.shape == (200, 3, 6, 6) and (yt == 1).sum() == 100 == (yt == -1).sum()
    assert np.all(xt.reshape(200, -1).sum(1) == 1)
    c, r, q = np.nonzero(xt)[1:]
    assert r.min() >= 3 and q.min() >= 3  # lower-right 3 x 3 quadrant
    assert np.all(np.where(yt == 1, BLUE, RED) == c)
    rnd = pixel_toy(4, 20, "random", seed=1)
    c, r, q = np.nonzero(rnd["x_train"])[1:]
    assert len(c) == 8 and r.max() < 3 and q.max() < 3


def test_toy_min_norm_predictor():
    toy = pixel_toy(seed=0)
    w = min_norm_operator(toy["x_train"], toy["y_train"])
    assert w.shape == (1, 108)
    assert np.linalg.norm(w) == pytest.approx(math.sqrt(2), rel=1e-14)
    expect = np.zeros((3, 6, 6))
    expect[BLUE, 0, 0], expect[RED, 0, 0] = 1, -1
    np.testing.assert_allclose(w.reshape(3, 6, 6), expect, atol=1e-14)
    assert np.max(np.abs(toy["x_test"].reshape(200, -1) @ w.ravel())) == 0.0
    # any interpolating linear predictor has norm >= sqrt 2
    other = w.ravel() + np.random.default_rng(0).standard_normal(108) * (
        np.abs(toy["x_train"].reshape(2, -1)).sum(0) == 0)
    assert np.linalg.norm(other) > math.sqrt(2)


@pytest.mark.parametrize("n", [1, 5])
def test_autoencoder_min_norm_is_the_projector(n):
    x = ae_images("digits", n, seed=3).reshape(n, -1)
    w = min_norm_operator(x, x)
    np.testing.assert_allclose(w, w.T, atol=1e-10)
    np.testing.assert_allclose(w @ w, w, atol=1e-10)
    np.testing.assert_allclose(w @ x.T, x.T, atol=1e-10)
    assert np.linalg.norm(w) == pytest.approx(math.sqrt(n), rel=1e-9)
    assert np.linalg.norm(w, 2) == pytest.approx(1.0, rel=1e-9)
    assert stable_rank(w) == pytest.approx(n, rel=1e-9)
    v = ae_images("vector", 1, seed=0, dim=5)
    np.testing.assert_allclose(min_norm_operator(v, v), v.T @ v / (v @ v.T), atol=1e-12)


def test_stable_rank_bounds():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 4))
    assert 1.0 <= stable_rank(a) <= 4.0
    assert stable_rank(np.outer(rng.standard_normal(6), rng.standard_normal(4))) == \
        pytest.approx(1.0)
    assert stable_rank(np.eye(5)) == pytest.approx(5.0)


def test_training_reaches_an_interpolating_operator():
    toy = pixel_toy(seed=0)
    torch.manual_seed(0)
    model = linear_conv_net(3, 4, 2, 1, pool=True, seed=0)
    status, steps, loss = train_linear(model, toy["x_train"], toy["y_train"], 1e-2, 1e-8, 5000)
    assert status == "converged" and loss < 1e-8
    w = linear_operator(model, (3, 6, 6))
    np.testing.assert_allclose(toy["x_train"].reshape(2, -1) @ w.ravel(), [1, -1], atol=1e-3)
    assert np.linalg.norm(w) >= math.sqrt(2) * (1 - 1e-3)


def test_linear_job_records_min_norm_values():
    task = {"name": "t", "task": "toeplitz_ae", "depths": [1, 2], "seeds": [0], "width": 1,
            "padding": "zero", "kernel_size": 3, "init": "xavier_normal", "lr": 1e-2,
            "loss_tol": 1e-8, "max_steps": 3000, "placement": "corner", "n_per_class": 1,
            "n_test": 2, "n_images": 1, "dim": 5, "data_seed": 0}
    res = linear_job(task)
    assert res["min_norm_norm"] == pytest.approx(1.0) and res["min_norm_stable_rank"] == \
        pytest.approx(1.0)
    assert res["status"].shape == (2, 1) and np.all(res["stable_rank"] >= 1 - 1e-9)


def test_fully_conv_layout():
    net = fully_conv(3, 8, 4, 10, seed=0)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5  # d + 1 conv layers
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 4
    assert all(float(c.bias.detach().abs().max()) == 0 for c in convs)
    assert convs[-1].out_channels == 10 and convs[0].in_channels == 3
    out = net(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 10)
    # same seed, same net
    a, b = fully_conv(1, 4, 2, 3, seed=7), fully_conv(1, 4, 2, 3, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert fc_baseline(64, 32, 10)(torch.randn(3, 1, 8, 8)).shape == (3, 10)
