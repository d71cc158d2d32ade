"""Geiger grids: a *run* is one net (activation, depth, width, alpha, seed) trained by the
momentum hinge dynamics; the frozen-NTK (lazy) prediction depends on everything but alpha
and is its own job per (activation, depth, width, seed).

Jobs (``dynamics.pack``): with ``pack: []`` (the default) every run is its own job and file
``runs/<arch>/alpha<a>_seed<s>.h5``; packing axes trains the runs of one (activation, depth,
width) cell that differ only along them together (:func:`train_lazy_feature_packed`, each
member bitwise its lone run), one job per *member set* named by the unpacked axes --
``all`` (``pack: [alpha, seed]``), ``seed<s>`` (``pack: [alpha]``) or ``alpha<a>``
(``pack: [seed]``) -- whose output is the directory ``runs/<arch>/<member set>/`` holding
the same per-run files.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from depthlab.activations import check_activation
from depthlab.config import ConfigError, packed_weights_estimates

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
    """The dynamics block (defaults filled in by the schema) with both momentum keys present:
    ``mu`` for ``tau = t / mu``, or a constant ``tau`` (then ``mu`` is None)."""
    return {"mu": None, "tau": None, **study["dynamics"]}


def geiger_image_shape(study: Mapping[str, Any], dataset: Mapping[str, Any]):
    """(H, W) of the square single-channel images a CNN study reads; None for FC."""
    if study["architecture"] != "cnn":
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


PACK_AXES = ("alpha", "seed")


def pack_axes(study: Mapping[str, Any]) -> tuple[str, ...]:
    """The packed axes of a study's training jobs (``dynamics.pack``), in a fixed order."""
    pack = set(study.get("dynamics", {}).get("pack", []))
    return tuple(a for a in PACK_AXES if a in pack)


def member_set(run: GeigerRun, pack: tuple[str, ...]) -> str:
    """The name of the training job (within its cell) that trains ``run``."""
    if set(pack) == set(PACK_AXES):
        return "all"
    if pack == ("alpha",):
        return f"seed{run.seed}"
    if pack == ("seed",):
        return f"alpha{fmt_alpha(run.alpha)}"
    raise ValueError(f"not a packed study: pack = {list(pack)}")


def run_path(run: GeigerRun, pack: tuple[str, ...]) -> str:
    """Where a run's HDF5 file lives under ``<results>/<study>/``."""
    if not pack:
        return f"runs/{run.arch}/{run.name}.h5"
    return f"runs/{run.arch}/{member_set(run, pack)}/{run.name}.h5"


def pack_jobs(study: Mapping[str, Any]) -> dict[tuple[str, str], list[GeigerRun]]:
    """(arch, member set) -> the runs one packed training job trains ({} unless packed)."""
    pack = pack_axes(study)
    jobs: dict[tuple[str, str], list[GeigerRun]] = {}
    if not pack:
        return jobs
    for run in geiger_runs(study):
        jobs.setdefault((run.arch, member_set(run, pack)), []).append(run)
    return jobs


def geiger_lazy_cells(study: Mapping[str, Any]) -> list[tuple[str, int, int, int]]:
    """(activation, depth, width, seed) of every frozen-NTK prediction a study needs."""
    return sorted({(r.activation, r.depth, r.width, r.seed) for r in geiger_runs(study)})


# What the cube is built from: everything in a study block but its figures and Table 1, so
# editing a figure (even its title) or the table's fit reruns that figure or table only.
CUBE_INDEPENDENT = ("figures", "table1")


def cube_study(study: Mapping[str, Any]) -> dict[str, Any]:
    """The slice of a study block its cube depends on (the cube rule's params)."""
    return {k: v for k, v in study.items() if k not in CUBE_INDEPENDENT}


# Keys each plot reads besides plot, activation, depth, widths, x and title (x has a schema
# default, so every figure has it); a key the plot would ignore is refused.
PLOT_KEYS = {
    "geiger_error_vs_width": {"alpha"},
    "geiger_variance_vs_width": {"alpha_sqrt_h"},
    "geiger_ensemble_vs_width": {"alpha", "alpha_sqrt_h"},
    "geiger_output_norms": {"alpha_sqrt_h", "width"},
}
# At least one of these keys (plots drawing curves at fixed scales).
PLOT_REQUIRES = {
    "geiger_error_vs_width": ("alpha",),
    "geiger_variance_vs_width": ("alpha_sqrt_h",),
    "geiger_ensemble_vs_width": ("alpha", "alpha_sqrt_h"),
    "geiger_output_norms": ("alpha_sqrt_h",),
}


