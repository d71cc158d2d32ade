"""The probes: a few real steps (or one Gram tile) of each job kind through the library code
its rule's script calls, at a given shape.

Each kind has

* ``measure(shape, k)``: after one warm-up step, ``k`` timed steps; returns seconds per unit
  (the units of :mod:`depthlab.probe.shapes`) and the fixed set-up seconds where it has one;
* ``cost(shape)``: a flop count per unit, used only for ratios -- to pick a smaller shape
  that fits the probe's budget and to extrapolate its time back to the real shape
  (time scales with the flops of the same code path: batch rows, N, width^2);
* ``shrink(shape)``: the next smaller shape along a dimension whose cost scaling is known
  (rows of a batch first, then width), or None.

Inputs are synthetic stand-ins of the real shape (standard normal or uniform values, random
labels): none of these step costs depends on the values. The entry points:

* packed_fc: ``depthlab.models.FCEnsemble`` + ``packed_sgd._run_epoch`` (the inner loop of
  ``train_members``, which rules train and select_lr run) and ``packed_sgd.evaluate``;
* geiger: ``depthlab.studies.geiger.runs.train_lazy_feature`` (rule geiger_train) capped by
  its own ``max_steps``;
* gram: ``depthlab.kernels.layers.sweep_panel``, the row-block kernel of ``compute_gram_file``;
* cholesky: ``numpy.linalg.cholesky`` + triangular solves (the dense solve of
  ``kernel_regression``) at a size that fits, extrapolated by n^3;
* xiao: ``depthlab.studies.xiao.train.train_members`` (rules xiao_train, xiao_plane_train)
  capped by its own ``steps``;
* nichani: ``depthlab.studies.nichani.runs._train_one`` (``train_module``, rules
  nichani_train and nichani_resnet) for one epoch over k batches.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- helpers


def _fc_params(d: int, depth: int, width: int, k: int) -> int:
    if depth == 0:
        return d * k + k
    return d * width + (depth - 1) * width * width + width * k + depth * width + k


def _timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- packed FC


def packed_cost(shape: dict[str, Any]) -> dict[str, float]:
    p = _fc_params(shape["d"], shape["depth"], shape["width"], shape["n_classes"])
    ms = shape["M"] if isinstance(shape["M"], tuple) else (shape["M"],)
    out = {}
    for m in ms:
        out[f"step_M{m}"] = 6.0 * m * shape["batch"] * p
        out[f"evalrow_M{m}"] = 2.0 * m * p
    return out


def packed_shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    if shape["width"] > 64 and shape["depth"] > 0:
        return {**shape, "width": shape["width"] // 2}
    return None


def packed_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    import torch

    from depthlab.models.packed_fc import FCEnsemble
    from depthlab.training import packed_sgd as ps

    dtype = ps._DTYPES[shape["dtype"]]
    b, d, kc = shape["batch"], shape["d"], shape["n_classes"]
    ms = shape["M"] if isinstance(shape["M"], tuple) else (shape["M"],)
    out: dict[str, float] = {}
    gen = np.random.default_rng(0)
    kmax = max(k, 200)  # tiny steps are timed over more of them (timer and load noise)
    n = (kmax + 1) * b
    x = gen.standard_normal((n, d)).astype(np.float32)
    y = gen.integers(0, kc, n)
    data = ps._Data(x, y, kc, torch.device("cpu"), dtype)
    n_eval = min(n, 8192)
    evdata = ps._Data(x[:n_eval], y[:n_eval], kc, torch.device("cpu"), dtype)
    for m in ms:
        full = FCEnsemble(d, shape["depth"], shape["width"], kc, list(range(m)),
                          activation=shape["activation"], device="cpu", dtype=dtype)
        for p in full.parameters():
            p.requires_grad_(False)
        rows = list(range(m))
        pack = full.select(rows)
        gens = [ps.shuffle_generator(s) for s in rows]
        # small learning rates: the step cost must not be that of NaN arithmetic
        lrs = torch.full((m,), 1e-3, dtype=torch.float64)
        scales = ps._step_scales(lrs, {b}, full.widths, torch.device("cpu"), dtype)
        t_one = _timed(ps._run_epoch, pack, data, gens, rows, [(0, b)], scales,
                       shape["loss"])  # warm-up
        k_m = int(min(kmax, max(k, 0.25 / max(t_one, 1e-6))))
        steps = [(i * b, b) for i in range(k_m)]
        out[f"step_M{m}"] = _timed(ps._run_epoch, pack, data, gens, rows, steps, scales,
                                   shape["loss"]) / k_m
        ps.evaluate(pack, evdata, shape["loss"])  # warm-up
        out[f"evalrow_M{m}"] = _timed(ps.evaluate, pack, evdata, shape["loss"]) / n_eval
    return out


# --------------------------------------------------------------------------- Geiger


def _geiger_macs_per_sample(shape: dict[str, Any]) -> float:
    w, L = shape["width"], shape["depth"]
    if shape["architecture"] == "fc":
        return float(_fc_params(shape["d"], L, w, 1))
    # setup (B): stride 2 before the first and in the middle hidden conv layers, 3x3 filters
    h, wd = shape["image_shape"] if shape["image_shape"] else (28, 28)
    macs, c_in, side = 0.0, 1, h * wd
    for layer in range(L):
        if layer == 0 or layer == L // 2:
            side /= 4
        macs += 9 * c_in * w * side
        c_in = w
    return macs + w


def geiger_cost(shape: dict[str, Any]) -> dict[str, float]:
    return {"step": 6.0 * shape["n_train"] * _geiger_macs_per_sample(shape),
            "fixed": 6.0 * (shape.get("ntk_subset") or 256) * _geiger_macs_per_sample(shape)}


def geiger_shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    # full-batch dynamics: the cost of a step is linear in the training rows (setup B draws
    # an adaptive batch b <= n per step: linear in n is an upper bound there); then width
    if shape["n_train"] > 256:
        return {**shape, "n_train": shape["n_train"] // 2}
    if shape["width"] > 8:
        return {**shape, "width": shape["width"] // 2}
    return None


def geiger_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    from depthlab.studies.geiger.runs import train_lazy_feature

    gen = np.random.default_rng(0)
    n, d = shape["n_train"], shape["d"]
    n_test = max(64, min(n, shape["n_test"]))
    if shape["architecture"] == "cnn":
        xtr, xte = gen.random((n, d)), gen.random((n_test, d))
    else:
        xtr, xte = gen.standard_normal((n, d)), gen.standard_normal((n_test, d))
    ytr, yte = gen.integers(0, 2, n), gen.integers(0, 2, n_test)
    # the initial/final empirical NTK on `ntk_subset` test points is set-up cost, not step
    # cost: probed on at most 64 points and scaled linearly (a bound: see module doc)
    subset = int(shape.get("ntk_subset") or 256)
    probe_subset = min(subset, 64 if shape["architecture"] == "fc" else 16)
    kw = dict(alpha=1.0, width=shape["width"], depth=shape["depth"], seed=0,
              activation=shape["activation"], architecture=shape["architecture"],
              image_shape=shape["image_shape"], mu=shape["mu"], tau=shape["tau"],
              temperature=shape["temperature"], ntk_subset=probe_subset, lazy=False,
              device="cpu")
    # warm-up (one-off lazy initialisation) on a few rows, then the timed pair
    train_lazy_feature(xtr[:32], ytr[:32], xte[:32], yte[:32], max_steps=1,
                       **{**kw, "ntk_subset": 16})
    t1 = _timed(lambda: train_lazy_feature(xtr, ytr, xte, yte, max_steps=1, **kw))
    t2 = _timed(lambda: train_lazy_feature(xtr, ytr, xte, yte, max_steps=1 + k, **kw))
    step = max(t2 - t1, 1e-9) / k
    return {"step": step, "fixed": max(t1 - step, 0.0) * subset / probe_subset}


# --------------------------------------------------------------------------- Gram


def gram_cost(shape: dict[str, Any]) -> dict[str, float]:
    return {"entry": 2.0 * shape["d"] + 30.0 * shape["depth"]}


def gram_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    import json

    from depthlab.kernels.layers import KernelSpec, sweep_panel

    spec = KernelSpec.coerce(json.loads(shape["spec"]))
    gen = np.random.default_rng(0)
    rows, cols = 64 * k, 2048
    xr = gen.standard_normal((rows, shape["d"]))
    xc = gen.standard_normal((cols, shape["d"]))
    sweep_panel(spec, shape["depth"], xr[:16], xc[:256], prefix_same=False, n_threads=1)
    t = _timed(lambda: sweep_panel(spec, shape["depth"], xr, xc, prefix_same=False,
                                   n_threads=1))
    return {"entry": t / (rows * cols)}


# --------------------------------------------------------------------------- Cholesky


def cholesky_cost(shape: dict[str, Any]) -> dict[str, float]:
    return {"chol_flop": 1.0}


def cholesky_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    import scipy.linalg as sla

    n = 1024 + 256 * min(k, 8)
    gen = np.random.default_rng(0)
    a = gen.standard_normal((n, n))
    g = a @ a.T / n + np.eye(n)
    y = gen.standard_normal((n, 2))
    sla.cho_factor(g[:256, :256].copy())

    def solve():
        c = sla.cho_factor(g.copy(), overwrite_a=True)
        sla.cho_solve(c, y)

    t = _timed(solve)
    return {"chol_flop": t / (n**3 / 3 + 4 * n * n)}


# --------------------------------------------------------------------------- Xiao


def xiao_cost(shape: dict[str, Any]) -> dict[str, float]:
    p = _fc_params(shape["d"], shape["depth"], shape["width"], 10)
    return {"step": 6.0 * shape["members"] * shape["batch"] * p}


def xiao_shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    if shape["batch"] > 32:
        return {**shape, "batch": shape["batch"] // 2}
    if shape["width"] > 256:
        return {**shape, "width": shape["width"] // 2}
    return None


def xiao_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    import torch

    from depthlab.studies.xiao.train import train_members

    gen = np.random.default_rng(0)
    b = shape["batch"]
    n = b * 2  # batches drawn from a permutation of n rows: n only sets the index range
    labels_tr, labels_te = gen.integers(0, 10, n), gen.integers(0, 10, 64)
    eye = np.eye(10)
    freq = eye[labels_tr].mean(0)
    data = {"x_train": gen.standard_normal((n, shape["d"])) / math.sqrt(shape["d"]),
            "x_test": gen.standard_normal((64, shape["d"])) / math.sqrt(shape["d"]),
            "y_train": eye[labels_tr] - freq, "y_test": eye[labels_te] - freq,
            "labels_train": labels_tr, "labels_test": labels_te, "class_freq": freq}
    dtype = {"float32": torch.float32, "float64": torch.float64}[shape["dtype"]]
    rhos = [0.3] * shape["members"]
    kw = dict(w_var=1.5, b_var=0.05, rhos=rhos, seeds=[0], eta_theory=0.01,
              eval_every=10**9, dtype=dtype, batch_size=b if b < n else None, device="cpu")
    # full-batch jobs (cliff): batch = n rows, as the job's own full batch
    if shape["batch"] >= shape["n_train"]:
        kw["batch_size"] = None
        data["x_train"] = data["x_train"][:b]
        for key in ("y_train", "labels_train"):
            data[key] = data[key][:b]
    train_members(data, shape["depth"], min(shape["width"], 64), steps=1, **kw)  # warm-up
    t1 = _timed(lambda: train_members(data, shape["depth"], shape["width"], steps=1, **kw))
    t2 = _timed(lambda: train_members(data, shape["depth"], shape["width"], steps=1 + k, **kw))
    step = max(t2 - t1, 1e-9) / k
    return {"step": step, "fixed": max(t1 - 2 * step, 0.0)}


# --------------------------------------------------------------------------- Nichani


def _conv_macs(shape: dict[str, Any]) -> float:
    s = shape["image_size"] ** 2
    w, ks = shape["width"], shape["kernel_size"] ** 2
    if shape["model"] == "resnet":
        macs, c, side = 3 * w * ks * s, w, s
        for stage, nb in enumerate(shape["blocks"]):
            c_out = w * 2**stage
            if stage:
                side /= 4
            macs += nb * 2 * ks * c_out * c_out * side + (c * c_out * ks * side if stage else 0)
            c = c_out
        return macs
    if shape["model"] == "fully_conv":
        return ks * s * (3 * w + (shape["depth"] - 1) * w * w + w * shape["n_classes"])
    return 3 * s * w + w * shape["n_classes"]


def nichani_cost(shape: dict[str, Any]) -> dict[str, float]:
    return {"step": 6.0 * shape["batch"] * _conv_macs(shape)}


def nichani_shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    if shape["batch"] > 8:
        return {**shape, "batch": shape["batch"] // 2}
    return None


def nichani_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    from depthlab.studies.nichani.runs import _train_one

    gen = np.random.default_rng(0)
    b, kc, side = shape["batch"], shape["n_classes"], shape["image_size"]

    def data(n):
        return {"x_train": gen.random((n, 3, side, side), dtype=np.float32),
                "y_train": np.arange(n) % kc,
                "x_test": gen.random((b, 3, side, side), dtype=np.float32),
                "y_test": np.arange(b) % kc, "n_classes": kc}

    if shape["model"] == "resnet":
        tr = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
              "batch_size": b, "max_epochs": 1, "loss": "mse", "mse_reduction": "mean",
              "lr_decay_epochs": [], "lr_decay": 0.1, "stop_at_interpolation": False,
              "checkpoint_every": 0, "device": "cpu"}
        study = {"resnets": {"training": tr, "softmax_output": True, "augment": True,
                             "crop_padding": 4}}
        job = {"model": "resnet", "blocks": list(shape["blocks"]), "width": shape["width"],
               "kernel_size": shape["kernel_size"], "seeds": [0]}
    else:
        tr = {"optimizer": "adam", "lr": 1e-4, "momentum": 0.0, "weight_decay": 0.0,
              "batch_size": b, "max_epochs": 1, "loss": "cross_entropy", "lr_decay_epochs": [],
              "lr_decay": 0.1, "checkpoint_every": 0, "device": "cpu"}
        study = {"fully_conv": {"width": shape["width"], "fc_width": shape["width"],
                                "kernel_size": shape["kernel_size"], "negative_slope": 0.01,
                                "training": tr}}
        job = {"model": shape["model"], "depth": shape["depth"], "seeds": [0]}
    d1, d2 = data(b), data((1 + k) * b)
    _train_one(d1, study, job, 0)  # warm-up
    t1 = _timed(lambda: _train_one(d1, study, job, 0))
    t2 = _timed(lambda: _train_one(d2, study, job, 0))
    step = max(t2 - t1, 1e-9) / k
    return {"step": step, "fixed": max(t1 - step, 0.0)}


# --------------------------------------------------------------------------- memory models
# Analytic memory (MB) of a shape: what grows with it (parameters and their work copies,
# activations kept for the backward pass). Used only for differences: a probe measured at a
# smaller shape adds mem(real) - mem(measured) to its measured peak.

_MB = 2.0**20


def packed_mem(s: dict[str, Any]) -> float:
    m = max(s["M"]) if isinstance(s["M"], tuple) else s["M"]
    p = _fc_params(s["d"], s["depth"], s["width"], s["n_classes"])
    by = 8 if s["dtype"] == "float64" else 4
    return (3 * m * p + 3 * m * s["batch"] * s["width"] * max(s["depth"], 1)) * by / _MB


def geiger_mem(s: dict[str, Any]) -> float:
    w, L = s["width"], s["depth"]
    if s["architecture"] == "fc":
        per, p = w * L, _fc_params(s["d"], L, w, 1)  # activations per sample, parameters
    else:
        h, wd = s["image_shape"] if s["image_shape"] else (28, 28)
        side, per = h * wd, 0.0
        for layer in range(L):
            if layer == 0 or layer == L // 2:
                side /= 4
            per += w * side
        p = 9 * w * w * L
    # float64: activations and their gradients, parameters with momentum and w0 copies
    return (4 * s["n_train"] * per + 4 * p) * 8 / _MB


def xiao_mem(s: dict[str, Any]) -> float:
    p = _fc_params(s["d"], s["depth"], s["width"], 10)
    by = 8 if s["dtype"] == "float64" else 4
    act = s["members"] * s["batch"] * s["width"] * s["depth"]
    return (3 * s["members"] * p + 3 * act) * by / _MB


def nichani_mem(s: dict[str, Any]) -> float:
    # activations ~ flops per sample / (9 width) per layer, kept for backward; 4 bytes
    return 3 * s["batch"] * _conv_macs(s) / max(9 * s["width"], 1) * 4 / _MB


KINDS = {
    "packed_fc": (packed_measure, packed_cost, packed_shrink),
    "geiger": (geiger_measure, geiger_cost, geiger_shrink),
    "gram": (gram_measure, gram_cost, lambda s: None),
    "cholesky": (cholesky_measure, cholesky_cost, lambda s: None),
    "xiao": (xiao_measure, xiao_cost, xiao_shrink),
    "nichani": (nichani_measure, nichani_cost, nichani_shrink),
}
MEMORY = {"packed_fc": packed_mem, "geiger": geiger_mem, "xiao": xiao_mem,
          "nichani": nichani_mem}
