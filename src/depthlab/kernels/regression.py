"""Kernel (ridge-less) regression with NTK/NNGP Grams: eq. (14) of Mori & Ueda.

``f(x) = Theta(x, X) K^{-1} Y`` with ``K = Theta(X, X)`` and one-hot targets ``Y``;
the predicted class is ``argmax_i f_i(x)``.  This is the infinite-width limit of a network
trained by gradient descent on the mean-squared error (infinitesimal weight decay).

Jitter
------
``K`` is positive definite in exact arithmetic for distinct inputs, but deep ReLU NTK
Grams are numerically near-singular (rows of far-apart points become nearly parallel as
depth grows), so a float64 Cholesky can hit a tiny negative pivot.  We factor
``K + jitter * mean(diag K) * I``: the jitter is *relative* to the kernel's scale and tiny
(default 1e-10), so it only makes numerically semidefinite Grams factorizable.  The
training residual it introduces is ``Y - K alpha = jitter * mean(diag K) * alpha``, i.e.
the fit still interpolates up to ~jitter relative.  If the factorization fails anyway the
jitter is multiplied by 10 and retried, up to :data:`MAX_JITTER` (1e-4); the jitter
actually used is returned and should be recorded with the result.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg

from depthlab.kernels.gram import read_gram

__all__ = [
    "MAX_JITTER",
    "PREDICT_BLOCK",
    "KernelFit",
    "kernel_regression_fit",
    "predict",
    "predict_streamed",
    "one_hot",
    "ntk_test_error",
]

MAX_JITTER = 1e-4
PREDICT_BLOCK = 2048


class KernelFit(NamedTuple):
    alpha: np.ndarray  # (n_train, n_outputs) = (K + jitter mean(diag K) I)^{-1} Y
    jitter_used: float  # relative jitter of the successful factorization


def one_hot(labels: Any, n_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= n_classes)):
        raise ValueError(f"labels must be a 1-D array of integers in [0, {n_classes})")
    y = np.zeros((labels.size, n_classes))
    y[np.arange(labels.size), labels.astype(np.intp)] = 1.0
    return y


def kernel_regression_fit(
    k_train_train: np.ndarray,
    y_onehot: np.ndarray,
    jitter: float = 1e-10,
    *,
    max_jitter: float = MAX_JITTER,
    overwrite_k: bool = False,
) -> KernelFit:
    """Solve ``(K + jitter mean(diag K) I) alpha = Y`` by float64 Cholesky (see module doc).

    With ``overwrite_k=True`` (and a writeable contiguous ``K``) the factorization runs in
    the caller's array, so no second ``n x n`` buffer is needed; ``K`` is garbage
    afterwards.  A failed attempt is undone from the untouched triangle before retrying.
    Raises ``numpy.linalg.LinAlgError`` if even ``max_jitter`` does not make ``K``
    factorizable (e.g. NaNs or an indefinite Gram).
    """
    k = np.asarray(k_train_train, dtype=np.float64)
    y = np.asarray(y_onehot, dtype=np.float64)
    n = k.shape[0]
    if k.shape != (n, n) or y.shape[0] != n:
        raise ValueError(f"K must be (n, n) and Y (n, k); got {k.shape} and {y.shape}")
    if n == 0:
        return KernelFit(np.zeros(y.shape), float(jitter))
    diag0 = np.diag(k).copy()
    if not np.all(np.isfinite(diag0)):
        raise np.linalg.LinAlgError("Gram matrix has non-finite diagonal entries")
    scale = float(np.mean(diag0))
    # LAPACK works on Fortran-ordered memory; a symmetric C-ordered K is its own transpose
    if overwrite_k and k.flags.writeable and k.flags.f_contiguous:
        work = k
    elif overwrite_k and k.flags.writeable and k.flags.c_contiguous:
        work = k.T
    else:
        work = np.array(k, order="F")
    diag_idx = np.diag_indices(n)
    jit = float(jitter)
    while True:
        work[diag_idx] = diag0 + jit * scale
        try:
            factor = scipy.linalg.cho_factor(work, lower=True, overwrite_a=True, check_finite=False)
            alpha = scipy.linalg.cho_solve(factor, y, check_finite=False)
            if np.all(np.isfinite(alpha)):
                return KernelFit(alpha, jit)
        except np.linalg.LinAlgError:
            pass
        if jit * 10 > max_jitter * (1 + 1e-9):
            raise np.linalg.LinAlgError(
                f"Cholesky of the {n}x{n} Gram failed with relative jitter up to {jit:g}"
            )
        _restore_lower_from_upper(work)
        jit = jit * 10 if jit > 0 else 1e-16


def _restore_lower_from_upper(a: np.ndarray, block: int = 1024) -> None:
    """potrf(lower) only touches the lower triangle: copy the upper one back, by blocks."""
    n = a.shape[0]
    for j0 in range(0, n, block):
        j1 = min(j0 + block, n)
        a[j1:, j0:j1] = a[j0:j1, j1:].T
        blk = a[j0:j1, j0:j1]
        il = np.tril_indices(j1 - j0, -1)
        blk[il] = blk.T[il]


def predict_streamed(test_train_blocks: Iterable[np.ndarray], alpha: np.ndarray) -> np.ndarray:
    """Predictions ``K_test_train @ alpha`` from row blocks, concatenated in order."""
    alpha = np.asarray(alpha, dtype=np.float64)
    parts = [np.asarray(block, dtype=np.float64) @ alpha for block in test_train_blocks]
    if not parts:
        return np.zeros((0,) + alpha.shape[1:])
    return np.concatenate(parts, axis=0)


def predict(
    k_test_train: np.ndarray, alpha: np.ndarray, block_size: int = PREDICT_BLOCK
) -> np.ndarray:
    """In-memory predictions, computed in the same row blocks as the streamed path so the
    two agree bit for bit when the blocks have the same size."""
    k = np.asarray(k_test_train, dtype=np.float64)
    return predict_streamed(
        (k[r0 : r0 + block_size] for r0 in range(0, k.shape[0], block_size)), alpha
    )


def ntk_test_error(
    gram_path: str | os.PathLike,
    n_train: int,
    y_train: Any,
    y_test: Any,
    n_classes: int,
    jitter: float = 1e-10,
    kind: str = "ntk",
    block_size: int = PREDICT_BLOCK,
) -> dict[str, Any]:
    """Test/train classification error of kernel regression on the first ``n_train`` points.

    Uses the leading ``n_train`` rows/columns of the stored train x train Gram (training
    sets are nested prefixes of the stored train set) and streams test rows from the file.
    ``y_train`` may be the full stored label vector (it is cut to ``n_train``).
    """
    y_train = np.asarray(y_train)[: int(n_train)]
    y_test = np.asarray(y_test)
    k_tt, blocks = read_gram(gram_path, kind=kind, n_train=n_train, block_size=block_size)
    if y_train.shape[0] != k_tt.shape[0]:
        raise ValueError(f"{gram_path}: {y_train.shape[0]} train labels for n_train={n_train}")
    if y_test.shape[0] != blocks.n_test:
        raise ValueError(f"{gram_path}: {y_test.shape[0]} test labels, file has {blocks.n_test}")
    y_onehot = one_hot(y_train, n_classes)
    scale = float(np.mean(np.diag(k_tt))) if n_train else 0.0
    # factor in place (k_tt is our own copy): one n x n buffer instead of two
    fit = kernel_regression_fit(k_tt, y_onehot, jitter, overwrite_k=True)
    del k_tt
    # training-set predictions without K: K alpha = Y - jitter mean(diag K) alpha
    train_pred = y_onehot - fit.jitter_used * scale * fit.alpha
    test_pred = predict_streamed(blocks, fit.alpha)
    return {
        "test_error": float(np.mean(np.argmax(test_pred, axis=1) != y_test)),
        "train_error": float(np.mean(np.argmax(train_pred, axis=1) != y_train)),
        "jitter_used": fit.jitter_used,
        "n_train": int(n_train),
    }
