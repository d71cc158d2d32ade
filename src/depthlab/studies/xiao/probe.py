"""The probe of Xiao jobs (rules xiao_train, xiao_plane_train): its
:class:`depthlab.probe.kinds.Probe`, found by name (the probe kind ``xiao``) by
:data:`depthlab.probe.kinds.KINDS`, and ``RULES``, how each job of its rules is planned
(:class:`depthlab.probe.shapes.RuleProbe`: its shape, step count, data size).

Entry point: :func:`depthlab.studies.xiao.train.train_members` capped by its own
``steps``; inputs are synthetic stand-ins of the real shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from depthlab.probe import kinds as K
from depthlab.probe.jobs import JobInfo
from depthlab.probe.shapes import RuleProbe

CIFAR_DIM = 3 * 32 * 32


def cost(shape: dict[str, Any]) -> dict[str, float]:
    p = K.fc_params(shape["d"], shape["depth"], shape["width"], 10)
    return {"step": 6.0 * shape["members"] * shape["batch"] * p}


def shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    if shape["batch"] > 32:
        return {**shape, "batch": shape["batch"] // 2}
    if shape["width"] > 256:
        return {**shape, "width": shape["width"] // 2}
    return None


def measure(shape: dict[str, Any], k: int) -> dict[str, float]:
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
    t1 = K.timed(lambda: train_members(data, shape["depth"], shape["width"], steps=1, **kw))
    t2 = K.timed(lambda: train_members(data, shape["depth"], shape["width"], steps=1 + k, **kw))
    step = max(t2 - t1, 1e-9) / k
    return {"step": step, "fixed": max(t1 - 2 * step, 0.0)}


def memory(s: dict[str, Any]) -> float:
    p = K.fc_params(s["d"], s["depth"], s["width"], 10)
    by = 8 if s["dtype"] == "float64" else 4
    act = s["members"] * s["batch"] * s["width"] * s["depth"]
    return (3 * s["members"] * p + 3 * act) * by / K.MB


PROBE = K.Probe(measure, cost, shrink, memory)


# --------------------------------------------------------------------------- its rules


def _block(job: JobInfo) -> Mapping[str, Any]:
    return job.params["study"][job.params["block"]]


def _train_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    blk = _block(job)
    n = int(blk["n_train"])
    batch = min(int(blk.get("batch_size") or n), n)
    rhos = blk["rho"] if isinstance(blk["rho"], list) else [blk["rho"]]
    return dict(
        block=job.params["block"], depth=int(job.params["run"]["depth"]),
        width=int(blk["width"]), batch=batch, members=len(rhos) * len(blk["seeds"]),
        dtype=blk.get("dtype", "float32"), d=CIFAR_DIM, n_train=n, n_test=int(blk["n_test"]),
        eval_every=int(blk["eval_every"]))


def _train_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    return {"fixed": 1.0, "step": float(_block(job)["steps"])}


def _train_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    blk = _block(job)
    return (int(blk["n_train"]) + int(blk["n_test"])) * CIFAR_DIM * 12 / K.MB


# both rules run train_members for exactly `steps` steps: the count is exact, not a cap
RULES: dict[str, RuleProbe] = {
    rule: RuleProbe("xiao", _train_shape, _train_work, data_mb=_train_data_mb)
    for rule in ("xiao_train", "xiao_plane_train")
}
