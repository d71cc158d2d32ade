"""Jobs -> shape classes -> representatives, and the work each job needs.

A job's cost is (seconds per unit of work at its shape) x (units the full job needs). The
shape is what sets the seconds per unit: the real model, batch, width, depth, dtype and input
size; what only sets the *number* of units (N via steps per epoch, epochs, seeds run one after
another, alpha, the learning rate, Gram entries) is left out of the shape and put into
:func:`job_work`. All jobs of one (rule, shape) share one representative probe.

Units (seconds per unit are what a probe measures):

* ``step_M{m}``     one packed-SGD step of ``m`` members (``depthlab.training.packed_sgd``);
* ``evalrow_M{m}``  one sample through a pack of ``m`` members (the full-set checks);
* ``step``          one step of the rule's own dynamics / trainer (Geiger's hinge flow, the
                    Xiao trainer, one mini-batch of the module trainer incl. its per-epoch
                    train-set evaluation share);
* ``entry``         one Gram entry (NTK and NNGP together) of an FC kernel at depth L;
* ``chol_flop``     one flop of the dense Cholesky + solves of kernel regression;
* ``fixed``         set-up once per job (model init, initial NTK, final measures).

Rules without a probe map to the class ``(rule, unprobed)``: they are counted and checked
against their request, never silently given a cost.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from depthlab.probe.jobs import JobInfo

PROBED_RULES = ("mori_ueda_train", "mori_ueda_select_lr", "geiger_train", "gram",
                "kernel_regression", "xiao_plane_train", "xiao_train", "nichani_train",
                "nichani_resnet")
CIFAR_DIM = 3 * 32 * 32


@dataclass(frozen=True)
class ShapeClass:
    rule: str
    kind: str  # which probe measures it ("packed_fc", "geiger", ..., "unprobed")
    key: tuple[tuple[str, Any], ...]

    @property
    def shape(self) -> dict[str, Any]:
        return dict(self.key)

    @property
    def label(self) -> str:
        return f"{self.rule}:" + ",".join(f"{k}={_fmt(v)}" for k, v in self.key)


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return "x".join(map(str, v))
    return str(v)


def _key(**kw: Any) -> tuple[tuple[str, Any], ...]:
    def freeze(v):
        if isinstance(v, list | tuple):
            return tuple(freeze(x) for x in v)
        if isinstance(v, dict):
            return json.dumps(v, sort_keys=True)
        return v

    return tuple((k, freeze(v)) for k, v in kw.items())


def _dataset(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    try:
        return config["datasets"][name]
    except KeyError:
        raise KeyError(f"probe: dataset {name!r} is not in the config's `datasets`") from None


def _n_classes(ds: Mapping[str, Any]) -> int:
    # the Mori-Ueda generators (k_local, k_global, random, ising) and parity labels: binary
    return int(ds.get("n_classes", 2))


def _packed(settings: Mapping[str, Any], d: int, depth: int, width: int,
            n_classes: int) -> dict[str, Any]:
    return {"d": int(d), "depth": int(depth), "width": int(width),
            "batch": int(settings.get("batch_size", 50)), "dtype": settings.get("dtype", "float32"),
            "loss": settings.get("loss", "cross_entropy"),
            "activation": settings.get("activation", "relu"), "n_classes": int(n_classes)}


def shape_class(job: JobInfo, config: Mapping[str, Any]) -> ShapeClass:
    """The (rule, shape) class of ``job``: its representative is probed once for all."""
    r, wc, p = job.rule, job.wildcards, job.params
    if r == "mori_ueda_train":
        ds = _dataset(config, wc["dataset"])
        m = max(2, len(p["members"]))  # a lone member is padded to a pack of 2 (packed_sgd)
        return ShapeClass(r, "packed_fc", _key(**_packed(p["training"], ds["d"], wc["depth"],
                                                         wc["width"], _n_classes(ds)), M=m))
    if r == "mori_ueda_select_lr":
        ds = _dataset(config, wc["dataset"])
        s = p["search"]
        ms = sorted({max(2, int(s["init_points"])), 2} if s["init_points"] else {2})
        return ShapeClass(r, "packed_fc", _key(**_packed(p["training"], ds["d"], wc["depth"],
                                                         wc["width"], _n_classes(ds)),
                                               M=tuple(ms)))
    if r == "geiger_train":
        run = p["run"]
        study = config["studies"][wc["study"]]
        ds = _dataset(config, study["dataset"])
        dyn = run["dynamics"]
        return ShapeClass(r, "geiger", _key(
            architecture=run["architecture"], activation=wc["activation"],
            depth=int(wc["depth"]), width=int(wc["width"]), n_train=int(run["n_train"]),
            n_test=int(ds["n_test"]), d=int(ds["d"]), image_shape=run["image_shape"],
            temperature=float(dyn.get("temperature") or 0.0), tau=dyn.get("tau"),
            mu=dyn.get("mu"), ntk_subset=dyn.get("ntk_subset")))
    if r == "gram":
        ds = _dataset(config, wc["dataset"])
        return ShapeClass(r, "gram", _key(spec=p["spec"], depth=int(wc["depth"]),
                                          d=int(ds["d"])))
    if r == "kernel_regression":
        # a dense N x N solve: its cost depends on N only, one probe times the BLAS rate
        return ShapeClass(r, "cholesky", _key(dtype="float64"))
    if r in ("xiao_plane_train", "xiao_train"):
        blk = p["study"][p["block"]]
        n = int(blk["n_train"])
        batch = min(int(blk.get("batch_size") or n), n)
        rhos = blk["rho"] if isinstance(blk["rho"], list) else [blk["rho"]]
        return ShapeClass(r, "xiao", _key(
            block=p["block"], depth=int(p["run"]["depth"]), width=int(blk["width"]),
            batch=batch, members=len(rhos) * len(blk["seeds"]), dtype=blk.get("dtype", "float32"),
            d=CIFAR_DIM, n_train=n, n_test=int(blk["n_test"]), eval_every=int(blk["eval_every"])))
    if r in ("nichani_train", "nichani_resnet"):
        study = config["studies"][wc["study"]]
        data = study["data"]
        job_ = p["job"]
        k = len(data["classes"])
        common = dict(image_size=int(data["image_size"]), n_classes=k)
        if job_["model"] == "resnet":
            tr = p["resnets"]["training"]
            return ShapeClass(r, "nichani", _key(
                model="resnet", blocks=tuple(job_["blocks"]), width=int(job_["width"]),
                kernel_size=int(job_["kernel_size"]), batch=int(tr["batch_size"]), **common))
        fc = p["fully_conv"]
        width = int(fc["fc_width"]) if job_["model"] != "fully_conv" else int(fc["width"])
        return ShapeClass(r, "nichani", _key(
            model=job_["model"], depth=int(job_.get("depth", 1)), width=width,
            kernel_size=int(fc["kernel_size"]), batch=int(fc["training"]["batch_size"]),
            **common))
    return ShapeClass(r, "unprobed", ())


def job_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    """Units of work the full job needs (keys as in the module doc). Training rules whose
    trainer may stop early (zero training error, convergence) are counted at their cap
    (max_epochs, max_steps): an upper bound, flagged as such by :func:`work_is_bound`."""
    r, wc, p = job.rule, job.wildcards, job.params
    if r == "mori_ueda_train":
        ds = _dataset(config, wc["dataset"])
        tr = p["training"]
        n, m = int(wc["n_train"]), max(2, len(p["members"]))
        epochs = int(tr["max_epochs"])
        checks = math.ceil(epochs / int(tr["check_every"]))
        return {"fixed": 1.0, f"step_M{m}": epochs * math.ceil(n / int(tr["batch_size"])),
                f"evalrow_M{m}": checks * n + int(ds["n_test"])}
    if r == "mori_ueda_select_lr":
        tr, s = p["training"], p["search"]
        n, k = int(wc["n_train"]), int(s["n_folds"])
        epochs = int(s.get("max_epochs", tr["max_epochs"]))
        n_fit = n - n // k  # the k-1 training folds
        steps = epochs * math.ceil(n_fit / int(tr["batch_size"]))
        checks = math.ceil(epochs / int(tr["check_every"]))
        out: dict[str, float] = {"fixed": float(k * (1 + int(s["n_iter"])))}
        if s["init_points"]:
            mi = max(2, int(s["init_points"]))
            out[f"step_M{mi}"] = k * steps
            out[f"evalrow_M{mi}"] = k * (checks * n_fit + n // k)
        out["step_M2"] = out.get("step_M2", 0) + k * int(s["n_iter"]) * steps
        out["evalrow_M2"] = out.get("evalrow_M2", 0) + k * int(s["n_iter"]) * (checks * n_fit
                                                                               + n // k)
        return out
    if r == "geiger_train":
        return {"fixed": 1.0, "step": float(p["run"]["dynamics"]["max_steps"])}
    if r == "gram":
        ds = _dataset(config, wc["dataset"])
        n, nt = int(ds["n_train"]), int(ds["n_test"])
        return {"fixed": 1.0, "entry": n * (n + 1) / 2 + nt * n}
    if r == "kernel_regression":
        ds = _dataset(config, wc["dataset"])
        n, nt = int(wc["n_train"]), int(ds["n_test"])
        # Cholesky n^3/3, two triangular solves with the one-hot targets, test x train matvec
        return {"fixed": 1.0, "chol_flop": n**3 / 3 + 4 * n * n + 2 * nt * n}
    if r in ("xiao_plane_train", "xiao_train"):
        blk = p["study"][p["block"]]
        return {"fixed": 1.0, "step": float(blk["steps"])}
    if r in ("nichani_train", "nichani_resnet"):
        study = config["studies"][wc["study"]]
        data = study["data"]
        k = len(data["classes"])
        n = k * int(data["n_train_per_class"])
        nt = k * int(data["n_test_per_class"])
        job_ = p["job"]
        tr = (p["resnets"] if job_["model"] == "resnet" else p["fully_conv"])["training"]
        b = int(tr["batch_size"])
        seeds = len(job_["seeds"])
        epochs = int(tr["max_epochs"])
        # per epoch: ceil(N/B) steps (each carrying its share of the train-set evaluation)
        # and the test-set evaluation, counted as forward-only at 1/3 of a step per batch
        per_epoch = math.ceil(n / b) + math.ceil(nt / b) / 3.0
        return {"fixed": float(seeds), "step": seeds * epochs * per_epoch}
    return {}


def work_is_bound(job: JobInfo) -> bool:
    """True where :func:`job_work` counts a cap the trainer may stop before."""
    if job.rule in ("mori_ueda_train", "mori_ueda_select_lr", "geiger_train", "nichani_train"):
        return True
    if job.rule == "nichani_resnet":
        tr = job.params["resnets"]["training"]
        return bool(tr.get("stop_at_interpolation", True))
    return False


def representatives(jobs: Iterable[JobInfo], config: Mapping[str, Any]
                    ) -> dict[ShapeClass, list[JobInfo]]:
    """Every job under its shape class, classes in first-seen order; the first job of a
    class is its representative (any member would do: they share the shape)."""
    out: dict[ShapeClass, list[JobInfo]] = {}
    for job in jobs:
        out.setdefault(shape_class(job, config), []).append(job)
    return out
