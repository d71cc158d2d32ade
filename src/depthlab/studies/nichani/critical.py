"""The critical-depth table (Nichani et al. never define the critical depth; ours, stated in
the table): per panel, d* = argmax over depth of the seed-mean test accuracy (ties: smallest
depth), d*_loss = argmin of the seed-mean test loss, each with a bootstrap interval over seeds
(seeds resampled with replacement, ``bootstrap`` times, the ``level`` central interval of the
resampled argmax / argmin), and d_int = the smallest depth where every seed interpolates
(train accuracy 1).  Kernels are deterministic (no interval; d_int = smallest depth with
train accuracy 1).  ResNets (Table 1 depths, per width and kernel size): d*_loss of the
final-epoch test loss with its bootstrap interval (their grids are read from the cube's
``study_json``)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

COLUMNS = ("panel", "what", "n_seeds", "d_star_acc", "d_star_acc_lo", "d_star_acc_hi",
           "best_test_acc", "d_star_loss", "d_star_loss_lo", "d_star_loss_hi",
           "best_test_loss", "d_interpolation", "depths", "data_source")


def _boot(values: np.ndarray, depths: np.ndarray, pick, n: int, level: float, rng):
    """values (depth, seed): the argmax/argmin depth of resampled seed means, interval."""
    k = values.shape[1]
    idx = rng.integers(0, k, size=(n, k))
    means = np.nanmean(values[:, idx], axis=2)  # (depth, n)
    best = depths[pick(means, axis=0)]
    a = (1 - level) / 2
    return float(np.quantile(best, a)), float(np.quantile(best, 1 - a))


def interpolation_depth(train_acc: np.ndarray, depths: np.ndarray) -> float:
    """Smallest depth where every seed reached train accuracy 1 (NaN if none)."""
    ok = np.all(train_acc >= 1.0, axis=-1) if train_acc.ndim == 2 else train_acc >= 1.0
    return float(depths[np.argmax(ok)]) if ok.any() else float("nan")


def critical_table(cube: xr.Dataset, study: dict[str, Any]) -> pd.DataFrame:
    cfg = study.get("critical_depths") or {"bootstrap": 1000, "seed": 0, "level": 0.9}
    rng = np.random.default_rng(int(cfg["seed"]))
    rows = []
    src = cube.attrs.get("data_source", "")
    if "fc_test_acc" in cube:
        depths = cube.depth.values
        acc, loss = cube.fc_test_acc.values, cube.fc_test_loss.values
        m_acc, m_loss = np.nanmean(acc, 1), np.nanmean(loss, 1)
        lo_a, hi_a = _boot(acc, depths, np.nanargmax, cfg["bootstrap"], cfg["level"], rng)
        lo_l, hi_l = _boot(loss, depths, np.nanargmin, cfg["bootstrap"], cfg["level"], rng)
        rows.append({"panel": f"fully_conv, {int(cube.attrs['n_classes'])} classes",
                     "what": "trained nets (paper's rule: best train accuracy)",
                     "n_seeds": acc.shape[1],
                     "d_star_acc": int(depths[np.nanargmax(m_acc)]), "d_star_acc_lo": lo_a,
                     "d_star_acc_hi": hi_a, "best_test_acc": float(np.nanmax(m_acc)),
                     "d_star_loss": int(depths[np.nanargmin(m_loss)]), "d_star_loss_lo": lo_l,
                     "d_star_loss_hi": hi_l, "best_test_loss": float(np.nanmin(m_loss)),
                     "d_interpolation": interpolation_depth(cube.fc_train_acc.values, depths),
                     "depths": " ".join(str(int(d)) for d in depths), "data_source": src})
    if "k_test_acc" in cube:
        for name in cube.kernel.values:
            r = cube.sel(kernel=name)
            ok = np.isfinite(r.k_test_acc.values)
            depths = cube.kernel_depth.values[ok]
            acc, loss = r.k_test_acc.values[ok], r.k_test_loss.values[ok]
            rows.append({"panel": str(name), "what": "kernel regression (ridgeless)",
                         "n_seeds": 1, "d_star_acc": int(depths[np.argmax(acc)]),
                         "d_star_acc_lo": np.nan, "d_star_acc_hi": np.nan,
                         "best_test_acc": float(acc.max()),
                         "d_star_loss": int(depths[np.argmin(loss)]), "d_star_loss_lo": np.nan,
                         "d_star_loss_hi": np.nan, "best_test_loss": float(loss.min()),
                         "d_interpolation": interpolation_depth(r.k_train_acc.values[ok], depths),
                         "depths": " ".join(str(int(d)) for d in depths), "data_source": src})
    if "rn_test_loss_final" in cube and "resnets" not in study:
        study = {**study, "resnets": json.loads(cube.attrs.get("study_json", "{}"))
                 .get("resnets")}
    if "rn_test_loss_final" in cube and study.get("resnets"):
        from depthlab.studies.nichani.paper_claims import resnet_depth_curve

        widths = sorted({int(w) for g in study["resnets"]["grids"] if g.get("depths")
                         for w in g["widths"]})
        kernels = sorted({int(k) for g in study["resnets"]["grids"] if g.get("depths")
                          for k in g["kernel_sizes"]})
        for w in widths:
            for k in kernels:
                depths, loss = resnet_depth_curve(cube, study, w, k)
                if len(depths) < 1 or not np.isfinite(loss).any(axis=1).all():
                    continue
                _, acc = resnet_depth_curve(cube, study, w, k, "rn_test_acc_final")
                _, train = resnet_depth_curve(cube, study, w, k, "rn_train_acc_final")
                m_loss, m_acc = np.nanmean(loss, 1), np.nanmean(acc, 1)
                lo_a, hi_a = _boot(acc, depths, np.nanargmax, cfg["bootstrap"], cfg["level"],
                                   rng)
                lo_l, hi_l = _boot(loss, depths, np.nanargmin, cfg["bootstrap"], cfg["level"],
                                   rng)
                rows.append({"panel": f"resnet, width {w}, kernel {k}",
                             "what": "trained ResNets (final epoch, Table 1 depths)",
                             "n_seeds": loss.shape[1],
                             "d_star_acc": int(depths[np.nanargmax(m_acc)]),
                             "d_star_acc_lo": lo_a, "d_star_acc_hi": hi_a,
                             "best_test_acc": float(np.nanmax(m_acc)),
                             "d_star_loss": int(depths[np.nanargmin(m_loss)]),
                             "d_star_loss_lo": lo_l, "d_star_loss_hi": hi_l,
                             "best_test_loss": float(np.nanmin(m_loss)),
                             "d_interpolation": interpolation_depth(
                                 np.nan_to_num(train, nan=0.0), depths),
                             "depths": " ".join(str(int(d)) for d in depths),
                             "data_source": src})
    return pd.DataFrame(rows, columns=list(COLUMNS))
