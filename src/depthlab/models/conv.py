"""Convolutional nets built from one spec (autograd path).

:func:`strided_cnn` is Geiger et al.'s setup (B): ``depth`` hidden NTK-parameterised
convolutions (stride 2 before the first and in the middle), the unit-variance gain
activation, a spatial mean and a linear readout.

:func:`conv_net` builds the finite net of a conv kernel spec
(:class:`depthlab.kernels.conv.ConvSpec`): same parameterisation, padding, strides, readout
and fixed layers, so Monte Carlo checks, empirical NTKs and finite-width runs use exactly the
architecture whose infinite-channel kernel they compare to.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from depthlab.models.layers import GainActivation, NTKConv2d, NTKLinear, SpatialMean

__all__ = ["AsImages", "Pointwise", "SpecConv2d", "conv_net", "strided_cnn"]


def strided_cnn(
    image_shape: tuple[int, ...],
    width: int,
    depth: int = 4,
    *,
    activation: str = "relu",
    beta: float = 5.0,
    kernel_size: int = 3,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """``depth`` (4 in Geiger et al.) hidden convolutions of ``width`` channels with stride 2
    before the first and in the middle (layer depth // 2), the gain activation, a spatial
    average and a linear readout; weights ``N(0, 1)`` scaled by ``fan_in^-1/2``, biases 0.
    Takes flattened images (n, H*W*C) and ``image_shape`` (H, W) or (C, H, W)."""
    shape = tuple(int(s) for s in image_shape)
    shape = (1, *shape) if len(shape) == 2 else shape
    gen = torch.Generator().manual_seed(int(seed))
    strides = [2 if i in (0, depth // 2) else 1 for i in range(depth)]
    layers: list[nn.Module] = [nn.Unflatten(1, shape)]
    c_in = shape[0]
    for stride in strides:
        layers += [NTKConv2d(c_in, width, kernel_size, stride, gen, dtype),
                   GainActivation(activation, beta)]
        c_in = width
    layers += [SpatialMean(), NTKLinear(c_in, 1, 1.0, 1.0, gen, dtype)]
    with torch.no_grad():
        layers[-1].bias.zero_()
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------------------
# The finite net of a conv kernel spec (depthlab.kernels.conv.ConvSpec)
# --------------------------------------------------------------------------------------


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


class AsImages(nn.Module):
    """Flat rows ``(n, C*H*W)`` -> images ``(n, C, H, W)`` (images pass through)."""

    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape) if x.ndim == 2 else x


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
    from depthlab.kernels.conv import ConvSpec

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
