"""The Mori-Ueda study cube: every number of the study in one labelled xarray Dataset.

Trained networks fill (dataset, n_train, depth, width, lr, seed); kernel baselines
fill (dataset, n_train, kernel_depth). Grid points that no grid asked for stay NaN
with status "not_run"; runs that diverged or hit the epoch cap are kept with their
status, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from depthlab.cube import data_source
from depthlab.provenance import provenance_attrs, to_json
from depthlab.results import read_regression
from depthlab.studies.mori_ueda.grid import parse_lr
from depthlab.studies.mori_ueda.records import RUN_FIELDS, read_label_stability, read_run
from depthlab.training.status import NOT_RUN

MEMBER_DIMS = ("dataset", "n_train", "depth", "width", "lr", "seed")
KERNEL_DIMS = ("dataset", "n_train", "kernel_depth")

_DATASET_COORDS = {
    "generator": "label rule that made the dataset",
    "k": "locality order k of the label (0 if not applicable)",
    "d": "input dimension",
    "data_source": "where the inputs come from (synthetic generator or a named package/file)",
}


def _runs_frame(run_files: Iterable[str | Path]) -> pd.DataFrame:
    rows = [row for path in run_files for row in read_run(path)]
    if not rows:
        raise ValueError("no training runs to aggregate")
    return pd.DataFrame(rows)


def build_cube(run_files: Iterable[str | Path], regression_files: Iterable[str | Path], *,
               study_name: str, study: Mapping[str, Any], datasets: Mapping[str, Any],
               kernels: Mapping[str, Any],
               label_stability_files: Iterable[str | Path] = ()) -> xr.Dataset:
    runs = _runs_frame(run_files).set_index(list(MEMBER_DIMS)).sort_index()
    if runs.index.duplicated().any():
        dup = runs.index[runs.index.duplicated()].tolist()[:3]
        raise ValueError(f"member(s) trained twice: {dup}")
    numeric = [name for name in RUN_FIELDS if name not in ("seed", "lr")]
    cube = xr.Dataset.from_dataframe(runs[numeric].astype("float64"))
    status = xr.DataArray.from_series(runs["status"].astype(object)).fillna(NOT_RUN)
    cube["status"] = status.astype(str)
    cube["device"] = xr.DataArray.from_series(runs["device"].astype(object)).fillna("").astype(str)

    for name, (_, units, description) in RUN_FIELDS.items():
        if name in cube:
            cube[name].attrs.update(units=units, description=description)
    cube["status"].attrs.update(
        description="converged (training error reached exactly 0), max_epochs (cap hit first), "
        "diverged (non-finite or exploding loss), not_run (outside every grid)",
    )
    cube["device"].attrs["description"] = "device the member was trained on"

    if "local_stability" in runs and runs["local_stability"].notnull().any():
        per_v = runs["local_stability"].dropna().apply(pd.Series).stack()
        per_v.index = per_v.index.set_names([*MEMBER_DIMS, "v"])
        cube["local_stability"] = xr.DataArray.from_series(per_v.astype("float64"))
        cube["local_stability"].attrs.update(
            units="1", description="fraction of test points whose predicted class survives "
            "every single-coordinate perturbation of size v, Mori-Ueda eq. (15)")
    labels = [read_label_stability(p) for p in label_stability_files]
    if labels:
        series = pd.Series(
            {(lab["dataset"], float(v)): float(s) for lab in labels
             for v, s in zip(lab["v"], lab["stability"], strict=True)}
        )
        series.index = series.index.set_names(["label_dataset", "v"])
        cube["label_stability"] = xr.DataArray.from_series(series)
        info = {lab["dataset"]: lab for lab in labels}
        names = [str(n) for n in cube["label_dataset"].values]
        cube = cube.assign_coords(
            label_generator=("label_dataset", [info[n]["generator"] for n in names]),
            label_k=("label_dataset", [int(info[n]["k"]) for n in names]),
            label_d=("label_dataset", [int(info[n]["d"]) for n in names]),
        )
        cube["label_stability"].attrs.update(
            units="1", description="local stability s(v) of the label rule itself")

    regressions = [read_regression(p) for p in regression_files]
    if regressions:
        reg = pd.DataFrame(regressions).set_index(list(KERNEL_DIMS)).sort_index()
        kernel_name = sorted(set(reg["kernel"]))
        for var, desc in (
            ("test_error", "test misclassification of infinite-width kernel regression, eq. (14)"),
            ("train_error", "training misclassification of kernel regression (0 = interpolates)"),
            ("jitter_used", "relative diagonal jitter added before the Cholesky factorization"),
        ):
            name = f"ntk_{var}"
            cube[name] = xr.DataArray.from_series(reg[var].astype("float64"))
            cube[name].attrs.update(units="1", description=desc, kernel=", ".join(kernel_name))
        cube["kernel_depth"].attrs["description"] = "depth L of the analytic kernel"

    names = [str(v) for v in cube["dataset"].values]
    for coord, desc in _DATASET_COORDS.items():
        values = []
        for ds in names:
            spec = datasets[ds]
            if coord == "data_source":
                values.append(data_source(spec))
            elif coord == "k":
                values.append(int(spec.get("k", 0)))
            else:
                values.append(spec[coord])
        cube = cube.assign_coords({coord: ("dataset", values)})
        cube[coord].attrs["description"] = desc

    drawn = set(study.get("data_draws", []))
    cube = cube.assign_coords(drawn_per_seed=("dataset", [ds in drawn for ds in names]))
    cube["drawn_per_seed"].attrs["description"] = (
        "each seed trained and tested on its own draw of the dataset (data_draws; the "
        "NTK baseline on the dataset itself)")

    coord_docs = {
        "dataset": "dataset name from the config",
        "n_train": "training-set size N (nested prefixes of one generated set)",
        "depth": "hidden layers L (0 = linear perceptron)",
        "width": "hidden width H",
        "lr": "SGD learning rate",
        "seed": "initialization / mini-batch-order seed (and data draw, where drawn_per_seed)",
    }
    for coord, doc in coord_docs.items():
        cube[coord].attrs["description"] = doc

    versions = sorted(set(runs["software_versions"]))
    cube.attrs.update(
        provenance_attrs(
            {"study": study, "datasets": datasets, "kernels": kernels},
            study=study_name,
            kind=study["kind"],
        )
    )
    cube.attrs["training_software_versions"] = to_json(versions)
    cube.attrs["data_sources"] = ", ".join(sorted(set(cube["data_source"].values.tolist())))
    return cube


def seed_stats(cube: xr.Dataset, var: str = "test_error") -> xr.Dataset:
    """Mean, std and count over seeds, counting only members that exist."""
    values = cube[var]
    return xr.Dataset(
        {
            "mean": values.mean("seed", skipna=True),
            "std": values.std("seed", skipna=True, ddof=0),
            "count": values.notnull().sum("seed"),
        }
    )


def pick_lr(cube: xr.Dataset, figure: Mapping[str, Any], dataset: str) -> float:
    """The learning rate a panel shows: the figure's `lr`, or the only one trained on
    this dataset (grids may give each label its own learning rate)."""
    if "lr" in figure:
        lr = figure["lr"]
        return parse_lr(lr[dataset] if isinstance(lr, Mapping) else lr)
    trained = cube["test_error"].sel(dataset=dataset).notnull()
    lrs = cube["lr"].values[trained.any([d for d in trained.dims if d != "lr"]).values]
    if len(lrs) != 1:
        raise ValueError(
            f"dataset {dataset!r} was trained at learning rates {lrs.tolist()}; "
            "set `lr` in the figure block to choose one"
        )
    return float(lrs[0])


def figure_n(figure: Mapping[str, Any], dataset: str) -> int:
    """The N a figure shows for a dataset (`n_train` is one N or a map dataset -> N)."""
    n = figure["n_train"]
    return int(n[dataset]) if isinstance(n, Mapping) else int(n)


__all__ = ["KERNEL_DIMS", "MEMBER_DIMS", "build_cube", "figure_n", "pick_lr", "seed_stats"]
