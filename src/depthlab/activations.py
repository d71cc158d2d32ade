"""The one activation table: every name a config, a model or a kernel may use.

Each entry says what the activation is (a float64 numpy function ``phi`` and its derivative,
for quadratures and gains) and which engines implement it:

* ``packed``: the fused packed trainer (:class:`depthlab.models.FCEnsemble`);
* ``module``: :class:`depthlab.models.layers.GainActivation` (autograd nets, any study);
* ``kernel``: the analytic NNGP/NTK engine (:mod:`depthlab.kernels.layers`), in closed form or
  by Gauss-Hermite quadrature.

Config checks, models and kernels all look names up here, so a name is spelt once (the
schema only asks for a string; :func:`check_activation` names the offending key).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from depthlab.errors import ConfigError

__all__ = ["Activation", "ACTIVATIONS", "SOFTPLUS_THRESHOLD", "activation_gain",
           "check_activation", "names_for", "phi_numpy"]

# torch's fused softplus is linear above beta z = 30 (deviation e^-30 / beta from the formula).
SOFTPLUS_THRESHOLD = 30.0


@dataclass(frozen=True)
class Activation:
    name: str
    engines: frozenset[str]
    doc: str


def _entry(name: str, engines: str, doc: str) -> tuple[str, Activation]:
    return name, Activation(name, frozenset(engines.split()), doc)


ACTIVATIONS: dict[str, Activation] = dict([
    _entry("relu", "packed module kernel", "max(z, 0); closed-form arc-cosine kernel"),
    _entry("softplus", "packed module kernel",
           "log(1 + e^(beta z)) / beta (beta = 1 in packed nets and kernels)"),
    _entry("tanh", "packed kernel", "tanh(z); kernel by quadrature"),
    _entry("erf", "kernel", "erf(z); closed-form arcsine kernel"),
    _entry("linear", "packed kernel", "z (deep linear nets)"),
])


def names_for(engine: str) -> tuple[str, ...]:
    """The activation names an engine implements, in table order."""
    return tuple(a.name for a in ACTIVATIONS.values() if engine in a.engines)


def check_activation(name: object, engine: str, key: str) -> str:
    """``name`` if ``engine`` implements it, else a ``ConfigError`` (a ``ValueError``) naming
    the config ``key``."""
    allowed = names_for(engine)
    if name not in allowed:
        raise ConfigError(f"{key}: activation {name!r} is not one of {list(allowed)}")
    return str(name)


def phi_numpy(activation: str, beta: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """``phi`` on float64 arrays (gains and checks)."""
    if activation == "softplus":
        return lambda z: np.logaddexp(0.0, beta * z) / beta
    if activation == "relu":
        return lambda z: np.maximum(z, 0.0)
    if activation == "tanh":
        return np.tanh
    if activation == "linear":
        return lambda z: z
    if activation == "erf":
        from scipy.special import erf

        return erf
    raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")


@functools.cache
def activation_gain(activation: str = "softplus", beta: float = 5.0) -> float:
    """``a = E[phi(z)^2]^{-1/2}``, ``z ~ N(0, 1)``: the factor making ``a phi`` preserve unit
    preactivation variance in the NTK parameterisation (Geiger et al. App. B).  Quadrature to
    ~1e-12."""
    from scipy import integrate

    phi = phi_numpy(activation, float(beta))
    norm = 1.0 / math.sqrt(2.0 * math.pi)

    def integrand(z: float) -> float:
        return float(phi(np.float64(z)) ** 2) * norm * math.exp(-0.5 * z * z)

    lower, _ = integrate.quad(integrand, -np.inf, 0.0, epsabs=1e-15, epsrel=1e-13, limit=200)
    upper, _ = integrate.quad(integrand, 0.0, np.inf, epsabs=1e-15, epsrel=1e-13, limit=200)
    return 1.0 / math.sqrt(lower + upper)
