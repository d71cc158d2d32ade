"""The Lee study cube: every trained net (dim ``run``, with its grid coordinates, ``arch``
(mlp / cnn) and ``pool`` as coordinates of that dim) and its per-epoch history (``epoch``),
the limit-kernel regression (``test_point``), the toy regression (``toy_depth, toy_seed,
gamma``; accumulation over ``layer``) and the init-kernel spread (``spread_depth,
spread_seed, pair``)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from depthlab.data.io import dataset_arrays
from depthlab.provenance import provenance_attrs
from depthlab.results import read_arrays
from depthlab.studies.lee import grid as lee_grid

RUN_SCALARS = ("lr_used", "epochs", "final_loss", "tau", "lambda_max_init", "tau_lambda_max")
HISTORY = ("train_loss", "train_acc", "test_acc")


def _runs(files: list[str], n_test: int, grid_of_job: dict[str, int]) -> xr.Dataset:
    rows: list[dict[str, Any]] = []
    hists: list[dict[str, np.ndarray]] = []
    software = ""
    for path in files:
        arrays, attrs = read_arrays(path)
        software = software or str(attrs.get("software_versions", ""))
        for i in range(len(arrays["seed"])):
            rows.append({
                # the grid's position in the config now, not when the run was trained: run
                # files are named by content and survive the grids being reordered
                "job": str(attrs["job"]), "grid": grid_of_job[str(attrs["job"])],
                "init": str(attrs["init"]),
                "arch": str(attrs.get("arch", "mlp")), "pool": int(attrs.get("pool", 1)),
                "depth": int(attrs["depth"]), "width": int(attrs["width"]),
                "C_L": float(attrs["C_L"]), "lr_label": str(arrays["lr_label"][i]),
                "seed": int(arrays["seed"][i]), "status": str(arrays["status"][i]),
                "test_acc_final": 1.0 - float(arrays["test_error"][i]),
                "train_acc_final": 1.0 - float(arrays["train_error"][i]),
                "wall_time_s": float(attrs["wall_time_s"]), "device": str(attrs["device"]),
                **{k: float(arrays[k][i]) for k in RUN_SCALARS},
            })
            hists.append({k: arrays[k][i] for k in (*HISTORY, "test_pred")})
    n_epoch = max((len(h["train_loss"]) for h in hists), default=0)
    hist = {k: np.full((len(rows), n_epoch), np.nan) for k in HISTORY}
    pred = np.full((len(rows), n_test), -1, dtype=np.int64)
    for i, h in enumerate(hists):
        for k in HISTORY:
            hist[k][i, : len(h[k])] = h[k]
        pred[i] = h["test_pred"]
    coords = {k: ("run", [r[k] for r in rows]) for k in
              ("job", "grid", "init", "arch", "pool", "depth", "width", "C_L", "lr_label",
               "seed")}
    coords["epoch"] = np.arange(1, n_epoch + 1)
    data = {k: ("run", [r[k] for r in rows]) for k in
            ("status", "test_acc_final", "train_acc_final", "wall_time_s", "device",
             *RUN_SCALARS)}
    data.update({k: (("run", "epoch"), v) for k, v in hist.items()})
    data["test_pred"] = (("run", "test_point"), pred)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs["training_software_versions"] = software
    return ds


def _toys(files: list[str]) -> xr.Dataset:
    if not files:
        return xr.Dataset()
    loaded = sorted((read_arrays(p) for p in files), key=lambda t: int(t[1]["depth"]))
    depths = [int(a["depth"]) for _, a in loaded]
    first = loaded[0][0]
    max_d = max(depths)
    carrier = np.full((len(depths), len(first["acc_gamma"]), max_d), np.nan)
    for i, (arr, _) in enumerate(loaded):
        carrier[i, :, : arr["acc_carrier"].shape[1]] = arr["acc_carrier"]
    stack = lambda k: np.stack([a[k] for a, _ in loaded])  # noqa: E731
    return xr.Dataset(
        {
            "ntk_row_0": (("toy_depth", "toy_seed", "gamma"), stack("ntk_row_0")),
            "ntk_row_T": (("toy_depth", "toy_seed", "gamma"), stack("ntk_row_T")),
            "ntk_rel_change": (("toy_depth", "toy_seed"), stack("ntk_rel_change")),
            "toy_pred": (("toy_depth", "toy_seed", "gamma"), stack("pred")),
            "toy_loss": (("toy_depth", "toy_seed", "loss_step"), stack("loss")),
            "kgd_pred": (("toy_depth", "gamma"), stack("kgd_pred")),
            "ntk_limit_row": ("gamma", first["ntk_limit_row"]),
            "toy_target": ("gamma", first["target"]),
            "acc_carrier": (("toy_depth", "acc_gamma", "layer"), carrier),
            "acc_output": (("toy_depth", "acc_gamma"), stack("acc_output")),
            "acc_target": ("acc_gamma", first["acc_target"]),
            "toy_C_L": ("toy_depth", [float(a["C_L"]) for _, a in loaded]),
            "toy_lr": ("toy_depth", [float(a["lr"]) for _, a in loaded]),
            "toy_tau": ("toy_depth", [float(a["tau"]) for _, a in loaded]),
            "toy_steps": ("toy_depth", [int(a["steps"]) for _, a in loaded]),
            "toy_wall_time_s": ("toy_depth", [float(a["wall_time_s"]) for _, a in loaded]),
        },
        coords={"toy_depth": depths, "toy_seed": first["seed"], "gamma": first["gamma"],
                "loss_step": first["loss_step"], "acc_gamma": first["acc_gamma"],
                "layer": np.arange(1, max_d + 1)},
    )


def _spread(path: str | None) -> xr.Dataset:
    if not path:
        return xr.Dataset()
    arr, attrs = read_arrays(path)
    return xr.Dataset(
        {"theta0": (("spread_depth", "spread_seed", "pair"), arr["theta0"]),
         "theta_inf": ("pair", arr["theta_inf"]),
         "spread_C_L": ((), float(attrs["C_L"]))},
        coords={"spread_depth": arr["depth"], "spread_seed": np.arange(arr["theta0"].shape[1]),
                "pair": [str(p) for p in arr["pair"]]},
    )


def build_cube(name: str, study: dict[str, Any], *, data: str, kernel: str,
                   runs: list[str], toys: list[str], spread: str | None) -> xr.Dataset:
    # the shared dataset file the study names, verified (hash, config) on read
    d_arr, d_attrs = dataset_arrays(data, data=study["data"])
    k_arr, k_attrs = read_arrays(kernel)
    y_test, y_train = d_arr["y_test"], d_arr["y_train"]
    n_classes = int(d_attrs["n_classes"])
    grid_of_job = {job: ms[0].grid for job, ms in lee_grid.jobs(study).items()}
    runs_ds = _runs(runs, len(y_test), grid_of_job)
    priors = np.bincount(y_train, minlength=n_classes) / len(y_train)
    base = xr.Dataset(
        {
            "y_test": ("test_point", y_test),
            "krr_test_pred": ("test_point", k_arr["krr_test_pred"]),
            "krr_test_acc": ((), float(k_attrs["krr_test_acc"])),
            "lambda_max_inf": ((), float(k_attrs["lambda_max_inf"])),
            "majority_rate": ((), float(np.bincount(y_test, minlength=n_classes).max()
                                        / len(y_test))),
            # MSE (mean over K outputs) of the best constant predictor, the train priors
            "best_constant_mse": ((), float((1.0 - np.sum(priors**2)) / n_classes)),
        }
    )
    cube = xr.merge([base, runs_ds, _toys(toys), _spread(spread)], combine_attrs="drop")
    cube.attrs.update(provenance_attrs({"study": study}, study=name))
    cube.attrs["data_source"] = str(d_attrs["data_source"])
    cube.attrs["n_classes"] = n_classes
    cube.attrs["n_train"] = len(y_train)
    cube.attrs["training_software_versions"] = runs_ds.attrs.get("training_software_versions",
                                                                  "")
    cube.attrs["study_json"] = json.dumps(study, default=str)
    return cube
