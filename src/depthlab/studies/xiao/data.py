"""The Xiao study's inputs, datasets of the shared ``datasets:`` block (one file each, made
by the make_dataset rule, content hash verified on read):

* ``phase.images``: generator ``gaussian_images`` (Fig. 1, Table 1): m Gaussian images of
  shape (3, k, k), each pixel's channel vector rescaled to mean square 1, so every pixel (and
  the flattened FC input, ||x||^2/d = 1) has unit variance: the uniform per-pixel variance
  App. D assumes.
* ``plane`` (Fig. 3 top, Fig. 2), ``pool`` (Fig. 3 bottom), ``cliff``, ``plane_nets``:
  generator ``centred_images``: digits (the laptop stand-in) or CIFAR-10, pixels centred by
  the training mean, each image scaled to mean square 1, pooled by the dataset's
  ``image_pool`` (:mod:`depthlab.data.images`).

What the study adds (:func:`read_set`): labels one-hot minus the training set's class
frequencies, so that 1^T Y = 0 over the training set (App. B.1); a prediction f is
classified as argmax(f + frequencies).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from depthlab.data.images import avg_pool_images, gaussian_images

__all__ = ["LABELLED_BLOCKS", "N_CLASSES", "avg_pool_images", "centred_labels", "data_block",
           "labelled_set", "phase_sizes", "read_set", "synthetic_images"]

N_CLASSES = 10
LABELLED_BLOCKS = ("plane", "pool", "cliff", "plane_nets")
synthetic_images = gaussian_images  # (m, k, seed, channels=3): Fig. 1's inputs


def centred_labels(y_train: np.ndarray, y_test: np.ndarray, k: int = N_CLASSES):
    """One-hot minus the training class frequencies (train and test) and the frequencies."""
    eye = np.eye(k)
    freq = eye[y_train].mean(axis=0)
    return eye[y_train] - freq, eye[y_test] - freq, freq


def _labelled(made: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    y_tr, y_te, freq = centred_labels(made["y_train"], made["y_test"])
    return {"x_train": made["x_train"], "x_test": made["x_test"], "y_train": y_tr,
            "y_test": y_te, "labels_train": made["y_train"], "labels_test": made["y_test"],
            "class_freq": freq}


def labelled_set(spec: Mapping[str, Any], n_train: int, n_test: int, seed: int,
                 image_pool: int = 1) -> dict[str, np.ndarray]:
    """In memory (tests): the ``centred_images`` dataset of ``spec["source"]`` with these
    sizes, seed and pooling, with the study's centred labels."""
    from depthlab.data import generate

    made = generate({**spec, "generator": "centred_images", "n_train": n_train,
                     "n_test": n_test, "seed": seed, "image_pool": image_pool})
    return _labelled(made)


def read_set(path: str | Path, expect: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The arrays a sweep or a training job reads from its dataset file (verified: content
    hash, and the file's config against ``expect``, the block naming the dataset): Gaussian
    images as ``{"x": images}``, a labelled set with the centred labels."""
    from depthlab.data.io import read_dataset

    data = read_dataset(path, expect=expect, within=True)
    if data["config"]["generator"] == "gaussian_images":
        return {"x": data["x_train"]}
    return _labelled(data)


def phase_sizes(phase: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(m, k) of each Gaussian image set of the phase block (its datasets, filled in)."""
    return [(int(img["n_train"]), int(img["image_size"])) for img in phase["images"]]


def data_block(study: Mapping[str, Any], group: str) -> Mapping[str, Any]:
    """The block naming the dataset of data group ``group`` (a sweep's ``data``: a labelled
    block's name, or ``synth_m{m}_k{k}`` for a Gaussian image set of the phase block)."""
    if group in LABELLED_BLOCKS:
        return study[group]
    for img in study["phase"]["images"]:
        if group == f"synth_m{img['n_train']}_k{img['image_size']}":
            return img
    raise KeyError(f"no data group {group!r} in the study")
