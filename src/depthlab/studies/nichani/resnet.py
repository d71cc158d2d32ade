"""CIFAR ResNets with BasicBlocks over a grid of blocks per stage (Nichani et al. Table 1,
built as in Yang et al.'s ``models/resnet.py``, the code Nichani et al. followed).

Stem ``conv k x k (C -> w, stride 1) BN ReLU``; four stages of ``n_1 .. n_4`` BasicBlocks
with ``w, 2w, 4w, 8w`` channels, the first block of stages 2-4 with stride 2 and a
``1 x 1 conv + BN`` shortcut (any block whose shape changes gets one); a BasicBlock is
``conv BN ReLU conv BN`` + shortcut, then ReLU; convs have no bias.  Then a global average
pool (Yang's ``avg_pool2d(4)`` on the 4 x 4 maps of a 32 x 32 input, the same there; any
input size works here), a linear layer, and, when ``softmax_output``, a softmax (Yang's
``forward`` applies ``F.softmax`` before the MSE).  Depth = 2 + 2 (n_1 + n_2 + n_3 + n_4):
the stem, two convs per block, the linear layer.  PyTorch's default init (the paper's).

:data:`TABLE1` maps the paper's depths to blocks per stage; :func:`cifar_resnet` builds one
net; :class:`RandomCropFlip` is Yang's augmentation (random crop after zero padding, random
horizontal flip) as a module that acts in training mode only, with its generator state a
buffer so a checkpoint of the model resumes the augmentation stream bitwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TABLE1", "BasicBlock", "CifarResNet", "RandomCropFlip", "cifar_resnet",
           "resnet_depth"]

# Nichani et al., Table 1: model depth -> blocks per stage
TABLE1: dict[int, tuple[int, int, int, int]] = {
    10: (1, 1, 1, 1), 12: (1, 1, 2, 1), 14: (1, 2, 2, 1), 16: (2, 2, 2, 1),
    18: (2, 2, 2, 2), 20: (2, 2, 3, 2), 22: (2, 3, 3, 2), 26: (3, 3, 3, 3),
    30: (3, 4, 4, 3), 34: (3, 4, 6, 3), 38: (3, 4, 8, 3), 42: (3, 4, 10, 3),
    46: (3, 4, 12, 3), 50: (3, 4, 14, 3),
}


def resnet_depth(blocks: Sequence[int]) -> int:
    """2 + 2 * sum(blocks): stem conv, two convs per BasicBlock, the linear layer."""
    return 2 + 2 * int(sum(blocks))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size, stride, pad, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks: Sequence[int], width: int, n_classes: int = 10, *,
                 in_channels: int = 3, kernel_size: int = 3, softmax_output: bool = True):
        super().__init__()
        if len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"blocks: four stages of >= 1 BasicBlock, got {list(blocks)}")
        if width < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError("width >= 1 and an odd kernel_size >= 1")
        self.blocks = tuple(int(b) for b in blocks)
        self.depth = resnet_depth(self.blocks)
        self.softmax_output = bool(softmax_output)
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size, 1, pad, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, c = [], width
        for i, n in enumerate(self.blocks):
            c_out = width * 2**i
            layers = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(c, c_out, stride, kernel_size))
                c = c_out
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = self.linear(out.mean(dim=(2, 3)))
        return F.softmax(out, dim=1) if self.softmax_output else out


class RandomCropFlip(nn.Module):
    """Random ``size``-crop of the zero-padded image (``padding`` on each side; the crop
    keeps the input size) and a horizontal flip with probability 1/2, per image, in
    training mode; the identity in eval mode.  Draws come from a CPU generator seeded with
    ``seed`` whose state is the buffer ``rng_state`` (saved and restored with the model)."""

    def __init__(self, padding: int = 4, flip: bool = True, seed: int = 0):
        super().__init__()
        self.padding, self.flip = int(padding), bool(flip)
        gen = torch.Generator().manual_seed(int(seed))
        self.register_buffer("rng_state", gen.get_state())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or (self.padding == 0 and not self.flip):
            return x
        n, _, h, w = x.shape
        gen = torch.Generator()
        gen.set_state(self.rng_state.cpu())
        p = self.padding
        oy = torch.randint(0, 2 * p + 1, (n,), generator=gen)
        ox = torch.randint(0, 2 * p + 1, (n,), generator=gen)
        flip = torch.rand(n, generator=gen) < 0.5 if self.flip else torch.zeros(n, dtype=bool)
        self.rng_state.copy_(gen.get_state())
        dev = x.device
        xp = F.pad(x, (p, p, p, p)) if p else x
        rows = (oy[:, None] + torch.arange(h)[None]).to(dev)            # (n, h)
        cols = ox[:, None] + torch.arange(w)[None]                      # (n, w)
        cols = torch.where(flip[:, None], cols.flip(1), cols).to(dev)
        idx_n = torch.arange(n, device=dev)[:, None, None]
        out = xp.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]
        # A fresh NCHW tensor with canonical strides: with one channel the permuted view
        # already counts as contiguous (.contiguous() is a no-op) but keeps NHWC strides,
        # which oneDNN's conv backward misreads on some CPUs (heap corruption, SIGABRT, on
        # an AMD EPYC with ResNet widths 2 and 4).
        out = out.permute(0, 3, 1, 2)
        return torch.empty(out.shape, dtype=out.dtype, device=out.device).copy_(out)


def cifar_resnet(blocks: Sequence[int], width: int, n_classes: int = 10, *,
                 in_channels: int = 3, kernel_size: int = 3, softmax_output: bool = True,
                 augment: bool = False, crop_padding: int = 4, flip: bool = True,
                 seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """One CIFAR ResNet (see the module doc), initialised from ``seed`` (PyTorch's default
    init); with ``augment`` a :class:`RandomCropFlip` (seeded from ``seed``) in front."""
    torch.manual_seed(int(seed))
    net = CifarResNet(blocks, width, n_classes, in_channels=in_channels,
                      kernel_size=kernel_size, softmax_output=softmax_output).to(dtype)
    if not augment:
        return net
    return nn.Sequential(RandomCropFlip(crop_padding, flip, seed=int(seed) + 1_000_003), net)
