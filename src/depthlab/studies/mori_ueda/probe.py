"""How ``make probe-paper`` plans the Mori-Ueda jobs (rules mori_ueda_train,
mori_ueda_select_lr): their :class:`depthlab.probe.shapes.RuleProbe`, found by name by
:func:`depthlab.probe.shapes.rule_probe`.

Both rules run the shared packed trainer (``depthlab.training.packed_sgd``), so they are
measured by the shared probe kind ``packed_fc`` and this hook defines no ``PROBE`` of its
own: it says only which packed shape a job has and how many steps and evaluation rows it
needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from depthlab.probe.jobs import JobInfo
from depthlab.probe.shapes import RuleProbe, dataset, n_classes, packed_shape


def _train_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    wc, p = job.wildcards, job.params
    ds = dataset(config, wc["dataset"])
    m = max(2, len(p["members"]))  # a lone member is padded to a pack of 2 (packed_sgd)
    return {**packed_shape(p["training"], ds["d"], wc["depth"], wc["width"], n_classes(ds)),
            "M": m}


def _select_lr_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    wc, p = job.wildcards, job.params
    ds = dataset(config, wc["dataset"])
    s = p["search"]
    # the initial random points run as one pack, each later candidate as a pack of 2
    ms = sorted({max(2, int(s["init_points"])), 2} if s["init_points"] else {2})
    return {**packed_shape(p["training"], ds["d"], wc["depth"], wc["width"], n_classes(ds)),
            "M": tuple(ms)}


def _train_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    wc, p = job.wildcards, job.params
    ds = dataset(config, wc["dataset"])
    tr = p["training"]
    n, m = int(wc["n_train"]), max(2, len(p["members"]))
    epochs = int(tr["max_epochs"])
    checks = math.ceil(epochs / int(tr["check_every"]))
    return {"fixed": 1.0, f"step_M{m}": epochs * math.ceil(n / int(tr["batch_size"])),
            f"evalrow_M{m}": checks * n + int(ds["n_test"])}


def _select_lr_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    wc, p = job.wildcards, job.params
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


def _data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    ds = config["datasets"][job.wildcards["dataset"]]
    # the float64 arrays read + their float32 copy on the device
    return (int(job.wildcards["n_train"]) + int(ds["n_test"])) * int(ds["d"]) * 12 / 2.0**20


def _capped(job: JobInfo) -> bool:
    # both count max_epochs; training stops at zero training error
    return True


def _search_never_checkpoints(job: JobInfo) -> bool:
    # its `training` block carries checkpoint_every, but the search overrides it with 0
    # (lr_search.py): a killed search restarts from scratch
    return False


RULES: dict[str, RuleProbe] = {
    "mori_ueda_train": RuleProbe("packed_fc", _train_shape, _train_work, bound=_capped,
                                 data_mb=_data_mb),
    "mori_ueda_select_lr": RuleProbe("packed_fc", _select_lr_shape, _select_lr_work,
                                     bound=_capped, data_mb=_data_mb,
                                     checkpointed=_search_never_checkpoints),
}
