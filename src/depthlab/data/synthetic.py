"""Controlled synthetic datasets (Mori & Ueda, sec. 2.1).

Labels are returned 0-based (class 1 of the paper is 0, class 2 is 1) so they index
network outputs directly.

Inputs are i.i.d. standard Gaussians. Train and test samples come from one stream,
train first, so a training set of size N is always the first N rows: the N-sweeps of
a study are nested, and a Gram matrix of the largest set serves every smaller one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from depthlab.data.images import IMAGE_GENERATORS, dataset_rows
from depthlab.data.ising import ising_dataset
from depthlab.data.mnist import digits_parity_dataset, mnist_parity_dataset


def relevant_indices(k: int, d: int, choice: str | Sequence[int], rng: np.random.Generator):
    """The k indices (0-based, increasing) the label depends on.

    `choice` is "first" (i_j = j, which the paper notes is w.l.o.g. for fully connected
    nets), "random" (k distinct indices drawn with the dataset's seed), or an explicit list.
    """
    if isinstance(choice, str):
        if choice == "first":
            return np.arange(k)
        if choice == "random":
            return np.sort(rng.choice(d, size=k, replace=False))
        raise ValueError(f"unknown index choice {choice!r} (use 'first', 'random' or a list)")
    idx = np.asarray(choice, dtype=np.int64)
    if idx.shape != (k,) or np.any(np.diff(idx) <= 0) or idx[0] < 0 or idx[-1] >= d:
        raise ValueError(f"indices {list(idx)} must be {k} increasing integers in [0, {d})")
    return idx


def k_local_labels(x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Eq. (1): class 0 iff x_{i1} x_{i2} ... x_{ik} >= 0."""
    product = np.prod(x[:, indices], axis=1)
    return np.where(product >= 0, 0, 1).astype(np.int64)


def k_global_feature(x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Eq. (2): M = sum_j prod_m x_{j + i_m}, indices taken modulo d (periodic wrap)."""
    feature = np.ones_like(x, dtype=np.float64)
    for i in indices:
        # Column j of the shifted array holds x_{(j + i) mod d}.
        feature *= np.roll(x, -int(i), axis=1)
    return feature.sum(axis=1)


def k_global_labels(x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Eq. (3): class 0 iff M >= 0."""
    return np.where(k_global_feature(x, indices) >= 0, 0, 1).astype(np.int64)


def _gaussian_inputs(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    # Generated in float64 then stored as float32: labels are computed on the stored
    # values so the float32 file is self-consistent.
    return rng.standard_normal((n, d)).astype(np.float32)


def _k_label_dataset(label_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    def make(params: Mapping[str, Any], n_total: int, rng: np.random.Generator):
        k, d = int(params["k"]), int(params["d"])
        indices = relevant_indices(k, d, params.get("indices", "first"), rng)
        x = _gaussian_inputs(rng, n_total, d)
        y = label_fn(x.astype(np.float64), indices)
        return x, y, {"indices": indices.tolist()}

    return make


def _random_label_dataset(params: Mapping[str, Any], n_total: int, rng: np.random.Generator):
    d = int(params["d"])
    n_classes = int(params.get("n_classes", 2))
    x = _gaussian_inputs(rng, n_total, d)
    y = rng.integers(0, n_classes, size=n_total, dtype=np.int64)
    return x, y, {}


GENERATORS: dict[str, Callable] = {
    "k_local": _k_label_dataset(k_local_labels),
    "k_global": _k_label_dataset(k_global_labels),
    "random": _random_label_dataset,
    "ising": ising_dataset,  # params d, beta1, beta2 (supplementary C)
    # Geiger et al.: MNIST parity (local IDX files) / sklearn digits parity; these make
    # their own train/test split (PCA fitted on train only) and return a dict
    "mnist_parity": mnist_parity_dataset,  # params mnist_dir, pca_components
    "digits_parity": digits_parity_dataset,  # params pca_components
    # Lee, Xiao, Nichani: digits / MNIST / CIFAR-10 / ImageNet32 / Gaussian images with
    # their preprocessing (depthlab.data.images)
    **IMAGE_GENERATORS,
}

_SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")


def generate(params: Mapping[str, Any]) -> dict[str, Any]:
    """Make a dataset from its config block.

    Returns arrays x_train, y_train, x_test, y_test and `meta` (generator details).
    The same block (including `seed`) always yields the same arrays.

    A generator returns either ``(x, y, meta)`` over ``n_train + n_test`` rows, train
    first, or -- when it must make the split itself (e.g. fit a PCA on the training rows
    only) -- a dict with the four split arrays and ``meta``.
    """
    kind = params["generator"]
    if kind not in GENERATORS:
        raise ValueError(f"unknown generator {kind!r}; known: {sorted(GENERATORS)}")
    n_train, n_test = dataset_rows(params)
    rng = np.random.default_rng(int(params["seed"]))
    made = GENERATORS[kind](params, n_train + n_test, rng)
    if isinstance(made, Mapping):
        out = {key: made[key] for key in _SPLIT_KEYS}
        for split, n in (("train", n_train), ("test", n_test)):
            if len(out[f"x_{split}"]) != n or len(out[f"y_{split}"]) != n:
                raise ValueError(f"generator {kind!r} returned a {split} set of the wrong size")
        out["meta"] = made.get("meta", {})
        return out
    x, y, meta = made
    return {
        "x_train": x[:n_train],
        "y_train": y[:n_train],
        "x_test": x[n_train:],
        "y_test": y[n_train:],
        "meta": meta,
    }


def label_function(params: Mapping[str, Any], attrs: Mapping[str, Any]) -> Callable:
    """The rule that labelled a stored dataset, as x (n, d) -> labels (for Fig. 5's s(v))."""
    import json

    kind = params["generator"]
    meta = json.loads(attrs.get("generator_meta", "{}"))
    rules = {"k_local": k_local_labels, "k_global": k_global_labels}
    if kind not in rules:
        raise ValueError(f"generator {kind!r} has no label rule to evaluate off its samples")
    indices = np.asarray(meta["indices"], dtype=np.int64)
    return lambda x: rules[kind](np.asarray(x, dtype=np.float64), indices)
