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

Finite training time (Xiao et al. eqs. 4-5; Lee et al. 2019)
------------------------------------------------------------
Gradient flow with learning rate ``eta`` on ``sum_i 1/2 |f(x_i) - y_i|^2`` of an infinitely
wide net (mean over initialisations, ``f_0 = 0``) gives

    mu_t(X) = (I - e^{-eta K t}) Y,     mu_t(x) = K_{x,X} K^{-1} (I - e^{-eta K t}) Y.

With ``K = U diag(lambda) U^T`` (one ``eigh``, reused for every ``t``) the coefficients are
``alpha_t = U diag(g_t(lambda)) U^T Y`` with ``g_t(lambda) = (1 - e^{-eta lambda t}) /
lambda = eta t exprel(-eta lambda t)``: no inverse of ``K`` is formed, ``g_t`` is finite for
(numerically) zero or slightly negative eigenvalues, ``t = 0`` gives exactly 0 and ``t =
inf`` gives the pseudo-inverse (eigenvalues below ``rcond * lambda_max`` dropped), i.e. the
kernel regression predictor above.  Test predictions ``K_{test,X} alpha_t`` for all ``t`` are
one matmul per streamed row block (:func:`predict_flow_streamed`).

Frozen-kernel dynamics for a general loss (Geiger et al. App. C)
----------------------------------------------------------------
The linearised model ``f(x) = f_0(x) + Theta(x, X) c`` trained by gradient flow on
``sum_i l(f(x_i), y_i)`` with the kernel frozen has ``dc/dt = -eta l'(f(X), Y)`` (with
momentum, Geiger eq. 26: ``dc/dt = u``, ``tau du/dt = -(u + eta l')``).  Geiger's loss is
the mean ``1/n sum_i`` (eq. 5), i.e. ``eta = 1/n`` here; its ``alpha`` drops out of the
frozen dynamics.  :func:`frozen_kernel_dynamics` integrates this by explicit Euler in ``c``
(``dt = 1`` is plain gradient descent with learning rate ``eta``), by default with Geiger's
adaptive step (App. A, eq. 18): the largest step that changes no training output by more
than ``max_df``, capped for stability at ``1 / (eta * max row sum |K|) <= 1 / (eta
lambda_max)``; steps are shortened to land exactly on the requested times.  For the hinge
loss ``max(0, 1 - y f)`` the dynamics stops when every margin ``y f >= 1``; inside the step
where that happens the path is linear, so the stopping time is solved for exactly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg
import scipy.special

from depthlab.kernels.gram import read_gram

__all__ = [
    "check_gram_dataset",
    "MAX_JITTER",
    "PREDICT_BLOCK",
    "KernelFit",
    "kernel_regression_fit",
    "predict",
    "predict_streamed",
    "one_hot",
    "ntk_test_error",
    "FlowEig",
    "FlowPredictions",
    "flow_eig",
    "flow_coefficients",
    "flow_train_predictions",
    "predict_flow_streamed",
    "gradient_flow_predictions",
    "ntk_flow_test_error",
    "LOSSES",
    "FrozenDynamics",
    "frozen_kernel_dynamics",
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


def check_gram_dataset(gram_path: str | os.PathLike, dataset_hash: str,
                       dataset_path: str | os.PathLike = "the dataset") -> None:
    """Refuse a Gram built from other data than the dataset it is used with: the Gram
    records the content hash of the dataset it was computed from (``dataset_content_hash``),
    which must equal ``dataset_hash`` (the dataset file's own, checked when it was read).
    A mismatch (the dataset was regenerated or replaced after the Gram was made) is an
    :class:`~depthlab.provenance.InputFileError` naming both files."""
    from depthlab.provenance import InputFileError, open_h5_checked

    with open_h5_checked(gram_path) as f:
        recorded = f.attrs.get("dataset_content_hash")
    if recorded is None:
        raise InputFileError(f"{gram_path}: no dataset_content_hash attribute, so the data it "
                             "was built from is unknown; delete it and rerun the gram rule")
    if str(recorded) != str(dataset_hash):
        raise InputFileError(
            f"{gram_path}: built from dataset content {str(recorded)[:16]}..., but "
            f"{dataset_path} holds {str(dataset_hash)[:16]}... (the dataset changed after the "
            "Gram was computed); delete the Gram and rerun")


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


# --------------------------------------------------------------------------------------
# Finite-time MSE gradient flow (Xiao eqs. 4-5)
# --------------------------------------------------------------------------------------


class FlowEig(NamedTuple):
    evals: np.ndarray  # (n,) ascending
    evecs: np.ndarray  # (n, n), columns orthonormal


def flow_eig(k_train_train: np.ndarray) -> FlowEig:
    """The one eigendecomposition ``K = U diag(lambda) U^T`` all finite-time predictors share."""
    k = np.asarray(k_train_train, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"K must be square, got {k.shape}")
    evals, evecs = scipy.linalg.eigh(k, check_finite=False)
    return FlowEig(evals, evecs)


def _times(times: Any) -> np.ndarray:
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if t.ndim != 1 or np.any(np.isnan(t)) or np.any(t < 0):
        raise ValueError(f"times must be non-negative numbers, got {times!r}")
    return t


def _flow_gain(evals: np.ndarray, t: float, lr: float, rcond: float) -> np.ndarray:
    """``(1 - exp(-lr lambda t)) / lambda`` for every eigenvalue (pseudo-inverse at t = inf)."""
    if np.isinf(t):
        cut = rcond * max(float(evals.max()), 0.0)
        out = np.zeros_like(evals)
        keep = evals > cut
        out[keep] = 1.0 / evals[keep]
        return out
    return lr * t * scipy.special.exprel(-lr * t * evals)


def flow_coefficients(
    eig: FlowEig, y: Any, times: Any, lr: float = 1.0, *, rcond: float = 1e-12
) -> np.ndarray:
    """``alpha_t = K^{-1} (I - e^{-lr K t}) Y`` for every ``t``: shape ``(T, n, k)``.

    ``mu_t(x) = K_{x,X} alpha_t``.  ``y`` is ``(n,)`` or ``(n, k)`` (a 1-D ``y`` gives
    ``k = 1``).
    """
    y2 = np.asarray(y, dtype=np.float64).reshape(eig.evals.size, -1)
    uty = eig.evecs.T @ y2  # (n, k)
    ts = _times(times)
    gains = np.stack([_flow_gain(eig.evals, t, lr, rcond) for t in ts], axis=1)  # (n, T)
    scaled = gains[:, :, None] * uty[:, None, :]  # (n, T, k)
    alphas = eig.evecs @ scaled.reshape(eig.evals.size, -1)
    return alphas.reshape(eig.evals.size, ts.size, -1).transpose(1, 0, 2)


def flow_train_predictions(
    eig: FlowEig, y: Any, times: Any, lr: float = 1.0
) -> np.ndarray:
    """``mu_t(X) = (I - e^{-lr K t}) Y`` (Xiao eq. 4), shape ``(T, n, k)``; ``t = inf`` gives
    ``Y`` projected on the range of ``K``."""
    y2 = np.asarray(y, dtype=np.float64).reshape(eig.evals.size, -1)
    uty = eig.evecs.T @ y2
    out = []
    for t in _times(times):
        if np.isinf(t):
            fac = (eig.evals > 0).astype(np.float64)
        else:
            fac = -np.expm1(-lr * t * eig.evals)
        out.append(eig.evecs @ (fac[:, None] * uty))
    return np.stack(out)


def predict_flow_streamed(
    test_train_blocks: Iterable[np.ndarray], coefficients: np.ndarray
) -> np.ndarray:
    """``K_test_train @ alpha_t`` for every ``t`` from row blocks: ``(T, n_test, k)``.

    ``coefficients`` is ``(T, n, k)`` (from :func:`flow_coefficients`, or the coefficient
    history of :func:`frozen_kernel_dynamics`); each block is multiplied once by all of
    them, so a Gram file is read once whatever the number of times.
    """
    c = np.asarray(coefficients, dtype=np.float64)
    n_t, n, k = c.shape
    flat = c.transpose(1, 0, 2).reshape(n, n_t * k)
    parts = [np.asarray(b, dtype=np.float64) @ flat for b in test_train_blocks]
    rows = np.concatenate(parts, axis=0) if parts else np.zeros((0, n_t * k))
    return rows.reshape(-1, n_t, k).transpose(1, 0, 2)


def _row_blocks(k_test_train: Any, block_size: int) -> Iterable[np.ndarray]:
    """Row blocks of an in-memory array, or the given iterable of blocks unchanged."""
    if isinstance(k_test_train, np.ndarray):
        rows = range(0, len(k_test_train), block_size)
        return (k_test_train[r0 : r0 + block_size] for r0 in rows)
    return k_test_train


class FlowPredictions(NamedTuple):
    times: np.ndarray  # (T,)
    train: np.ndarray  # (T, n, k)  mu_t(X_train)
    test: np.ndarray | None  # (T, n_test, k)  mu_t(X_test)
    coefficients: np.ndarray  # (T, n, k)  alpha_t


def gradient_flow_predictions(
    k_train_train: np.ndarray,
    y: Any,
    times: Any,
    k_test_train: np.ndarray | Iterable[np.ndarray] | None = None,
    *,
    lr: float = 1.0,
    block_size: int = PREDICT_BLOCK,
) -> FlowPredictions:
    """Mean predictions of MSE gradient flow at every ``t`` (Xiao eqs. 4-5), one ``eigh``.

    ``k_test_train`` is an array (multiplied in row blocks of ``block_size``) or any
    iterable of row blocks, e.g. the :class:`~depthlab.kernels.gram.GramBlocks` of a file.
    """
    eig = flow_eig(k_train_train)
    ts = _times(times)
    coef = flow_coefficients(eig, y, ts, lr)
    test = None
    if k_test_train is not None:
        test = predict_flow_streamed(_row_blocks(k_test_train, block_size), coef)
    return FlowPredictions(ts, flow_train_predictions(eig, y, ts, lr), test, coef)


def ntk_flow_test_error(
    gram_path: str | os.PathLike,
    n_train: int,
    y_train: Any,
    y_test: Any,
    n_classes: int,
    times: Sequence[float],
    lr: float = 1.0,
    kind: str = "ntk",
    block_size: int = PREDICT_BLOCK,
) -> dict[str, Any]:
    """Like :func:`ntk_test_error`, at each finite training time of MSE gradient flow.

    Returns lists ``test_error``/``train_error`` (one entry per time) and ``times``; the
    test rows are streamed from the file once.  ``t = inf`` is the ridgeless predictor.
    """
    y_train = np.asarray(y_train)[: int(n_train)]
    y_test = np.asarray(y_test)
    k_tt, blocks = read_gram(gram_path, kind=kind, n_train=n_train, block_size=block_size)
    if y_train.shape[0] != k_tt.shape[0] or y_test.shape[0] != blocks.n_test:
        raise ValueError(f"{gram_path}: label counts do not match the Gram file")
    pred = gradient_flow_predictions(k_tt, one_hot(y_train, n_classes), times, blocks, lr=lr)
    return {
        "times": [float(t) for t in pred.times],
        "test_error": [float(np.mean(np.argmax(p, 1) != y_test)) for p in pred.test],
        "train_error": [float(np.mean(np.argmax(p, 1) != y_train)) for p in pred.train],
        "lr": float(lr),
        "n_train": int(n_train),
    }


# --------------------------------------------------------------------------------------
# Frozen-kernel dynamics for a general loss (Geiger et al. App. C)
# --------------------------------------------------------------------------------------


def _mse(f: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = f - y
    return 0.5 * r * r, r


def _hinge(f: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gap = 1.0 - y * f
    active = gap > 0.0
    return np.where(active, gap, 0.0), np.where(active, -y, 0.0)


LOSSES = {"mse": _mse, "hinge": _hinge}
"""Per-sample losses ``l(f, y) -> (value, dl/df)``, elementwise over outputs: ``mse`` is
``1/2 (f - y)^2``, ``hinge`` is ``max(0, 1 - y f)`` with labels ``+-1`` (one column per
one-vs-rest output)."""


class FrozenDynamics(NamedTuple):
    times: np.ndarray  # (T,) recorded times
    train: np.ndarray  # (T, n, k) training outputs f(X, t)
    test: np.ndarray | None  # (T, n_test, k) test outputs
    loss: np.ndarray  # (T,) mean over training points of the summed per-output loss
    coefficients: np.ndarray  # (T, n, k) c(t)
    stop_time: float  # first time the hinge loss is 0 (nan if not reached or for mse)
    n_steps: int


def frozen_kernel_dynamics(
    k_train_train: np.ndarray,
    y: Any,
    times: Any,
    *,
    loss: str = "hinge",
    lr: float = 1.0,
    dt: float | None = None,
    max_df: float = 1e-2,
    tau: float = 0.0,
    mu: float | None = None,
    f0_train: Any = None,
    k_test_train: np.ndarray | Iterable[np.ndarray] | None = None,
    f0_test: Any = None,
    max_steps: int = 1_000_000,
    block_size: int = PREDICT_BLOCK,
) -> FrozenDynamics:
    """Train ``f = f_0 + Theta(., X) c`` with the frozen Gram (module doc), record at ``times``.

    ``dt=None`` picks Geiger's adaptive step (no output moves by more than ``max_df``);
    a number fixes it (``dt=1``: gradient descent with learning rate ``lr``).  ``tau > 0``
    adds Geiger's momentum (the velocity relaxes exactly over each step; a step with
    momentum and ``dt=None`` bounds the output change by ``max_df`` too); ``mu`` instead
    gives the time-dependent relaxation ``tau = t / mu`` of Geiger's FC runs (memory
    ``(t / (t + dt))^mu`` over a step, none at ``t = 0``).  For the hinge
    loss the run ends at the stopping time, the first time every margin is >= 1 (with
    momentum the residual velocity is dropped there); later records repeat the final
    state.  The returned arrays have shape ``(T, n, k)`` (a 1-D ``y`` gives ``k = 1``).
    Raises ``RuntimeError`` after ``max_steps`` steps.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    loss_fn = LOSSES[loss]
    k = np.asarray(k_train_train, dtype=np.float64)
    n = k.shape[0]
    y2 = np.asarray(y, dtype=np.float64).reshape(n, -1)
    f0 = np.zeros_like(y2)
    if f0_train is not None:
        f0 = np.asarray(f0_train, dtype=np.float64).reshape(y2.shape)
    ts = _times(times)
    if np.any(np.diff(ts) < 0) or np.any(np.isinf(ts)):
        raise ValueError("times must be finite and ascending")
    lr = float(lr)
    if mu is not None and tau > 0.0:
        raise ValueError("give either a constant tau or mu (tau = t / mu), not both")
    momentum = tau > 0.0 or (mu is not None and mu > 0.0)
    h_cap = 1.0 / (lr * max(float(np.abs(k).sum(axis=1).max()), np.finfo(float).tiny))

    c = np.zeros_like(y2)
    u = np.zeros_like(y2)  # momentum velocity of c
    ku = np.zeros_like(y2)  # K u, tracked so that a step costs one matmul
    f = f0.copy()
    t = 0.0
    steps = 0
    stop_time = float("nan")
    stopped = False
    rec_c, rec_f = [], []
    for target in ts:
        while not stopped and t < target:
            if steps >= max_steps:
                raise RuntimeError(f"frozen-kernel dynamics: {max_steps} steps before t={target}")
            value, grad = loss_fn(f, y2)
            if loss == "hinge" and not value.any():
                stopped, stop_time = True, t
                break
            kg = k @ grad
            kg *= -lr  # output velocity of plain gradient flow
            if dt is not None:
                h = float(dt)
            else:
                # with momentum K u_new is a convex combination of K u and kg: bound both
                vmax = float(np.abs(kg).max())
                if momentum:
                    vmax = max(vmax, float(np.abs(ku).max()))
                h = h_cap if vmax == 0.0 else min(h_cap, max_df / vmax)
            h = min(h, target - t)
            if momentum:
                # the velocity relaxes towards -lr l' exactly over the step
                if tau > 0.0:
                    decay = math.exp(-h / tau)
                else:
                    decay = 0.0 if t <= 0.0 else math.exp(-mu * math.log1p(h / t))
                u = u * decay - (lr * (1.0 - decay)) * grad
                ku = ku * decay + (1.0 - decay) * kg
                dc, vf = u, ku
            else:
                dc, vf = -lr * grad, kg
            if loss == "hinge":
                h_stop = _hinge_stop(f, vf, y2, h)
                if h_stop is not None:
                    h, stopped = h_stop, True
            lands = not stopped and h >= target - t
            c += h * dc
            f += h * vf
            t = target if lands else t + h  # land exactly on the record time
            steps += 1
            if stopped:
                stop_time = t
        rec_c.append(c.copy())
        rec_f.append(f.copy())
    coef = np.stack(rec_c)
    train = np.stack(rec_f)
    losses = np.array([loss_fn(fr, y2)[0].sum() / n for fr in train])
    test = None
    if k_test_train is not None:
        test = predict_flow_streamed(_row_blocks(k_test_train, block_size), coef)
        if f0_test is not None:
            test = test + np.asarray(f0_test, np.float64).reshape(test.shape[1:])
    return FrozenDynamics(ts, train, test, losses, coef, stop_time, steps)


def _hinge_stop(f: np.ndarray, vf: np.ndarray, y: np.ndarray, h: float) -> float | None:
    """Earliest ``s`` in ``[0, h]`` with every margin ``y (f + s vf) >= 1``, if the step of
    length ``h`` ends with all margins satisfied (the path is linear within a step)."""
    m0 = y * f
    r = y * vf
    if np.any(m0 + h * r < 1.0):
        return None
    need = (m0 < 1.0) & (r > 0.0)
    if not need.any():
        return 0.0
    return float(min(h, np.max((1.0 - m0[need]) / r[need])))
