"""The scaled-NTK limit Theta~^inf of the study's data as a Gram file, written in row blocks.

Same layout as the shared Gram files (:mod:`depthlab.kernels.gram`; read back by its
:func:`~depthlab.kernels.gram.read_gram` / :class:`~depthlab.kernels.gram.GramBlocks`)::

    /ntk_train_train (n_train, n_train)   Theta~^inf of one output block, exactly symmetric
    /ntk_test_train  (n_test, n_train)
    /ntk_test_diag   (n_test,)
    root attrs: kernel "deep_narrow_limit", rho, beta, n_out, n_train, n_test, input_dim,
                block_size, content_hash (of x_train / x_test)

(no NNGP datasets: the limit has none), written by the shared row-block writer
:func:`depthlab.kernels.gram.write_blocked_gram`.  Memory is bounded by a few
``block_size x n_train`` arrays -- the closed form builds ~6 temporaries of its output's
size, so the whole 60 000 x 60 000 MNIST Gram at once would need ~170 GB; in blocks the
file is 29 GB on disk and the kernel regression holds one N x N float64 copy (its in-place
Cholesky).  Train x train is computed one row block at a time, upper part only (columns
from the block's first row on), and mirrored into the transposed slab.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from depthlab.kernels.gram import write_blocked_gram
from depthlab.provenance import content_hash
from depthlab.studies.lee.kernels import limit_kernel

__all__ = ["write_limit_gram"]

KERNEL = "deep_narrow_limit"


def write_limit_gram(path: str | os.PathLike, x_train: Any, x_test: Any, *, n_out: int,
                     rho: float, beta: float, block_size: int,
                     attrs: dict[str, Any] | None = None) -> Path:
    """Write Theta~^inf(X, X), Theta~^inf(X_test, X) and its test diagonal (module doc), in
    row blocks of ``block_size`` (the config's ``kernel_regression.block_size``)."""
    block_size = int(block_size)
    if block_size < 1:
        raise ValueError("block_size must be positive")
    x_train = np.ascontiguousarray(x_train, dtype=np.float64)
    x_test = np.ascontiguousarray(x_test, dtype=np.float64)
    n_train, n_test = len(x_train), len(x_test)
    kw = {"n_out": int(n_out), "rho": float(rho), "beta": float(beta)}
    kernel = partial(limit_kernel, **kw)
    root = {"kernel": KERNEL, **kw, "n_train": n_train, "n_test": n_test,
            "input_dim": int(x_train.shape[1]), "block_size": block_size,
            "content_hash": content_hash({"x_train": x_train, "x_test": x_test}),
            **(attrs or {})}

    def train_rows(r0: int, r1: int) -> dict[str, np.ndarray]:
        block = kernel(x_train[r0:r1], x_train[r0:])
        # the diagonal square symmetric to the last bit (its upper triangle wins)
        square = block[:, : r1 - r0]
        lower = np.tril_indices(r1 - r0, -1)
        square[lower] = square.T[lower]
        return {"ntk": block}

    return write_blocked_gram(
        path, n_train, n_test, kinds=("ntk",), block_size=block_size, root_attrs=root,
        train_rows=train_rows,
        test_rows=lambda r0, r1: {"ntk": kernel(x_test[r0:r1], x_train)},
        test_diag=lambda: {"ntk": np.array([kernel(x_test[i:i + 1])[0, 0]
                                            for i in range(n_test)])},
    )
