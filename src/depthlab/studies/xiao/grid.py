"""The Xiao study's targets and config checks (free of torch).

Kernel depth sweeps (one recursion to the largest depth each, :mod:`.sweep`):

* ``phase_m{m}k{k}_{arch}_w{w}``: Fig. 1 / Table 1, Gaussian images (m of 3 x k x k);
* ``plane_fc_w{w}``: Fig. 3 top with kernel predictors (flattened labelled images);
* ``pool_{arch}_w{w}``: Fig. 3 bottom (pooled labelled images, FC / CNN-F / CNN-P).

Finite-width runs (Fig. 2): ``runs/L{depth}_w{w}.h5``, every rho x seed of one depth and
sigma_w^2 trained together; (Fig. 3 top, ``plane_nets``): ``plane_runs/L{depth}_w{w}.h5``,
every seed of one cell of the plane's (sigma_w^2, depth) grid (or of its subsets
``plane_nets.w_vars`` / ``depths``) trained together by SGD.  ``w`` is ``crit`` for the
order-to-chaos line (computed by :func:`depthlab.kernels.phase.critical_w_var`, never typed
in) or the number.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from depthlab.config import ConfigError, check_input_files, gram_estimate, weights_estimate
from depthlab.data.cifar import find_cifar10_files
from depthlab.studies.xiao import data as xdata
from depthlab.studies.xiao.data import phase_sizes

ARCHS = ("fc", "cnn_f", "cnn_p")
CRITICAL = "critical"


@functools.lru_cache(maxsize=64)
def critical_w(b_var: float, activation: str) -> float:
    from depthlab.kernels.phase import critical_w_var

    return critical_w_var(float(b_var), activation)


def w_label(w: Any) -> str:
    return "crit" if w == CRITICAL else f"{float(w):g}"


def w_value(study: dict[str, Any], w: Any) -> float:
    if w == CRITICAL or w == "crit":
        return critical_w(float(study["b_var"]), study["activation"])
    return float(w)


def phase_depths(phase: dict[str, Any]) -> list[int]:
    top = int(phase["max_depth"])
    return sorted({int(round(v)) for v in np.geomspace(1, top, int(phase["n_depths"]))} | {top})


def sweeps(study: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{sweep name: {group, data, arch, w, depths}} of every kernel sweep of the study."""
    out: dict[str, dict[str, Any]] = {}
    phase = study.get("phase")
    if phase:
        depths = phase_depths(phase)
        for m, k in phase_sizes(phase):
            for arch in phase["archs"]:
                for w in phase["w_vars"]:
                    cap = phase["cnn_p_max_depth"] if arch == "cnn_p" and w != CRITICAL \
                        else depths[-1]
                    ds = [d for d in depths if d <= cap]
                    out[f"phase_m{m}k{k}_{arch}_w{w_label(w)}"] = {
                        "group": "phase", "data": f"synth_m{m}_k{k}", "arch": arch, "w": w,
                        "depths": ds, "m": int(m), "k": int(k)}
    plane = study.get("plane")
    if plane:
        for w in plane["w_vars"]:
            out[f"plane_fc_w{w_label(w)}"] = {"group": "plane", "data": "plane", "arch": "fc",
                                              "w": w, "depths": sorted(plane["depths"])}
    pool = study.get("pool")
    if pool:
        for arch in pool["archs"]:
            for w in pool["w_vars"]:
                out[f"pool_{arch}_w{w_label(w)}"] = {"group": "pool", "data": "pool",
                                                     "arch": arch, "w": w,
                                                     "depths": sorted(pool["depths"])}
    return out


def runs(study: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{run name: {depth, w}} of the finite-width jobs (Fig. 2)."""
    cliff = study.get("cliff")
    if not cliff:
        return {}
    return {f"L{d}_w{w_label(w)}": {"depth": int(d), "w": w}
            for d in cliff["depths"] for w in cliff["w_vars"]}


def plane_net_runs(study: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{run name: {depth, w}} of the SGD-trained nets of Fig. 3 top."""
    nets, plane = study.get("plane_nets"), study.get("plane")
    if not nets or not plane:
        return {}
    ws = nets.get("w_vars") or plane["w_vars"]
    ds = nets.get("depths") or plane["depths"]
    return {f"L{d}_w{w_label(w)}": {"depth": int(d), "w": w} for d in ds for w in ws}


def check(key: str, study: dict[str, Any], config: dict[str, Any]) -> None:
    # the images are datasets the blocks name (sizes, halves of digits, pooling: checked
    # with the datasets, depthlab.data.refs); the CIFAR-10 batches must be there to run
    for block in xdata.LABELLED_BLOCKS:
        b = study.get(block)
        if b and b["source"] == "cifar10":
            check_input_files(f"{key}.{block}.cifar_dir", b.get("cifar_dir"),
                              lambda d: find_cifar10_files(d, "python"),
                              "source cifar10 needs the directory of the python-pickle batches")
    sizes = phase_sizes(study["phase"]) if study.get("phase") else []
    if len(set(sizes)) != len(sizes):
        raise ConfigError(f"{key}.phase.images: two image sets of one size (m, k) in {sizes}")
    nets = study.get("plane_nets")
    if nets:
        plane = study.get("plane")
        if not plane:
            raise ConfigError(f"{key}.plane_nets: needs the plane block (its sigma_w^2 x depth "
                              "grid)")
        for sub in ("w_vars", "depths"):
            extra = [v for v in nets.get(sub) or [] if v not in plane[sub]]
            if extra:
                raise ConfigError(f"{key}.plane_nets.{sub}: {extra} not in plane.{sub}")
    if not any(study.get(b) for b in ("phase", "plane", "pool", "cliff")):
        raise ConfigError(f"{key}: needs at least one of phase, plane, pool, cliff")
    for name, fig in study["figures"].items():
        needs = {"xiao_table1": "phase", "xiao_kappa": "phase", "xiao_dropout": "phase",
                 "xiao_rates": "phase", "xiao_lr_cliff": "cliff", "xiao_plane": "plane",
                 "xiao_pooling": "pool"}.get(fig["plot"])
        if needs and not study.get(needs):
            raise ConfigError(f"{key}.figures.{name}: plot {fig['plot']} needs the "
                              f"{needs} block")
    phase = study.get("phase")
    if phase and "dropout" in phase and phase["dropout"]:
        ms = [m for m, _ in phase_sizes(phase)]
        if phase["dropout"]["m"] not in ms or "fc" not in phase["archs"]:
            raise ConfigError(f"{key}.phase.dropout.m: needs an FC sweep of that m "
                              f"(phase.images have m = {ms})")


def memory_estimates(key: str, study: dict[str, Any], config: dict[str, Any]) -> list:
    """Per-job memory from shapes (depthlab.config.check_limits): the kernel predictors'
    Grams (train + test rows x train columns) and the finite nets' weights."""
    out = []
    for block in ("plane", "pool"):
        spec = study.get(block)
        if isinstance(spec, dict) and isinstance(spec.get("n_train"), int):
            out.append(gram_estimate(f"{key}.{block}.n_train",
                                     spec["n_train"] + spec.get("n_test", 0), spec["n_train"],
                                     " (train + test rows x train columns)"))
    for block in ("cliff", "plane_nets"):
        spec = study.get(block)
        if isinstance(spec, dict) and isinstance(spec.get("width"), int):
            depths = [int(d) for d in spec.get("depths") or study.get("plane", {}).get(
                "depths") or [1]]
            out.append(weights_estimate(f"{key}.{block}.width", spec["width"], max(depths)))
    return out
