"""Mori-Ueda run files: one row per trained member of a training job, and the label-rule
stability files (Fig. 5) -- both in the shared array-file format
(:func:`depthlab.results.write_arrays`): columns as datasets, cell and provenance as file
attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from depthlab.results import read_arrays, write_arrays
from depthlab.training.status import STATUSES

__all__ = ["RUN_FIELDS", "read_label_stability", "read_run", "write_label_stability",
           "write_run"]

RUN_FIELDS: dict[str, tuple[str, str, str]] = {
    # name: (dtype, units, description)
    "seed": ("i8", "1", "initialization and mini-batch-order seed"),
    "lr": ("f8", "1", "learning-rate grid coordinate (0 = chosen per cell by cross-validation)"),
    "lr_used": ("f8", "1", "SGD learning rate eta actually used"),
    "test_error": ("f8", "1", "misclassification rate on the test set, eq. (12)"),
    "train_error": ("f8", "1", "misclassification rate on the training set at stop, eq. (11)"),
    "final_loss": ("f8", "1", "full training loss at stop"),
    "epochs": ("i8", "epoch", "epochs trained"),
    "wall_time_s": ("f8", "s", "wall-clock time of the job that trained this member"),
    "n_params": ("i8", "1", "trainable parameters of one member"),
}


def write_run(path: str | Path, results: Sequence[Mapping[str, Any]], cell: Mapping[str, Any],
              config_slice: Any, stability_v: Sequence[float] | None = None) -> None:
    """One job's members as columns: :data:`RUN_FIELDS` (typed, with units and a
    description), ``status``, ``device`` and, with ``stability_v``, ``local_stability``
    (members x v); the cell coordinates and the devices used as file attributes."""
    status = [str(r["status"]) for r in results]
    unknown = set(status) - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown training status {unknown}; expected one of {STATUSES}")
    arrays: dict[str, Any] = {name: np.array([r[name] for r in results], dtype=dtype)
                              for name, (dtype, _, _) in RUN_FIELDS.items()}
    arrays["status"] = np.array(status, dtype=object)
    arrays["device"] = np.array([str(r.get("device", "")) for r in results], dtype=object)
    described = {name: {"units": units, "description": description}
                 for name, (_, units, description) in RUN_FIELDS.items()}
    if stability_v is not None:
        arrays["stability_v"] = np.asarray(stability_v, dtype="f8")
        arrays["local_stability"] = np.array([r["local_stability"] for r in results],
                                             dtype="f8")
        described["local_stability"] = {"description": "local stability s(v), Mori-Ueda eq. (15)"}
    devices = sorted({str(r.get("device", "unknown")) for r in results})
    write_arrays(path, arrays, {**cell, "device": ", ".join(devices)}, config_slice,
                 dataset_attrs=described)


def read_run(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a run file, each with the cell coordinates merged in."""
    arrays, attrs = read_arrays(path, required=(*RUN_FIELDS, "status"))
    cell = {k: attrs[k] for k in ("dataset", "n_train", "depth", "width")}
    columns = {name: arrays[name] for name in (*RUN_FIELDS, "status", "device")}
    stability = arrays.get("local_stability")
    stability_v = arrays.get("stability_v")
    rows = []
    for i in range(len(columns["seed"])):
        row = {name: col[i].item() if hasattr(col[i], "item") else col[i]
               for name, col in columns.items()}
        row.update(cell)  # (read_arrays gives attributes as plain Python values)
        row["software_versions"] = attrs["software_versions"]
        if stability is not None:
            row["local_stability"] = dict(zip(stability_v.tolist(), stability[i].tolist(),
                                              strict=True))
        rows.append(row)
    return rows


def write_label_stability(path: str | Path, v: Any, stability: Any,
                          attrs: Mapping[str, Any], config_slice: Any) -> None:
    """s(v) of a dataset's label rule: datasets ``v`` and ``stability``; ``attrs`` holds
    ``dataset``, ``generator``, ``k`` and ``d``."""
    write_arrays(path, {"v": v, "stability": stability}, attrs, config_slice)


def read_label_stability(path: str | Path) -> dict[str, Any]:
    arrays, attrs = read_arrays(path, required=("v", "stability"))
    out = {"v": arrays["v"], "stability": arrays["stability"]}
    for key in ("dataset", "generator", "k", "d"):
        out[key] = attrs[key]
    return out
