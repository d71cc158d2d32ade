"""The Lee study's jobs: one function each, called by its scripts/*.py.

``kernel_job``   Theta~^inf on the data set: lambda_max(Theta~^inf / N) of the stability
                 subset and the ridgeless kernel regression of Thm. 3.3 (test accuracy and
                 predicted classes), float64.
``train_job``    packed SGD (:func:`depthlab.training.packed_sgd.train_members`, MSE on one-hot
                 targets) of one job's members with per-epoch train loss / accuracy, test
                 accuracy every ``eval_every`` epochs, tau, tau * lambda_max and the status;
                 CNN grids (``arch: cnn``) train each member with the plain module trainer
                 (:func:`depthlab.training.module.train_module`, per-member checkpoints,
                 bitwise resume) and record test accuracy every epoch.
``toy_job``      Fig. 4.1 / 5.1 at one depth: full-batch GD of the deep-narrow toy MLP in
                 float64, kernel rows at t = 0 and t = T, predictions, loss curve, and the
                 per-layer accumulation of the output.
``spread_job``   the init kernel's spread vs depth (exact formula from the sampled weights).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from depthlab.studies.lee import grid as lee_grid
from depthlab.studies.lee.kernels import (
    empirical_scaled_ntk,
    kernel_gd,
    limit_kernel,
    sample_init_kernel,
    stability_lambda,
    tau_of_lr,
)

__all__ = ["kernel_job", "toy_inputs", "toy_job", "spread_job", "train_job"]


# --------------------------------------------------------------------------- kernel

def kernel_job(data: dict[str, Any], study: dict[str, Any], *, jitter: float,
               block_size: int, gram: str | None = None) -> dict:
    """lambda_max and the ridgeless regression of Theta~^inf.  With ``gram`` (the study's
    blocked Gram file, :func:`depthlab.studies.lee.gram.write_limit_gram`) the Grams are
    read from it -- the stability subset as its leading block (nested prefix), test x train
    in row blocks of ``block_size`` -- so memory is one N x N copy; without, they are
    computed in memory.  ``jitter`` and ``block_size`` are the config's
    ``kernel_regression`` settings (their defaults live in its schema only)."""
    from depthlab.kernels.regression import kernel_regression_fit, one_hot, predict_streamed

    dn = study["deep_narrow"]
    k_out = int(data["n_classes"])
    xtr, xte = data["x_train"], data["x_test"]
    n_sub = min(int(study["training"]["stability_subset"]), len(xtr))
    kw = {"n_out": k_out, "rho": dn["rho"], "beta": dn["beta"]}
    t0 = time.perf_counter()
    if gram is None:
        lam_inf = stability_lambda(limit_kernel(xtr[:n_sub], **kw))
        k_tt = limit_kernel(xtr, **kw)
        blocks = [limit_kernel(xte, xtr, **kw)]
    else:
        import h5py

        from depthlab.kernels.gram import read_gram
        from depthlab.provenance import content_hash

        with h5py.File(gram, "r") as f:
            stored = str(f.attrs["content_hash"])
            stored_kw = {k: f.attrs[k] for k in ("n_out", "rho", "beta")}
        want = content_hash({"x_train": np.ascontiguousarray(xtr, dtype=np.float64),
                             "x_test": np.ascontiguousarray(xte, dtype=np.float64)})
        if stored != want or any(float(stored_kw[k]) != float(v) for k, v in kw.items()):
            raise ValueError(f"{gram}: made from other inputs or kernel parameters; delete it "
                             "and rerun lee_gram")
        sub, _ = read_gram(gram, "ntk", n_sub, block_size)
        lam_inf = stability_lambda(sub)
        del sub
        k_tt, blocks = read_gram(gram, "ntk", None, block_size)
    fit = kernel_regression_fit(k_tt, one_hot(data["y_train"], k_out), jitter, overwrite_k=True)
    del k_tt
    pred = predict_streamed(blocks, fit.alpha)
    classes = pred.argmax(1)
    return {
        "lambda_max_inf": lam_inf,
        "n_stability": n_sub,
        "krr_test_acc": float(np.mean(classes == data["y_test"])),
        "krr_test_pred": classes.astype(np.int64),
        "krr_jitter": fit.jitter_used,
        "krr_seconds": time.perf_counter() - t0,
        "gram_file": gram or "",
    }


# --------------------------------------------------------------------------- training

def resolve_lr(spec: Any, init: str, depth: int, c_l: float, n_out: int,
               lambda_max_inf: float | None) -> float:
    """A literal lr, or f * eta* with eta* = K / (D C_L^2 lambda_max(Theta~^inf / N))."""
    if not isinstance(spec, dict):
        return float(spec)
    if init != "deep_narrow" or lambda_max_inf is None:
        raise ValueError("stable_fraction needs a deep_narrow net and lambda_max of Theta~^inf")
    return float(spec["stable_fraction"]) * n_out / (depth * c_l**2 * lambda_max_inf)


def train_job(data: dict[str, Any], study: dict[str, Any], members: list[dict[str, Any]],
              lambda_max_inf: float | None, checkpoint: str | None = None, log=None) -> dict:
    """Train one job's members (same grid, init and depth) packed; returns per-member arrays."""
    import torch

    from depthlab.training.packed_sgd import Member, TrainConfig, train_members

    tr = study["training"]
    first = members[0]
    g = study["grids"][first["grid"]]
    if lee_grid.arch(g) == "cnn":
        return train_cnn_job(data, study, members, checkpoint=checkpoint, log=log)
    init, depth = first["init"], int(first["depth"])
    k_out = int(data["n_classes"])
    width = lee_grid.width(study, g)
    c_l = float(g["C_L"])
    dn = study["deep_narrow"]
    init_params = ({"C_L": c_l, "rho": dn["rho"], "beta": dn["beta"]}
                   if init == "deep_narrow" else None)
    lrs = [resolve_lr(m["lr_spec"], init, depth, c_l, k_out, lambda_max_inf) for m in members]
    epochs = int(g["epochs"])
    cfg = TrainConfig(depth=depth, width=width, n_classes=k_out, loss="mse",
                      batch_size=tr["batch_size"], check_every=1, max_epochs=epochs,
                      checkpoint_every=tr["checkpoint_every"], device=tr["device"],
                      divergence_loss=tr["divergence_loss"], activation="relu", init=init,
                      init_params=init_params, dtype=tr["dtype"])
    m_count = len(members)
    hist = {k: np.full((m_count, epochs), np.nan) for k in ("train_loss", "train_acc",
                                                             "test_acc")}
    eval_every = int(tr["eval_every"])
    final_test_pred = np.full((m_count, len(data["y_test"])), -1, dtype=np.int64)

    def on_epoch(epoch, ids, pack, train_eval, evaluate_test):
        for row, i in enumerate(ids):
            hist["train_loss"][i, epoch - 1] = float(train_eval["loss"][row])
            hist["train_acc"][i, epoch - 1] = 1.0 - float(train_eval["error"][row])
        if epoch % eval_every == 0 or epoch == epochs:
            te = evaluate_test()
            for row, i in enumerate(ids):
                hist["test_acc"][i, epoch - 1] = 1.0 - float(te["error"][row])

    results, model = train_members(
        data["x_train"], data["y_train"], data["x_test"], data["y_test"],
        [Member(seed=m["seed"], lr=lr) for m, lr in zip(members, lrs, strict=True)], cfg,
        checkpoint_path=checkpoint, log=log, return_model=True, on_epoch=on_epoch)
    # the final test predictions (classes), on the training device
    from depthlab.training.device import resolve_device

    device = resolve_device(tr["device"])
    model = model.to(device)
    dtype = torch.float64 if tr["dtype"] == "float64" else torch.float32
    with torch.no_grad():
        x = torch.as_tensor(data["x_test"], dtype=dtype, device=device)
        for start in range(0, len(x), 1024):
            out = model(x[start:start + 1024])
            final_test_pred[:, start:start + 1024] = out.argmax(-1).cpu().numpy()
    # kernel time per step and the linear-stability number of the init kernel (deep_narrow)
    tau = np.full(m_count, np.nan)
    lam_init = np.full(m_count, np.nan)
    if init == "deep_narrow":
        sub = data["x_train"][: tr["stability_subset"]]
        for i, m in enumerate(members):
            tau[i] = tau_of_lr(lrs[i], depth, c_l, k_out)
            lam_init[i] = stability_lambda(sample_init_kernel(
                sub, depth=depth, n_out=k_out, seed=m["seed"], C_L=c_l, rho=dn["rho"],
                beta=dn["beta"]))
    return {
        "seed": np.array([m["seed"] for m in members], dtype=np.int64),
        "lr_label": np.array([m["lr_label"] for m in members], dtype=object),
        "lr_used": np.array(lrs),
        "status": np.array([r["status"] for r in results], dtype=object),
        "epochs": np.array([r["epochs"] for r in results], dtype=np.int64),
        "final_loss": np.array([r["final_loss"] for r in results]),
        "test_error": np.array([r["test_error"] for r in results]),
        "train_error": np.array([r["train_error"] for r in results]),
        "tau": tau,
        "lambda_max_init": lam_init,
        "tau_lambda_max": tau * lam_init,
        "test_pred": final_test_pred,
        **hist,
        "_attrs": {"init": init, "depth": depth, "width": width, "C_L": c_l, "arch": "mlp",
                   "pool": 1, "rho": float(dn["rho"]), "beta": float(dn["beta"]),
                   "grid": int(first["grid"]), "n_params": int(results[0]["n_params"]),
                   "wall_time_s": float(results[0]["wall_time_s"]),
                   "device": str(results[0]["device"]), "dtype": tr["dtype"]},
    }


