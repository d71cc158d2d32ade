"""CIFAR-10 from local files only, in either of its two standard formats.

``read_cifar10(directory, fmt)`` returns ``{"x_train", "y_train", "x_test", "y_test"}``
with images ``uint8 (n, 3, 32, 32)`` (channel planes R, G, B, each 32 x 32 row-major, as
stored) and labels ``int64`` 0..9 (airplane, automobile, bird, cat, deer, dog, frog, horse,
ship, truck).  ``directory`` is the extracted batch folder or the folder holding it:

``fmt="binary"``
    ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and ``test_batch.bin``: records of
    3 073 bytes, one label byte then 3 072 pixel bytes.  No pickle is involved.
``fmt="python"``
    ``cifar-10-batches-py/data_batch_{1..5}`` and ``test_batch``: pickled dicts with
    ``b"data"`` (10 000 x 3 072 uint8) and ``b"labels"``.  A pickle can run arbitrary code
    when loaded, so they are read through :class:`RestrictedUnpickler`, which resolves no
    global except numpy's array reconstruction and a few plain builtins; anything else
    (``os.system``, ``subprocess``, ``eval``, ...) raises :class:`pickle.UnpicklingError`.

Nothing is downloaded: a missing file is :class:`CifarNotFoundError` naming the directory.
Helpers: :func:`class_subset` (classes relabelled 0..k-1, a seeded per-class choice),
:func:`downsample` (block means, e.g. 32 -> 16 as Nichani et al.).
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CIFAR10_CLASSES", "CifarNotFoundError", "RestrictedUnpickler", "class_subset",
           "find_cifar10_files",
           "downsample", "read_cifar10", "restricted_loads"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_TEST = "test_batch"
_SUBDIRS = {"python": "cifar-10-batches-py", "binary": "cifar-10-batches-bin"}
_RECORD = 1 + 3 * 32 * 32


class CifarNotFoundError(FileNotFoundError):
    pass


# Globals a CIFAR / ImageNet32 pickle may name: numpy's ndarray reconstruction (numpy 1 and
# 2 module paths) and inert builtins. Nothing that can call out of the interpreter.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "bytes"),
    ("builtins", "str"), ("builtins", "int"), ("builtins", "float"), ("builtins", "complex"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"), ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside numpy arrays and plain builtins."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name} (only numpy arrays and "
                                     "builtins may be unpickled)")


def restricted_loads(data: bytes) -> Any:
    """``pickle.loads`` through :class:`RestrictedUnpickler` (python-2 strings as bytes)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def _batch_dir(directory: str | os.PathLike, fmt: str) -> Path:
    if fmt not in _SUBDIRS:
        raise ValueError(f"fmt must be 'python' or 'binary', got {fmt!r}")
    root = Path(directory)
    first = _TRAIN[0] + (".bin" if fmt == "binary" else "")
    for cand in (root / _SUBDIRS[fmt], root):
        if (cand / first).is_file():
            return cand
    raise CifarNotFoundError(
        f"no CIFAR-10 {fmt} batches in {root} (expected {_SUBDIRS[fmt]}/{first} or {first} "
        "there; nothing is downloaded: put the extracted files in the directory of the "
        "config key cifar_dir)")


