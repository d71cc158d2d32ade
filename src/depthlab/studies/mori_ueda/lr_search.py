"""Learning-rate selection by k-fold cross-validation and Bayesian optimization (Mori & Ueda,
sec. 2.3 and 3: "10-fold cross validation to optimize the learning rate eta under the Bayesian
optimization method", with Nogueira's `bayesian-optimization` package).

`select_lr` searches x = log10(eta) in ``log10(bounds)`` and maximizes the target
``-mean_k E_val^(k)(eta)``, the mean misclassification rate over the k validation folds:

* folds: `StratifiedKFold(n_folds, shuffle=True, random_state=seed)` on the training set, or
  `KFold` with the same arguments when some class has fewer than `n_folds` samples;
* one evaluation of eta trains, for each fold in turn, one network (member seed = `seed`, so
  every fold and every eta start from the same initial weights and see the same mini-batch
  stream: common random numbers) on the other k-1 folds with the packed engine
  `depthlab.training.packed_sgd.train_members` and the study's training settings (plain SGD,
  stop at zero training error, `max_epochs`, ...); the held-out fold is passed as the
  engine's "test" set, so its `test_error` is the fold's validation error;
* fold error: the validation error of the trained network whatever its status
  ("converged" or "max_epochs"), except that a **diverged** run counts as error 1.0 (worse
  than any classifier, so the optimizer is pushed away from divergent learning rates rather
  than rewarded with a chance-level 0.5); a run whose validation outputs are non-finite
  (engine reports NaN) also counts as 1.0;
* optimizer: `BayesianOptimization(f=None, pbounds={"log10_lr": ...}, random_state=seed)`
  (v3 API; its default GP with Matern 5/2 kernel and UCB acquisition, kappa = 2.576). With
  ``init_design="random"`` (the default), as in its `maximize`, `init_points` points are
  drawn with the optimizer's `random_sample`; with ``init_design="grid"`` they are the
  midpoints of `init_points` equal bins of log10(bounds), so that a small budget still
  spans the whole range (random draws can leave the top decade, where the best eta of a
  deep net usually sits next to divergence, unexplored). Then `n_iter` points come from
  `suggest`; all points are `register`-ed. The init points are trained
  together, the suggested ones one at a time. A suggestion equal to an earlier
  point is not re-trained (nor re-registered) but still counts as an iteration;
* packs: packing never changes a number (see `depthlab.training`), so how the trainings
  of one evaluation are grouped is a matter of speed only. With ``pack_folds`` (the
  default) the folds of equal (training, validation) size share one pack, each member on
  its own fold (`fold_packs`): every fold at once for the init points, and a suggested
  point as one row per fold instead of a lone member padded to two rows per fold (on a
  CPU a pack of 2 costs nearly what a pack of 4 does: in `make run` the depth-7 search at
  N = 3000 took 68 s instead of 112, and all 21 searches 505 s instead of 697). Without
  it each fold is its own pack;
* choice: the evaluated eta with the smallest mean validation error; ties go to the earliest
  evaluated (the same rule as `BayesianOptimization.max`, i.e. the first argmax).

On the CPU the whole search is deterministic given `seed` (training is bitwise reproducible,
the optimizer's randomness comes from `seed`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from depthlab.provenance import atomic_output, open_h5_checked, provenance_attrs
from depthlab.training.device import Log, emit
from depthlab.training.packed_sgd import Member, TrainConfig, train_members

DIVERGED_ERROR = 1.0  # validation error charged to a diverged (or non-finite) run
PARAM = "log10_lr"
INIT_DESIGNS = ("random", "grid")


def make_folds(y: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) index arrays per fold, shuffled with `seed`; stratified if possible."""
    from sklearn.model_selection import KFold, StratifiedKFold

    y = np.asarray(y)
    if n_folds < 2 or n_folds > len(y):
        raise ValueError(f"n_folds must be in 2..N = {len(y)}, got {n_folds}")
    counts = np.unique(y, return_counts=True)[1]
    if counts.min() >= n_folds:
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_folds, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(va)) for tr, va in splitter.split(np.zeros(len(y)), y)]