# --------------------------------------------------------------------------- CNN

def _two_class(net):
    """A one-output net f as the two columns (1 - f, f): the module trainer's MSE (sum over
    outputs, mean over the batch) on one-hot 0 / 1 targets is then 2 (f - y)^2, and the
    argmax is round(f) (Table 4.1's binary task)."""
    import torch
    from torch import nn

    class TwoClass(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            f = self.inner(x)
            return torch.cat([1.0 - f, f], dim=1)

    return TwoClass(net)


def train_cnn_job(data: dict[str, Any], study: dict[str, Any], members: list[dict[str, Any]],
                  checkpoint: str | None = None, log=None) -> dict:
    """Train one CNN job's members one after another with the module trainer.

    Loss convention: the paper's (and the MLP path's) torch MSE is the mean over batch and
    outputs; the module trainer's is the sum over the K' outputs and the mean over the batch
    (K' = K, or 2 for the scalar-target wrapper), so it runs at lr / K' and its losses are
    divided by K': the updates and the recorded losses are the paper's.  Each member has its
    own checkpoint (``<checkpoint stem>_m<i>.pt``; the job's path itself for one member).
    """
    import torch

    from depthlab.studies.lee.cnn import narrow_cnn
    from depthlab.training.device import resolve_device
    from depthlab.training.module import ModuleTrainConfig, train_module

    tr = study["training"]
    first = members[0]
    g = study["grids"][first["grid"]]
    init, depth = first["init"], int(first["depth"])
    scalar = bool(study["data"].get("scalar_target"))
    k_out = lee_grid.n_outputs(study)
    k_eff = 2 if scalar else k_out
    channels = lee_grid.width(study, g)
    side, pool = lee_grid.image_side(study), int(g.get("pool", 1))
    c_l = float(g["C_L"])
    rho, beta = lee_grid.rho_beta(study, g)
    init_params = {"C_L": c_l, "rho": rho, "beta": beta} if init == "deep_narrow" else None
    dtype = torch.float64 if tr["dtype"] == "float64" else torch.float32
    np_dtype = np.float64 if tr["dtype"] == "float64" else np.float32
    xtr, xte = (np.ascontiguousarray(data[k], dtype=np_dtype) for k in ("x_train", "x_test"))
    ytr, yte = data["y_train"], data["y_test"]
    lrs = [resolve_lr(m["lr_spec"], init, depth, c_l, k_out, None) for m in members]
    epochs = int(g["epochs"])
    m_count = len(members)
    hist = {k: np.full((m_count, epochs), np.nan) for k in ("train_loss", "train_acc",
                                                             "test_acc")}
    out = {k: [] for k in ("status", "epochs", "final_loss", "test_error", "train_error")}
    test_pred = np.full((m_count, len(yte)), -1, dtype=np.int64)
    device = resolve_device(tr["device"])
    n_params, wall = 0, 0.0
    for i, m in enumerate(members):
        net = narrow_cnn((1, side, side), k_out, depth, init=init, init_params=init_params,
                         channels=channels, pool=pool, seed=int(m["seed"]), dtype=dtype)
        n_params = sum(p.numel() for p in net.parameters())
        model = _two_class(net) if scalar else net
        ckpt = checkpoint
        if checkpoint is not None and m_count > 1:
            stem = checkpoint[:-3] if checkpoint.endswith(".pt") else checkpoint
            ckpt = f"{stem}_m{i}.pt"
        cfg = ModuleTrainConfig(lr=lrs[i] / k_eff, optimizer="sgd", batch_size=tr["batch_size"],
                                max_epochs=epochs, loss="mse",
                                divergence_loss=tr["divergence_loss"], seed=int(m["seed"]))
        t0 = time.perf_counter()
        res = train_module(model, xtr, ytr, xte, yte, cfg, device=tr["device"],
                           checkpoint_path=ckpt, checkpoint_every=tr["checkpoint_every"],
                           log=log)
        wall += time.perf_counter() - t0
        h = res["history"]
        n = len(h["train_loss"])
        hist["train_loss"][i, :n] = np.asarray(h["train_loss"]) / k_eff
        hist["train_acc"][i, :n] = h["train_acc"]
        hist["test_acc"][i, :n] = h["test_acc"]
        out["status"].append(res["status"])
        out["epochs"].append(res["epochs"])
        out["final_loss"].append(float(res["train_loss"]) / k_eff)
        out["test_error"].append(1.0 - float(res["test_acc"]))
        out["train_error"].append(1.0 - float(res["train_acc"]))
        model.eval()
        with torch.no_grad():
            x = torch.as_tensor(xte, device=device)
            for start in range(0, len(x), 1024):
                pred = model(x[start:start + 1024]).argmax(-1)
                test_pred[i, start:start + 1024] = pred.cpu().numpy()
    tau = np.array([tau_of_lr(lr, depth, c_l, k_out) if init == "deep_narrow" else np.nan
                    for lr in lrs])
    return {
        "seed": np.array([m["seed"] for m in members], dtype=np.int64),
        "lr_label": np.array([m["lr_label"] for m in members], dtype=object),
        "lr_used": np.array(lrs),
        "status": np.array(out["status"], dtype=object),
        "epochs": np.array(out["epochs"], dtype=np.int64),
        "final_loss": np.array(out["final_loss"]),
        "test_error": np.array(out["test_error"]),
        "train_error": np.array(out["train_error"]),
        "tau": tau,
        "lambda_max_init": np.full(m_count, np.nan),  # the CNN kernel is not implemented
        "tau_lambda_max": np.full(m_count, np.nan),
        "test_pred": test_pred,
        **hist,
        "_attrs": {"init": init, "depth": depth, "width": channels, "C_L": c_l, "arch": "cnn",
                   "pool": pool, "rho": rho, "beta": beta, "grid": int(first["grid"]),
                   "n_params": int(n_params), "wall_time_s": wall, "device": str(device),
                   "dtype": tr["dtype"], "scalar_target": int(scalar)},
    }


# --------------------------------------------------------------------------- toy

def toy_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """gamma grid, x(gamma) (200, 2), target x1 x2 (200,), x0 = (1, 1)/sqrt 2 (1, 2)."""
    gamma = np.linspace(0.0, math.pi / 2, 220)[10:210]
    x = np.stack([np.cos(gamma), np.sin(gamma)], 1)
    return gamma, x, x[:, 0] * x[:, 1], np.full((1, 2), 1.0 / math.sqrt(2.0))


def _layer_outputs(model, member: int, x: np.ndarray):
    """The output carrier relu(h_l)[last] - C_L after each hidden layer l = 1..D, then f."""
    import torch

    c_l = model.init_params["C_L"]
    h = torch.as_tensor(x, dtype=model.weights[0].dtype)
    carrier = []
    with torch.no_grad():
        for i, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
            z = h @ w[member] + b[member, 0]
            if i < len(model.weights) - 1:
                h = torch.relu(z)
                carrier.append((h[:, -1] - c_l).numpy())
            else:
                f = z[:, 0].numpy()
    return np.stack(carrier, 1), f  # (n, D), (n,)


def toy_job(depth: int, toy: dict[str, Any], rho: float = 1.0, beta: float = 1.0,
            log=None) -> dict:
    import torch

    from depthlab.models.packed_fc import FCEnsemble
    from depthlab.training.device import resolve_device

    device = resolve_device(toy["device"])
    gamma, x, y, x0 = toy_inputs()
    n = len(gamma)
    c_l = float(toy["c_over_d2"]) * depth**2
    seeds = [int(s) for s in toy["seeds"]]
    rows = seeds if len(seeds) > 1 else seeds * 2
    model = FCEnsemble(2, depth, 4, 1, rows, init="deep_narrow", dtype=torch.float64,
                       init_params={"C_L": c_l, "rho": rho, "beta": beta}, device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    tau = float(toy["tau"])
    lr = tau / (2.0 * depth * c_l**2)  # tau = 2 eta D C_L^2 / K, K = 1
    xt = torch.as_tensor(x, dtype=torch.float64, device=device)
    xb = xt.unsqueeze(0).expand(len(rows), -1, -1)
    yt = torch.as_tensor(y, dtype=torch.float64, device=device).view(1, n, 1)
    yt = yt.expand(len(rows), -1, -1).contiguous()
    step = torch.full((len(rows),), lr / n, dtype=torch.float64, device=device)
    row0 = empirical_scaled_ntk(model, x0, x)[:, 0, 0]  # (M, n)
    full0 = empirical_scaled_ntk(model, x)[:, 0]
    steps, every = int(toy["steps"]), int(toy["record_every"])
    rec_steps, losses = [], []
    t0 = time.perf_counter()
    for t in range(steps):
        loss = model.sgd_step_(xb, yt, None, step, "mse") / n
        if t % every == 0 or t == steps - 1:
            rec_steps.append(t)
            losses.append(loss.cpu().numpy())
            if log is not None and t % (every * 20) == 0:
                log.info("D=%d step %d loss %s", depth, t, losses[-1])
    wall = time.perf_counter() - t0
    row_t = empirical_scaled_ntk(model, x0, x)[:, 0, 0]
    full_t = empirical_scaled_ntk(model, x)[:, 0]
    with torch.no_grad():
        pred = model(xt)[:, :, 0].cpu().numpy()
    model = model.to("cpu")
    gammas = np.asarray(toy["accumulation_gammas"], dtype=np.float64)
    xa = np.stack([np.cos(gammas), np.sin(gammas)], 1)
    carrier, f_acc = _layer_outputs(model, 0, xa)
    k_inf = limit_kernel(x, n_out=1, rho=rho, beta=beta)
    kgd, _ = kernel_gd(k_inf, k_inf, y, tau, steps)
    m = len(seeds)
    rel_change = (np.abs(full_t - full0).max(axis=(1, 2)) / np.abs(full0).max(axis=(1, 2)))
    return {
        "gamma": gamma, "target": y, "seed": np.array(seeds),
        "ntk_row_0": row0[:m], "ntk_row_T": row_t[:m],
        "ntk_rel_change": rel_change[:m],
        "ntk_limit_row": limit_kernel(x0, x, n_out=1, rho=rho, beta=beta)[0],
        "pred": pred[:m], "loss": np.stack(losses, 1)[:m], "loss_step": np.array(rec_steps),
        "kgd_pred": kgd[:, 0],
        "acc_gamma": gammas, "acc_carrier": carrier, "acc_output": f_acc,
        "acc_target": xa[:, 0] * xa[:, 1],
        "_attrs": {"depth": depth, "C_L": c_l, "lr": lr, "tau": tau, "steps": steps,
                   "wall_time_s": wall, "lambda_max_inf": stability_lambda(k_inf)},
    }


# --------------------------------------------------------------------------- spread

def spread_job(spread: dict[str, Any], rho: float = 1.0, beta: float = 1.0) -> dict:
    """Theta~_0 at (x0, x0) and (x0, x(gamma_1)) of the toy inputs for every depth and seed."""
    gamma, x, _, x0 = toy_inputs()
    pts = np.concatenate([x0, x[:1]])
    depths = [int(d) for d in spread["depths"]]
    n_seeds = int(spread["seeds"])
    theta = np.empty((len(depths), n_seeds, 2))
    for i, depth in enumerate(depths):
        for s in range(n_seeds):
            k = sample_init_kernel(x0, pts, depth=depth, n_out=1, seed=s, C_L=spread["C_L"],
                                   rho=rho, beta=beta)
            theta[i, s] = k[0]
    limit = limit_kernel(x0, pts, n_out=1, rho=rho, beta=beta)[0]
    return {"depth": np.array(depths), "theta0": theta, "theta_inf": limit,
            "pair": np.array(["x0,x0", "x0,x(gamma_1)"], dtype=object),
            "_attrs": {"C_L": float(spread["C_L"]), "gamma_1": float(gamma[0])}}
