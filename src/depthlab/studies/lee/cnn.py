r"""Lee et al.'s deep narrow CNN (ICML 2022, sec. 4, Fig. 3.2) and its baselines, by init name.

``narrow_cnn`` builds, for images of ``c`` channels and side ``d`` and ``n_out = K`` outputs:
an optional ``pool x pool`` average pool (the authors' 4x4 pool of MNIST, 28 -> 7), ``depth``
hidden 3x3 convolutions (stride 1, zero padding 1, ``c + 1 + K`` channels, ReLU after
each), a last 3x3 convolution to K channels (no activation) and the global average pool
``S(A) = d^-2 sum_ij A_ij``.  ``depth`` is D, the number of hidden (ReLU) layers, as for the
MLP (the paper's L = D + 1).  Channels (0-based): carriers ``0..c-1``, the random channel
``r = c``, output carriers ``c+1..c+K``.

Inits (``INITS``):

``deep_narrow`` (parameters ``C_L``, ``rho``, ``beta``; validated > 0, ReLU, channels fixed)
    with iota = the 3x3 filter with a single 1 at the centre,

    * layer 1: carrier i = ``C_L iota`` on input channel i (bias 0); random channel = u^1 on
      the input channels (bias v^1); output carriers = zero filter, bias ``C_L``;
    * layer l = 2..D: carrier i = iota on carrier i (bias 0); random channel = u^l on the
      carriers only (bias v^l); output carrier j = iota on itself (bias 0);
    * last: output j = iota on output carrier j, bias ``-C_L``;

    u^l taps iid ``N(0, rho^2 / c)`` (the paper's ``N(0, rho^2)`` for c = 1; the authors'
    code draws std ``1 / (3 sqrt c)``, i.e. rho = 1/3, where Table 4.1 states 1/sqrt 3),
    v^l ~ ``N(0, C_L^2 beta^2)``; draw order per hidden layer: u^l, then v^l, in float64.
    At init the random channel feeds nothing and every output is exactly 0
    (``S(relu(C_L) - C_L)``).
``torch_default``
    ``nn.Conv2d``'s default (``kaiming_uniform_(a = sqrt 5)``): W, b ~ U(+-1/sqrt(fan_in)),
    fan_in = c_in * 9 -- what the authors' "Kaiming" baseline code ran.
``he_uniform``
    W ~ U(+-sqrt(6 / fan_in)), b = 0 (He et al., what the text says).

Every init draws from ``torch.Generator().manual_seed(seed)`` on the CPU in float64 (layer by
layer, W then b), then casts to ``dtype``: a net depends only on its seed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from depthlab.models.conv import AsImages
from depthlab.models.layers import SpatialMean

__all__ = ["CNN_INITS", "DEEP_NARROW_CNN_DEFAULTS", "deep_narrow_channels", "narrow_cnn"]

CNN_INITS = ("deep_narrow", "torch_default", "he_uniform")
DEEP_NARROW_CNN_DEFAULTS = {"C_L": 1.0, "rho": 1.0, "beta": 1.0}


def deep_narrow_channels(c: int, n_out: int) -> int:
    """The fixed channel count of the deep narrow CNN: c carriers, 1 random, K outputs."""
    return int(c) + int(n_out) + 1


def _check(init: str, params: dict | None, c: int, side: int, pool: int, depth: int,
           n_out: int, channels: int) -> dict:
    if init not in CNN_INITS:
        raise ValueError(f"init must be one of {CNN_INITS}, got {init!r}")
    if c < 1 or n_out < 1 or depth < 1 or channels < 1:
        raise ValueError(f"bad CNN: c={c} depth={depth} channels={channels} K={n_out}")
    if pool < 1 or side % pool:
        raise ValueError(f"pool {pool} must divide the image side {side}")
    params = dict(params or {})
    if init != "deep_narrow":
        if params:
            raise ValueError(f"init {init!r} takes no init_params, got {sorted(params)}")
        return {}
    unknown = sorted(set(params) - set(DEEP_NARROW_CNN_DEFAULTS))
    if unknown:
        raise ValueError(f"deep_narrow init_params are {sorted(DEEP_NARROW_CNN_DEFAULTS)}, "
                         f"got unknown {unknown}")
    params = {**DEEP_NARROW_CNN_DEFAULTS, **{k: float(v) for k, v in params.items()}}
    if not all(v > 0 and math.isfinite(v) for v in params.values()):
        raise ValueError(f"deep_narrow needs finite C_L, rho, beta > 0, got {params}")
    if channels != deep_narrow_channels(c, n_out):
        raise ValueError(f"deep_narrow fixes the channels to c + K + 1 = "
                         f"{deep_narrow_channels(c, n_out)}, got {channels}")
    return params


def _deep_narrow_filters(gen: torch.Generator, c: int, depth: int, n_out: int, *, C_L: float,
                         rho: float, beta: float):
    """Per conv (D hidden + last): weight (c_out, c_in, 3, 3) and bias, float64."""
    f64 = torch.float64
    n = deep_narrow_channels(c, n_out)
    r, out = c, slice(c + 1, n)
    out_idx = torch.arange(c + 1, n)
    filters = []
    for layer in range(depth):
        u = torch.randn(c, 3, 3, generator=gen, dtype=f64) * (rho / math.sqrt(c))
        v = torch.randn(1, generator=gen, dtype=f64)[0] * (C_L * beta)
        c_in = c if layer == 0 else n
        w = torch.zeros(n, c_in, 3, 3, dtype=f64)
        b = torch.zeros(n, dtype=f64)
        idx = torch.arange(c)
        w[idx, idx, 1, 1] = C_L if layer == 0 else 1.0
        w[r, :c] = u
        b[r] = v
        if layer == 0:
            b[out] = C_L
        else:
            w[out_idx, out_idx, 1, 1] = 1.0
        filters.append((w, b))
    w = torch.zeros(n_out, n, 3, 3, dtype=f64)
    w[torch.arange(n_out), out_idx, 1, 1] = 1.0
    filters.append((w, torch.full((n_out,), -C_L, dtype=f64)))
    return filters


def _uniform_filters(gen: torch.Generator, widths: list[int], init: str):
    filters = []
    for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
        fan_in = c_in * 9
        limit = 1.0 / math.sqrt(fan_in) if init == "torch_default" else math.sqrt(6.0 / fan_in)
        w = torch.rand(c_out, c_in, 3, 3, generator=gen, dtype=torch.float64)
        w = w.mul_(2 * limit).sub_(limit)
        if init == "torch_default":
            b = torch.rand(c_out, generator=gen, dtype=torch.float64).mul_(2 * limit).sub_(limit)
        else:
            b = torch.zeros(c_out, dtype=torch.float64)
        filters.append((w, b))
    return filters


def narrow_cnn(
    image_shape: tuple[int, ...],
    n_out: int,
    depth: int,
    *,
    init: str = "deep_narrow",
    init_params: dict | None = None,
    channels: int | None = None,
    pool: int = 1,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """The deep narrow CNN of the module doc: flat rows ``(n, c*H*W)`` (channel first) or
    images ``(n, c, H, W)`` -> ``(n, n_out)``.  ``image_shape`` is (H, W) or (c, H, W), square;
    ``channels`` defaults to (and for deep_narrow must be) ``c + n_out + 1``."""
    shape = tuple(int(s) for s in image_shape)
    shape = (1, *shape) if len(shape) == 2 else shape
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"need a square image shape (c, d, d), got {image_shape}")
    c, side = shape[0], shape[1]
    depth, n_out, pool = int(depth), int(n_out), int(pool)
    channels = deep_narrow_channels(c, n_out) if channels is None else int(channels)
    params = _check(init, init_params, c, side, pool, depth, n_out, channels)
    gen = torch.Generator().manual_seed(int(seed))
    if init == "deep_narrow":
        filters = _deep_narrow_filters(gen, c, depth, n_out, **params)
    else:
        filters = _uniform_filters(gen, [c] + [channels] * depth + [n_out], init)
    layers: list[nn.Module] = [AsImages(shape)]
    if pool > 1:
        layers.append(nn.AvgPool2d(pool))
    for i, (w, b) in enumerate(filters):
        conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1, dtype=dtype)
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(b)
        layers.append(conv)
        if i < len(filters) - 1:
            layers.append(nn.ReLU())
    layers.append(SpatialMean())
    net = nn.Sequential(*layers)
    net.init, net.init_params, net.depth, net.channels = init, params, depth, channels
    net.pool, net.image_shape, net.n_out = pool, shape, n_out
    return net