def _read_binary(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % _RECORD:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of 3073-byte records")
    rec = raw.reshape(-1, _RECORD)
    labels = rec[:, 0].astype(np.int64)
    _check_labels(path, labels, 0, 9)
    return rec[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _read_python(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = restricted_loads(path.read_bytes())
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a CIFAR batch (a {type(batch).__name__})")
    get = lambda k: batch.get(k.encode(), batch.get(k))  # noqa: E731
    data, labels = get("data"), get("labels")
    if data is None or labels is None:
        raise ValueError(f"{path}: a CIFAR batch needs 'data' and 'labels'")
    data = as_pixels(path, data)
    labels = as_labels(path, labels, len(data))
    _check_labels(path, labels, 0, 9)
    return data.reshape(-1, 3, 32, 32), labels


def as_pixels(path: Path, data: Any) -> np.ndarray:
    """A batch's ``data`` as uint8 (n, 3072), refusing what a uint8 cast would wrap.

    ``np.asarray(data, dtype=np.uint8)`` turns 300 into 44 and -1 into 255 without a word, so
    values are checked in their own type first: integers in 0..255, shape (n, 3072).
    """
    arr = np.asarray(data)
    if arr.ndim != 2 or arr.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: data has shape {arr.shape}, expected (n, 3072)")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
        raise ValueError(f"{path}: pixels are {arr.dtype}, expected uint8 integers 0..255")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"{path}: pixel values {arr.min()}..{arr.max()} outside 0..255")
    return arr.astype(np.uint8)


def as_labels(path: Path, labels: Any, n: int) -> np.ndarray:
    """A batch's labels as int64, one per image, refusing non-integers (3.5 would cast to 3)."""
    arr = np.asarray(labels).ravel()
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{path}: labels are {arr.dtype}, expected integers")
    if len(arr) != n:
        raise ValueError(f"{path}: {len(arr)} labels for {n} images")
    return arr.astype(np.int64)


def _check_labels(path: Path, labels: np.ndarray, lo: int, hi: int) -> None:
    if len(labels) and (labels.min() < lo or labels.max() > hi):
        bad = int(np.flatnonzero((labels < lo) | (labels > hi))[0])
        raise ValueError(f"{path}: label {int(labels[bad])} at row {bad}; labels must be "
                         f"{lo}..{hi}")


def find_cifar10_files(directory: str | os.PathLike, fmt: str = "python") -> list[Path]:
    """The six batch files (five training, one test) in ``directory``; a missing one is a
    :class:`CifarNotFoundError` naming it (config checks call this before any job)."""
    base = _batch_dir(directory, fmt)
    suffix = ".bin" if fmt == "binary" else ""
    paths = [base / (name + suffix) for name in (*_TRAIN, _TEST)]
    for path in paths:
        if not path.is_file():
            raise CifarNotFoundError(f"{path} missing (CIFAR-10 {fmt} batches in {base})")
    return paths


def read_cifar10(directory: str | os.PathLike, fmt: str = "python") -> dict[str, np.ndarray]:
    """The five training batches and the test batch (see the module doc)."""
    reader = _read_binary if fmt == "binary" else _read_python
    # each reader checks its file's pixels and labels (0..9, one per image) and names it
    parts = [reader(path) for path in find_cifar10_files(directory, fmt)]
    return {"x_train": np.concatenate([p[0] for p in parts[:-1]]),
            "y_train": np.concatenate([p[1] for p in parts[:-1]]),
            "x_test": parts[-1][0], "y_test": parts[-1][1]}


def class_subset(x: np.ndarray, y: np.ndarray, classes: Sequence[int], n_per_class: int | None,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``classes`` (relabelled 0..k-1 in the given order): per class the first
    ``n_per_class`` of a seeded permutation of that class's rows (None = all), in class
    order.  Asking for more rows than a class has is an error."""
    rng = np.random.default_rng(int(seed))
    xs, ys = [], []
    for new, c in enumerate(classes):
        rows = np.flatnonzero(np.asarray(y) == c)
        take = len(rows) if n_per_class is None else int(n_per_class)
        if take > len(rows):
            raise ValueError(f"class {c}: {take} rows asked, {len(rows)} available")
        pick = rows[rng.permutation(len(rows))[:take]]
        xs.append(x[pick])
        ys.append(np.full(take, new, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def downsample(x: np.ndarray, size: int) -> np.ndarray:
    """Images ``(n, C, H, W)`` to ``(n, C, size, size)`` by block means (PyTorch's
    ``interpolate(mode="area")`` for integer factors), as float64."""
    n, c, h, w = x.shape
    if h % size or w % size:
        raise ValueError(f"{h}x{w} images do not downsample to {size}x{size} by whole blocks")
    fh, fw = h // size, w // size
    return np.asarray(x, dtype=np.float64).reshape(n, c, size, fh, size, fw).mean(axis=(3, 5))
