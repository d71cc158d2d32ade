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
from depthlab.studies.mori_ueda.lr_search import approximate_fold_sizes, fold_packs


def _train_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    wc, p = job.wildcards, job.params
    ds = dataset(config, wc["dataset"])
    m = max(2, len(p["members"]))  # a lone member is padded to a pack of 2 (packed_sgd)
    return {**packed_shape(p["training"], ds["d"], wc["depth"], wc["width"], n_classes(ds)),
            "M": m}


def _search_packs(job: JobInfo, config: Mapping[str, Any]) -> list[tuple[int, int, int, int]]:
    """(rows, folds, training size, validation size) of every pack the search trains, as
    `select_lr` plans them (`fold_packs`): the init points' packs, then each suggested
    point's; a lone member is padded to two rows."""
    wc, s = job.wildcards, job.params["search"]
    d = int(dataset(config, wc["dataset"])["d"])
    sizes = approximate_fold_sizes(int(wc["n_train"]), int(s["n_folds"]))
    pack_folds = bool(s.get("pack_folds", True))
    phases = ([int(s["init_points"])] if s["init_points"] else []) + [1] * int(s["n_iter"])
    return [(max(2, len(pack) * points), len(pack), *sizes[pack[0]])
            for points in phases for pack in fold_packs(sizes, points, d, pack_folds)]


def _select_lr_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    wc, p = job.wildcards, job.params
    ds = dataset(config, wc["dataset"])
    ms = sorted({rows for rows, *_ in _search_packs(job, config)})
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
    tr, s = job.params["training"], job.params["search"]
    epochs = int(s.get("max_epochs", tr["max_epochs"]))
    checks = math.ceil(epochs / int(tr["check_every"]))
    packs = _search_packs(job, config)
    out: dict[str, float] = {"fixed": float(len(packs))}
    for rows, _, n_fit, n_val in packs:
        out[f"step_M{rows}"] = (out.get(f"step_M{rows}", 0)
                                + epochs * math.ceil(n_fit / int(tr["batch_size"])))
        out[f"evalrow_M{rows}"] = out.get(f"evalrow_M{rows}", 0) + checks * n_fit + n_val
    return out


def _data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    ds = config["datasets"][job.wildcards["dataset"]]
    # the float64 arrays read + their float32 copy on the device
    return (int(job.wildcards["n_train"]) + int(ds["n_test"])) * int(ds["d"]) * 12 / 2.0**20


def _select_lr_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    # plus the largest pack's per-member fold sets (float32): a pack of several folds
    # copies each fold's sets once per member; a one-fold pack shares the job's arrays
    d = int(dataset(config, job.wildcards["dataset"])["d"])
    stacked = max((rows * (n_fit + n_val) * d * 4 / 2.0**20
                   for rows, folds, n_fit, n_val in _search_packs(job, config) if folds > 1),
                  default=0.0)
    return _data_mb(job, config) + stacked


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
                                     bound=_capped, data_mb=_select_lr_data_mb,
                                     checkpointed=_search_never_checkpoints),
}
