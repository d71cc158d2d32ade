"""Finite-time MSE gradient flow (Xiao eqs. 4-5) and frozen-kernel dynamics (Geiger App. C).

Tolerances: the closed-form flow is exact linear algebra (1e-9 relative to the predictions,
limited by the conditioning ~250 of the Gram); explicit Euler on the frozen-kernel MSE flow
is first order, so with ``dt * lr * lambda_max = 0.01`` it must agree with the closed form
to 1e-3 absolute (observed 1.7e-4, labels +-1) and halving ``dt`` must halve the error.
Gradient descent (``dt = 1``) has the exact closed form ``(I - (I - lr K)^k) Y`` (1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest

from depthlab.kernels import he_relu_spec, kernel_matrices
from depthlab.kernels.gram import compute_gram_file
from depthlab.kernels.regression import (
    flow_coefficients,
    flow_eig,
    frozen_kernel_dynamics,
    gradient_flow_predictions,
    ntk_flow_test_error,
    ntk_test_error,
    predict_flow_streamed,
)

SPEC = he_relu_spec(0.1)


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    x, x_test = rng.normal(size=(40, 6)), rng.normal(size=(23, 6))
    k = kernel_matrices(SPEC, 2, x)[1]
    k_test = kernel_matrices(SPEC, 2, x_test, x)[1]
    y = np.sign(x[:, 0] + 0.3 * x[:, 1])  # linearly separable, +-1
    return k, k_test, y


def test_flow_predictor_between_zero_and_kernel_regression(task):
    k, k_test, y = task
    lam_min = np.linalg.eigvalsh(k)[0]
    times = np.array([0.0, 1.0, 10.0, 100.0, 1e3, 1e4, np.inf])
    pred = gradient_flow_predictions(k, y, times, k_test, block_size=7)
    assert not pred.train[0].any() and not pred.test[0].any()  # mu_0 = 0 exactly
    mu_inf = k_test @ np.linalg.solve(k, y)
    err = np.abs(pred.test[:, :, 0] - mu_inf).max(axis=1)
    assert np.all(np.diff(err[:5]) < 0)  # then at the rounding floor
    scale = np.abs(mu_inf).max()
    assert err[-1] < 1e-9 * scale and err[-2] < 1e-9 * scale
    # the slowest mode decays like exp(-lambda_min t)
    assert err[3] <= np.exp(-lam_min * 100.0) * np.abs(y).sum() * np.abs(k_test).max() / lam_min
    np.testing.assert_allclose(pred.train[-1, :, 0], y, atol=1e-9)
    # the learning rate only rescales time
    np.testing.assert_allclose(
        gradient_flow_predictions(k, y, [5.0], k_test, lr=2.0).test,
        gradient_flow_predictions(k, y, [10.0], k_test).test,
        rtol=1e-12,
        atol=1e-14,
    )


def test_flow_streamed_equals_in_memory_and_gram_file(task, tmp_path):
    k, k_test, y = task
    coef = flow_coefficients(flow_eig(k), np.stack([y, -y], 1), [0.5, 3.0, np.inf])
    blocks = [k_test[i : i + 5] for i in range(0, 23, 5)]
    streamed = predict_flow_streamed(blocks, coef)
    np.testing.assert_allclose(streamed, np.einsum("mn,tnc->tmc", k_test, coef), rtol=1e-12)
    # from a Gram file, t = inf reproduces the ridgeless test error
    rng = np.random.default_rng(1)
    x, x_test = rng.choice([-1.0, 1.0], (60, 10)), rng.choice([-1.0, 1.0], (30, 10))
    yl, yl_test = (x[:, 0] > 0).astype(int), (x_test[:, 0] > 0).astype(int)
    path = compute_gram_file(tmp_path / "g.h5", x, x_test, SPEC, 2, block_size=16)
    res = ntk_flow_test_error(path, 60, yl, yl_test, 2, [0.0, 1.0, np.inf], block_size=16)
    ref = ntk_test_error(path, 60, yl, yl_test, 2)
    assert res["test_error"][-1] == ref["test_error"]
    assert res["train_error"][-1] == 0.0
    assert len(res["test_error"]) == 3


def test_frozen_mse_dynamics_matches_closed_form(task):
    k, k_test, y = task
    lam_max = np.linalg.eigvalsh(k)[-1]
    times = np.array([0.5, 2.0, 5.0])
    ref = gradient_flow_predictions(k, y, times, k_test)
    errs = []
    for dt in (0.01 / lam_max, 0.005 / lam_max):
        run = frozen_kernel_dynamics(k, y, times, loss="mse", dt=dt, k_test_train=k_test)
        np.testing.assert_allclose(run.times, times)
        errs.append(max(np.abs(run.train - ref.train).max(), np.abs(run.test - ref.test).max()))
        assert np.isnan(run.stop_time)
    assert errs[0] < 1e-3 and 1.8 < errs[0] / errs[1] < 2.2
    adaptive = frozen_kernel_dynamics(k, y, times, loss="mse", max_df=1e-3, k_test_train=k_test)
    assert np.abs(adaptive.test - ref.test).max() < 2e-3
    # gradient descent: dt = 1, learning rate lr
    lr, steps = 1.0 / lam_max, 25
    gd = frozen_kernel_dynamics(k, y, [steps], loss="mse", dt=1.0, lr=lr)
    exact = (np.eye(40) - np.linalg.matrix_power(np.eye(40) - lr * k, steps)) @ y
    assert gd.n_steps == steps
    np.testing.assert_allclose(gd.train[0, :, 0], exact, atol=1e-12)


@pytest.mark.parametrize(("tau", "mu"), [(0.0, None), (0.5, None), (0.0, 1000.0)])
def test_hinge_dynamics_stops_at_zero_loss(task, tau, mu):
    k, k_test, y = task
    n = len(y)
    times = [0.0, 5.0, 50.0, 1e3, 1e4]
    run = frozen_kernel_dynamics(
        k, y, times, loss="hinge", lr=1.0 / n, tau=tau, mu=mu, k_test_train=k_test
    )
    assert run.loss[0] == 1.0  # f_0 = 0: every margin is 0
    assert np.all(np.diff(run.loss) <= 0)
    assert 50.0 < run.stop_time < 1e3 and run.loss[-1] <= 1e-12
    margins = y * run.train[-1, :, 0]
    assert margins.min() == pytest.approx(1.0, abs=1e-12)  # stopped exactly on the boundary
    np.testing.assert_array_equal(run.train[-1], run.train[-2])  # nothing moves after
    expect = np.einsum("mn,tnc->tmc", k_test, run.coefficients)
    np.testing.assert_allclose(run.test, expect, rtol=1e-12, atol=1e-14)
    # the output change per step respects Geiger's bound
    assert run.n_steps >= np.abs(run.train[-1]).max() / 1e-2


def test_time_dependent_momentum_matches_its_exact_memory(task):
    """tau = t / mu: over [t, t + h] the velocity keeps (t / (t + h))^mu of itself, so at
    fixed steps the c-trajectory is a hand-computable recursion."""
    k, _, y = task
    n, mu, h = len(y), 3.0, 0.1
    run = frozen_kernel_dynamics(k, y, [0.5], loss="mse", lr=1.0 / n, dt=h, mu=mu)
    c, u, t = np.zeros(n), np.zeros(n), 0.0
    for _ in range(5):
        grad = k @ c - y
        x = 0.0 if t == 0 else (t / (t + h)) ** mu
        u = x * u - (1 - x) * grad / n
        c, t = c + h * u, t + h
    np.testing.assert_allclose(run.coefficients[-1, :, 0], c, rtol=1e-10)
    with pytest.raises(ValueError, match="not both"):
        frozen_kernel_dynamics(k, y, [1.0], tau=1.0, mu=10.0)


def test_frozen_dynamics_with_initial_outputs(task):
    k, k_test, y = task
    rng = np.random.default_rng(3)
    f0, f0_test = rng.normal(size=40), rng.normal(size=23)
    run = frozen_kernel_dynamics(
        k,
        y,
        [2.0],
        loss="mse",
        dt=0.002 / np.linalg.eigvalsh(k)[-1],
        f0_train=f0,
        k_test_train=k_test,
        f0_test=f0_test,
    )
    # linear model: the initial outputs add their own exp(-K t) decay on the train set
    ev, u = np.linalg.eigh(k)
    decay = (u * np.exp(-2.0 * ev)) @ u.T
    np.testing.assert_allclose(run.train[0, :, 0], y + decay @ (f0 - y), atol=1e-3)
    assert run.test.shape == (1, 23, 1)
    assert np.abs(run.test[0, :, 0] - f0_test - k_test @ run.coefficients[0, :, 0]).max() < 1e-12
