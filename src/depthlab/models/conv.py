"""Convolutional building blocks shared by the studies' conv nets (autograd path).

:class:`AsImages` reads flat rows as images.  The finite net of a conv kernel spec is
:func:`depthlab.kernels.finite.conv_net` (kernels build on models, never the other way
round).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AsImages"]


# --------------------------------------------------------------------------------------
# Flat rows as images
# --------------------------------------------------------------------------------------


class AsImages(nn.Module):
    """Flat rows ``(n, C*H*W)`` -> images ``(n, C, H, W)`` (images pass through)."""

    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape) if x.ndim == 2 else x
