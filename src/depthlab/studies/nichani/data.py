"""Nichani et al.'s inputs, generated exactly or read from local files (nothing downloaded).

The classification task of the Fully-Conv nets and the CNTK is a dataset of the shared
``datasets:`` block, generator ``class_images`` (:mod:`depthlab.data.images`: CIFAR-10,
ImageNet32 or scikit-learn's 8x8 digits; classes, n per class with a seeded choice, 32 ->
``image_size`` block-mean downsampling, per-channel standardisation), named by the study's
``data.dataset`` and written once by the make_dataset rule; :func:`classification_data`
makes the same arrays in memory (tests).  The conv autoencoder's images are a dataset too,
generator ``image_sample`` (a seeded choice of digits or CIFAR-10 training images), named by
its task's ``dataset``; the other linear nets' inputs are made in their jobs:

``pixel_toy``            Fig. 7 / 19: 6x6 RGB images with one unit pixel.  Train: a blue
                         pixel (label +1) and a red pixel (label -1) at the upper-left corner
                         (Fig. 7), or ``n_per_class`` of each at seeded random positions of
                         the upper-left 3x3 quadrant (Fig. 19).  Test: ``n_test / 2`` red and
                         ``n_test / 2`` blue pixels at seeded random positions of the
                         lower-right 3x3 quadrant.
``ae_images``            autoencoder inputs: ``n`` seeded Gaussian vectors of length ``dim``
                         (Toeplitz nets), or in memory the arrays of an ``image_sample``
                         dataset: ``n`` digits images (8x8, 1 channel) or ``n`` CIFAR-10
                         training images (the paper's Fig. 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from depthlab.data.images import YANG_MEAN, YANG_STD
from depthlab.data.io import dataset_arrays
from depthlab.data.sources import data_source

__all__ = ["YANG_MEAN", "YANG_STD", "ae_images", "classification_data", "pixel_toy",
           "read_classification_data"]

RED, BLUE = 0, 2  # RGB channel of the toy's pixel


def classification_data(spec: Mapping[str, Any]) -> dict[str, Any]:
    """x_train / x_test float64 (n, C, H, W), y int64 0..k-1 (class-ordered rows), the
    arrays of the ``class_images`` dataset with parameters ``spec``."""
    from depthlab.data import generate

    params = {"generator": "class_images", **spec}
    made = generate(params)
    out = {k: made[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    return {**out, "n_classes": int(made["meta"]["n_classes"]),
            "image_shape": list(made["x_train"].shape[1:]), "source": data_source(params)}


def read_classification_data(path: Any, datasets: Mapping[str, Any]) -> dict[str, Any]:
    """The arrays of a study's shared ``class_images`` dataset file and its ``n_classes``,
    verified like every dataset read (content hash, stored config against the config's
    ``datasets`` block: :func:`depthlab.data.io.dataset_arrays`)."""
    arrays, attrs = dataset_arrays(path, datasets=datasets)
    return {**arrays, "n_classes": int(attrs["n_classes"])}


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
    if kind in ("digits", "cifar10"):  # the image_sample dataset's arrays, one implementation
        from depthlab.data import generate

        params = {"generator": "image_sample", "source": kind, "n_images": int(n),
                  "seed": int(seed), "image_size": int(size), "cifar_dir": cifar_dir,
                  "cifar_format": cifar_format}
        return generate(params)["x_train"]
    rng = np.random.default_rng(int(seed))
    if kind == "vector":
        return rng.standard_normal((n, dim))
    raise ValueError(f"unknown autoencoder input kind {kind!r}")
