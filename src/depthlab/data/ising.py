"""Spin configurations of the periodic 1D Ising chain (Mori & Ueda, supplementary C).

A configuration is x = (sigma_1, ..., sigma_d), sigma_i in {-1, +1}, drawn from

    P_beta(x) = exp(-beta H(x)) / Z_beta,   H(x) = sum_{i=1}^d sigma_i sigma_{i+1},
    sigma_{d+1} = sigma_1                   (eqs. S6-S7).

Sign: with this H, low energy means *anti*-aligned neighbours, so for beta > 0 the chain is
antiferromagnetic. In the usual form P ∝ exp(J sum sigma_i sigma_{i+1}) the coupling is
J = -beta, and the transfer matrix T = [[e^J, e^-J], [e^-J, e^J]] has eigenvalues
2 cosh J and 2 sinh J; with t = tanh J = -tanh(beta):

    Z = (2 cosh J)^d (1 + t^d),
    <sigma_i sigma_{i+r}> = (t^r + t^(d-r)) / (1 + t^d)          (0 <= r <= d),
    <H> = d <sigma_1 sigma_2> = d (t + t^(d-1)) / (1 + t^d)

(`exact_correlation`, `exact_mean_energy`).

Sampling is exact (no Markov chain; the paper used MCMC, whose samples this distribution is
the target of). The bond variables tau_i = sigma_i sigma_{i+1} (i = 1..d, periodic) carry the
whole weight, exp(-beta sum_i tau_i), and (sigma_1, tau_1, ..., tau_{d-1}) <-> x is a
bijection, with tau_d = prod_{i<d} tau_i fixed by the ring. So: draw tau_1..tau_d i.i.d. with
P(tau = +1) = e^-beta / (e^beta + e^-beta) (the open chain), keep the draw iff
prod_i tau_i = +1 (rejection; acceptance (1 + tanh(beta)^d) / 2 >= 1/2), draw sigma_1 uniformly,
and set sigma_{i+1} = sigma_i tau_i. Conditioning the i.i.d. product measure on the ring
constraint gives exactly P_beta.

Dataset ("ising" generator): each sample draws beta in {beta1, beta2} with probability 1/2 each;
label 0 for beta1, 1 for beta2 (the paper's classes 1 and 2; paper: d = 500, beta1 = 0.1,
beta2 = 0.3). Inputs are the spins as float32 +-1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def bond_plus_probability(beta: float) -> float:
    """P(tau = +1) for one bond of the open chain: e^-beta / (e^beta + e^-beta)."""
    return float(1.0 / (1.0 + np.exp(2.0 * beta)))


def sample_ising(n: int, d: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """`n` exact samples of the periodic chain of `d` spins at inverse temperature `beta`.

    Returns int8 (n, d) with entries +-1. Deterministic given the generator state.
    """
    if d < 2:
        raise ValueError(f"need d >= 2 spins, got {d}")
    n = int(n)
    p_plus = bond_plus_probability(beta)
    bonds = np.empty((n, d), dtype=np.int8)
    filled = 0
    while filled < n:
        need = n - filled
        # Acceptance >= 1/2; draw a little more than twice what is missing.
        batch = 2 * need + 16
        tau = np.where(rng.random((batch, d)) < p_plus, 1, -1).astype(np.int8)
        ok = (tau == -1).sum(axis=1) % 2 == 0  # product of the bonds is +1
        good = tau[ok][:need]
        bonds[filled : filled + len(good)] = good
        filled += len(good)
    first = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    spins = np.empty((n, d), dtype=np.int8)
    spins[:, 0] = first
    # sigma_{i+1} = sigma_1 * prod_{j <= i} tau_j ; tau_d is implied by the ring
    spins[:, 1:] = first[:, None] * np.cumprod(bonds[:, : d - 1], axis=1, dtype=np.int8)
    return spins


def energy(x: np.ndarray) -> np.ndarray:
    """H(x) = sum_i sigma_i sigma_{i+1} with periodic boundary, per row."""
    x = np.asarray(x, dtype=np.float64)
    return (x * np.roll(x, -1, axis=1)).sum(axis=1)


def exact_correlation(beta: float, d: int, r: int | np.ndarray) -> np.ndarray:
    """<sigma_i sigma_{i+r}> of the periodic chain: (t^r + t^(d-r)) / (1 + t^d), t = -tanh(beta)."""
    t = -np.tanh(beta)
    r = np.asarray(r, dtype=np.float64)
    return (t**r + t ** (d - r)) / (1.0 + t**d)


def exact_mean_energy(beta: float, d: int) -> float:
    """<H> = d <sigma_1 sigma_2>."""
    return float(d * exact_correlation(beta, d, 1))


def ising_dataset(params: Mapping[str, Any], n_total: int, rng: np.random.Generator):
    """Generator interface of `depthlab.data.synthetic.GENERATORS`: params d, beta1, beta2."""
    d = int(params["d"])
    betas = (float(params["beta1"]), float(params["beta2"]))
    y = rng.integers(0, 2, size=n_total, dtype=np.int64)
    x = np.empty((n_total, d), dtype=np.float32)
    for label, beta in enumerate(betas):
        rows = np.flatnonzero(y == label)
        x[rows] = sample_ising(len(rows), d, beta, rng)
    return x, y, {"beta1": betas[0], "beta2": betas[1], "sampler": "exact_bond_rejection"}
