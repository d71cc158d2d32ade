"""Geiger et al.'s setup (B), the strided CNN (its only user: a study's own net lives in its
study package): ``depth`` hidden NTK-parameterised convolutions (stride 2 before the first
and in the middle), the unit-variance gain activation, a spatial mean and a linear
readout, built from the shared layers of :mod:`depthlab.models.layers`."""

from __future__ import annotations

import torch
from torch import nn

from depthlab.models.layers import GainActivation, NTKConv2d, NTKLinear, SpatialMean

__all__ = ["strided_cnn"]


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
