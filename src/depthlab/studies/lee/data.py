"""The Lee study's inputs: MNIST from local IDX files, or scikit-learn's digits stand-in.

Pixels are scaled to [0, 1] (``ToTensor`` as the authors' code), flattened, optionally shifted
to be strictly positive (``input_shift``: x <- (1 - s) x + s, the theorem's x > 0) and
restricted to a subset of classes (``classes``: [0, 1] is Table 4.1's binary task, relabelled
0..k-1).  Train and test rows are seeded permutations (digits: of the 1 797 images; MNIST:
of the training and t10k files separately).  Labels are class indices; training uses MSE on
one-hot targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from depthlab.kernels.deep_narrow import shift_inputs

__all__ = ["load_lee_data", "data_source"]

SOURCES = {
    "digits": "scikit-learn digits (8x8, bundled), not MNIST",
    "mnist": "MNIST (local IDX files)",
}


def data_source(spec: Mapping[str, Any]) -> str:
    return SOURCES[spec["source"]]


def _subset(x, y, classes):
    if classes is None:
        return x, y
    keep = np.isin(y, classes)
    relabel = {c: i for i, c in enumerate(classes)}
    return x[keep], np.array([relabel[int(c)] for c in y[keep]], dtype=np.int64)


def load_lee_data(spec: Mapping[str, Any]) -> dict[str, Any]:
    """x_train (N, d) float64, y_train (N,) int64, x_test, y_test, n_classes, meta."""
    rng = np.random.default_rng(int(spec["seed"]))
    classes = spec.get("classes")
    n_train, n_test = int(spec["n_train"]), int(spec["n_test"])
    if spec["source"] == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = digits.images.reshape(len(digits.images), -1) / 16.0
        x, y = _subset(x, digits.target.astype(np.int64), classes)
        perm = rng.permutation(len(y))
        if n_train + n_test > len(y):
            raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds the {len(y)} "
                             "digits images of the chosen classes")
        itr, ite = perm[:n_train], perm[n_train:n_train + n_test]
        xtr, ytr, xte, yte = x[itr], y[itr], x[ite], y[ite]
    else:
        from depthlab.data.mnist import load_mnist

        raw = load_mnist(spec["mnist_dir"])
        xtr, ytr = _subset(raw["x_train"].reshape(len(raw["x_train"]), -1) / 255.0,
                           raw["y_train"].astype(np.int64), classes)
        xte, yte = _subset(raw["x_test"].reshape(len(raw["x_test"]), -1) / 255.0,
                           raw["y_test"].astype(np.int64), classes)
        if n_train > len(ytr) or n_test > len(yte):
            raise ValueError(f"n_train = {n_train} / n_test = {n_test} exceed the "
                             f"{len(ytr)} / {len(yte)} MNIST images of the chosen classes")
        itr, ite = rng.permutation(len(ytr))[:n_train], rng.permutation(len(yte))[:n_test]
        xtr, ytr, xte, yte = xtr[itr], ytr[itr], xte[ite], yte[ite]
    shift = float(spec.get("input_shift", 0.0))
    n_classes = len(classes) if classes is not None else 10
    return {
        "x_train": shift_inputs(xtr, shift), "y_train": ytr,
        "x_test": shift_inputs(xte, shift), "y_test": yte,
        "n_classes": n_classes,
        "meta": {"source": data_source(spec), "input_shift": shift,
                 "classes": list(classes) if classes is not None else list(range(10))},
    }
