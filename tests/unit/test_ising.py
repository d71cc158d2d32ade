"""Exact sampler of the periodic 1D Ising chain (supplementary C) against exact results."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from depthlab.data import GENERATORS, generate
from depthlab.data.ising import (
    bond_plus_probability,
    energy,
    exact_correlation,
    exact_mean_energy,
    sample_ising,
)

N = 200_000


def brute_force(d: int, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """All 2^d states (rows) and their Gibbs probabilities exp(-beta H) / Z."""
    states = np.array(list(itertools.product([-1, 1], repeat=d)), dtype=np.float64)
    w = np.exp(-beta * energy(states))
    return states, w / w.sum()


def test_bond_probability_sign():
    # H = +sum sigma sigma: anti-aligned bonds (tau = -1) are favoured for beta > 0
    assert bond_plus_probability(0.0) == 0.5
    assert bond_plus_probability(0.3) == pytest.approx(np.exp(-0.3) / (2 * np.cosh(0.3)))
    assert bond_plus_probability(0.3) < 0.5


@pytest.mark.parametrize("d", [4, 5, 6])
@pytest.mark.parametrize("beta", [0.3, 1.0])
def test_exact_formulas_match_enumeration(d, beta):
    states, p = brute_force(d, beta)
    for r in range(d + 1):
        corr = p @ (states[:, 0] * states[:, r % d])
        assert exact_correlation(beta, d, r) == pytest.approx(corr, abs=1e-12)
    assert exact_mean_energy(beta, d) == pytest.approx(p @ energy(states), abs=1e-12)


@pytest.mark.parametrize("beta", [0.3, 1.0])
def test_correlations_and_energy(beta):
    d = 6
    x = sample_ising(N, d, beta, np.random.default_rng(11)).astype(np.float64)
    assert set(np.unique(x)) == {-1.0, 1.0}
    assert np.all((d - energy(x)) % 4 == 0)  # ring: even number of broken bonds
    for r in (1, 2, 3, 5):
        per_sample = (x * np.roll(x, -r, axis=1)).mean(axis=1)  # average over sites i
        mean, sem = per_sample.mean(), per_sample.std(ddof=1) / np.sqrt(N)
        exact = exact_correlation(beta, d, r)
        assert abs(mean - exact) < 5 * sem + 1e-12, (r, mean, exact, sem)
    if beta == 1.0:
        # the finite-d (ring) correction is resolved: t^3 alone is far off at r = 3
        per_sample = (x * np.roll(x, -3, axis=1)).mean(axis=1)
        sem = per_sample.std(ddof=1) / np.sqrt(N)
        assert abs(per_sample.mean() - (-np.tanh(beta)) ** 3) > 20 * sem
    e = energy(x)
    assert abs(e.mean() - exact_mean_energy(beta, d)) < 5 * e.std(ddof=1) / np.sqrt(N)
    # magnetisation is symmetric
    m = x.mean(axis=1)
    assert abs(m.mean()) < 5 * m.std(ddof=1) / np.sqrt(N)


@pytest.mark.parametrize("beta", [0.1, 0.7])
def test_full_distribution_d4(beta):
    d = 4
    states, p = brute_force(d, beta)
    x = sample_ising(N, d, beta, np.random.default_rng(5))
    code = ((x > 0).astype(np.int64) * (1 << np.arange(d - 1, -1, -1))).sum(axis=1)
    counts = np.bincount(code, minlength=2**d)  # same order as itertools.product([-1, 1])
    expected = N * p
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, df=2**d - 1) > 1e-3, chi2
    assert np.max(np.abs(counts / N - p)) < 5 * np.sqrt(p.max() / N)


def test_large_chain_and_determinism():
    a = sample_ising(3000, 500, 0.3, np.random.default_rng(1))
    b = sample_ising(3000, 500, 0.3, np.random.default_rng(1))
    assert a.dtype == np.int8 and a.shape == (3000, 500) and np.array_equal(a, b)
    e = energy(a)
    assert abs(e.mean() - exact_mean_energy(0.3, 500)) < 5 * e.std() / np.sqrt(3000)


def test_generator_registered():
    assert "ising" in GENERATORS
    params = {"generator": "ising", "d": 50, "beta1": 0.1, "beta2": 0.3, "n_train": 3000,
              "n_test": 1000, "seed": 2}
    data = generate(params)
    again = generate(params)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(data[key], again[key])
    x = np.concatenate([data["x_train"], data["x_test"]])
    y = np.concatenate([data["y_train"], data["y_test"]])
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (4000, 50)
    assert set(np.unique(x)) == {-1.0, 1.0} and set(np.unique(y)) == {0, 1}
    assert abs(y.mean() - 0.5) < 5 * 0.5 / np.sqrt(4000)
    for label, beta in ((0, 0.1), (1, 0.3)):
        e = energy(x[y == label])
        assert abs(e.mean() - exact_mean_energy(beta, 50)) < 5 * e.std() / np.sqrt(len(e))
    assert data["meta"]["beta1"] == 0.1
