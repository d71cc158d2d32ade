"""The probe of Nichani jobs (rules nichani_train, nichani_resnet): its
:class:`depthlab.probe.kinds.Probe`, found by name (the probe kind ``nichani``) by
:data:`depthlab.probe.kinds.KINDS`, and ``RULES``, how each job of its rules is planned
(:class:`depthlab.probe.shapes.RuleProbe`: its shape, step count, data size).

Entry point: ``depthlab.studies.nichani.runs._train_one`` (``train_module``) for one
epoch over k batches; inputs are synthetic stand-ins of the real shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from depthlab.probe import kinds as K
from depthlab.probe.jobs import JobInfo
from depthlab.probe.shapes import RuleProbe, dataset


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


# --------------------------------------------------------------------------- its rules


def _data(job: JobInfo, config: Mapping[str, Any]) -> Mapping[str, Any]:
    data = config["studies"][job.wildcards["study"]]["data"]
    # `data.dataset` names a dataset of the config's `datasets` block; the config check
    # copies its parameters (classes, image_size, n per class) into `data`, but the probe
    # plans from the raw config file: read them from the named block
    if "dataset" in data:
        ds = dataset(config, data["dataset"])
        # the generator's size where the block names none (depthlab.data.images): digits
        # are 8x8, CIFAR-10 / ImageNet32 are downsampled to image_size, 16 by default
        size = 8 if ds.get("source") == "digits" else int(ds.get("image_size", 16))
        return {**ds, "image_size": size, **data}
    return data


def _shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    data, p = _data(job, config), job.params
    job_ = p["job"]
    k = len(data["classes"])
    common = dict(image_size=int(data["image_size"]), n_classes=k)
    if job_["model"] == "resnet":
        tr = p["resnets"]["training"]
        return dict(model="resnet", blocks=tuple(job_["blocks"]), width=int(job_["width"]),
                    kernel_size=int(job_["kernel_size"]), batch=int(tr["batch_size"]),
                    **common)
    fc = p["fully_conv"]
    width = int(fc["fc_width"]) if job_["model"] != "fully_conv" else int(fc["width"])
    return dict(model=job_["model"], depth=int(job_.get("depth", 1)), width=width,
                kernel_size=int(fc["kernel_size"]), batch=int(fc["training"]["batch_size"]),
                **common)


def _work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    data = _data(job, config)
    k = len(data["classes"])
    n = k * int(data["n_train_per_class"])
    nt = k * int(data["n_test_per_class"])
    job_ = job.params["job"]
    tr = (job.params["resnets"] if job_["model"] == "resnet"
          else job.params["fully_conv"])["training"]
    b = int(tr["batch_size"])
    seeds = len(job_["seeds"])
    epochs = int(tr["max_epochs"])
    # per epoch: ceil(N/B) steps (each carrying its share of the train-set evaluation)
    # and the test-set evaluation, counted as forward-only at 1/3 of a step per batch
    per_epoch = math.ceil(n / b) + math.ceil(nt / b) / 3.0
    return {"fixed": float(seeds), "step": seeds * epochs * per_epoch}


def _data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    data = _data(job, config)
    k = len(data["classes"])
    n = k * (int(data["n_train_per_class"]) + int(data["n_test_per_class"]))
    return n * 3 * int(data["image_size"]) ** 2 * 8 / K.MB


def _train_stops_early(job: JobInfo) -> bool:
    # counted at max_epochs; the Fully-Conv / FC trainer stops at interpolation
    return True


def _resnet_stops_early(job: JobInfo) -> bool:
    tr = job.params["resnets"]["training"]
    return bool(tr.get("stop_at_interpolation", True))


RULES: dict[str, RuleProbe] = {
    "nichani_train": RuleProbe("nichani", _shape, _work, bound=_train_stops_early,
                               data_mb=_data_mb),
    "nichani_resnet": RuleProbe("nichani", _shape, _work, bound=_resnet_stops_early,
                                data_mb=_data_mb),
}
