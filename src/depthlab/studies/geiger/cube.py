"""The cube of a Geiger study: every run, its frozen-NTK twin and the ensembles.

Dimensions: runs fill (activation, depth, width, alpha, seed); trajectories add
``record`` (the log-spaced records of one run, NaN-padded to the longest); the lazy
(frozen initial NTK) predictions fill (activation, depth, width, seed) and their loss
curve ``lazy_time``; ensemble observables, over the seeds of one cell, fill
(activation, depth, width, alpha).  Grids given in ``sqrt(h) alpha`` make the alpha axis
sparse (each width has its own alphas): cells no grid asked for are NaN with status
"not_run", and ``sqrt_h_alpha`` (width x alpha) is a coordinate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from depthlab.provenance import provenance_attrs, to_json
from depthlab.results import read_record
from depthlab.studies.geiger.runs import ensemble_stats
from depthlab.training.hinge import pm_labels
from depthlab.training.status import NOT_RUN

RUN_DIMS = ("activation", "depth", "width", "alpha", "seed")
LAZY_DIMS = ("activation", "depth", "width", "seed")
ENSEMBLE_DIMS = ("activation", "depth", "width", "alpha")

RUN_SCALARS: dict[str, tuple[str, str]] = {
    "test_err": ("1", "test error of the trained function F = alpha (f - f0)"),
    "train_err": ("1", "training error at the stop"),
    "aloss": ("1", "alpha^2 L at the stop (0 = every margin >= 1)"),
    "t1": ("time", "alpha^2 L(t1) = 0.5"),
    "t2": ("time", "first time L = 0 (the dynamics stops); nan unless converged"),
    "t_end": ("time", "time at the stop"),
    "n_steps": ("1", "accepted steps"),
    "n_rejected": ("1", "tentative steps undone by the App. A step-size rule"),
    "n_band_violations": ("1", "steps accepted outside the App. A band (expected 0)"),
    "ntk_change": ("1", "||Theta(w) - Theta(w0)|| / ||Theta(w0)|| on the test subset, eq. (9)"),
    "ntk_norm0": ("1", "||Theta(w0)|| (Frobenius, test subset)"),
    "w_change": ("1", "||w - w0|| / ||w0|| (all parameters)"),
    "df_test": ("1", "||f(w) - f(w0)||, RMS over the test set, App. E eq. (29)"),
    "lazy_vs_net": ("1", "||F - F_lazy|| / ||F_lazy|| on the test set"),
    "n_params": ("1", "trainable parameters"),
    "wall_time": ("s", "wall-clock time of the run"),
}
TRAJ_DOCS = {
    "t": "time of the record",
    "aloss": "alpha^2 L(t)",
    "train_err": "training error",
    "test_err": "test error",
    "df_test": "||f(w_t) - f(w0)|| (RMS over the test set)",
    "f_test": "||f(w_t)|| (RMS over the test set)",
    "w_change": "||w_t - w0|| / ||w0||",
}


def _series(rows: list[dict[str, Any]], dims: tuple[str, ...], key: str) -> pd.Series:
    index = pd.MultiIndex.from_tuples([tuple(r[d] for d in dims) for r in rows], names=dims)
    return pd.Series([r[key] for r in rows], index=index)


def _padded(rows: list[dict[str, Any]], dims: tuple[str, ...], key: str, dim: str):
    """(dims..., dim) DataArray of per-row 1-D arrays of different lengths, NaN-padded."""
    length = max(len(r[key]) for r in rows)
    values = np.full((len(rows), length), np.nan)
    for i, r in enumerate(rows):
        values[i, : len(r[key])] = r[key]
    frame = pd.DataFrame(values, index=_series(rows, dims, key).index)
    frame.columns.name = dim
    return xr.DataArray.from_series(frame.stack(future_stack=True))


def build_cube(run_files: Iterable[str | Path], lazy_files: Iterable[str | Path], *,
                      y_test: Any, study_name: str, study: Mapping[str, Any],
                      dataset: Mapping[str, Any], data_source: str) -> xr.Dataset:
    runs = [read_record(p, required=("test_outputs",)) for p in run_files]
    lazies = [read_record(p, required=("lazy_test_outputs",)) for p in lazy_files]
    if not runs:
        raise ValueError("no runs to aggregate")
    for r in runs:
        r["alpha"] = float(r["alpha"])
        r.setdefault("device", "")
    keys = [tuple(r[d] for d in RUN_DIMS) for r in runs]
    if len(set(keys)) != len(keys):
        raise ValueError("a run appears twice among the inputs")

    cube = xr.Dataset()
    for name, (units, doc) in RUN_SCALARS.items():
        cube[name] = xr.DataArray.from_series(_series(runs, RUN_DIMS, name).astype("float64"))
        cube[name].attrs.update(units=units, description=doc)
    status = xr.DataArray.from_series(_series(runs, RUN_DIMS, "status").astype(object))
    cube["status"] = status.fillna(NOT_RUN).astype(str)
    cube["status"].attrs["description"] = (
        "converged (hinge loss reached 0), max_steps (step or time cap first), diverged "
        "(non-finite output), not_run (outside every grid)")
    device = xr.DataArray.from_series(_series(runs, RUN_DIMS, "device").astype(object))
    cube["device"] = device.fillna("").astype(str)
    cube["device"].attrs["description"] = "device the run trained on"
    for key, doc in TRAJ_DOCS.items():
        name = f"traj_{key}"
        cube[name] = _padded(runs, RUN_DIMS, name, "record")
        cube[name].attrs["description"] = f"{doc}, at log-spaced records (NaN-padded)"

    y_pm = pm_labels(y_test)
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        cells.setdefault(tuple(r[d] for d in ENSEMBLE_DIMS), []).append(r)
    ens_rows = []
    for cell, members in cells.items():
        stats = ensemble_stats(np.stack([m["test_outputs"] for m in members]), y_pm)
        ens_rows.append({**dict(zip(ENSEMBLE_DIMS, cell, strict=True)), "size": len(members),
                         "test_err": stats["ensemble_test_err"], "var": stats["var_f"]})
    for key, name, doc in (
        ("test_err", "ensemble_test_err", "test error of sign(mean over seeds of F)"),
        ("var", "ensemble_var", "Var F over seeds, averaged over test points, eq. (7)"),
        ("size", "ensemble_size", "seeds in the ensemble"),
    ):
        cube[name] = xr.DataArray.from_series(
            _series(ens_rows, ENSEMBLE_DIMS, key).astype("float64"))
        cube[name].attrs["description"] = doc

    if lazies:
        for name, doc in (
            ("lazy_test_err", "test error of the frozen-initial-NTK dynamics (lazy limit)"),
            ("lazy_train_err", "its training error at the stop"),
            ("lazy_t2", "its stopping time"),
        ):
            cube[name] = xr.DataArray.from_series(
                _series(lazies, LAZY_DIMS, name).astype("float64"))
            cube[name].attrs["description"] = doc
        cube["lazy_status"] = xr.DataArray.from_series(
            _series(lazies, LAZY_DIMS, "lazy_status").astype(object)).fillna(NOT_RUN).astype(str)
        cube["lazy_aloss"] = _padded(lazies, LAZY_DIMS, "lazy_aloss", "lazy_time_index")
        cube = cube.assign_coords(lazy_time=("lazy_time_index", lazies[0]["lazy_times"]))
        cube["lazy_aloss"].attrs["description"] = "alpha^2 L of the frozen-NTK dynamics"
        lazy_cells: dict[tuple, list[dict[str, Any]]] = {}
        for r in lazies:
            lazy_cells.setdefault(tuple(r[d] for d in LAZY_DIMS[:-1]), []).append(r)
        rows = [{**dict(zip(LAZY_DIMS[:-1], cell, strict=True)), "test_err": ensemble_stats(
                    np.stack([m["lazy_test_outputs"] for m in members]), y_pm
                 )["ensemble_test_err"]} for cell, members in lazy_cells.items()]
        cube["lazy_ensemble_test_err"] = xr.DataArray.from_series(
            _series(rows, LAZY_DIMS[:-1], "test_err").astype("float64"))
        cube["lazy_ensemble_test_err"].attrs["description"] = (
            "test error of the seed-averaged frozen-NTK predictor")

    cube = cube.assign_coords(sqrt_h_alpha=np.sqrt(cube["width"]) * cube["alpha"])
    docs = {
        "activation": "nonlinearity (Softplus beta = 5 or ReLU, with the unit-variance gain a)",
        "depth": "hidden layers L",
        "width": "hidden width h",
        "alpha": "output scale alpha of F = alpha (f - f0)",
        "seed": "initialization seed",
        "sqrt_h_alpha": "sqrt(h) alpha, the parameter separating feature (<< 1) and lazy "
                        "(>> 1) learning",
    }
    for name, doc in docs.items():
        cube[name].attrs["description"] = doc
    cube.attrs.update(provenance_attrs({"study": study, "dataset": dataset},
                                       study=study_name, kind=study["kind"]))
    cube.attrs["training_software_versions"] = to_json(
        sorted({r["software_versions"] for r in runs}))
    cube.attrs["data_source"] = data_source
    cube.attrs["n_train"] = int(study["n_train"])
    cube.attrs["n_test"] = len(y_pm)
    return cube
