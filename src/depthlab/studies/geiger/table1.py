"""Geiger et al. Table 1: power-law exponents of the kernel and weight changes in the feature
regime, next to the paper's values and the predictions 2 / (1 + 1/L) and 1 / (1 + L)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from depthlab.fits import exponent_fit
from depthlab.training.status import CONVERGED

__all__ = ["PAPER_EXPONENTS", "OBSERVABLES", "exponent_table", "format_exponent_table"]

# Table 1 of the paper: measured exponent a (O ~ alpha^-a, alpha << 1) and the prediction.
PAPER_EXPONENTS = {("kernel", 5): 1.7, ("kernel", 2): 1.25,
                   ("weights", 5): 0.23, ("weights", 2): 0.35}
OBSERVABLES = {
    "kernel": ("||Theta - Theta0|| / ||Theta0||", "ntk_change",
               lambda depth: 2.0 / (1.0 + 1.0 / depth)),
    "weights": ("sqrt(h) ||w - w0|| / ||w0||", "w_change", lambda depth: 1.0 / (1.0 + depth)),
}


def exponent_table(cube: xr.Dataset, spec: Mapping[str, Any]) -> pd.DataFrame:
    """Table 1: power-law fits in sqrt(h) alpha over ``spec["fit_range"]`` (converged runs,
    every width and seed pooled; sqrt(h) scales the weight change as in eq. (28) so widths
    collapse).  At fixed h the exponent in alpha is the same."""
    lo, hi = spec["fit_range"]
    act = spec.get("activation", "softplus")
    rows = []
    for depth in spec["depths"]:
        sub = cube.sel(activation=act, depth=depth)
        ok = sub["status"] == CONVERGED
        x = sub["sqrt_h_alpha"].broadcast_like(sub["ntk_change"])
        for key, (label, var, predict) in OBSERVABLES.items():
            y = sub[var] * (np.sqrt(sub["width"]) if key == "weights" else 1.0)
            y = y.where(ok)
            try:
                fit = exponent_fit(x.values, y.values, (lo, hi))
                a, err, m, r2 = -fit["slope"], fit["slope_stderr"], fit["n_points"], fit["r2"]
            except ValueError:  # fewer than two distinct sqrt(h) alpha in range
                a = err = r2 = float("nan")
                m = 0
            widths = sorted(int(w) for w in sub["width"].values
                            if bool(ok.sel(width=w).any()))
            rows.append({
                "observable": label, "activation": act, "depth": int(depth),
                "exponent_a": a, "exponent_stderr": err, "prediction": predict(int(depth)),
                "paper": PAPER_EXPONENTS.get((key, int(depth)), float("nan")),
                "fit_range_sqrt_h_alpha": f"[{lo:g}, {hi:g}]", "n_points": m, "r2": r2,
                "widths": " ".join(map(str, widths)),
            })
    return pd.DataFrame(rows)


def format_exponent_table(table: pd.DataFrame) -> str:
    lines = [f"{'observable':34s} {'L':>2s} {'a (this run)':>14s} {'paper':>6s} "
             f"{'prediction':>10s}  fit range (sqrt(h) alpha), points"]
    for r in table.itertuples():
        lines.append(f"{r.observable:34s} {r.depth:2d} {r.exponent_a:7.2f} +- "
                     f"{r.exponent_stderr:4.2f} {r.paper:6.2f} {r.prediction:10.2f}  "
                     f"{r.fit_range_sqrt_h_alpha}, {r.n_points}")
    return "\n".join(lines)
