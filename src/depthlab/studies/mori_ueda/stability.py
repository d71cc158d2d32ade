"""Local stability of a classifier (Mori & Ueda, sec. 4.2, eq. 15).

A classifier is *v-stable* at x if its predicted class is the same at x and at every
x + alpha v e_i (i = 1..d, alpha = +-1): the 2d one-coordinate perturbations of strength v.
The local stability is the fraction of test points at which it is v-stable,

    s(v) = (1 / N_test) sum_mu s^(mu)(v).

`local_stability` takes any `predict_fn` mapping an (n, d) array to class labels, so the same
code measures trained networks (`member_predict_fn`, `ensemble_predict_fn`) and label rules
(``lambda x: k_local_labels(x, idx)``). s(0) = 1 by definition; s(v) is non-increasing in v for
classifiers whose classes are half-spaces along every axis (linear rules, k-local signs), but
not for a general classifier, whose class can come back further out along an axis.

Perturbed inputs are built in the dtype of `x_test` (x + v e_i rounded once), in chunks of
test points so that one `predict_fn` call sees at most about `batch` rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from depthlab.models import FCEnsemble, padded_rows

PredictFn = Callable[[np.ndarray], np.ndarray]


def local_stability(
    predict_fn: PredictFn,
    x_test: np.ndarray,
    v_values: Sequence[float] | np.ndarray,
    batch: int = 16384,
    *,
    per_point: bool = False,
) -> np.ndarray:
    """s(v) for each v in `v_values`.

    `predict_fn(x)` returns labels of shape (n,) or, for an ensemble, (M, n) (one row per
    member; then s has a leading member axis). `batch` bounds the rows per `predict_fn` call
    (at least 2d + 1, one test point with all its perturbations). Returns float64 s of shape
    (len(v),) or (M, len(v)); with ``per_point=True`` the boolean v-stability of every point,
    shape (len(v), n) or (M, len(v), n), instead.
    """
    x = np.asarray(x_test)
    if x.ndim != 2:
        raise ValueError(f"x_test must be (n, d), got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    n, d = x.shape
    v_values = np.atleast_1d(np.asarray(v_values, dtype=np.float64))
    if np.any(v_values < 0) or not np.all(np.isfinite(v_values)):
        raise ValueError("v values must be finite and >= 0")
    rows_per_point = 2 * d + 1
    chunk = max(1, int(batch) // rows_per_point)
    # offsets (2d, d): +e_1, -e_1, +e_2, -e_2, ...
    eye = np.eye(d, dtype=x.dtype)
    signs = np.stack([eye, -eye], axis=1).reshape(2 * d, d)

    stable = None  # (M?, len(v), n) booleans
    for vi, v in enumerate(v_values):
        step = (signs * x.dtype.type(v)).astype(x.dtype)
        for start in range(0, n, chunk):
            xs = x[start : start + chunk]
            c = len(xs)
            pert = (xs[:, None, :] + step[None, :, :]).reshape(c * 2 * d, d)
            labels = np.asarray(predict_fn(np.concatenate([xs, pert])))
            if stable is None:
                lead = labels.shape[:-1]
                if len(lead) > 1 or labels.shape[-1] != c * rows_per_point:
                    raise ValueError(
                        f"predict_fn must return ({c * rows_per_point},) or "
                        f"(M, {c * rows_per_point}) labels, got {labels.shape}"
                    )
                stable = np.zeros((*lead, len(v_values), n), dtype=bool)
            base = labels[..., :c]
            moved = labels[..., c:].reshape(*labels.shape[:-1], c, 2 * d)
            stable[..., vi, start : start + c] = (moved == base[..., None]).all(axis=-1)
    if stable is None:  # no test points
        stable = np.zeros((len(v_values), 0), dtype=bool)
    if per_point:
        return stable
    return stable.mean(axis=-1, dtype=np.float64)


@torch.no_grad()
def ensemble_predict_fn(
    model: FCEnsemble, members: Sequence[int] | None = None, device: str | torch.device = "cpu"
) -> PredictFn:
    """predict_fn of the members of a trained `FCEnsemble`: x (n, d) -> argmax labels (M, n).

    Evaluates the members as a pack of at least two rows with 16-byte-aligned row counts, as
    `depthlab.training.packed_sgd.evaluate` does, so predictions agree with the recorded test
    errors.
    """
    idx = list(range(model.n_members)) if members is None else [int(m) for m in members]
    if not idx:
        raise ValueError("no members selected")
    rows = idx if len(idx) > 1 else idx * 2
    pack = model.select(rows).to(device)
    n_out = len(idx)

    @torch.no_grad()
    def predict(x: np.ndarray) -> np.ndarray:
        xt = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
        n = xt.shape[0]
        padded = padded_rows(n, pack.widths)
        if padded > n:
            xt = torch.cat([xt, xt.new_zeros(padded - n, xt.shape[1])])
        out = pack(xt)[:n_out, :n]
        return out.argmax(-1).cpu().numpy()

    return predict


def member_predict_fn(
    model: FCEnsemble, member: int = 0, device: str | torch.device = "cpu"
) -> PredictFn:
    """predict_fn of one member of a trained `FCEnsemble`: x (n, d) -> argmax labels (n,)."""
    inner = ensemble_predict_fn(model, [member], device)
    return lambda x: inner(x)[0]
