"""Table 4.1: the deep-narrow runs of the named grids (MLP or CNN) next to the paper's
numbers; ``paper_epochs`` is the named grid's epoch budget."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr


def table41(cube: xr.Dataset, study: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for spec in study.get("table41") or []:
        if spec.get("grid") is None:  # a paper row this config does not run (said in note)
            rows.append({"task": spec["task"], "arch": str(spec.get("arch", "mlp")).upper(),
                         "status": "not_run", "paper_train_loss": spec["paper_train_loss"],
                         "paper_test_acc": spec["paper_test_acc"], "train_loss": np.nan,
                         "test_acc": np.nan, "note": spec.get("note", ""),
                         "data_source": cube.attrs.get("data_source", "")})
            continue
        g = study["grids"][spec["grid"]]
        sel = (cube.grid == spec["grid"]) & (cube.init == "deep_narrow")
        runs = cube.where(sel, drop=True) if bool(sel.any()) else None
        for i in range(0 if runs is None else runs.sizes["run"]):
            r = runs.isel(run=i)
            rows.append({
                "task": spec["task"], "arch": str(r.arch.values).upper(),
                "depth": int(r.depth),
                "width": int(r.width), "pool": int(r.pool), "C_L": float(r.C_L),
                "lr": float(r.lr_used),
                "lr_spec": str(r.lr_label.values), "epochs": int(r.epochs),
                "seed": int(r.seed), "status": str(r.status.values),
                "train_loss": float(r.final_loss),
                "test_acc": float(r.test_acc_final),
                "paper_train_loss": spec["paper_train_loss"],
                "paper_test_acc": spec["paper_test_acc"],
                "paper_epochs": g["epochs"],
                "tau_lambda_max": float(r.tau_lambda_max),
                "note": spec.get("note", ""),
                "data_source": cube.attrs.get("data_source", ""),
            })
        if runs is None:
            rows.append({"task": spec["task"], "arch": str(g.get("arch", "mlp")).upper(),
                         "status": "not_run",
                         "paper_train_loss": spec["paper_train_loss"],
                         "paper_test_acc": spec["paper_test_acc"], "train_loss": np.nan,
                         "test_acc": np.nan, "data_source": cube.attrs.get("data_source", "")})
    return pd.DataFrame(rows)
