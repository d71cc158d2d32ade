"""Mori-Ueda grids: members, training jobs, learning-rate searches and kernel regressions.

A *member* is one trained network (dataset, n_train, depth, width, lr, seed); a *job* trains
every member that shares (dataset, n_train, depth, width) and the unpacked axes; which axes
a job packs is the study's ``training.pack`` choice.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from depthlab.activations import check_activation
from depthlab.config import ConfigError, validate_against
from depthlab.studies import schema_path

PACKABLE_AXES = ("lr", "seed")
# A grid's `lr: [cv]` means "chosen per cell by cross-validation". Inside depthlab it is
# the learning rate 0 (never a valid SGD step), so member keys stay numeric and sortable
# and the cube's lr coordinate holds 0 for those runs (their chosen value is `lr_used`).
LR_CV = 0.0


def fmt_lr(lr: float) -> str:
    """How a learning rate appears in file names: shortest round-tripping form, or "cv"."""
    return "cv" if float(lr) == LR_CV else repr(float(lr))


def parse_lr(value: Any) -> float:
    return LR_CV if value == "cv" else float(value)


@dataclass(frozen=True, order=True)
class MemberKey:
    dataset: str
    n_train: int
    depth: int
    width: int
    lr: float
    seed: int


@dataclass(frozen=True, order=True)
class JobKey:
    dataset: str
    n_train: int
    depth: int
    width: int
    member_set: str  # the unpacked axes, e.g. "lr0.1" or "lr0.1_seed3", or "all"


def training_settings(study: Mapping[str, Any]) -> dict[str, Any]:
    """The study's training block (defaults filled in by its schema)."""
    return dict(study["training"])


def lr_selection(study: Mapping[str, Any]) -> dict[str, Any]:
    """The study's lr_selection block (defaults filled in by its schema)."""
    return dict(study["lr_selection"])


def kernel_baseline(study: Mapping[str, Any]) -> dict[str, Any] | None:
    return study.get("kernel_baseline")


def check(skey: str, study: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Cross-field checks of a validated study block (names that must exist, N sizes)."""
    datasets, kernels = config["datasets"], config["kernels"]
    for gi, grid in enumerate(study["grids"]):
        gkey = f"{skey}.grids[{gi}]"
        for ds_name in grid["datasets"]:
            if ds_name not in datasets:
                raise ConfigError(f"{gkey}.datasets: unknown dataset {ds_name!r}")
            biggest = max(grid["n_train"])
            if biggest > datasets[ds_name]["n_train"]:
                raise ConfigError(
                    f"{gkey}.n_train: {biggest} exceeds datasets.{ds_name}.n_train = "
                    f"{datasets[ds_name]['n_train']}"
                )
    training = training_settings(study)
    check_activation(study["training"]["activation"], "packed", f"{skey}.training.activation")
    uses_cv = any(lr == "cv" for grid in study["grids"] for lr in grid["lr"])
    if uses_cv:
        if "lr_selection" not in study:  # an absent block means: all its defaults
            study["lr_selection"] = {}
            validate_against(study, schema_path("mori_ueda"), skey)
        lo, hi = lr_selection(study)["bounds"]
        if not 0 < lo < hi:
            raise ConfigError(f"{skey}.lr_selection.bounds must satisfy 0 < low < high")
    elif "lr_selection" in study:
        raise ConfigError(f"{skey}.lr_selection is set but no grid has lr: [cv]")
    stability = study.get("local_stability", {})
    for key in ("datasets", "label_datasets"):
        for ds_name in stability.get(key, []):
            if ds_name not in datasets:
                raise ConfigError(
                    f"{skey}.local_stability.{key}: unknown dataset {ds_name!r}")
    for axis in training["pack"]:
        if axis not in PACKABLE_AXES:
            raise ConfigError(f"{skey}.training.pack: cannot pack {axis!r}")
    baseline = kernel_baseline(study)
    if baseline is not None and baseline["kernel"] not in kernels:
        raise ConfigError(
            f"{skey}.kernel_baseline.kernel: unknown kernel {baseline['kernel']!r} "
            f"(defined: {sorted(kernels)})"
        )
    used = {ds for grid in study["grids"] for ds in grid["datasets"]}
    for fname, fig in study["figures"].items():
        for ds_name in fig["datasets"]:
            if ds_name not in used:
                raise ConfigError(
                    f"{skey}.figures.{fname}.datasets: {ds_name!r} is not trained in any grid"
                )


def members(study: Mapping[str, Any]) -> list[MemberKey]:
    """Every trained network of a study: the union of its grids, sorted."""
    out = set()
    for grid in study["grids"]:
        for ds, n, depth, width, lr, seed in itertools.product(
            grid["datasets"], grid["n_train"], grid["depth"], grid["width"], grid["lr"],
            grid["seeds"],
        ):
            out.add(MemberKey(ds, n, depth, width, parse_lr(lr), seed))
    return sorted(out)


def member_set_name(member: MemberKey, pack: list[str]) -> str:
    """The job a member trains in: its values on the axes the study does not pack."""
    parts = []
    if "lr" not in pack:
        parts.append(f"lr{fmt_lr(member.lr)}")
    if "seed" not in pack:
        parts.append(f"seed{member.seed}")
    return "_".join(parts) or "all"


def jobs(study: Mapping[str, Any]) -> dict[JobKey, list[MemberKey]]:
    """Training jobs of a study, each with the members it trains."""
    pack = training_settings(study)["pack"]
    out: dict[JobKey, list[MemberKey]] = {}
    for m in members(study):
        key = JobKey(m.dataset, m.n_train, m.depth, m.width, member_set_name(m, pack))
        out.setdefault(key, []).append(m)
    return out


def job_members(study: Mapping[str, Any], dataset: str, n_train: int, depth: int, width: int,
                member_set: str) -> list[MemberKey]:
    key = JobKey(dataset, int(n_train), int(depth), int(width), member_set)
    try:
        return jobs(study)[key]
    except KeyError:
        raise ConfigError(f"no training job {key} in this study's grids") from None


def lr_searches(study: Mapping[str, Any]) -> list[tuple[str, int, int, int]]:
    """(dataset, n_train, depth, width) cells whose learning rate is chosen by CV."""
    return sorted({(m.dataset, m.n_train, m.depth, m.width)
                   for m in members(study) if m.lr == LR_CV})


def kernel_regressions(study: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """(dataset, n_train, kernel depth) triples the study's kernel baseline needs."""
    baseline = kernel_baseline(study)
    if baseline is None:
        return []
    cells = {(m.dataset, m.n_train) for m in members(study)}
    return sorted((ds, n, depth) for (ds, n) in cells for depth in baseline["depths"])