def _check_figure_scales(fkey: str, fig: Mapping[str, Any], runs: list[GeigerRun],
                         trained_widths: list[int]) -> None:
    """A figure's fixed alpha / sqrt(h) alpha values must be trained at some width it shows
    (else the curve is silently missing)."""
    plot = fig["plot"]
    allowed = PLOT_KEYS.get(plot, set()) | {"plot", "activation", "depth", "widths", "x",
                                             "title"}
    for key in fig:
        if key not in allowed:
            raise ConfigError(f"{fkey}.{key}: not used by plot {plot!r} (it reads "
                              f"{sorted(allowed)})")
    needs = PLOT_REQUIRES.get(plot, ())
    if needs and not any(k in fig for k in needs):
        raise ConfigError(f"{fkey}.{' or '.join(needs)} is required for plot {plot!r}")
    widths = fig.get("widths", trained_widths)
    if "width" in fig:
        widths = [fig["width"], *widths]
    cell = {(r.width, r.alpha) for r in runs
            if (r.activation, r.depth) == (fig["activation"], fig["depth"])}
    for value in fig.get("alpha", []):
        alpha = canonical_alpha(value)
        if not any((w, alpha) in cell for w in widths):
            have = sorted({a for _, a in cell})
            raise ConfigError(f"{fkey}.alpha: {value:g} is not trained at {fig['activation']} "
                              f"L = {fig['depth']}, widths {widths} (trained alphas: "
                              f"{[f'{a:g}' for a in have]})")
    for value in fig.get("alpha_sqrt_h", []):
        if not any((w, canonical_alpha(value / w**0.5)) in cell for w in widths):
            have = sorted({canonical_alpha(a * w**0.5) for w, a in cell})
            raise ConfigError(f"{fkey}.alpha_sqrt_h: {value:g} is not trained at "
                              f"{fig['activation']} L = {fig['depth']}, widths {widths} "
                              f"(trained sqrt(h) alphas: {[f'{a:g}' for a in have]})")


def check(skey: str, study: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Cross-field checks of a validated study block (dataset kind, sizes, figures)."""
    datasets = config["datasets"]
    for gi, grid in enumerate(study["grids"]):
        for act in grid["activation"]:
            check_activation(act, "module", f"{skey}.grids[{gi}].activation")
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
    if study["architecture"] == "cnn":
        side = math.isqrt(int(spec["d"]))
        if spec.get("pca_components", 10) is not None or side * side != spec["d"]:
            raise ConfigError(
                f"{skey}.architecture: cnn needs raw square images, but datasets.{name} has "
                f"pca_components = {spec.get('pca_components')!r}, d = {spec['d']} (set "
                "pca_components: null)")
    if pack_axes(study) and (study["architecture"] != "fc"
                             or geiger_dynamics(study).get("temperature", 0.0) > 0):
        raise ConfigError(f"{skey}.dynamics.pack: packed training is for FC nets with "
                          "full-batch dynamics (architecture fc, temperature 0)")
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
        _check_figure_scales(fkey, fig, runs, sorted(widths))
    table = study.get("table1")
    if table:
        lo, hi = table["fit_range"]
        if not lo < hi:
            raise ConfigError(f"{skey}.table1.fit_range must be [low, high] with low < high")
        act = table["activation"]
        for depth in table["depths"]:
            if (act, depth) not in archs:
                raise ConfigError(f"{skey}.table1.depths: no grid trains {act} nets of depth "
                                  f"{depth}")


def memory_estimates(key: str, study: dict[str, Any], config: dict[str, Any]) -> list:
    """Per-job memory from shapes (depthlab.config.check_limits): the packed nets' weights."""
    return packed_weights_estimates(key, study.get("grids"),
                                    study.get("dynamics", {}).get("pack", []))
