"""The Lee study's runs and jobs, and its config checks (free of torch).

A grid is init x depth x lr x seed at one C_L and one architecture (``arch``: the deep
narrow MLP, width d + K + 1, or the deep narrow CNN of Fig. 3.2, ``c + K + 1`` channels after
an optional ``pool x pool`` average pool), trained for ``epochs`` epochs; a learning rate is
a number or ``{stable_fraction: f}`` (f times the linear-stability bound
eta* = K / (D C_L^2 lambda_max(Theta~^inf(X, X) / N)), deep_narrow MLPs only: the CNN's
limit kernel is not implemented).  With
``training.pack`` every grid cell (grid, init, depth) is one job training all its lr x seed
members packed; otherwise each member is its own job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from depthlab.config import ConfigError, check_input_files

INITS = ("deep_narrow", "torch_default", "he_uniform")
N_CLASSES_ALL = 10
DIGITS_PIXELS, MNIST_PIXELS = 64, 784


@dataclass(frozen=True)
class Member:
    grid: int  # the grid's position in the config (the cube's `grid` coordinate)
    init: str
    depth: int
    lr_label: str  # "1e-05" or "sf0.5"
    lr_spec: Any  # float or {"stable_fraction": f}
    seed: int


def lr_label(spec: Any) -> str:
    if isinstance(spec, dict):
        return f"sf{float(spec['stable_fraction']):g}"
    return f"{float(spec):g}"


def _lr_key(spec: Any) -> tuple[bool, float]:
    return (True, float(spec["stable_fraction"])) if isinstance(spec, dict) else (False,
                                                                                 float(spec))


def members(study: dict[str, Any]) -> list[Member]:
    out = []
    for g, grid in enumerate(study["grids"]):
        for init in grid["init"]:
            for depth in grid["depth"]:
                for lr in grid["lr"]:
                    for seed in grid["seeds"]:
                        out.append(Member(g, init, int(depth), lr_label(lr), lr, int(seed)))
    return out


# Grid keys that a run's name spells out or that list its members; the others (arch, epochs,
# C_L, pool, width, rho, beta) are hashed into the name.
_NAMED_AXES = ("init", "depth", "lr", "seeds")


def grid_key(grid: dict[str, Any], pack: bool) -> str:
    """8 hex digits of the grid's settings a run of it depends on: the settings a run's
    name does not spell out, and for a packed job its member lists as sets (lr x seeds).
    Runs are keyed by what they train, not by where their grid sits in the config:
    reordering the grids, or the values of an axis, renames no run file (and so retrains
    nothing), and two grids differing in one setting never share a file."""
    import hashlib
    import json

    content = {k: v for k, v in grid.items() if k not in _NAMED_AXES}
    content.setdefault("arch", arch(grid))
    if pack:
        content["lr"] = sorted(({"stable_fraction": float(x["stable_fraction"])}
                                if isinstance(x, dict) else float(x) for x in grid["lr"]),
                               key=_lr_key)
        content["seeds"] = sorted(int(x) for x in grid["seeds"])
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def job_name(m: Member, pack: bool, grid: dict[str, Any]) -> str:
    """``<arch>_<init>_D<depth>_<grid key>`` (packed: every lr x seed of the cell), with
    ``_lr<label>_s<seed>`` for one net per job."""
    base = f"{arch(grid)}_{m.init}_D{m.depth}_{grid_key(grid, pack)}"
    return base if pack else f"{base}_lr{m.lr_label}_s{m.seed}"


def _member_order(m: Member) -> tuple:
    return (_lr_key(m.lr_spec), m.seed)


def jobs(study: dict[str, Any]) -> dict[str, list[Member]]:
    """Each job's members, in a canonical order (lr, then seed: the order in which a packed
    job trains and stores them), so listing the values of an axis in another order changes
    neither a job's name nor its params. A run two grids both list is trained once (the first
    grid's)."""
    pack = bool(study["training"]["pack"])
    out: dict[str, list[Member]] = {}
    seen: dict[str, set] = {}
    for m in members(study):
        name = job_name(m, pack, study["grids"][m.grid])
        ident = (m.init, m.depth, m.lr_label, m.seed)
        if ident in seen.setdefault(name, set()):
            continue
        seen[name].add(ident)
        out.setdefault(name, []).append(m)
    return {name: sorted(ms, key=_member_order) for name, ms in out.items()}


def train_slice(study: dict[str, Any], job_members: list[Member]) -> tuple[dict, list[dict]]:
    """The study slice and members one training job reads (the lee_train rule's params):
    the data, training and deep_narrow blocks and the job's one grid less its member lists,
    its members pointing at it as grid 0. Neither a figure, the other grids nor this grid's
    position in the config is in it."""
    from dataclasses import asdict, replace

    from depthlab.studies import config_slice

    g = study["grids"][job_members[0].grid]
    sliced = config_slice(study, "data", "training", "deep_narrow")
    # the grid less its member lists (the members carry init, depth, lr and seed)
    sliced["grids"] = [{k: v for k, v in g.items() if k not in _NAMED_AXES}]
    return sliced, [asdict(replace(m, grid=0)) for m in job_members]


def n_classes(study: dict[str, Any]) -> int:
    classes = study["data"].get("classes")
    return len(classes) if classes is not None else N_CLASSES_ALL


def input_dim(study: dict[str, Any]) -> int:
    return DIGITS_PIXELS if study["data"]["source"] == "digits" else MNIST_PIXELS


def image_side(study: dict[str, Any]) -> int:
    """Side of the (one-channel, square) images: 8 (digits) or 28 (MNIST)."""
    return int(round(input_dim(study) ** 0.5))


