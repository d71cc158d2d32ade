"""The probe of Nichani jobs (rules nichani_train, nichani_resnet): its
:class:`depthlab.probe.kinds.Probe`, found by name (the probe kind ``nichani``) by
:data:`depthlab.probe.kinds.KINDS`.

Entry point: ``depthlab.studies.nichani.runs._train_one`` (``train_module``) for one
epoch over k batches; inputs are synthetic stand-ins of the real shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from depthlab.probe import kinds as K


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


def cost(shape: dict[str, Any]) -> dict[str, float]:
    return {"step": 6.0 * shape["batch"] * _conv_macs(shape)}


def shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    if shape["batch"] > 8:
        return {**shape, "batch": shape["batch"] // 2}
    return None


def measure(shape: dict[str, Any], k: int) -> dict[str, float]:
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
    t1 = K.timed(lambda: _train_one(d1, study, job, 0))
    t2 = K.timed(lambda: _train_one(d2, study, job, 0))
    step = max(t2 - t1, 1e-9) / k
    return {"step": step, "fixed": max(t1 - step, 0.0)}


def memory(s: dict[str, Any]) -> float:
    # activations ~ flops per sample / (9 width) per layer, kept for backward; 4 bytes
    return 3 * s["batch"] * _conv_macs(s) / max(9 * s["width"], 1) * 4 / K.MB


PROBE = K.Probe(measure, cost, shrink, memory)
