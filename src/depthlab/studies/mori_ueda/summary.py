"""At-a-glance answers from a Mori-Ueda cube: is deeper better for local labels and
shallower for global ones, and does the NTK fail where the paper says it does?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from depthlab.studies.mori_ueda.cube import pick_lr, seed_stats
from depthlab.studies.mori_ueda.grid import fmt_lr

COLUMNS = ["figure", "dataset", "label", "k", "d", "n_train", "width", "lr",
           "test_error_shallow", "test_error_deep", "depth_effect", "depth_effect_std",
           "separated", "n_seeds", "expected_sign", "sign_as_paper"]


def expected_sign(generator: str, k: int) -> int | None:
    """Sign of E(deep) - E(shallow) the paper reports: deeper is better (-1) only for
    k-local labels with k >= 2; shallower (+1) for k = 1 (Fig. 1), k-global and Ising."""
    if generator == "k_local":
        return -1 if k >= 2 else +1
    return {"k_global": +1, "ising": +1}.get(generator)


def depth_effect_table(cube: xr.Dataset, figures: Mapping[str, Mapping[str, Any]],
                       shallow: int = 1, deep: int = 7) -> pd.DataFrame:
    """One row per (figure, dataset, N, width) where both depths were trained.

    depth_effect = E_test(L=deep) - E_test(L=shallow) (mean over seeds), with
    depth_effect_std = sqrt(std_deep^2 + std_shallow^2) over seeds; `separated` says the
    two error bars (mean +- std) do not overlap. ntk_gap = E_NTK(L=shallow kernel) - the
    better of the two nets; the NTK "fails" where it is at least 0.1 (ten points of test
    error) worse than that net.
    """
    rows = []
    for fig_name, figure in figures.items():
        if figure.get("plot") != "test_error_vs_n":
            continue
        for ds in figure["datasets"]:
            lr = pick_lr(cube, figure, ds)
            sub = cube.sel(dataset=ds, lr=lr)
            if shallow not in sub["depth"].values or deep not in sub["depth"].values:
                continue
            stats = seed_stats(sub)
            generator = str(sub["generator"].values)
            for n in sub["n_train"].values:
                for w in sub["width"].values:
                    s = stats.sel(n_train=n, depth=shallow, width=w)
                    d = stats.sel(n_train=n, depth=deep, width=w)
                    if int(s["count"]) == 0 or int(d["count"]) == 0:
                        continue
                    effect = float(d["mean"] - s["mean"])
                    row = {
                        "figure": fig_name, "dataset": ds, "label": generator,
                        "k": int(sub["k"].values), "d": int(sub["d"].values),
                        "n_train": int(n), "width": int(w), "lr": fmt_lr(lr),
                        "test_error_shallow": float(s["mean"]),
                        "test_error_deep": float(d["mean"]),
                        "depth_effect": effect,
                        "depth_effect_std": float(np.hypot(s["std"], d["std"])),
                        "separated": bool(abs(effect) > float(s["std"] + d["std"])),
                        "n_seeds": int(min(s["count"], d["count"])),
                    }
                    expected = expected_sign(generator, row["k"])
                    row["expected_sign"] = expected
                    row["sign_as_paper"] = (None if expected is None
                                            else bool(np.sign(effect) == expected))
                    if "ntk_test_error" in cube and shallow in cube["kernel_depth"].values:
                        ntk = float(cube["ntk_test_error"].sel(dataset=ds, n_train=n,
                                                               kernel_depth=shallow))
                        best = min(row["test_error_shallow"], row["test_error_deep"])
                        row["ntk_test_error"] = ntk
                        row["ntk_gap"] = ntk - best
                        row["ntk_fails"] = bool(ntk - best >= 0.1)
                    rows.append(row)
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else COLUMNS)


def format_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no cell has both depths trained)"
    cols = ["figure", "dataset", "n_train", "width", "lr", "test_error_shallow",
            "test_error_deep", "depth_effect", "depth_effect_std", "separated",
            "sign_as_paper"]
    cols += [c for c in ("ntk_test_error", "ntk_fails") if c in table]
    return table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}")
