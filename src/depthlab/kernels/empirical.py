"""Empirical (finite-width) NTKs of torch models, and the reference Mori-Ueda ReLU net.

:func:`empirical_ntk` contracts parameter Jacobians computed with ``torch.func``
(``functional_call`` + ``vmap(jacrev)``) in blocks of inputs:
``Theta_ab(x, x') = sum_p df_a(x)/dp df_b(x')/dp``.

:func:`mori_ueda_net` builds the network of Mori & Ueda supp. A in NTK parameterisation:
its trainable parameters are the standard-normal ``w~`` and ``b~`` and the forward pass
uses ``w = sqrt(w_var / n_in) w~`` and ``b = beta b~`` (first layer ``w_var =
first_w_var = 1``, later layers ``w_var = 2``), so the gradients w.r.t. the tilde
parameters give the NTK whose infinite-width limit is
``kernel_matrices(mori_ueda_spec(beta), depth, ...)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["NTKLinear", "empirical_ntk", "mori_ueda_net", "feature_nngp"]


class NTKLinear(nn.Module):
    """``y = sqrt(w_var / n_in) x w~^T + b_std b~`` with ``w~, b~ ~ N(0, 1)`` as parameters."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        w_var: float,
        b_std: float,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in, generator=generator, dtype=dtype))
        self.bias = nn.Parameter(torch.randn(n_out, generator=generator, dtype=dtype))
        self.w_scale = math.sqrt(w_var / n_in)
        self.b_std = float(b_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_scale * (x @ self.weight.T) + self.b_std * self.bias


def mori_ueda_net(
    d: int,
    width: int,
    depth: int,
    beta: float = 0.1,
    seed: int = 0,
    *,
    w_var: float = 2.0,
    first_w_var: float = 1.0,
    n_out: int = 1,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """ReLU net ``d -> width x depth -> n_out`` in NTK parameterisation (module doc).

    ``depth = 0`` is the linear model.  The last module is the readout ``NTKLinear``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    layers: list[nn.Module] = []
    n_in, wv = d, first_w_var
    for _ in range(int(depth)):
        layers += [NTKLinear(n_in, width, wv, beta, gen, dtype), nn.ReLU()]
        n_in, wv = width, w_var
    layers.append(NTKLinear(n_in, n_out, wv, beta, gen, dtype))
    return nn.Sequential(*layers)


def _as_tensor(x: Any, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).to(
        dtype=like.dtype, device=like.device
    )


def empirical_ntk(
    model: nn.Module,
    x1: Any,
    x2: Any = None,
    *,
    block_size: int = 32,
    trace: bool = True,
) -> np.ndarray:
    """Empirical NTK of ``model`` between inputs ``x1`` (n1, ...) and ``x2`` (n2, ...).

    Returns float64 ``(n1, n2)`` with the sum over output units when ``trace`` (for
    scalar-output models this is just the NTK), else ``(n1, n2, k, k)``.  Jacobians are
    computed ``block_size`` inputs at a time; those of ``x2`` are kept, so memory is
    ``O((n2 + block_size) * k * n_params)``.
    """
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    ref = next(iter(params.values()))
    x1t = _as_tensor(x1, ref)
    x2t = x1t if x2 is None else _as_tensor(x2, ref)

    def f_single(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (x.unsqueeze(0),)).reshape(-1)

    jac_fn = vmap(jacrev(f_single), in_dims=(None, 0))

    def jacobian(x: torch.Tensor) -> torch.Tensor:
        jac = jac_fn(params, x)  # name -> (b, k, *param_shape)
        return torch.cat([j.reshape(j.shape[0], j.shape[1], -1) for j in jac.values()], dim=2)

    n1, n2 = x1t.shape[0], x2t.shape[0]
    eq = "iap,jap->ij" if trace else "iap,jbp->ijab"
    with torch.no_grad():
        cols = [jacobian(x2t[s : s + block_size]) for s in range(0, n2, block_size)]
        rows = []
        for i, s in enumerate(range(0, n1, block_size)):
            j1 = cols[i] if x2 is None else jacobian(x1t[s : s + block_size])
            rows.append(torch.cat([torch.einsum(eq, j1, j2) for j2 in cols], dim=1))
    out = torch.cat(rows, dim=0) if rows else torch.zeros((n1, n2))
    return out.to(torch.float64).cpu().numpy()


def feature_nngp(model: nn.Sequential, x1: Any, x2: Any = None) -> np.ndarray:
    """Readout-averaged NNGP of a :func:`mori_ueda_net`-style ``nn.Sequential``:
    ``E_readout[f(x) f(x')] = w_var/n z(x).z(x') + b_std^2`` for the last hidden features
    ``z`` (an unbiased per-init estimate of the NNGP with much less noise than ``f f'``)."""
    *body, readout = list(model)
    if not isinstance(readout, NTKLinear):
        raise TypeError("the last module must be an NTKLinear readout")
    ref = readout.weight
    x1t = _as_tensor(x1, ref)
    x2t = x1t if x2 is None else _as_tensor(x2, ref)
    with torch.no_grad():
        seq = nn.Sequential(*body)
        z1, z2 = seq(x1t), seq(x2t)
        k = readout.w_scale**2 * (z1 @ z2.T) + readout.b_std**2
    return k.to(torch.float64).cpu().numpy()
