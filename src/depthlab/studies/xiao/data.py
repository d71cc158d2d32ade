"""The Xiao study's inputs (one ``data.h5`` per study).

* ``synth_m{m}_k{k}``: m Gaussian images of shape (3, k, k) (Fig. 1, Table 1); each pixel's
  channel vector is rescaled to mean square 1, so every pixel (and the flattened FC input,
  ||x||^2/d = 1) has unit variance: the uniform per-pixel variance App. D assumes.
* ``plane`` (Fig. 3 top, Fig. 2): flattened images, ``pool`` (Fig. 3 bottom): images average
  pooled by ``pool.image_pool``.  Source ``digits`` (scikit-learn's bundled 8x8 digits, the
  laptop stand-in) or ``cifar10`` (local python-pickle batches, :mod:`depthlab.data.cifar`).
  Pixels are centred by the training mean, then each image is scaled to mean square 1 over
  its entries.  Labels: one-hot minus the training set's class frequencies, so that
  1^T Y = 0 over the training set (App. B.1); a prediction f is classified as
  argmax(f + frequencies).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

SOURCES = {
    "digits": "scikit-learn digits (8x8, bundled), laptop stand-in for CIFAR-10",
    "cifar10": "CIFAR-10 (local python-pickle batches)",
}
N_CLASSES = 10


def data_source(spec: Mapping[str, Any]) -> str:
    return SOURCES[spec["source"]]


def synthetic_images(m: int, k: int, seed: int, channels: int = 3) -> np.ndarray:
    """(m, C, k, k) Gaussian images, each pixel's channel vector of mean square 1."""
    x = np.random.default_rng(seed).standard_normal((m, channels, k, k))
    norm = np.sqrt((x**2).mean(axis=1, keepdims=True))
    return x / norm


def _raw_images(spec: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) as float images (n, C, H, W) in [0, 1]."""
    if spec["source"] == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = d.images[:, None, :, :] / 16.0
        y = d.target.astype(np.int64)
        # the pool of train candidates and of test candidates are disjoint halves
        half = len(y) // 2
        return x[:half], y[:half], x[half:], y[half:]
    from depthlab.data.cifar import read_cifar10

    raw = read_cifar10(spec["cifar_dir"], fmt="python")
    return (raw["x_train"] / 255.0, raw["y_train"], raw["x_test"] / 255.0, raw["y_test"])


def avg_pool_images(x: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return x
    n, c, h, w = x.shape
    return x[:, :, : h - h % factor, : w - w % factor].reshape(
        n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def centred_labels(y_train: np.ndarray, y_test: np.ndarray, k: int = N_CLASSES):
    """One-hot minus the training class frequencies (train and test) and the frequencies."""
    eye = np.eye(k)
    freq = eye[y_train].mean(axis=0)
    return eye[y_train] - freq, eye[y_test] - freq, freq


def labelled_set(spec: Mapping[str, Any], n_train: int, n_test: int, seed: int,
                 image_pool: int = 1, raw=None) -> dict[str, np.ndarray]:
    """A seeded subset, pooled, centred and normalised (module doc); images (n, C, H, W)."""
    xtr, ytr, xte, yte = raw if raw is not None else _raw_images(spec)
    if n_train > len(ytr) or n_test > len(yte):
        raise ValueError(f"n_train = {n_train} / n_test = {n_test} exceed the {len(ytr)} / "
                         f"{len(yte)} candidate images of {spec['source']}")
    rng = np.random.default_rng(seed)
    itr = rng.permutation(len(ytr))[:n_train]
    ite = rng.permutation(len(yte))[:n_test]
    xtr, xte = avg_pool_images(xtr[itr], image_pool), avg_pool_images(xte[ite], image_pool)
    ytr, yte = ytr[itr], yte[ite]
    mean = xtr.mean(axis=0, keepdims=True)
    xtr, xte = xtr - mean, xte - mean

    def unit(x):
        ms = (x**2).reshape(len(x), -1).mean(axis=1)
        return x / np.sqrt(np.where(ms > 0, ms, 1.0))[:, None, None, None]

    y_tr, y_te, freq = centred_labels(ytr, yte)
    return {"x_train": unit(xtr), "x_test": unit(xte), "y_train": y_tr, "y_test": y_te,
            "labels_train": ytr, "labels_test": yte, "class_freq": freq}
