"""Geiger et al.: FC net of App. B, momentum hinge dynamics with the App. A step rule, lazy
limit, kernel change, ensembles, power-law fits.

Tolerances:
* gain ``a``: the paper quotes 1.404; quadrature gives 1.40438 (|diff| < 1e-3).  Monte Carlo
  second moments use 2e6 normal samples (std of the estimate ~1.5e-3, tolerance 1e-2);
  preactivation variances of a width-3000 net, 16 unit-norm inputs: tolerance 5 %.
* lazy limit: at alpha = 1e4 the net's test outputs ``F`` and the frozen-initial-NTK
  prediction differ by ``||F - F_lazy|| / ||F_lazy|| < 1e-2`` (observed 1.5e-3: both follow
  the same tau = t/1000 momentum flow, with different Euler steps of ~3e-3 in F and the
  net's residual 1/alpha nonlinearity); at alpha = 1e-2 (feature regime) they differ by
  > 0.1 (observed ~0.6).
* kernel change ~ 1/alpha in the lazy regime: the ratio between alpha = 1e2 and 1e4 is
  within [30, 300] (observed ~100).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from depthlab.activations import activation_gain
from depthlab.fits import exponent_fit
from depthlab.models import GainActivation, NTKLinear
from depthlab.studies.geiger.runs import (
    ensemble_stats,
    frozen_ntk_prediction,
    geiger_fc,
    train_lazy_feature,
    train_lazy_feature_packed,
)
from depthlab.training.hinge import DF_BAND, _momentum_decay, hinge_flow, pm_labels

torch.set_num_threads(1)

ALPHAS = (1e-2, 1.0, 1e2, 1e4)


def _task(n_train=40, n_test=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_train + n_test, d))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)  # linearly separable, labels {0, 1}
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


@pytest.fixture(scope="module")
def sweep():
    """One lazy prediction and one training per alpha (width 64, depth 2, seed 0)."""
    torch.set_num_threads(1)
    data = _task()
    lazy = frozen_ntk_prediction(*data, width=64, depth=2, seed=0)
    runs = {
        a: train_lazy_feature(*data, alpha=a, width=64, depth=2, seed=0, lazy=lazy,
                              return_steps=True, ntk_subset=40)
        for a in ALPHAS
    }
    return data, lazy, runs


# ----------------------------------------------------------------------------- model


def test_activation_gain_gives_unit_second_moment():
    a_sp, a_relu = activation_gain("softplus", 5.0), activation_gain("relu")
    assert abs(a_sp - 1.404) < 1e-3  # the paper's value
    assert a_relu == pytest.approx(math.sqrt(2.0), rel=1e-10)
    z = torch.as_tensor(np.random.default_rng(0).standard_normal(2_000_000))
    for act in ("softplus", "relu"):
        m2 = float(GainActivation(act, 5.0)(z).pow(2).mean())
        assert m2 == pytest.approx(1.0, abs=1e-2)
    # the module is (a / beta) log(1 + e^(beta z))
    zz = np.linspace(-8, 8, 101)
    ref = a_sp * np.logaddexp(0.0, 5.0 * zz) / 5.0
    np.testing.assert_allclose(GainActivation()(torch.as_tensor(zz)).numpy(), ref, rtol=1e-13)


@pytest.mark.parametrize("activation", ["softplus", "relu"])
def test_preactivations_have_unit_variance_at_init(activation):
    d, width, depth = 10, 3000, 3
    net = geiger_fc(d, width, depth, activation=activation, seed=1)
    x = torch.as_tensor(np.random.default_rng(2).normal(size=(16, d)))
    x = x / x.norm(dim=1, keepdim=True) * math.sqrt(d)  # unit-variance components on average
    h = x
    variances = []
    with torch.no_grad():
        for m in net:
            h = m(h)
            if isinstance(m, NTKLinear) and h.shape[1] > 1:
                variances.append(float(h.pow(2).mean()))
    assert len(variances) == depth
    np.testing.assert_allclose(variances, 1.0, atol=0.05)
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in net if isinstance(m, NTKLinear))
    # weights are standard normal
    w = torch.cat([m.weight.detach().flatten() for m in net if isinstance(m, NTKLinear)])
    assert float(w.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(w.std()) == pytest.approx(1.0, abs=0.01)


def test_pm_labels():
    np.testing.assert_array_equal(pm_labels([0, 1, 1, 0]), [-1, 1, 1, -1])
    np.testing.assert_array_equal(pm_labels([-1, 1]), [-1, 1])
    with pytest.raises(ValueError):
        pm_labels([0, 2])


def test_momentum_relaxation_is_exact():
    # relaxing over dt1 then dt2 equals one step dt1 + dt2 (same gradient)
    for mu, tau in ((1000.0, None), (None, 10.0)):
        one = _momentum_decay(2.0, 0.3, mu, tau)
        two = _momentum_decay(2.0, 0.1, mu, tau) * _momentum_decay(2.1, 0.2, mu, tau)
        assert one == pytest.approx(two, rel=1e-12)
    assert _momentum_decay(0.0, 0.1, 1000.0, None) == 0.0  # tau = t/mu is 0 at t = 0
    assert _momentum_decay(5.0, 0.1, None, None) == 0.0  # vanilla gradient descent


# ----------------------------------------------------------------------------- dynamics


def test_hinge_loss_reaches_zero_with_the_step_rule(sweep):
    (xtr, ytr, xte, yte), _, runs = sweep
    for alpha, r in runs.items():
        assert r["status"] == "converged", alpha
        assert r["aloss"] == 0.0 and r["traj_aloss"][-1] == 0.0
        margins = r["train_outputs"] * pm_labels(ytr)
        assert margins.min() >= 1.0  # every margin satisfied: hinge loss exactly 0
        assert r["train_err"] == 0.0
        # App. A eq. 18 on every accepted step, no exception
        assert r["n_band_violations"] == 0
        assert np.all((r["step_df"] > DF_BAND[0]) & (r["step_df"] < DF_BAND[1]))
        assert len(r["step_df"]) == r["n_steps"]
        # times: t2 is the time of the last step; records are log-spaced and end there
        assert r["t2"] == r["t_end"] == r["step_t"][-1] == r["traj_t"][-1]
        assert np.all(np.diff(r["traj_t"]) > 0) and r["traj_t"][0] == 0.0
        assert r["traj_aloss"][0] == 1.0 and r["traj_w_change"][0] == 0.0
        assert r["traj_df_test"][0] == 0.0
        assert 0.0 < r["t1"] < r["t2"]
        assert np.all(r["traj_aloss"][r["traj_t"] < r["t1"]] > 0.5)
        np.testing.assert_allclose(np.cumsum(r["step_dt"]), r["step_t"], rtol=1e-12)


def test_lazy_limit_and_kernel_change(sweep):
    _, lazy, runs = sweep
    assert lazy["lazy_status"] == "converged"
    assert runs[1e4]["lazy_vs_net"] < 1e-2
    assert runs[1e-2]["lazy_vs_net"] > 0.1
    # the lazy net also stops when the frozen dynamics does
    assert runs[1e4]["t2"] == pytest.approx(lazy["lazy_t2"], rel=1e-2)
    change = [runs[a]["ntk_change"] for a in ALPHAS]
    assert np.all(np.diff(change) < 0), change
    assert 30 < change[2] / change[3] < 300  # ~ 1/alpha in the lazy regime
    assert change[0] > 1.0  # feature regime: the kernel changes by more than itself
    w_change = [runs[a]["w_change"] for a in ALPHAS]
    assert np.all(np.diff(w_change) < 0)
    # ||f - f0|| grows as 1/alpha once lazy (F = alpha (f - f0) is O(1) at the end)
    assert runs[1e2]["df_test"] / runs[1e4]["df_test"] == pytest.approx(100, rel=0.05)


def test_packed_runs_are_the_lone_runs_bitwise(sweep):
    """train_lazy_feature_packed: the sweep's four alphas (whose step sequences and stopping
    times differ) trained as one pack give every scalar and array of their lone
    train_lazy_feature results exactly, wall_time aside (tests/unit/test_packed_hinge.py
    checks the dynamics itself)."""
    data, lazy, runs = sweep
    packed = train_lazy_feature_packed(*data, members=[(a, 0) for a in ALPHAS], width=64,
                                       depth=2, lazy={0: lazy}, return_steps=True,
                                       ntk_subset=40)
    assert len({runs[a]["n_steps"] for a in ALPHAS}) == len(ALPHAS)
    for alpha, res in zip(ALPHAS, packed, strict=True):
        alone = runs[alpha]
        assert res.keys() == alone.keys()
        for key, value in alone.items():
            if key == "wall_time":
                continue
            if isinstance(value, np.ndarray | float):
                assert np.array_equal(value, res[key], equal_nan=True), (alpha, key)
            else:
                assert value == res[key], (alpha, key)
    with pytest.raises(ValueError, match="FC nets and full-batch"):
        train_lazy_feature_packed(*data, members=[(1.0, 0)], width=8, depth=2,
                                  temperature=1e-3, lazy=False)


def test_max_steps_cap_and_generic_engine_agree():
    xtr, ytr, _, _ = _task()
    x, y = torch.as_tensor(xtr), torch.as_tensor(pm_labels(ytr))
    net = geiger_fc(5, 16, 2, seed=3)
    wrapped = torch.nn.Sequential(geiger_fc(5, 16, 2, seed=3))  # not recognised: autograd path
    a = hinge_flow(net, x, y, alpha=1.0, max_steps=60, return_steps=True)
    b = hinge_flow(wrapped, x, y, alpha=1.0, max_steps=60, return_steps=True)
    assert a["status"] == b["status"] == "max_steps" and a["n_steps"] == 60
    assert math.isnan(a["t2"])
    np.testing.assert_allclose(a["step_dt"], b["step_dt"], rtol=1e-9)
    for p, q in zip(net.parameters(), wrapped.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)
    c = hinge_flow(geiger_fc(5, 16, 2, seed=3), x, y, alpha=1.0, max_time=0.5)
    assert c["status"] == "max_steps" and 0.5 <= c["t"] < 0.6


def test_stochastic_variant_fixed_temperature():
    xtr, ytr, _, _ = _task()
    x, y = torch.as_tensor(xtr), torch.as_tensor(pm_labels(ytr))
    n, temp = len(y), 2e-3
    run = hinge_flow(geiger_fc(5, 32, 1, seed=0), x, y, alpha=1.0, tau=10.0,
                     temperature=temp, batch_seed=1, max_steps=20_000, return_steps=True)
    assert run["status"] == "converged" and run["aloss"] == 0.0
    assert float((run["train_outputs"] * y).min()) >= 1.0
    # eq. 19 with the step actually taken (clipped to [1, n])
    b = run["step_batch"]
    expect = np.clip(np.round(n / ((temp / run["step_dt"]) * (n - 1) + 1)), 1, n)
    np.testing.assert_array_equal(b, expect)
    assert b.min() < n  # really stochastic
    assert np.all((run["step_df"] > DF_BAND[0]) & (run["step_df"] < DF_BAND[1]))
    t_lo, t_hi = run["temperature_eff"]
    assert t_lo <= t_hi and t_hi < 2 * temp


# ----------------------------------------------------------------------------- analysis


def test_ensemble_average_and_variance():
    outputs = np.array([[1.0, -2.0, 0.5], [3.0, -1.0, -1.5]])
    stats = ensemble_stats(outputs, [1, 0, 1])  # +-1: [1, -1, 1]
    np.testing.assert_array_equal(stats["member_test_err"], [0.0, 1 / 3])
    assert stats["mean_test_err"] == pytest.approx(1 / 6)
    np.testing.assert_allclose(stats["mean_output"], [2.0, -1.5, -0.5])
    assert stats["ensemble_test_err"] == pytest.approx(1 / 3)  # third point: mean -0.5
    assert stats["var_f"] == pytest.approx(0.75)  # deviations +-1, +-0.5, +-1
    # averaging cancels members' errors
    votes = ensemble_stats([[1.0, 1.0, -0.2], [1.0, -0.2, 1.0], [-0.2, 1.0, 1.0]], [1, 1, 1])
    assert votes["mean_test_err"] == pytest.approx(1 / 3) and votes["ensemble_test_err"] == 0.0


def test_exponent_fit_recovers_power_laws():
    x = np.logspace(-3, 2, 26)
    clean = 2.0 * x**-1.25
    fit = exponent_fit(x, clean, (1e-3, 1.0))
    assert fit["slope"] == pytest.approx(-1.25, abs=1e-12)
    assert fit["prefactor"] == pytest.approx(2.0, rel=1e-10) and fit["slope_stderr"] < 1e-12
    # a saturating tail outside the range must not matter; noise: the stderr is honest
    rng = np.random.default_rng(0)
    inside = 0
    trials = 400
    for _ in range(trials):
        y = np.where(x <= 1.0, clean, 2.0) * np.exp(0.1 * rng.normal(size=x.size))
        fit = exponent_fit(x, y, (1e-3, 1.0))
        assert fit["n_points"] == 16
        inside += abs(fit["slope"] + 1.25) < 2 * fit["slope_stderr"]
    assert 0.9 < inside / trials < 0.99  # ~95 % for a 2-sigma interval
    # seeds x points: all points enter the fit
    ys = 0.3 * x[None, :] ** 0.35 * np.exp(0.05 * rng.normal(size=(5, x.size)))
    fit = exponent_fit(x, ys)
    assert fit["n_points"] == 5 * x.size and abs(fit["slope"] - 0.35) < 3 * fit["slope_stderr"]
    with pytest.raises(ValueError):
        exponent_fit(x, clean, (1e5, 1e6))


# ----------------------------------------------------------------------------- CNN (setup B)


def test_cnn_layout_and_unit_preactivations():
    """4 hidden convolutions, stride 2 at the first and the middle one; with N(0, 1) weights
    over fan_in^1/2 and the unit-variance gain, every layer's preactivations have second
    moment 1.  Monte Carlo over 16 initializations x 64 channels at the central 2x2 pixels
    of 8 random 32x32 images (out of reach of the zero padding; deep ReLU layers correlate
    the images, so ~1000 effective samples, std ~0.045): tolerance 0.15."""
    from depthlab.models import NTKConv2d
    from depthlab.studies.geiger.models import strided_cnn as geiger_cnn

    convs = [m for m in geiger_cnn((32, 32), 4, 4, seed=0) if isinstance(m, NTKConv2d)]
    assert [c.stride for c in convs] == [2, 1, 2, 1]
    x = torch.randn(8, 1024, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    moments = np.zeros(4)
    for seed in range(16):
        h, layer = x, 0
        with torch.no_grad():
            for m in geiger_cnn((32, 32), 64, 4, seed=seed):
                h = m(h)
                if isinstance(m, NTKConv2d):
                    c = h.shape[-1] // 2
                    centre = h[:, :, c - 1 : c + 1, c - 1 : c + 1]
                    moments[layer] += float(centre.pow(2).mean()) / 16
                    layer += 1
        assert h.shape == (8, 1)
    assert np.allclose(moments, 1.0, atol=0.15), moments


def test_cnn_stochastic_dynamics_reaches_zero_loss():
    from depthlab.data.mnist import digits_parity_dataset

    torch.set_num_threads(1)
    data = digits_parity_dataset({"pca_components": None, "d": 64, "n_train": 16,
                                  "n_test": 40}, 56, np.random.default_rng(0))
    run = train_lazy_feature(
        data["x_train"], data["y_train"], data["x_test"], data["y_test"], alpha=1.0, width=4,
        depth=4, seed=0, architecture="cnn", image_shape=(8, 8), mu=None, tau=10.0,
        temperature=1e-4, ntk_subset=10, max_steps=20000, lazy=False,
    )  # (the CNN's frozen-NTK twin runs in tests/test_geiger_workflow.py)
    assert run["status"] == "converged" and run["train_err"] == 0.0
    assert run["n_band_violations"] == 0 and run["ntk_change"] > 0
    with pytest.raises(ValueError, match="image shape"):
        train_lazy_feature(data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                           alpha=1.0, width=4, depth=4, seed=0, architecture="cnn",
                           image_shape=(7, 7))


def test_device_auto_trains_where_it_says_with_the_same_numbers():
    """device="auto" picks the GPU where present (else the CPU) and records it; the initial
    net comes from one CPU generator either way, so results agree with the CPU run (bitwise
    on CPU; float64 rounding on a GPU)."""
    from depthlab.training.device import resolve_device

    torch.set_num_threads(1)
    data = _task(n_train=20, n_test=30)
    kw = dict(alpha=1.0, width=16, depth=2, seed=3, ntk_subset=10, lazy=False)
    cpu = train_lazy_feature(*data, device="cpu", **kw)
    auto = train_lazy_feature(*data, device="auto", **kw)
    assert cpu["device"] == "cpu" and auto["device"] == str(resolve_device("auto"))
    if auto["device"] == "cpu":
        np.testing.assert_array_equal(auto["test_outputs"], cpu["test_outputs"])
        assert auto["n_steps"] == cpu["n_steps"]
    else:
        np.testing.assert_allclose(auto["test_outputs"], cpu["test_outputs"], rtol=1e-6)
