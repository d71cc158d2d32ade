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
from depthlab.config import (
    ConfigError,
    gram_estimate,
    packed_weights_estimates,
    validate_against,
    warn,
)
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


def summary_depths(study: Mapping[str, Any]) -> dict[str, int]:
    """The depths the summary table compares: the study's `summary` block, its missing keys
    (or the whole block, when absent) filled in from the schema's defaults."""
    import yaml

    props = yaml.safe_load(schema_path("mori_ueda").read_text())["properties"]["summary"]
    defaults = {k: sub["default"] for k, sub in props["properties"].items()}
    return {**defaults, **(study.get("summary") or {})}


# What the cube is built from: everything in a study block but its figures and summary, so
# editing a figure (even its title) or the summary reruns that figure or table only.
CUBE_INDEPENDENT = ("figures", "summary")


def cube_study(study: Mapping[str, Any]) -> dict[str, Any]:
    """The slice of a study block its cube depends on (the cube rule's params)."""
    return {k: v for k, v in study.items() if k not in CUBE_INDEPENDENT}


def summary_figures(study: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The figure settings the summary table reads (test-error-vs-N figures: datasets and
    lr), so editing a figure's title or another plot reruns no summary."""
    return {name: {k: fig[k] for k in ("plot", "datasets", "lr") if k in fig}
            for name, fig in study["figures"].items() if fig["plot"] == "test_error_vs_n"}


# Keys each plot reads besides `plot`, `datasets` and `title`; a key the plot would ignore is
# refused, so a setting never silently does nothing.
PLOT_KEYS = {
    "test_error_vs_n": {"lr", "depths", "widths"},
    "test_error_vs_depth": {"lr", "n_train", "width"},
    "test_error_vs_lr": {"n_train", "depths", "widths"},
    "local_stability": {"lr", "n_train", "depths", "widths"},
}
PLOT_REQUIRES = {
    "test_error_vs_depth": ("n_train", "width"),
    "test_error_vs_lr": ("n_train",),
    "local_stability": ("n_train",),
}


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
    for ds_name in study["data_draws"]:
        if ds_name not in used:
            raise ConfigError(f"{skey}.data_draws: {ds_name!r} is not trained in any grid")
    for fname, fig in study["figures"].items():
        for ds_name in fig["datasets"]:
            if ds_name not in used:
                raise ConfigError(
                    f"{skey}.figures.{fname}.datasets: {ds_name!r} is not trained in any grid"
                )
    trained = members(study)
    _check_training(skey, study, datasets, trained)
    _check_stability(skey, study, datasets)
    for fname, fig in study["figures"].items():
        _check_figure(f"{skey}.figures.{fname}", fig, trained, study)
    _check_summary(skey, study, trained)


def _check_training(skey: str, study: Mapping[str, Any], datasets: Mapping[str, Any],
                    trained: list[MemberKey]) -> None:
    """Settings that would silently change what training does."""
    training = study["training"]
    tkey = f"{skey}.training"
    if training["check_every"] > training["max_epochs"]:
        raise ConfigError(
            f"{tkey}.check_every = {training['check_every']} exceeds {tkey}.max_epochs = "
            f"{training['max_epochs']}: the training error would be checked (and a checkpoint "
            "written) only at the cap")
    search_cap = study.get("lr_selection", {}).get("max_epochs")
    if search_cap is not None and training["check_every"] > search_cap:
        raise ConfigError(
            f"{skey}.lr_selection.max_epochs = {search_cap} is below {tkey}.check_every = "
            f"{training['check_every']}: the search's nets would be checked only at the cap")
    every = training["checkpoint_every"]
    if every > 0:
        rounded = -(-every // training["check_every"]) * training["check_every"]
        if rounded > training["max_epochs"]:
            warn(f"{tkey}.checkpoint_every = {every} (rounded up to a multiple of check_every:"
                 f" {rounded}) exceeds max_epochs = {training['max_epochs']}: no checkpoint is "
                 "ever written, so a killed job restarts from epoch 0")
    full_batch = sorted({(m.dataset, m.n_train) for m in trained
                         if m.n_train <= training["batch_size"]})
    if full_batch:
        cells = ", ".join(f"{ds} N = {n}" for ds, n in full_batch)
        warn(f"{tkey}.batch_size = {training['batch_size']} >= N for {cells}: those nets train "
             "by full-batch gradient descent, not SGD (recorded in the cube's "
             "config_warnings attribute)")


def _check_stability(skey: str, study: Mapping[str, Any], datasets: Mapping[str, Any]) -> None:
    stability = study.get("local_stability")
    if not stability:
        return
    n_points = stability["n_points"]
    for key in ("datasets", "label_datasets"):
        for ds_name in stability[key]:
            n_test = datasets[ds_name]["n_test"]
            if n_points > n_test:
                raise ConfigError(
                    f"{skey}.local_stability.n_points = {n_points} exceeds "
                    f"datasets.{ds_name}.n_test = {n_test} (local_stability.{key}): s(v) would "
                    "be measured on fewer test points than asked")


def _per_dataset(fkey: str, fig: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A figure setting that is one value or a map dataset -> value, as a map over the
    figure's datasets; a map must name exactly the figure's datasets."""
    value = fig[key]
    if not isinstance(value, Mapping):
        return {ds: value for ds in fig["datasets"]}
    missing = [ds for ds in fig["datasets"] if ds not in value]
    extra = [ds for ds in value if ds not in fig["datasets"]]
    if missing or extra:
        raise ConfigError(f"{fkey}.{key}: the map must name exactly the figure's datasets "
                          f"{list(fig['datasets'])} (missing {missing}, not shown {extra})")
    return dict(value)


def _fmt(values) -> str:
    return "[" + ", ".join(fmt_lr(v) if isinstance(v, float) else str(v)
                           for v in sorted(values)) + "]"


def _check_figure(fkey: str, fig: Mapping[str, Any], trained: list[MemberKey],
                  study: Mapping[str, Any]) -> None:
    """A figure's settings against the members the grids train, so a figure job never
    fails on (or silently drops) a cell that does not exist."""
    plot = fig["plot"]
    allowed = PLOT_KEYS[plot] | {"plot", "datasets", "title"}
    for key in fig:
        if key not in allowed:
            raise ConfigError(f"{fkey}.{key}: not used by plot {plot!r} (it reads "
                              f"{sorted(allowed)})")
    for key in PLOT_REQUIRES.get(plot, ()):
        if key not in fig:
            raise ConfigError(f"{fkey}.{key} is required for plot {plot!r}")
    if plot == "local_stability":
        measured = study.get("local_stability", {}).get("datasets", [])
        for ds in fig["datasets"]:
            if ds not in measured:
                raise ConfigError(f"{fkey}.datasets: {ds!r} is not in local_stability.datasets"
                                  f" {list(measured)}, so its nets have no s(v)")
    lrs = _per_dataset(fkey, fig, "lr") if "lr" in fig else {}
    ns = _per_dataset(fkey, fig, "n_train") if "n_train" in fig else {}
    shown: list[MemberKey] = []
    for ds in fig["datasets"]:
        cell = [m for m in trained if m.dataset == ds]
        if "lr" in PLOT_KEYS[plot]:
            have = {m.lr for m in cell}
            if ds in lrs:
                lr = parse_lr(lrs[ds])
                if lr not in have:
                    raise ConfigError(f"{fkey}.lr: {fmt_lr(lr)} is not trained on {ds!r} "
                                      f"(trained: {_fmt(have)})")
            elif len(have) != 1:
                raise ConfigError(f"{fkey}.lr: {ds!r} is trained at several learning rates "
                                  f"{_fmt(have)}; set `lr` to choose one")
            else:
                (lr,) = have
            cell = [m for m in cell if m.lr == lr]
        if ds in ns:
            have = {m.n_train for m in cell}
            if ns[ds] not in have:
                raise ConfigError(f"{fkey}.n_train: N = {ns[ds]} is not trained on {ds!r}"
                                  f"{' at that lr' if 'lr' in PLOT_KEYS[plot] else ''} "
                                  f"(trained: {_fmt(have)})")
            cell = [m for m in cell if m.n_train == ns[ds]]
        if "width" in fig:
            have = {m.width for m in cell}
            if fig["width"] not in have:
                raise ConfigError(f"{fkey}.width: H = {fig['width']} is not trained on {ds!r} "
                                  f"at the figure's N and lr (trained: {_fmt(have)})")
        shown += cell
    for key, axis in (("depths", "depth"), ("widths", "width")):
        have = {getattr(m, axis) for m in shown}
        missing = [v for v in fig.get(key, []) if v not in have]
        if missing:
            raise ConfigError(f"{fkey}.{key}: {missing} not trained for the figure's datasets "
                              f"(at its N and lr; trained: {_fmt(have)})")


def _check_summary(skey: str, study: Mapping[str, Any], trained: list[MemberKey]) -> None:
    """The summary's depths must give rows: an explicit `summary` block naming a depth no
    test-error-vs-N figure shows is an error; the default depths (1 and 7) that give no row
    are a warning (the table would be empty)."""
    depths = summary_depths(study)
    explicit = "summary" in study
    if depths["shallow"] == depths["deep"]:
        raise ConfigError(f"{skey}.summary.deep = {depths['deep']} equals summary.shallow: "
                          "the depth effect would be 0 by construction")
    rows = 0
    shown_depths: set[int] = set()
    for fname, fig in summary_figures(study).items():
        for ds in fig["datasets"]:
            cell = [m for m in trained if m.dataset == ds]
            if "lr" in fig:
                lr = parse_lr(_per_dataset(f"{skey}.figures.{fname}", fig, "lr")[ds])
                cell = [m for m in cell if m.lr == lr]
            shown_depths |= {m.depth for m in cell}
            at = {k: {(m.n_train, m.width) for m in cell if m.depth == depths[k]}
                  for k in ("shallow", "deep")}
            rows += len(at["shallow"] & at["deep"])
    if rows:
        return
    if not summary_figures(study):
        message = (f"{skey}.summary: no figure has plot test_error_vs_n, so the summary table "
                   "has no rows")
    else:
        absent = [k for k in ("shallow", "deep") if depths[k] not in shown_depths]
        key = f"{skey}.summary.{absent[0]}" if absent else f"{skey}.summary"
        message = (f"{key}: no test_error_vs_n figure shows a dataset trained at both "
                   f"L = {depths['shallow']} and L = {depths['deep']} at one N and width "
                   f"(depths shown: "
                   f"{_fmt(shown_depths)}), so summary.csv would be empty")
    if explicit:
        raise ConfigError(message)
    warn(message + " (default summary depths; set summary: {shallow, deep} to choose)")


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


def dataset_draws(study: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(dataset, seed) of every net that trains and is tested on its own draw of the dataset
    (``data_draws``; the plug-in hook of depthlab.studies.add_dataset_draws)."""
    drawn = set(study.get("data_draws", []))
    return sorted({(m.dataset, m.seed) for m in members(study) if m.dataset in drawn})


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


def memory_estimates(key: str, study: dict[str, Any], config: dict[str, Any]) -> list:
    """Per-job memory from shapes (depthlab.config.check_limits): the packed nets' weights
    and the kernel baseline's Gram at the study's largest N."""
    out = packed_weights_estimates(key, study.get("grids"),
                                   study.get("training", {}).get("pack", []))
    sizes = [int(n) for grid in study.get("grids", []) for n in grid.get("n_train", [])]
    if "kernel_baseline" in study and sizes:
        out.append(gram_estimate(f"{key}.kernel_baseline", max(sizes),
                                 why=" (the largest n_train of the study's grids)"))
    return out