def _train_config(
    depth: int, width: int, n_classes: int, train_settings: Mapping[str, Any], device: str | None
) -> TrainConfig:
    overrides = {"checkpoint_every": 0} | ({"device": device} if device is not None else {})
    return TrainConfig.from_settings(dict(train_settings), depth=depth, width=width,
                                     n_classes=n_classes, **overrides)


def initial_points(optimizer, n: int, bounds: tuple[float, float], design: str) -> list[float]:
    """log10(eta) of the `n` initial evaluations (see the module docstring)."""
    if design == "random":
        return [float(p[PARAM]) for p in optimizer.random_sample(n)]
    lo, hi = math.log10(bounds[0]), math.log10(bounds[1])
    return [lo + (i + 0.5) * (hi - lo) / n for i in range(n)]


# Cap on the stacked per-member fold sets of one pack (float32): packing copies each fold's
# data once per member, which at N = 30 000, d = 1000 would be 0.1 GB per member.
PACK_DATA_MB = 512.0


def fold_packs(fold_sizes: list[tuple[int, int]], n_points: int, d: int,
               pack_folds: bool = True) -> list[list[int]]:
    """The folds trained together when `n_points` learning rates are evaluated: with
    `pack_folds`, folds of equal (training, validation) size (the engine's per-member sets
    need one N), as many per pack as keep its ``n_points`` copies of each fold's data under
    `PACK_DATA_MB`; otherwise one fold per pack. Packs are listed by their first fold."""
    if not pack_folds:
        return [[k] for k in range(len(fold_sizes))]
    by_size: dict[tuple[int, int], list[int]] = {}
    for k, size in enumerate(fold_sizes):
        by_size.setdefault((int(size[0]), int(size[1])), []).append(k)
    packs = []
    for (n_fit, n_val), ks in by_size.items():
        fold_mb = n_points * (n_fit + n_val) * d * 4 / 2.0**20
        per_pack = max(1, int(PACK_DATA_MB // fold_mb)) if fold_mb > 0 else len(ks)
        packs += [ks[i:i + per_pack] for i in range(0, len(ks), per_pack)]
    return sorted(packs)


def approximate_fold_sizes(n: int, n_folds: int) -> list[tuple[int, int]]:
    """(training, validation) sizes of `n_folds` folds of `n` samples as `KFold` cuts them;
    stratified folds can differ from these by a sample (the cost model uses them)."""
    return [(n - (n // n_folds + (k < n % n_folds)), n // n_folds + (k < n % n_folds))
            for k in range(n_folds)]


def fold_error(record: Mapping[str, Any]) -> float:
    """Validation error of one trained fold, with the divergence convention of this module."""
    err = record["test_error"]
    if record["status"] == "diverged" or err is None or not math.isfinite(err):
        return DIVERGED_ERROR
    return float(err)


def select_lr(
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    depth: int,
    width: int,
    n_classes: int = 2,
    train_settings: Mapping[str, Any] | None = None,
    n_folds: int = 10,
    bounds: tuple[float, float] = (1e-3, 1.0),
    init_points: int = 5,
    n_iter: int = 10,
    seed: int = 0,
    init_design: str = "random",
    pack_folds: bool = True,
    device: str | None = None,
    log: Log = None,
) -> dict[str, Any]:
    """Choose the SGD learning rate by k-fold CV + Bayesian optimization of log10(eta).

    `train_settings` is the study's `training` block (loss, batch_size, check_every,
    max_epochs, activation, init, divergence_loss, device...); keys that are not
    `TrainConfig` fields (pack, checkpoint_every) are ignored. `device` overrides its device.
    `pack_folds` groups the trainings into packs (`fold_packs`); it changes no number.

    Returns {"lr", "log10_lr", "mean_error", "trace", "bounds", "n_folds", "seed", "n_iter",
    "init_points", "init_design", "folds" (validation-fold sizes)}. `trace` lists every
    trained eta in evaluation order: {"lr", "log10_lr", "fold_errors", "mean_error",
    "status", "epochs", "phase" ("init" or "bo")}; fold lists are in fold order.
    """
    from bayes_opt import BayesianOptimization

    lo, hi = float(bounds[0]), float(bounds[1])
    if not (0 < lo < hi):
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    if init_points < 0 or n_iter < 0 or init_points + n_iter < 1:
        raise ValueError("need init_points, n_iter >= 0 and at least one evaluation")
    if init_design not in INIT_DESIGNS:
        raise ValueError(f"init_design must be one of {INIT_DESIGNS}, got {init_design!r}")
    x_train = np.ascontiguousarray(x_train, dtype=np.float32)
    y_train = np.ascontiguousarray(y_train, dtype=np.int64)
    cfg = _train_config(depth, width, n_classes, train_settings or {}, device)
    folds = make_folds(y_train, n_folds, seed)
    sizes = [(len(tr), len(va)) for tr, va in folds]

    def evaluate(log_lrs: list[float], phase: str) -> list[dict[str, Any]]:
        lrs = [float(10.0**v) for v in log_lrs]
        per_fold: list[list[dict[str, Any]]] = [[] for _ in folds]
        for pack in fold_packs(sizes, len(lrs), x_train.shape[1], pack_folds):
            members = [Member(seed=int(seed), lr=lr) for _ in pack for lr in lrs]
            if len(pack) == 1:  # one set shared by the fold's members
                tr, va = folds[pack[0]]
                sets = (x_train[tr], y_train[tr], x_train[va], y_train[va])
            else:  # each member on its own fold's sets
                sets = tuple(np.stack([arr[folds[k][part]] for k in pack for _ in lrs])
                             for arr, part in ((x_train, 0), (y_train, 0), (x_train, 1),
                                               (y_train, 1)))
            recs = train_members(*sets, members, cfg)
            for j, k in enumerate(pack):
                per_fold[k] = recs[j * len(lrs):(j + 1) * len(lrs)]
        for k, recs in enumerate(per_fold):
            emit(log, f"  fold {k + 1}/{n_folds}: " + ", ".join(
                f"lr={r['lr']:.4g} {r['status']} ep={r['epochs']} val_err={fold_error(r):.4g}"
                for r in recs))
        out = []
        for j, (v, lr) in enumerate(zip(log_lrs, lrs, strict=True)):
            recs = [fold[j] for fold in per_fold]
            errors = [fold_error(r) for r in recs]
            entry = {
                "lr": lr,
                "log10_lr": float(v),
                "fold_errors": errors,
                "mean_error": float(np.mean(errors)),
                "status": [r["status"] for r in recs],
                "epochs": [int(r["epochs"]) for r in recs],
                "phase": phase,
            }
            emit(log, f"lr={lr:.6g} (log10 {v:.4f}, {phase}): mean validation error "
                  f"{entry['mean_error']:.4g}")
            out.append(entry)
        return out

    optimizer = BayesianOptimization(
        f=None, pbounds={PARAM: (math.log10(lo), math.log10(hi))}, random_state=int(seed),
        verbose=0,
    )
    trace: list[dict[str, Any]] = []
    seen: dict[float, dict[str, Any]] = {}

    def record(entries: list[dict[str, Any]]) -> None:
        for e in entries:
            trace.append(e)
            seen[e["log10_lr"]] = e
            optimizer.register(params={PARAM: e["log10_lr"]}, target=-e["mean_error"])

    if init_points:
        points = initial_points(optimizer, init_points, (lo, hi), init_design)
        unique = list(dict.fromkeys(points))
        emit(log, f"lr search: {len(unique)} initial points, {n_folds} folds")
        record(evaluate(unique, "init"))
    for it in range(n_iter):
        point = float(optimizer.suggest()[PARAM])
        if point in seen:
            emit(log, f"iteration {it + 1}: suggestion log10 lr = {point} already evaluated")
            continue
        emit(log, f"iteration {it + 1}/{n_iter}: log10 lr = {point:.4f}")
        record(evaluate([point], "bo"))

    best = min(range(len(trace)), key=lambda i: (trace[i]["mean_error"], i))
    chosen = trace[best]
    emit(log, f"chosen lr = {chosen['lr']:.6g} (mean validation error {chosen['mean_error']:.4g})")
    return {
        "lr": chosen["lr"],
        "log10_lr": chosen["log10_lr"],
        "mean_error": chosen["mean_error"],
        "trace": trace,
        "bounds": [lo, hi],
        "n_folds": int(n_folds),
        "seed": int(seed),
        "n_iter": int(n_iter),
        "init_points": int(init_points),
        "init_design": init_design,
        "folds": [int(len(va)) for _, va in folds],
    }


# ---------------------------------------------------------------------------- storage
_SCALARS = ("lr", "log10_lr", "mean_error", "n_folds", "seed", "n_iter", "init_points",
            "init_design")


def write_lr_search(path: str | Path, result: Mapping[str, Any], config_slice: Any) -> None:
    """HDF5: the choice and search settings as root attrs (with provenance), the trace as
    datasets /trace/{lr, log10_lr, mean_error (E,), fold_errors, epochs, status (E, k), phase}."""
    trace = result["trace"]
    attrs = provenance_attrs(
        config_slice,
        seed=result["seed"],
        **{k: result[k] for k in _SCALARS if k != "seed"},
        bounds=list(result["bounds"]),
        folds=list(result.get("folds", [])),
        diverged_error=DIVERGED_ERROR,
    )
    str_dtype = h5py.string_dtype()
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("trace")
            for key in ("lr", "log10_lr", "mean_error"):
                g.create_dataset(key, data=np.array([e[key] for e in trace], dtype=np.float64))
            g.create_dataset(
                "fold_errors", data=np.array([e["fold_errors"] for e in trace], dtype=np.float64)
            )
            g.create_dataset("epochs", data=np.array([e["epochs"] for e in trace], dtype=np.int64))
            g.create_dataset(
                "status", data=np.array([e["status"] for e in trace], dtype=object), dtype=str_dtype
            )
            g.create_dataset(
                "phase", data=np.array([e["phase"] for e in trace], dtype=object), dtype=str_dtype
            )
            f.attrs.update(attrs)


def read_lr_search(path: str | Path) -> dict[str, Any]:
    """Inverse of `write_lr_search`; also returns "config" (the config slice) and "attrs"."""
    required = tuple(f"trace/{k}" for k in
                     ("lr", "log10_lr", "mean_error", "fold_errors", "epochs", "status", "phase"))
    with open_h5_checked(path, required=required) as f:
        a = dict(f.attrs)
        g = f["trace"]
        lr, log_lr, mean = g["lr"][:], g["log10_lr"][:], g["mean_error"][:]
        fold_errors, epochs = g["fold_errors"][:], g["epochs"][:]
        status = g["status"].asstr()[:]
        phase = g["phase"].asstr()[:]
    trace = [
        {
            "lr": float(lr[i]),
            "log10_lr": float(log_lr[i]),
            "fold_errors": [float(v) for v in fold_errors[i]],
            "mean_error": float(mean[i]),
            "status": [str(s) for s in status[i]],
            "epochs": [int(v) for v in epochs[i]],
            "phase": str(phase[i]),
        }
        for i in range(len(lr))
    ]
    out: dict[str, Any] = {
        "lr": float(a["lr"]),
        "log10_lr": float(a["log10_lr"]),
        "mean_error": float(a["mean_error"]),
        "n_folds": int(a["n_folds"]),
        "seed": int(a["seed"]),
        "n_iter": int(a["n_iter"]),
        "init_points": int(a["init_points"]),
        # files written before the option existed used the library's random draws
        "init_design": str(a.get("init_design", "random")),
        "bounds": json.loads(a["bounds"]),
        "folds": json.loads(a["folds"]),
        "trace": trace,
        "config": json.loads(a["config"]),
        "attrs": a,
    }
    return out
