"""The Nichani study's jobs: one function each, called by its scripts/*.py.

``kernel_job``   one CNTK variant (or the FC NTK) at every depth from one recursion, then
                 ridgeless kernel regression (float64 Cholesky with relative jitter, the value
                 used recorded) on one-hot targets: test MSE (sum over classes, mean over
                 test points), test and train accuracy per depth.
``train_job``    one Fully-Conv net, FC baseline or CIFAR ResNet (one seed per ResNet job)
                 by :func:`depthlab.training.module.train_module`: the three test-accuracy
                 selections, test loss at the paper's rule and at the final epoch, history.
``linear_job``   one linear task (toy / conv AE / Toeplitz AE) at every depth and seed: full
                 batch Adam on the MSE until ``loss_tol``; the operator by the identity
                 trick, its Frobenius norm, stable rank and distance to the min-norm solution.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["kernel_job", "linear_job", "train_job"]


# --------------------------------------------------------------------------- kernels

def targets(y: np.ndarray, k: int, kind: str) -> np.ndarray:
    """One-hot minus 1/k (``centered``) or 0.9 / -0.1 (``arora``, Arora et al.'s code)."""
    onehot = np.eye(k)[y]
    return onehot - 1.0 / k if kind == "centered" else np.where(onehot > 0, 0.9, -0.1)


def rows_per_class(y: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` rows of every class (in row order)."""
    rank = np.zeros(len(y), dtype=int)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if per_class > len(rows):
            raise ValueError(f"{per_class} rows per class asked, class {c} has {len(rows)}")
        rank[rows] = np.arange(len(rows))
    return np.flatnonzero(rank < per_class)


def kernel_job(data: dict[str, Any], variant: dict[str, Any], kcfg: dict[str, Any], *,
               jitter: float, threads: int = 1) -> dict[str, np.ndarray]:
    from depthlab.kernels.regression import kernel_regression_fit

    xtr, xte = data["x_train"], data["x_test"]
    ytr, yte, k = data["y_train"], data["y_test"], int(data["n_classes"])
    n_tr = variant.get("train_per_class") or kcfg.get("train_per_class")
    n_te = variant.get("test_per_class") or kcfg.get("test_per_class")
    if n_tr:
        keep = rows_per_class(ytr, int(n_tr))
        xtr, ytr = xtr[keep], ytr[keep]
    if n_te:
        keep = rows_per_class(yte, int(n_te))
        xte, yte = xte[keep], yte[keep]
    depths = [int(d) for d in variant["depths"]]
    t0 = time.perf_counter()
    if variant["name"] == "fc_ntk":
        from depthlab.kernels.layers import kernel_sweep

        spec = {"activation": "relu", "w_var": 2.0, "b_var": 0.0, "first_w_var": 1.0,
                "first_b_var": 0.0}
        ftr, fte = xtr.reshape(len(xtr), -1), xte.reshape(len(xte), -1)
        k_tt = kernel_sweep(spec, depths, ftr, n_threads=threads)
        k_st = kernel_sweep(spec, depths, fte, ftr, n_threads=threads)
    else:
        from depthlab.kernels.conv import conv_sweep

        spec = {"architecture": "conv", "activation": "relu", "w_var": 2.0, "b_var": 0.0,
                "first_w_var": 1.0, "image_shape": list(xtr.shape[1:]),
                "filter_size": int(kcfg["filter_size"]), "padding": kcfg["padding"],
                "readout": variant["readout"], "fix_first": bool(variant["fix"]),
                "fix_last": bool(variant["fix"]), "dtype": kcfg["dtype"],
                "device": kcfg["device"]}
        k_tt = conv_sweep(spec, depths, xtr, n_threads=threads, device=_dev(kcfg["device"]))
        k_st = conv_sweep(spec, depths, xte, xtr, n_threads=threads,
                          device=_dev(kcfg["device"]))
    gram_s = time.perf_counter() - t0
    y = targets(ytr, k, kcfg["targets"])
    yt = targets(yte, k, kcfg["targets"])
    out = {key: [] for key in ("test_loss", "test_acc", "train_acc", "jitter_used")}
    for d in depths:
        ntk_tt, ntk_st = k_tt[d][1], k_st[d][1]
        fit = kernel_regression_fit(ntk_tt.copy(), y, jitter)
        f_te, f_tr = ntk_st @ fit.alpha, ntk_tt @ fit.alpha
        out["test_loss"].append(float(np.mean(np.sum((f_te - yt) ** 2, axis=1))))
        out["test_acc"].append(float(np.mean(f_te.argmax(1) == yte)))
        out["train_acc"].append(float(np.mean(f_tr.argmax(1) == ytr)))
        out["jitter_used"].append(float(fit.jitter_used))
    return {"depth": np.array(depths), **{key: np.array(v) for key, v in out.items()},
            "gram_seconds": gram_s, "spec": str(spec), "n_test": len(yte),
            "n_train": len(ytr)}


def _dev(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


# --------------------------------------------------------------------------- training

def train_job(data: dict[str, Any], study: dict[str, Any], job: dict[str, Any], *,
              checkpoint: str | None = None, log=None) -> dict[str, Any]:
    """Every seed of one job (one Fully-Conv depth, the FC baseline, or one ResNet) in turn;
    per-seed scalars as arrays ``(n_seeds,)``, histories ``(n_seeds, max epochs)`` NaN-padded.
    ``checkpoint`` is a path prefix: seed s checkpoints to ``{checkpoint}_s{s}.pt``."""
    runs = [_train_one(data, study, job, seed,
                       checkpoint=f"{checkpoint}_s{seed}.pt" if checkpoint else None, log=log)
            for seed in job["seeds"]]
    n_ep = max(len(r["history_train_acc"]) for r in runs)
    out: dict[str, Any] = {"seed": np.array(job["seeds"])}
    for key in runs[0]:
        if key.startswith("history_"):
            a = np.full((len(runs), n_ep), np.nan)
            for i, r in enumerate(runs):
                a[i, : len(r[key])] = r[key]
            out[key] = a
        else:
            out[key] = np.array([r[key] for r in runs])
    return out


def _train_one(data: dict[str, Any], study: dict[str, Any], job: dict[str, Any], seed: int, *,
               checkpoint: str | None = None, log=None) -> dict[str, Any]:
    import torch

    from depthlab.studies.nichani.models import fc_baseline, fully_conv
    from depthlab.training.device import resolve_device
    from depthlab.training.module import ModuleTrainConfig, train_module

    xtr = torch.as_tensor(data["x_train"], dtype=torch.float32)
    xte = torch.as_tensor(data["x_test"], dtype=torch.float32)
    k = int(data["n_classes"])
    extra: dict[str, Any] = {}
    if job["model"] == "resnet":
        from depthlab.studies.nichani.resnet import cifar_resnet

        rn = study["resnets"]
        tr = rn["training"]
        model = cifar_resnet(job["blocks"], job["width"], k, in_channels=xtr.shape[1],
                             kernel_size=job["kernel_size"], softmax_output=rn["softmax_output"],
                             augment=rn["augment"], crop_padding=rn["crop_padding"], seed=seed)
        lr, wd, extra = resnet_optimizer_settings(tr, k)
    else:
        fc = study["fully_conv"]
        tr = fc["training"]
        if job["model"] == "fully_conv":
            model = fully_conv(xtr.shape[1], fc["width"], job["depth"], k,
                               kernel_size=fc["kernel_size"],
                               negative_slope=fc["negative_slope"], seed=seed)
        else:
            model = fc_baseline(int(np.prod(xtr.shape[1:])), fc["fc_width"], k, seed=seed)
        lr, wd = tr["lr"], tr["weight_decay"]
    kwargs = {}
    if "stop_at_interpolation" in tr:  # ResNets: the recipe's fixed schedule
        kwargs["stop_at_interpolation"] = bool(tr["stop_at_interpolation"])
        extra["trainer_stops_at_interpolation"] = kwargs["stop_at_interpolation"]
    cfg = ModuleTrainConfig(lr=lr, optimizer=tr["optimizer"], momentum=tr["momentum"],
                            weight_decay=wd, batch_size=tr["batch_size"],
                            max_epochs=tr["max_epochs"], loss=tr["loss"],
                            lr_decay_epochs=tuple(tr["lr_decay_epochs"]),
                            lr_decay=tr["lr_decay"], seed=seed, **kwargs)
    t0 = time.perf_counter()
    res = train_module(model, xtr, data["y_train"], xte, data["y_test"], cfg,
                       device=tr["device"], checkpoint_path=checkpoint,
                       checkpoint_every=tr["checkpoint_every"], log=log)
    hist = res.pop("history")
    i = res["epoch_best_train"] - 1
    if log is not None:
        log.info("seed %d: %s after %d epochs, best train acc %.4f, test acc %.4f (final "
                 "%.4f)", seed, res["status"], res["epochs"], max(hist["train_acc"]),
                 res["test_acc_at_best_train"], res["test_acc_final"])
    return {
        **{f"history_{key}": np.array(v) for key, v in hist.items()}, **extra,
        "status": res["status"], "epochs": int(res["epochs"]),
        "train_acc": float(max(hist["train_acc"])), "train_loss": float(hist["train_loss"][i]),
        "test_acc": float(res["test_acc_at_best_train"]), "test_loss": float(hist["test_loss"][i]),
        "test_acc_final": float(res["test_acc_final"]),
        "test_loss_final": float(hist["test_loss"][-1]),
        "test_acc_lowest_loss": float(res["test_acc_at_best_train_lowest_loss"]),
        "train_acc_final": float(hist["train_acc"][-1]),
        "train_loss_final": float(hist["train_loss"][-1]),
        "epoch_best_train": int(res["epoch_best_train"]),
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "wall_time_s": time.perf_counter() - t0, "device": str(resolve_device(tr["device"])),
    }


def resnet_optimizer_settings(tr: dict[str, Any], k: int) -> tuple[float, float, dict[str, Any]]:
    """(lr, weight_decay) for the trainer, whose MSE sums over the k classes, from settings
    meant for ``mse_reduction``: with ``mean`` (PyTorch's MSELoss, Yang's) the trainer's
    gradient is k times larger, so weight decay is scaled by k and, for SGD (linear in the
    gradient, momentum included), the lr by 1/k: the same updates.  Adam is invariant to
    the loss scale (up to its eps), so only the weight decay is scaled.  Also the values
    used, for the run file.  ``tr`` is the validated ``resnets.training`` block: its
    ``mse_reduction`` default lives in the schema only."""
    lr, wd = float(tr["lr"]), float(tr["weight_decay"])
    if tr["loss"] == "mse" and tr["mse_reduction"] == "mean":
        wd *= k
        if tr["optimizer"] == "sgd":
            lr /= k
    return lr, wd, {"lr_used": lr, "weight_decay_used": wd}


# --------------------------------------------------------------------------- linear nets

def linear_inputs(task: dict[str, Any], images: np.ndarray | None = None
                  ) -> dict[str, np.ndarray]:
    """x_train, y_train (targets), and for the toy x_test, y_test (+-1).  ``images``: the
    conv_ae's inputs, the x_train of its dataset file (task ``dataset``; the job reads it,
    hash verified); the toy and the Toeplitz AE draw theirs from ``data_seed``."""
    from depthlab.studies.nichani.data import ae_images, pixel_toy

    if task["task"] == "toy":
        return pixel_toy(task["n_per_class"], task["n_test"], task["placement"],
                         task["data_seed"])
    if task["task"] == "conv_ae":
        if images is None:
            raise ValueError(f"linear task {task['name']!r} (conv_ae) reads its images from "
                             f"its dataset file (dataset {task.get('dataset')!r}): pass them")
        x = np.asarray(images, dtype=np.float64)
    else:
        x = ae_images("vector", task["n_images"], task["data_seed"], task["dim"])
    return {"x_train": x, "y_train": x}


def build_linear(task: dict[str, Any], depth: int, seed: int, in_shape):
    from depthlab.studies.nichani.models import ToeplitzNet, linear_conv_net

    if task["task"] == "toeplitz_ae":
        return ToeplitzNet(int(in_shape[0]), depth, seed=seed)
    out = 1 if task["task"] == "toy" else int(in_shape[0])
    return linear_conv_net(int(in_shape[0]), task["width"], depth, out,
                           kernel_size=task["kernel_size"], padding=task["padding"],
                           pool=task["task"] == "toy", init=task["init"], seed=seed)


def train_linear(model, x, y, lr: float, loss_tol: float, max_steps: int) -> tuple[str, int, float]:
    """Full-batch Adam on the mean squared error; (status, steps, final loss)."""
    import torch

    from depthlab.training.status import CONVERGED, DIVERGED, MAX_STEPS

    xt, yt = torch.as_tensor(x), torch.as_tensor(y).reshape(len(x), -1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss = float("nan")
    for step in range(1, max_steps + 1):
        opt.zero_grad(set_to_none=True)
        err = torch.mean((model(xt).reshape(len(x), -1) - yt) ** 2)
        loss = float(err.detach())
        if not np.isfinite(loss):
            return DIVERGED, step, loss
        if loss < loss_tol:
            return CONVERGED, step - 1, loss
        err.backward()
        opt.step()
    with torch.no_grad():
        loss = float(torch.mean((model(xt).reshape(len(x), -1) - yt) ** 2))
    return (CONVERGED if loss < loss_tol else MAX_STEPS), max_steps, loss


def linear_job(task: dict[str, Any], *, images: np.ndarray | None = None,
               log=None) -> dict[str, Any]:
    """One linear task, all depths and seeds; ``images``: conv_ae's (:func:`linear_inputs`)."""
    from depthlab.studies.nichani.models import linear_operator, min_norm_operator, stable_rank

    data = linear_inputs(task, images)
    x, y = data["x_train"], data["y_train"]
    in_shape = x.shape[1:]
    w_star = min_norm_operator(x.reshape(len(x), -1), y.reshape(len(y), -1))
    depths, seeds = [int(d) for d in task["depths"]], [int(s) for s in task["seeds"]]
    shape = (len(depths), len(seeds))
    out = {k: np.full(shape, np.nan) for k in
           ("final_loss", "op_norm", "stable_rank", "dist_min_norm", "train_acc", "test_acc",
            "wall_time_s")}
    out["steps"] = np.zeros(shape, dtype=np.int64)
    status = np.empty(shape, dtype=object)
    for i, d in enumerate(depths):
        for j, s in enumerate(seeds):
            t0 = time.perf_counter()
            model = build_linear(task, d, s, in_shape)
            st, steps, loss = train_linear(model, x, y, task["lr"], task["loss_tol"],
                                           task["max_steps"])
            w = linear_operator(model, in_shape)
            status[i, j], out["steps"][i, j], out["final_loss"][i, j] = st, steps, loss
            out["op_norm"][i, j] = np.linalg.norm(w)
            out["stable_rank"][i, j] = stable_rank(w)
            out["dist_min_norm"][i, j] = np.linalg.norm(w - w_star)
            if task["task"] == "toy":
                ftr = x.reshape(len(x), -1) @ w.ravel()
                fte = data["x_test"].reshape(len(data["x_test"]), -1) @ w.ravel()
                out["train_acc"][i, j] = np.mean(np.sign(ftr) == y)
                out["test_acc"][i, j] = np.mean(np.sign(fte) == data["y_test"])
            out["wall_time_s"][i, j] = time.perf_counter() - t0
            if log is not None:
                log.info("depth %d seed %d: %s after %d steps, loss %.3g, ||W|| %.4g, sr %.4g",
                         d, s, st, steps, loss, out["op_norm"][i, j], out["stable_rank"][i, j])
    res = {"depth": np.array(depths), "seed": np.array(seeds), "status": status.astype(str),
           **out, "min_norm_norm": float(np.linalg.norm(w_star)),
           "min_norm_stable_rank": stable_rank(w_star)}
    if task["task"] == "toy":
        fte = data["x_test"].reshape(len(data["x_test"]), -1) @ w_star.ravel()
        res["min_norm_max_abs_test_output"] = float(np.max(np.abs(fte)))
        # f* = 0 on every test image: any tie rule gives half of a balanced test set
        res["min_norm_test_acc"] = 0.5 if res["min_norm_max_abs_test_output"] < 1e-12 else \
            float(np.mean(np.sign(fte) == data["y_test"]))
    return res
