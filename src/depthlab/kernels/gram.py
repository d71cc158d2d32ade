"""Gram files: NTK and NNGP Grams of one (dataset, kernel, depth), written in row blocks.

Layout of a file made by :func:`compute_gram_file` (all float64, chunked)::

    /ntk_train_train    (n_train, n_train)   Theta(x_train_i, x_train_j), exactly symmetric
    /ntk_test_train     (n_test, n_train)    Theta(x_test_i, x_train_j)
    /ntk_test_diag      (n_test,)            Theta(x_test_i, x_test_i)
    /nngp_train_train, /nngp_test_train, /nngp_test_diag    the same for Sigma
    root attrs: spec (JSON), depth, n_train, n_test, input_dim, content_hash (SHA-256 of
                x_train/x_test), block_size, plus the caller's attrs (provenance_attrs).

The file appears atomically (``provenance.atomic_output``).  Memory is bounded by a few
``block_size x n_train`` arrays: train x train is computed one row block at a time, upper
part only (columns from the block's first row on) and mirrored into the transposed slab,
and test x train one row block at a time.  Training sets of smaller N are the leading
rows/columns of the stored Gram (nested prefixes), see :func:`read_gram`.

A conv kernel spec (``architecture: conv``, :class:`depthlab.kernels.conv.ConvSpec`) gives
the same file from the torch conv engine (flat rows read with the spec's ``image_shape``),
with the root attrs ``architecture``, ``kernel_device`` and ``kernel_dtype`` added.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from depthlab.kernels.layers import (
    DEFAULT_TILE,
    KernelSpec,
    kernel_diag,
    sweep_panel,
)
from depthlab.provenance import (
    InputFileError,
    atomic_output,
    content_hash,
    open_h5_checked,
    to_json,
)

__all__ = [
    "GRAM_DATASETS",
    "GramBlocks",
    "compute_gram_file",
    "gram_dataset_names",
    "read_gram",
    "read_test_diag",
]

KINDS = ("ntk", "nngp")


def gram_dataset_names(kind: str) -> tuple[str, str, str]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return f"{kind}_train_train", f"{kind}_test_train", f"{kind}_test_diag"


GRAM_DATASETS: tuple[str, ...] = gram_dataset_names("ntk") + gram_dataset_names("nngp")


def _chunk_edge(block_size: int) -> int:
    # Chunks that tile the row blocks exactly make every write (row slabs and the
    # mirrored column slabs) a whole-chunk write.
    edge = math.gcd(block_size, 256)
    return edge if edge >= 32 else min(block_size, 256)


def _chunks(shape: tuple[int, ...], edge: int) -> tuple[int, ...] | None:
    if any(s == 0 for s in shape):
        return None
    return tuple(min(s, edge) for s in shape)


def write_blocked_gram(
    path: str | os.PathLike,
    n_train: int,
    n_test: int,
    *,
    kinds: tuple[str, ...],
    train_rows: Callable[[int, int], Mapping[str, np.ndarray]],
    test_rows: Callable[[int, int], Mapping[str, np.ndarray]],
    test_diag: Callable[[], Mapping[str, np.ndarray]],
    block_size: int,
    root_attrs: Mapping[str, Any],
) -> Path:
    """The one row-block writer behind every Gram file (FC and conv specs here, and any
    kernel given as functions, e.g. a study's closed-form limit kernel).

    ``train_rows(r0, r1)`` returns, per kind, the train x train rows ``r0:r1`` from column
    ``r0`` on (shape ``(r1 - r0, n_train - r0)``, its leading square exactly symmetric); the
    writer mirrors them into the columns, so the stored matrix is exactly symmetric and
    only its upper part is ever computed.  ``test_rows(r0, r1)`` returns test rows
    ``r0:r1`` against every training point, ``test_diag()`` the test self-kernels.  At most
    one row block per kind is in memory; the file appears atomically, complete or not at
    all.  Returns the path.
    """
    import h5py

    path = Path(path)
    edge = _chunk_edge(block_size)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        _write_root_attrs(f, root_attrs)

        def make(name: str, shape: tuple[int, ...]):
            return f.create_dataset(name, shape=shape, dtype="f8", chunks=_chunks(shape, edge))

        tt = {k: make(f"{k}_train_train", (n_train, n_train)) for k in kinds}
        te = {k: make(f"{k}_test_train", (n_test, n_train)) for k in kinds}
        for r0 in range(0, n_train, block_size):
            r1 = min(r0 + block_size, n_train)
            for kind, block in train_rows(r0, r1).items():
                tt[kind][r0:r1, r0:] = block
                tt[kind][r0:, r0:r1] = block.T
        for r0 in range(0, n_test, block_size):
            r1 = min(r0 + block_size, n_test)
            for kind, block in test_rows(r0, r1).items():
                te[kind][r0:r1] = block
        for kind, diag in test_diag().items():
            f.create_dataset(f"{kind}_test_diag", data=diag, chunks=_chunks((n_test,), 65536))
    return path


def compute_gram_file(
    path: str | os.PathLike,
    x_train: Any,
    x_test: Any,
    spec: KernelSpec | Mapping[str, Any],
    depth: int,
    block_size: int = 2048,
    attrs: Mapping[str, Any] | None = None,
    *,
    n_threads: int | None = None,
    tile: int = DEFAULT_TILE,
) -> Path:
    """Write the NTK and NNGP Grams of ``spec`` at ``depth`` to an HDF5 file (see module doc).

    ``attrs`` (e.g. ``provenance_attrs(config_slice, seed)``) are stored on the root.
    Returns the path.
    """

    depth, block_size = int(depth), int(block_size)
    if block_size < 1:
        raise ValueError("block_size must be positive")
    x_train = np.ascontiguousarray(x_train, dtype=np.float64)
    x_test = np.ascontiguousarray(x_test, dtype=np.float64)
    if x_train.ndim != 2 or x_test.ndim != 2 or x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"x_train {x_train.shape} and x_test {x_test.shape} must be (n, d)")
    if _is_conv(spec):
        return _compute_conv_gram_file(path, x_train, x_test, spec, depth, block_size, attrs,
                                       n_threads=n_threads)
    spec = KernelSpec.coerce(spec)
    n_train, n_test = x_train.shape[0], x_test.shape[0]
    root_attrs = {**_base_attrs(spec, depth, x_train, x_test, block_size), **(attrs or {})}

    def rows(x_rows: np.ndarray, x_cols: np.ndarray, same: bool) -> dict[str, np.ndarray]:
        nngp, ntk = sweep_panel(spec, depth, x_rows, x_cols, prefix_same=same, tile=tile,
                                n_threads=n_threads)[depth]
        return {"nngp": nngp, "ntk": ntk}

    def diag() -> dict[str, np.ndarray]:
        nngp, ntk = kernel_diag(spec, depth, x_test)
        return {"nngp": nngp, "ntk": ntk}

    return write_blocked_gram(
        path, n_train, n_test, kinds=KINDS, block_size=block_size, root_attrs=root_attrs,
        train_rows=lambda r0, r1: rows(x_train[r0:r1], x_train[r0:], True),
        test_rows=lambda r0, r1: rows(x_test[r0:r1], x_train, False),
        test_diag=diag,
    )


def _base_attrs(spec: Any, depth: int, x_train: np.ndarray, x_test: np.ndarray,
                block_size: int) -> dict[str, Any]:
    """Root attrs every spec's Gram file carries (what made it, and of which inputs)."""
    return {
        "spec": json.dumps(spec.to_dict(), sort_keys=True),
        "depth": depth,
        "n_train": x_train.shape[0],
        "n_test": x_test.shape[0],
        "input_dim": x_train.shape[1],
        "block_size": block_size,
        "content_hash": content_hash({"x_train": x_train, "x_test": x_test}),
    }


def _is_conv(spec: Any) -> bool:
    if isinstance(spec, Mapping):
        return spec.get("architecture", "fc") == "conv"
    return type(spec).__name__ == "ConvSpec"


def _write_root_attrs(f, root_attrs: Mapping[str, Any]) -> None:
    for key, value in root_attrs.items():
        if not isinstance(value, (str, int, float, np.number)):
            value = to_json(value)
        f.attrs[key] = value


def _compute_conv_gram_file(
    path: str | os.PathLike,
    x_train: Any,
    x_test: Any,
    spec: Any,
    depth: int,
    block_size: int,
    attrs: Mapping[str, Any] | None,
    *,
    n_threads: int | None = None,
) -> Path:
    """:func:`compute_gram_file` for a conv spec (:class:`depthlab.kernels.conv.ConvSpec`):
    the same datasets, chunking, row blocks and atomic write; each row block is computed by
    :func:`depthlab.kernels.conv.conv_sweep_panel` in memory-bounded tiles of image pairs,
    the test diagonal by the self recursion.  Extra root attrs: ``architecture``,
    ``kernel_device``, ``kernel_dtype``."""

    from depthlab.kernels.conv import ConvSpec, as_images, conv_sweep_panel, self_kernel

    spec = ConvSpec.coerce(spec)
    if x_train.shape[1] != int(np.prod(spec.image_shape)):
        raise ValueError(f"image_shape {list(spec.image_shape)} does not hold the "
                         f"{x_train.shape[1]} inputs of a row")
    n_train, n_test = x_train.shape[0], x_test.shape[0]
    import torch

    device = spec.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float64 if spec.dtype == "float64" else torch.float32
    img_train = as_images(x_train, spec.image_shape, dtype=dtype, device=device)
    img_test = as_images(x_test, spec.image_shape, dtype=dtype, device=device)
    opts = {"dtype": dtype, "device": device, "n_threads": n_threads}
    root_attrs = {**_base_attrs(spec, depth, x_train, x_test, block_size),
                  "architecture": "conv", "kernel_device": str(device),
                  "kernel_dtype": spec.dtype, **(attrs or {})}

    def rows(img_rows, img_cols, same: bool) -> dict[str, np.ndarray]:
        nngp, ntk = conv_sweep_panel(spec, depth, img_rows, img_cols, prefix_same=same,
                                     **opts)[depth]
        return {"nngp": nngp, "ntk": ntk}

    def diag() -> dict[str, np.ndarray]:
        nngp, ntk = self_kernel(spec, img_test, depth, **opts)
        return {"nngp": nngp, "ntk": ntk}

    return write_blocked_gram(
        path, n_train, n_test, kinds=KINDS, block_size=block_size, root_attrs=root_attrs,
        train_rows=lambda r0, r1: rows(img_train[r0:r1], img_train[r0:], True),
        test_rows=lambda r0, r1: rows(img_test[r0:r1], img_train, False),
        test_diag=diag,
    )


class GramBlocks:
    """Lazy row blocks of ``<kind>_test_train[:, :n_train]`` of a Gram file.

    Iterating opens the file, yields ``(rows, n_train)`` float64 arrays of ``block_size``
    rows (the last may be shorter) and closes it; it can be iterated repeatedly and holds
    no open file in between.  ``read()`` returns the whole matrix.
    """

    def __init__(self, path: str | os.PathLike, kind: str, n_train: int, block_size: int):
        self.path = Path(path)
        self.kind = kind
        self.name = gram_dataset_names(kind)[1]
        self.n_train = int(n_train)
        self.block_size = int(block_size)
        with _open(self.path, (self.name,)) as f:
            self.n_test = int(f[self.name].shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_test, self.n_train)

    def __len__(self) -> int:
        return -(-self.n_test // self.block_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        with _open(self.path, (self.name,)) as f:
            dset = f[self.name]
            for r0 in range(0, self.n_test, self.block_size):
                yield _read(self.path, dset, np.s_[r0 : r0 + self.block_size, : self.n_train])

    def read(self) -> np.ndarray:
        with _open(self.path, (self.name,)) as f:
            return _read(self.path, f[self.name], np.s_[:, : self.n_train])


def _open(path: Path, required: tuple[str, ...]):
    return open_h5_checked(path, required)


def _read(path: Path, dset, sel) -> np.ndarray:
    try:
        return np.asarray(dset[sel], dtype=np.float64)
    except (OSError, RuntimeError, ValueError) as err:
        raise InputFileError(
            f"{path}: could not read {dset.name} (truncated or corrupt?): {err}. "
            "Delete it and rerun the rule that makes it."
        ) from err


def read_gram(
    path: str | os.PathLike,
    kind: str = "ntk",
    n_train: int | None = None,
    block_size: int = 2048,
) -> tuple[np.ndarray, GramBlocks]:
    """``(train_train[:n, :n], blocks)`` where ``blocks`` lazily yields row blocks of
    ``test_train[:, :n]`` (``n = n_train``, default all).  Raises ``InputFileError`` naming
    the file if it is missing, truncated or lacks the datasets."""
    path = Path(path)
    names = gram_dataset_names(kind)
    with _open(path, names) as f:
        n_stored = int(f[names[0]].shape[0])
        n = n_stored if n_train is None else int(n_train)
        if not 0 <= n <= n_stored:
            raise ValueError(f"{path}: n_train={n} but the file holds {n_stored} training points")
        k_tt = _read(path, f[names[0]], np.s_[:n, :n])
    return k_tt, GramBlocks(path, kind, n, block_size)


def read_test_diag(path: str | os.PathLike, kind: str = "ntk") -> np.ndarray:
    path = Path(path)
    name = gram_dataset_names(kind)[2]
    with _open(path, (name,)) as f:
        return _read(path, f[name], np.s_[:])
