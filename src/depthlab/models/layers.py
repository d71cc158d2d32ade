"""Parameterised layers shared by every autograd net (one small class per layer kind).

All are NTK-parameterised: the trainable tensors are standard normal (``w~, b~``) and the
forward pass applies the ``fan_in^-1/2`` (times ``sqrt(w_var)``) and bias scales, so the
gradients with respect to the stored tensors give the NTK whose infinite-width limit the
analytic kernels compute.  Weights are drawn from a caller's ``torch.Generator`` in a fixed
order (weight, then bias) so a net depends only on its spec and seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from depthlab.activations import SOFTPLUS_THRESHOLD, activation_gain, check_activation

__all__ = ["NTKLinear", "NTKConv2d", "GainActivation", "SpatialMean"]


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


class NTKConv2d(nn.Module):
    """NTK-parameterised convolution: ``y = (c_in k^2)^-1/2 W * x + b``, ``W ~ N(0, 1)``,
    bias initialised at 0, "same" zero padding (the CNN analogue of :class:`NTKLinear`)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int,
                 generator: torch.Generator, dtype: torch.dtype):
        super().__init__()
        k = int(kernel_size)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k, generator=generator,
                                               dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(c_out, dtype=dtype))
        self.w_scale = 1.0 / math.sqrt(c_in * k * k)
        self.stride, self.padding = int(stride), k // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.w_scale, self.bias, self.stride, self.padding)


class GainActivation(nn.Module):
    """``a * phi(z)``: Softplus ``log(1 + e^(beta z)) / beta`` or ReLU, with the gain ``a`` of
    :func:`depthlab.activations.activation_gain` (unit second moment under ``N(0, 1)``).

    The Softplus is torch's (fused) ``softplus(z, beta, threshold=30)``, exactly linear for
    ``beta z > 30``: a deviation below ``e^-30 / beta = 2e-14`` from the formula."""

    def __init__(self, activation: str = "softplus", beta: float = 5.0):
        super().__init__()
        check_activation(activation, "module", "activation")
        self.activation, self.beta = activation, float(beta)
        self.gain = activation_gain(activation, self.beta)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.activation == "relu":
            return torch.relu(z) * self.gain
        return F.softplus(z, self.beta, SOFTPLUS_THRESHOLD) * self.gain

    def extra_repr(self) -> str:
        return f"{self.activation}, beta={self.beta:g}, gain={self.gain:.6f}"


class SpatialMean(nn.Module):
    """Global average pooling of (n, C, H, W) feature maps to (n, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))
