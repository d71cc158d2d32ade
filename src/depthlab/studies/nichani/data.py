"""Nichani et al.'s inputs, generated exactly or read from local files (nothing downloaded).

``classification_data``  the image classification task of the Fully-Conv nets and the CNTK:
                         CIFAR-10 (local files, :mod:`depthlab.data.cifar`; classes, n per
                         class with a seeded choice, 32 -> ``size`` block-mean downsampling,
                         per-channel standardisation with training statistics) or
                         scikit-learn's 8x8 digits (the laptop stand-in, pixels / 16).
``pixel_toy``            Fig. 7 / 19: 6x6 RGB images with one unit pixel.  Train: a blue
                         pixel (label +1) and a red pixel (label -1) at the upper-left corner
                         (Fig. 7), or ``n_per_class`` of each at seeded random positions of
                         the upper-left 3x3 quadrant (Fig. 19).  Test: ``n_test / 2`` red and
                         ``n_test / 2`` blue pixels at seeded random positions of the
                         lower-right 3x3 quadrant.
``ae_images``            autoencoder inputs: ``n`` digits images (8x8, 1 channel), ``n``
                         CIFAR-10 training images (the paper's Fig. 8), or ``n`` seeded
                         Gaussian vectors of length ``dim`` (Toeplitz nets).
ImageNet32 (``source: imagenet32``) is read like CIFAR through the restricted unpickler
(:mod:`depthlab.data.imagenet32`); its classes are the stored 1-based labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from depthlab.data.cifar import class_subset, downsample, read_cifar10

__all__ = ["SOURCES", "ae_images", "classification_data", "data_source", "pixel_toy"]

SOURCES = {
    "digits": "scikit-learn digits (8x8, 1 channel) instead of CIFAR-10",
    "cifar10": "CIFAR-10 (local files)",
    "imagenet32": "ImageNet32 (local pickled batches; val_data as the test set)",
}
# Yang et al.'s CIFAR-10 normalisation (their ResNet recipe), pixels in [0, 1]
YANG_MEAN = (0.4914, 0.4822, 0.4465)
YANG_STD = (0.2023, 0.1994, 0.2010)
RED, BLUE = 0, 2  # RGB channel of the toy's pixel


def data_source(spec: Mapping[str, Any]) -> str:
    return SOURCES[spec["source"]]


def classification_data(spec: Mapping[str, Any]) -> dict[str, Any]:
    """x_train / x_test float64 (n, C, H, W), y int64 0..k-1 (class-ordered rows), meta."""
    classes = list(spec["classes"])
    seed = int(spec["seed"])
    if spec["source"] == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = digits.images[:, None].astype(np.float64) / 16.0
        y = digits.target.astype(np.int64)
        xs, ys = class_subset(x, y, classes, spec["n_train_per_class"] + spec["n_test_per_class"],
                              seed)
        n_tr = int(spec["n_train_per_class"])
        first = np.concatenate([np.arange(n_tr) + i * (n_tr + spec["n_test_per_class"])
                                for i in range(len(classes))])
        mask = np.zeros(len(ys), bool)
        mask[first] = True
        xtr, ytr, xte, yte = xs[mask], ys[mask], xs[~mask], ys[~mask]
    else:
        if spec["source"] == "imagenet32":
            from depthlab.data.imagenet32 import read_imagenet32

            raw = read_imagenet32(spec["imagenet32_dir"], classes)
        else:
            raw = read_cifar10(spec["cifar_dir"], spec["cifar_format"])
        xtr, ytr = class_subset(raw["x_train"], raw["y_train"], classes,
                                spec["n_train_per_class"], seed)
        xte, yte = class_subset(raw["x_test"], raw["y_test"], classes,
                                spec["n_test_per_class"], seed + 1)
        size = int(spec["image_size"])
        xtr, xte = downsample(xtr, size), downsample(xte, size)
        xtr, xte = xtr / 255.0, xte / 255.0
        if spec.get("normalize", "train_stats") == "yang":
            mean = np.asarray(YANG_MEAN).reshape(1, 3, 1, 1)
            std = np.asarray(YANG_STD).reshape(1, 3, 1, 1)
        else:
            mean = xtr.mean(axis=(0, 2, 3), keepdims=True)
            std = xtr.std(axis=(0, 2, 3), keepdims=True)
        xtr, xte = (xtr - mean) / std, (xte - mean) / std
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte,
            "n_classes": len(classes), "image_shape": list(xtr.shape[1:]),
            "source": data_source(spec)}


def pixel_toy(n_per_class: int = 1, n_test: int = 200, placement: str = "corner",
              seed: int = 0, size: int = 6) -> dict[str, np.ndarray]:
    """The toy of Fig. 7 (``placement="corner"``, one image per class) or Fig. 19
    (``"random"``: ``n_per_class`` per class in the upper-left quadrant).  Images
    ``(n, 3, size, size)`` float64, labels +1 (blue) / -1 (red), rows blue first."""
    if placement not in ("corner", "random") or n_test % 2:
        raise ValueError("placement is corner or random, n_test even")
    rng = np.random.default_rng(int(seed))
    half = size // 2

    def images(colour_pos):
        x = np.zeros((len(colour_pos), 3, size, size))
        for i, (c, r, q) in enumerate(colour_pos):
            x[i, c, r, q] = 1.0
        return x

    if placement == "corner":
        if n_per_class != 1:
            raise ValueError("the corner toy (Fig. 7) has one image per class")
        train = [(BLUE, 0, 0), (RED, 0, 0)]
    else:
        train = [(c, *rng.integers(0, half, 2)) for c in (BLUE,) * n_per_class
                 + (RED,) * n_per_class]
    test = [(c, *(half + rng.integers(0, size - half, 2)))
            for c in (BLUE,) * (n_test // 2) + (RED,) * (n_test // 2)]
    sign = lambda rows: np.array([1.0 if c == BLUE else -1.0 for c, _, _ in rows])  # noqa: E731
    return {"x_train": images(train), "y_train": sign(train), "x_test": images(test),
            "y_test": sign(test)}


def ae_images(kind: str, n: int, seed: int = 0, dim: int = 5, *, cifar_dir: str | None = None,
              cifar_format: str = "binary", size: int = 32) -> np.ndarray:
    """Autoencoder training inputs: ``digits`` -> (n, 1, 8, 8) seeded choice of digits
    images / 16; ``cifar10`` -> (n, 3, size, size) seeded choice of CIFAR-10 training images
    (from ``cifar_dir``) / 255, block-mean downsampled to ``size`` (the paper's Fig. 8);
    ``vector`` -> (n, dim) standard Gaussian rows (the Toeplitz AE)."""
    rng = np.random.default_rng(int(seed))
    if kind == "cifar10":
        x = read_cifar10(cifar_dir, cifar_format)["x_train"]
        pick = x[rng.permutation(len(x))[:n]]
        return downsample(pick, int(size)) / 255.0
    if kind == "digits":
        from sklearn.datasets import load_digits

        imgs = load_digits().images
        return imgs[rng.permutation(len(imgs))[:n], None].astype(np.float64) / 16.0
    if kind == "vector":
        return rng.standard_normal((n, dim))
    raise ValueError(f"unknown autoencoder input kind {kind!r}")
