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
from depthlab.training.status import CONVERGED, DIVERGED, NOT_RUN

COLUMNS = ["figure", "dataset", "label", "k", "d", "n_train", "width", "lr",
           "test_error_shallow", "test_error_deep", "depth_effect", "depth_effect_std",
           "separated", "n_seeds", "expected_sign", "sign_as_paper", "status"]

# The row's `status`: "converged" when every member of both cells converged; otherwise the
# problems, ";"-joined, each with its depth and count (e.g. "diverged L=7: 2/2;
# no_error L=1: 1/4"): diverged, max_epochs (or any other non-converged status) and
# no_error (a member that ran but has no finite test error, which would otherwise drop out
# of the mean and of n_seeds unannounced). The means keep every finite error, as the figures
# do; but a row with a diverged or error-less member is no evidence for or against the
# paper: its separated and sign_as_paper are left empty (None), whatever the numbers say.
# max_epochs members (trained to the cap, training error not 0: their test error is still
# a measurement) are marked in status and keep the verdicts.


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
                    problems, untrusted = [], False
                    for depth in (shallow, deep):
                        cell = sub.sel(n_train=n, depth=depth, width=w)
                        status, errors = _cell_status(cell)
                        ran = status != NOT_RUN
                        untrusted |= ((status == DIVERGED).any()
                                      or bool((ran & ~np.isfinite(errors)).any()))
                        problems += _problems(depth, status, errors)
                    if int(s["count"]) == 0 or int(d["count"]) == 0:
                        if problems:  # members ran but gave no number: say so, not drop it
                            rows.append(_empty_row(fig_name, ds, sub, n, w, lr, problems))
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
                    if untrusted:
                        # nets that did not train are no evidence for or against the paper
                        row["separated"] = None
                        row["sign_as_paper"] = None
                    row["status"] = "; ".join(problems) or CONVERGED
                    if "ntk_test_error" in cube and shallow in cube["kernel_depth"].values:
                        ntk = float(cube["ntk_test_error"].sel(dataset=ds, n_train=n,
                                                               kernel_depth=shallow))
                        best = min(row["test_error_shallow"], row["test_error_deep"])
                        row["ntk_test_error"] = ntk
                        row["ntk_gap"] = ntk - best
                        row["ntk_fails"] = bool(ntk - best >= 0.1)
                    rows.append(row)
    if not rows:
        return pd.DataFrame(rows, columns=COLUMNS)
    # NTK columns (present when the cube has a baseline) after the net columns, as before;
    # rows without a number (every member failed) take their columns from the full rows.
    columns = max((list(r) for r in rows), key=len)
    columns = [c for c in columns if c != "status"] + ["status"]
    return pd.DataFrame(rows, columns=columns)


def _cell_status(cell: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Status and test error per seed of one (dataset, N, depth, width, lr) cell."""
    status = np.asarray(cell["status"].values).astype(str) if "status" in cell else None
    errors = np.asarray(cell["test_error"].values, dtype=float)
    if status is None:  # a cube without statuses: finite errors count as converged
        status = np.where(np.isfinite(errors), CONVERGED, NOT_RUN)
    return status, errors


def _problems(depth: int, status: np.ndarray, errors: np.ndarray) -> list[str]:
    ran = status != NOT_RUN
    n_ran = int(ran.sum())
    out = []
    for kind in sorted(set(status[ran]) - {CONVERGED}, key=lambda k: (k != DIVERGED, k)):
        out.append(f"{kind} L={depth}: {int((status == kind).sum())}/{n_ran}")
    no_error = int((ran & ~np.isfinite(errors)).sum())
    if no_error:
        out.append(f"no_error L={depth}: {no_error}/{n_ran}")
    return out


def _empty_row(fig_name, ds, sub, n, w, lr, problems) -> dict[str, Any]:
    """A row for a cell whose members ran but left no test error at one depth."""
    generator = str(sub["generator"].values)
    k = int(sub["k"].values)
    return {"figure": fig_name, "dataset": ds, "label": generator, "k": k,
            "d": int(sub["d"].values), "n_train": int(n), "width": int(w), "lr": fmt_lr(lr),
            "test_error_shallow": np.nan, "test_error_deep": np.nan, "depth_effect": np.nan,
            "depth_effect_std": np.nan, "separated": None, "n_seeds": 0,
            "expected_sign": expected_sign(generator, k), "sign_as_paper": None,
            "status": "; ".join(problems)}


def format_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no cell has both depths trained)"
    cols = ["figure", "dataset", "n_train", "width", "lr", "test_error_shallow",
            "test_error_deep", "depth_effect", "depth_effect_std", "separated",
            "sign_as_paper"]
    cols += [c for c in ("ntk_test_error", "ntk_fails") if c in table]
    if "status" in table and (table["status"] != CONVERGED).any():
        cols.append("status")  # shown only when some row is built from non-converged nets
    return table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}")