def arch(grid: dict[str, Any]) -> str:
    return str(grid.get("arch", "mlp"))


def n_outputs(study: dict[str, Any]) -> int:
    """Network outputs: K one-hot classes, or 1 with ``scalar_target`` (Table 4.1's binary
    task: targets 0 / 1, accuracy = round(f) == label)."""
    return 1 if study["data"].get("scalar_target") else n_classes(study)


def width(study: dict[str, Any], grid: dict[str, Any]) -> int:
    """Every net of the study has the deep-narrow width d + K + 1 (MLP) or c + K + 1
    channels (CNN, c = 1) unless the grid says."""
    if arch(grid) == "cnn":
        return int(grid.get("width") or 1 + n_outputs(study) + 1)
    return int(grid.get("width") or input_dim(study) + n_classes(study) + 1)


def rho_beta(study: dict[str, Any], grid: dict[str, Any]) -> tuple[float, float]:
    """The deep-narrow rho, beta of a grid (a CNN grid may override the study's)."""
    dn = study["deep_narrow"]
    return float(grid.get("rho", dn["rho"])), float(grid.get("beta", dn["beta"]))


def check(key: str, study: dict[str, Any], config: dict[str, Any]) -> None:
    data = study["data"]
    if data["source"] == "mnist":
        from depthlab.data.mnist import find_mnist_files

        check_input_files(f"{key}.data.mnist_dir", data.get("mnist_dir"), find_mnist_files,
                          "source mnist needs the IDX directory")
    classes = data.get("classes")
    if classes is not None and (len(set(classes)) != len(classes) or len(classes) < 2):
        raise ConfigError(f"{key}.data.classes: need at least two distinct digits")
    if data["source"] == "digits" and data["n_train"] + data["n_test"] > 1797:
        raise ConfigError(f"{key}.data: n_train + n_test exceeds the 1797 digits images")
    d, k = input_dim(study), n_classes(study)
    scalar = bool(data.get("scalar_target"))
    if scalar and (classes is None or len(classes) != 2):
        raise ConfigError(f"{key}.data.scalar_target: needs exactly two classes (targets 0 / 1)")
    for g, grid in enumerate(study["grids"]):
        gk = f"{key}.grids[{g}]"
        if arch(grid) == "cnn":
            _check_cnn(gk, study, grid)
            continue
        if scalar:
            raise ConfigError(f"{gk}.arch: scalar_target (one output) is implemented for "
                              "the CNN only")
        for opt in ("pool", "rho", "beta"):
            if opt in grid:
                raise ConfigError(f"{gk}.{opt}: a CNN option (the MLP uses the study's "
                                  "deep_narrow block)")
        if "deep_narrow" in grid["init"] and grid.get("width") not in (None, d + k + 1):
            raise ConfigError(f"{gk}.width: deep_narrow fixes the width to d + K + 1 = "
                              f"{d + k + 1} (d = {d} inputs, K = {k} classes)")
        for lr in grid["lr"]:
            if isinstance(lr, dict) and grid["init"] != ["deep_narrow"]:
                raise ConfigError(f"{gk}.lr: stable_fraction is defined by the deep-narrow "
                                  "scaled NTK; give the baselines literal learning rates")
        if study["training"]["eval_every"] > grid["epochs"]:
            raise ConfigError(f"{gk}.epochs: shorter than training.eval_every")
    _check_figures(key, study)
    toy = study.get("toy")
    if toy:
        for a in toy["accumulation_gammas"]:
            if not 0.0 < a < 1.5707963267948966:
                raise ConfigError(f"{key}.toy.accumulation_gammas: {a} is not in (0, pi/2)")
    table = study.get("table41")
    if table:
        names = set(jobs(study))
        for r, row in enumerate(table):
            if row.get("grid") is None:
                if not row.get("note"):
                    raise ConfigError(f"{key}.table41[{r}].note: a row without a grid needs "
                                      "a note saying where it is run")
                continue
            if not any(m.grid == row["grid"] for m in members(study)):
                raise ConfigError(f"{key}.table41[{r}].grid: no grid {row['grid']} "
                                  f"(jobs: {sorted(names)})")


def _check_cnn(gk: str, study: dict[str, Any], grid: dict[str, Any]) -> None:
    channels = 1 + n_outputs(study) + 1
    if "deep_narrow" in grid["init"] and grid.get("width") not in (None, channels):
        raise ConfigError(f"{gk}.width: the deep_narrow CNN fixes the channels to c + K + 1 = "
                          f"{channels}")
    side, pool = image_side(study), int(grid.get("pool", 1))
    if side % pool:
        raise ConfigError(f"{gk}.pool: {pool} does not divide the image side {side}")
    for lr in grid["lr"]:
        if isinstance(lr, dict):
            raise ConfigError(f"{gk}.lr: stable_fraction needs the CNN's limit kernel, which "
                              "is not implemented; give literal learning rates")
    if study["training"]["eval_every"] > grid["epochs"]:
        raise ConfigError(f"{gk}.epochs: shorter than training.eval_every")


def _check_figures(key: str, study: dict[str, Any]) -> None:
    archs = {arch(g) for g in study["grids"]}
    for name, fig in (study.get("figures") or {}).items():
        want = "cnn" if fig["plot"] == "lee_cnn_train_curves" else (
            fig.get("arch", "mlp") if fig["plot"] == "lee_train_curves" else None)
        if want is not None and want not in archs:
            raise ConfigError(f"{key}.figures.{name}: no {want} grid to draw")
