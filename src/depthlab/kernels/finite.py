"""The finite nets of the analytic kernel specs (autograd path).

:func:`conv_net` builds the finite net of a conv kernel spec
(:class:`depthlab.kernels.conv.ConvSpec`): same parameterisation, padding, strides, readout
and fixed layers, so Monte Carlo checks, empirical NTKs and finite-width runs use exactly the
architecture whose infinite-channel kernel they compare to.  It lives with the kernels (it is
defined by a kernel spec) and builds on :mod:`depthlab.models` layers: kernels import models,
models never import kernels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from depthlab.kernels.conv import ConvSpec
from depthlab.models.conv import AsImages
from depthlab.models.layers import NTKLinear, SpatialMean

__all__ = ["Pointwise", "SpecConv2d", "conv_net"]


def _wrap_pad(x: torch.Tensor, dim: int, p: int) -> torch.Tensor:
    n = x.shape[dim]
    idx = torch.arange(-p, n + p, device=x.device) % n
    return torch.index_select(x, dim, idx)


class SpecConv2d(nn.Module):
    """NTK-parameterised convolution of a kernel spec: ``y = sqrt(w_var / (c_in f^2)) W~ * x
    + sqrt(b_var) b~`` with ``W~, b~ ~ N(0, 1)`` (drawn in that order), ``circular`` or
    ``zero`` ("same", ``f // 2`` per side) padding, ``stride``; ``trainable=False`` freezes
    both tensors (the layer then adds to the NNGP but not to the NTK)."""

    def __init__(self, c_in: int, c_out: int, filter_size: int, *, stride: int = 1,
                 padding: str = "circular", w_var: float = 2.0, b_var: float = 0.0,
                 trainable: bool = True, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        f = int(filter_size)
        if f < 1 or f % 2 == 0:
            raise ValueError(f"filter_size must be odd, got {filter_size}")
        if padding not in ("circular", "zero"):
            raise ValueError(f"padding must be circular or zero, got {padding!r}")
        self.weight = nn.Parameter(torch.randn(c_out, c_in, f, f, generator=generator,
                                               dtype=dtype), requires_grad=trainable)
        self.bias = nn.Parameter(torch.randn(c_out, generator=generator, dtype=dtype),
                                 requires_grad=trainable)
        self.w_scale = math.sqrt(float(w_var) / (c_in * f * f))
        self.b_std = math.sqrt(float(b_var))
        self.stride, self.pad, self.padding = int(stride), f // 2, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pad
        if p and self.padding == "circular":
            x = _wrap_pad(_wrap_pad(x, 2, p), 3, p)
        elif p:
            x = F.pad(x, (p, p, p, p))
        return F.conv2d(x, self.weight * self.w_scale, self.bias * self.b_std, self.stride)

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1]}, {self.weight.shape[0]}, f={self.weight.shape[-1]}, "
                f"stride={self.stride}, padding={self.padding}, "
                f"trainable={self.weight.requires_grad}")


class Pointwise(nn.Module):
    """A plain activation ``phi`` by its name in :data:`depthlab.activations.ACTIVATIONS`
    (softplus with beta = 1, as in the kernels)."""

    def __init__(self, name: str):
        super().__init__()
        if name not in ("relu", "erf", "tanh", "softplus", "linear"):
            raise ValueError(f"activation {name!r} has no conv-net module")
        self.name = name

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.name == "relu":
            return torch.relu(z)
        if self.name == "erf":
            return torch.erf(z)
        if self.name == "tanh":
            return torch.tanh(z)
        if self.name == "softplus":
            return F.softplus(z)
        return z

    def extra_repr(self) -> str:
        return self.name


def conv_net(
    spec: Any,
    depth: int,
    channels: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """The finite net whose infinite-channel NNGP/NTK is ``conv_sweep(spec, depth, ...)``:
    ``[SpecConv2d -> phi] x depth -> Flatten | SpatialMean -> NTKLinear(., 1)``, each conv
    with ``channels`` output channels, the spec's filter, padding, strides, variances and
    fixed layers.  Takes flat rows (read with the spec's ``image_shape``, channel first) or
    ``(n, C, H, W)`` images; weights from ``torch.Generator().manual_seed(seed)``."""
    spec = ConvSpec.coerce(spec)
    shape = spec.image_shape
    shape = (1, *shape) if len(shape) == 2 else tuple(shape)
    gen = torch.Generator().manual_seed(int(seed))
    layers: list[nn.Module] = [AsImages(shape)]
    c_in, h, w = shape
    for i in range(int(depth)):
        first = i == 0
        s = spec.stride(i)
        layers += [
            SpecConv2d(c_in, channels, spec.filter_size, stride=s, padding=spec.padding,
                       w_var=spec.input_w_var if first else spec.w_var,
                       b_var=spec.input_b_var if first else spec.b_var,
                       trainable=not (first and spec.fix_first), generator=gen, dtype=dtype),
            Pointwise(spec.activation),
        ]
        c_in = channels
        p = spec.filter_size // 2
        h = (h + 2 * p - spec.filter_size) // s + 1
        w = (w + 2 * p - spec.filter_size) // s + 1
    if spec.readout == "flatten":
        layers.append(nn.Flatten(1))
        n_in = c_in * h * w
    else:
        layers.append(SpatialMean())
        n_in = c_in
    if depth == 0:
        wv, bv, fixed = spec.input_w_var, spec.input_b_var, spec.fix_first or spec.fix_last
    else:
        wv, bv, fixed = spec.w_var, spec.b_var, spec.fix_last
    readout = NTKLinear(n_in, 1, wv, math.sqrt(bv), gen, dtype)
    readout.requires_grad_(not fixed)
    layers.append(readout)
    return nn.Sequential(*layers)
