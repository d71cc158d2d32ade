"""ImageNet32 (Chrabaszcz et al. 2017, ImageNet downsampled to 32 x 32) from local files.

The standard pickled release: ``train_data_batch_1`` .. ``train_data_batch_10`` and
``val_data``, each a pickled dict ``{'data': uint8 (N, 3072), 'labels': list of int,
'mean': ...}`` with labels **1-based** (1..1000, the order of ``map_clsloc.txt``) and rows
of 1 024 R, 1 024 G, 1 024 B values (32 x 32 row-major), as CIFAR.  The files may sit in
``directory`` itself or in its ``Imagenet32_train/`` and ``Imagenet32_val/`` folders.

A pickle can run code when loaded, so every file goes through the restricted unpickler of
:mod:`depthlab.data.cifar` (numpy arrays and plain builtins only; anything else is a
:class:`pickle.UnpicklingError`).  Nothing is downloaded: a missing file is
:class:`ImageNet32NotFoundError` naming the directory.  :func:`read_imagenet32` keeps only
the requested classes while reading (the full training set is 3.8 GB of pixels), labels as
stored (1-based); :func:`depthlab.data.cifar.class_subset` then picks n per class and
relabels 0..k-1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from depthlab.data.cifar import as_labels, as_pixels, restricted_loads

__all__ = ["IMAGENET32_TRAIN", "IMAGENET32_VAL", "ImageNet32NotFoundError",
           "find_imagenet32_files", "read_imagenet32", "read_imagenet32_batch"]

IMAGENET32_TRAIN = tuple(f"train_data_batch_{i}" for i in range(1, 11))
IMAGENET32_VAL = "val_data"
_SUBDIRS = {"train": "Imagenet32_train", "val": "Imagenet32_val"}


class ImageNet32NotFoundError(FileNotFoundError):
    pass


def _find(root: Path, name: str, sub: str) -> Path:
    for cand in (root / name, root / _SUBDIRS[sub] / name):
        if cand.is_file():
            return cand
    raise ImageNet32NotFoundError(
        f"{name} missing in {root} (looked in {root} and {root / _SUBDIRS[sub]}; nothing is "
        "downloaded: put the pickled ImageNet32 batches in the directory of the config key "
        "imagenet32_dir)")


def find_imagenet32_files(directory: str | os.PathLike) -> list[Path]:
    """The ten training batches and ``val_data``; a missing one is an
    :class:`ImageNet32NotFoundError` naming it (config checks call this before any job)."""
    root = Path(directory)
    return [*(_find(root, n, "train") for n in IMAGENET32_TRAIN), _find(root, IMAGENET32_VAL,
                                                                        "val")]


def read_imagenet32_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: images uint8 (N, 3, 32, 32), labels int64 as stored (1-based)."""
    path = Path(path)
    batch = restricted_loads(path.read_bytes())
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not an ImageNet32 batch (a {type(batch).__name__})")
    get = lambda k: batch.get(k, batch.get(k.encode()))  # noqa: E731
    data, labels = get("data"), get("labels")
    if data is None or labels is None:
        raise ValueError(f"{path}: an ImageNet32 batch needs 'data' and 'labels'")
    # pixels integers 0..255 in (n, 3072), labels integers 1..1000, one per image; the
    # error names the file (shared with the CIFAR reader: same layout)
    data = as_pixels(path, data)
    labels = as_labels(path, labels, len(data))
    if len(labels) and (labels.min() < 1 or labels.max() > 1000):
        raise ValueError(f"{path}: labels must be 1..1000 (1-based), got "
                         f"{labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels


def read_imagenet32(directory: str | os.PathLike,
                    classes: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """``{"x_train", "y_train", "x_test", "y_test"}`` (the test split is ``val_data``):
    uint8 (n, 3, 32, 32) and int64 1-based labels, only the rows of ``classes`` (None =
    all), in file order."""
    paths = find_imagenet32_files(directory)
    keep = None if classes is None else np.asarray(sorted(set(int(c) for c in classes)))

    def load(path):
        x, y = read_imagenet32_batch(path)
        if keep is None:
            return x, y
        rows = np.isin(y, keep)
        return x[rows], y[rows]

    train = [load(p) for p in paths[:-1]]
    x_te, y_te = load(paths[-1])
    return {"x_train": np.concatenate([t[0] for t in train]),
            "y_train": np.concatenate([t[1] for t in train]), "x_test": x_te, "y_test": y_te}
