"""Nichani, Radhakrishnan & Uhler's nets ("Do deeper convolutional networks perform better?")
and the linear-network analysis of their sec. 4.

:func:`fully_conv`      the Fully-Conv net of depth d: ``Conv(C->w) BN LeakyReLU``, then
                        ``(d-1) x [Conv(w->w) BN LeakyReLU]``, then ``Conv(w->k)`` and a global
                        average pool (the logits): d + 1 convs, stride 1, "same" zero padding;
                        ``kaiming_normal_`` (fan_in, leaky_relu gain), biases 0.
:func:`fc_baseline`     the wide FC net (the paper's red line): one hidden ReLU layer.
:func:`linear_conv_net` bias-free linear conv nets: ``depth`` convs ``C -> w -> ... -> out``
                        (the Fully-Conv layout without BN and activation), then global
                        average pooling (the toy classifier of Fig. 7 / 19) or not (the conv
                        autoencoder of Fig. 8); zero or circular padding.
:class:`ToeplitzNet`    a product of ``depth`` n x n Toeplitz matrices without bias (Fig. 8c, f).
:func:`linear_operator` the matrix of a linear net by the identity trick (paper sec. 4):
                        column j = f(e_j); exact for bias-free nets.
:func:`stable_rank`, :func:`min_norm_operator` (W* = Y^T (X^+)^T, the minimum-Frobenius-norm
                        linear map with W x_i = y_i).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ToeplitzNet", "fc_baseline", "fully_conv", "linear_conv_net", "linear_operator",
           "min_norm_operator", "stable_rank"]


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def fully_conv(in_channels: int, width: int, depth: int, n_classes: int, *,
               kernel_size: int = 3, negative_slope: float = 0.01, batch_norm: bool = True,
               seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """The Fully-Conv net of depth ``depth`` >= 1 (see the module doc)."""
    if depth < 1:
        raise ValueError("depth >= 1")
    torch.manual_seed(int(seed))
    pad = kernel_size // 2
    layers: list[nn.Module] = []
    c = in_channels
    for _ in range(depth):
        conv = nn.Conv2d(c, width, kernel_size, padding=pad)
        nn.init.kaiming_normal_(conv.weight, a=negative_slope, nonlinearity="leaky_relu")
        nn.init.zeros_(conv.bias)
        layers += [conv, *([nn.BatchNorm2d(width)] if batch_norm else []),
                   nn.LeakyReLU(negative_slope)]
        c = width
    out = nn.Conv2d(c, n_classes, kernel_size, padding=pad)
    nn.init.kaiming_normal_(out.weight, a=negative_slope, nonlinearity="leaky_relu")
    nn.init.zeros_(out.bias)
    return nn.Sequential(*layers, out, GlobalAvgPool()).to(dtype)


def fc_baseline(in_features: int, width: int, n_classes: int, *, seed: int = 0,
                dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """Flatten, one hidden ReLU layer of ``width``, linear readout (PyTorch default init)."""
    torch.manual_seed(int(seed))
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(),
                         nn.Linear(width, n_classes)).to(dtype)


class _PaddedConv(nn.Module):
    """Bias-free stride-1 conv with "same" zero or circular padding."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, padding: str):
        super().__init__()
        if padding not in ("zero", "circular"):
            raise ValueError(f"padding is zero or circular, got {padding!r}")
        self.padding, self.pad = padding, kernel_size // 2
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel_size, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "circular":
            return F.conv2d(F.pad(x, (self.pad,) * 4, mode="circular"), self.weight)
        return F.conv2d(x, self.weight, padding=self.pad)


def linear_conv_net(in_channels: int, width: int, depth: int, out_channels: int, *,
                    kernel_size: int = 3, padding: str = "zero", pool: bool = True,
                    init: str = "xavier_uniform", seed: int = 0,
                    dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """``depth`` bias-free convs ``in -> width -> ... -> out`` (depth 1: ``in -> out``), no
    activation, then a global average pool when ``pool`` (see the module doc)."""
    if depth < 1:
        raise ValueError("depth >= 1")
    gen = torch.Generator().manual_seed(int(seed))
    chans = [in_channels, *([width] * (depth - 1)), out_channels]
    layers: list[nn.Module] = []
    for a, b in zip(chans[:-1], chans[1:], strict=True):
        conv = _PaddedConv(a, b, kernel_size, padding)
        fan_in, fan_out = a * kernel_size**2, b * kernel_size**2
        if init == "xavier_uniform":
            bound = float(np.sqrt(6.0 / (fan_in + fan_out)))
            w = (torch.rand(conv.weight.shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        elif init == "xavier_normal":
            w = torch.randn(conv.weight.shape, generator=gen, dtype=torch.float64) * float(
                np.sqrt(2.0 / (fan_in + fan_out)))
        else:
            raise ValueError(f"init is xavier_uniform or xavier_normal, got {init!r}")
        with torch.no_grad():
            conv.weight.copy_(w)
        layers.append(conv)
    if pool:
        layers.append(GlobalAvgPool())
    return nn.Sequential(*layers).to(dtype)


class ToeplitzNet(nn.Module):
    """x -> T_depth ... T_1 x with n x n Toeplitz T_i (2n - 1 free entries each), no bias;
    entries Xavier-normal for an n x n layer, std sqrt(1 / n)."""

    def __init__(self, n: int, depth: int, *, seed: int = 0, dtype: torch.dtype = torch.float64):
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        self.n = int(n)
        self.diagonals = nn.ParameterList(
            nn.Parameter(torch.randn(2 * n - 1, generator=gen, dtype=dtype) / np.sqrt(n))
            for _ in range(depth))
        idx = torch.arange(n)
        self.register_buffer("index", (idx[:, None] - idx[None, :]) + n - 1, persistent=False)

    def matrices(self) -> list[torch.Tensor]:
        return [d[self.index] for d in self.diagonals]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.matrices():
            x = x @ t.T
        return x


def linear_operator(model: nn.Module, input_shape: Sequence[int]) -> np.ndarray:
    """The matrix W (out_dim, in_dim) of a bias-free linear ``model`` by the identity trick:
    the basis inputs e_j (channel-major flattening of ``input_shape``) are fed as one batch
    and W[:, j] = f(e_j).  The model is evaluated in eval mode, without gradients."""
    d = int(np.prod(input_shape))
    p = next(model.parameters())
    eye = torch.eye(d, dtype=p.dtype, device=p.device).reshape(d, *input_shape)
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(eye).reshape(d, -1)
    model.train(was)
    return out.T.cpu().numpy().astype(np.float64)


def stable_rank(w: np.ndarray) -> float:
    """||W||_F^2 / ||W||_2^2 = sum sigma_i^2 / sigma_1^2, in [1, rank W]."""
    s = np.linalg.svd(np.atleast_2d(w), compute_uv=False)
    return float(np.sum(s**2) / s[0] ** 2)


def min_norm_operator(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The minimum-Frobenius-norm W with W x_i = y_i for the rows x_i of ``x`` (n, d) and
    y_i of ``y`` (n, k) or (n,): W* = Y^T (X^+)^T, shape (k, d).  For an autoencoder
    (y = x) of independent rows it is the orthogonal projector onto their span."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    return (np.linalg.pinv(x) @ y).T
