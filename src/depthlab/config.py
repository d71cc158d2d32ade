"""Config semantics shared by the Snakefile, the scripts and the tests.

The JSON schema (workflow/schemas/config.schema.yaml) checks types and ranges; this
module checks what a schema cannot (k <= d, names that must refer to something, N no
larger than the dataset) and turns a study's grids into the set of training members
and the jobs that train them.

Mori-Ueda studies: a *member* is one trained network (dataset, n_train, depth, width, lr,
seed); a *job* trains every member that shares (dataset, n_train, depth, width) and the
unpacked axes; which axes a job packs is the study's `training.pack` choice.

Geiger studies: a *run* is one net (activation, depth, width, alpha, seed) trained by the
momentum hinge dynamics, one job each; the frozen-NTK (lazy) prediction depends on
everything but alpha and is its own job per (activation, depth, width, seed).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TRAINING_DEFAULTS: dict[str, Any] = {
    "activation": "relu",
    "loss": "cross_entropy",
    "batch_size": 50,
    "check_every": 50,
    "max_epochs": 2500,
    "checkpoint_every": 50,
    "pack": ["seed"],
    "device": "auto",
}
KERNEL_REGRESSION_DEFAULTS: dict[str, Any] = {"jitter": 1.0e-10, "block_size": 2048}
PACKABLE_AXES = ("lr", "seed")
LR_SELECTION_DEFAULTS: dict[str, Any] = {
    "n_folds": 10,
    "bounds": [1.0e-3, 1.0],
    "init_points": 5,
    "n_iter": 10,
    "seed": 0,
    "init_design": "random",
}
# A grid's `lr: [cv]` means "chosen per cell by cross-validation". Inside depthlab it is
# the learning rate 0 (never a valid SGD step), so member keys stay numeric and sortable
# and the cube's lr coordinate holds 0 for those runs (their chosen value is `lr_used`).
LR_CV = 0.0


class ConfigError(ValueError):
    """A config value is invalid; the message names its key path."""


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
    job: str  # encodes the unpacked axes, e.g. "lr0.1" or "lr0.1_seed3" or "all"


def training_settings(study: Mapping[str, Any]) -> dict[str, Any]:
    return {**TRAINING_DEFAULTS, **study.get("training", {})}


def lr_selection(study: Mapping[str, Any]) -> dict[str, Any]:
    return {**LR_SELECTION_DEFAULTS, **study.get("lr_selection", {})}


def kernel_baseline(study: Mapping[str, Any]) -> dict[str, Any] | None:
    return study.get("kernel_baseline")


def kernel_regression_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    return {**KERNEL_REGRESSION_DEFAULTS, **config.get("kernel_regression", {})}


def check_config(config: Mapping[str, Any]) -> None:
    """Cross-field checks. Raises ConfigError naming the offending key."""
    _check_datasets(config["datasets"])
    for sname, study in config["studies"].items():
        if study["kind"] == "geiger":
            _check_geiger_study(f"studies.{sname}", study, config["datasets"])
        else:
            _check_mori_ueda_study(f"studies.{sname}", study, config["datasets"],
                                   config.get("kernels", {}))


def _check_datasets(datasets: Mapping[str, Any]) -> None:
    for name, ds in datasets.items():
        key = f"datasets.{name}"
        if ds["generator"] in ("k_local", "k_global"):
            if "k" not in ds:
                raise ConfigError(f"{key}.k is required for generator {ds['generator']!r}")
            if ds["k"] > ds["d"]:
                raise ConfigError(f"{key}.k = {ds['k']} exceeds {key}.d = {ds['d']}")
            indices = ds.get("indices", "first")
            if isinstance(indices, list):
                if len(indices) != ds["k"]:
                    raise ConfigError(f"{key}.indices must list exactly k = {ds['k']} indices")
                if sorted(set(indices)) != indices or indices[-1] >= ds["d"]:
                    raise ConfigError(
                        f"{key}.indices must be distinct, increasing and < d = {ds['d']}"
                    )
        if ds["generator"] == "ising":
            for key in ("beta1", "beta2"):
                if key not in ds:
                    raise ConfigError(f"{key} is required: datasets.{name}.{key}")


def _check_mori_ueda_study(skey: str, study: Mapping[str, Any], datasets: Mapping[str, Any],
                           kernels: Mapping[str, Any]) -> None:
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
    uses_cv = any(lr == "cv" for grid in study["grids"] for lr in grid["lr"])
    if uses_cv:
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


def job_name(member: MemberKey, pack: list[str]) -> str:
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
        key = JobKey(m.dataset, m.n_train, m.depth, m.width, job_name(m, pack))
        out.setdefault(key, []).append(m)
    return out


def job_members(study: Mapping[str, Any], dataset: str, n_train: int, depth: int, width: int,
                job: str) -> list[MemberKey]:
    key = JobKey(dataset, int(n_train), int(depth), int(width), job)
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


# ----------------------------------------------------------------------------- Geiger

GEIGER_DYNAMICS_DEFAULTS: dict[str, Any] = {
    "beta": 5.0,
    "mu": 1000.0,
    "df_target": 10**-2.5,
    "max_steps": 1_000_000,
    "record_per_decade": 10,
    "ntk_subset": 256,
    "device": "auto",
}
PARITY_GENERATORS = ("mnist_parity", "digits_parity")


def canonical_alpha(value: float) -> float:
    """alpha rounded to 10 significant digits: the same alpha reached two ways (a grid's
    `alpha`, or `alpha_sqrt_h / sqrt(h)`) is one number, one file name, one cube label."""
    return float(f"{float(value):.10g}")


def fmt_alpha(alpha: float) -> str:
    return repr(canonical_alpha(alpha))


@dataclass(frozen=True, order=True)
class GeigerRun:
    activation: str
    depth: int
    width: int
    alpha: float
    seed: int

    @property
    def arch(self) -> str:
        return f"{self.activation}_L{self.depth}_h{self.width}"

    @property
    def name(self) -> str:
        return f"alpha{fmt_alpha(self.alpha)}_seed{self.seed}"


def geiger_dynamics(study: Mapping[str, Any]) -> dict[str, Any]:
    """Dynamics settings with defaults; a constant ``tau`` replaces ``tau = t / mu``."""
    dyn = {**GEIGER_DYNAMICS_DEFAULTS, "tau": None, "temperature": 0.0,
           **study.get("dynamics", {})}
    if dyn["tau"] is not None:
        dyn["mu"] = None
    return dyn


def geiger_image_shape(study: Mapping[str, Any], dataset: Mapping[str, Any]):
    """(H, W) of the square single-channel images a CNN study reads; None for FC."""
    if study.get("architecture", "fc") != "cnn":
        return None
    side = math.isqrt(int(dataset["d"]))
    return [side, side]


def grid_alphas(grid: Mapping[str, Any], width: int) -> list[float]:
    if "alpha" in grid:
        return [canonical_alpha(a) for a in grid["alpha"]]
    return [canonical_alpha(v / width**0.5) for v in grid["alpha_sqrt_h"]]


def geiger_runs(study: Mapping[str, Any]) -> list[GeigerRun]:
    """Every trained net of a Geiger study: the union of its grids, sorted."""
    out = set()
    for grid in study["grids"]:
        for act, depth, width, seed in itertools.product(
            grid["activation"], grid["depth"], grid["width"], grid["seeds"]
        ):
            for alpha in grid_alphas(grid, width):
                out.add(GeigerRun(act, depth, width, alpha, seed))
    return sorted(out)


def geiger_lazy_cells(study: Mapping[str, Any]) -> list[tuple[str, int, int, int]]:
    """(activation, depth, width, seed) of every frozen-NTK prediction a study needs."""
    return sorted({(r.activation, r.depth, r.width, r.seed) for r in geiger_runs(study)})


def _check_geiger_study(skey: str, study: Mapping[str, Any],
                        datasets: Mapping[str, Any]) -> None:
    name = study["dataset"]
    if name not in datasets:
        raise ConfigError(f"{skey}.dataset: unknown dataset {name!r}")
    spec = datasets[name]
    if spec["generator"] not in PARITY_GENERATORS:
        raise ConfigError(
            f"{skey}.dataset: {name!r} has generator {spec['generator']!r}; the hinge "
            f"dynamics needs +-1 labels from one of {PARITY_GENERATORS}"
        )
    if study["n_train"] > spec["n_train"]:
        raise ConfigError(f"{skey}.n_train = {study['n_train']} exceeds datasets.{name}.n_train"
                          f" = {spec['n_train']}")
    if study.get("architecture", "fc") == "cnn":
        side = math.isqrt(int(spec["d"]))
        if spec.get("pca_components", 10) is not None or side * side != spec["d"]:
            raise ConfigError(
                f"{skey}.architecture: cnn needs raw square images, but datasets.{name} has "
                f"pca_components = {spec.get('pca_components')!r}, d = {spec['d']} (set "
                "pca_components: null)")
    if "tau" in study.get("dynamics", {}) and "mu" in study["dynamics"]:
        raise ConfigError(f"{skey}.dynamics: give mu (tau = t / mu) or tau, not both")
    subset = geiger_dynamics(study)["ntk_subset"]
    if subset > spec["n_test"]:
        raise ConfigError(f"{skey}.dynamics.ntk_subset = {subset} exceeds datasets.{name}."
                          f"n_test = {spec['n_test']}")
    runs = geiger_runs(study)
    archs = {(r.activation, r.depth) for r in runs}
    for fname, fig in study["figures"].items():
        fkey = f"{skey}.figures.{fname}"
        if (fig["activation"], fig["depth"]) not in archs:
            raise ConfigError(f"{fkey}: no grid trains {fig['activation']} nets of depth "
                              f"{fig['depth']}")
        widths = {r.width for r in runs if (r.activation, r.depth) ==
                  (fig["activation"], fig["depth"])}
        missing = set(fig.get("widths", [])) - widths
        if missing:
            raise ConfigError(f"{fkey}.widths: {sorted(missing)} not trained at that "
                              f"activation and depth (trained: {sorted(widths)})")
        if "width" in fig and fig["width"] not in widths:
            raise ConfigError(f"{fkey}.width: {fig['width']} not trained (trained: "
                              f"{sorted(widths)})")
    table = study.get("table1")
    if table:
        lo, hi = table["fit_range"]
        if not lo < hi:
            raise ConfigError(f"{skey}.table1.fit_range must be [low, high] with low < high")
        act = table.get("activation", "softplus")
        for depth in table["depths"]:
            if (act, depth) not in archs:
                raise ConfigError(f"{skey}.table1.depths: no grid trains {act} nets of depth "
                                  f"{depth}")
