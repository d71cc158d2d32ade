"""Mori-Ueda run files: one row per trained member of a training job, and the label-rule
stability files (Fig. 5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from depthlab.provenance import atomic_output, open_h5_checked, provenance_attrs
from depthlab.results import scalar_attr
from depthlab.training.status import STATUSES

__all__ = ["RUN_FIELDS", "read_label_stability", "read_run", "write_run"]

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
    attrs = provenance_attrs(config_slice, **{k: v for k, v in cell.items()})
    devices = sorted({str(r.get("device", "unknown")) for r in results})
    attrs["device"] = ", ".join(devices)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        for name, (dtype, units, description) in RUN_FIELDS.items():
            ds = f.create_dataset(name, data=np.array([r[name] for r in results], dtype=dtype))
            ds.attrs["units"] = units
            ds.attrs["description"] = description
        status = [str(r["status"]) for r in results]
        unknown = set(status) - set(STATUSES)
        if unknown:
            raise ValueError(f"unknown training status {unknown}; expected one of {STATUSES}")
        f.create_dataset("status", data=np.array(status, dtype=h5py.string_dtype()))
        f.create_dataset(
            "device", data=np.array([str(r.get("device", "")) for r in results],
                                    dtype=h5py.string_dtype()),
        )
        if stability_v is not None:
            f.create_dataset("stability_v", data=np.asarray(stability_v, dtype="f8"))
            ds = f.create_dataset(
                "local_stability",
                data=np.array([r["local_stability"] for r in results], dtype="f8"),
            )
            ds.attrs["description"] = "local stability s(v), Mori-Ueda eq. (15)"
        f.attrs.update(attrs)


def read_run(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a run file, each with the cell coordinates merged in."""
    with open_h5_checked(path, required=(*RUN_FIELDS, "status")) as f:
        cell = {k: f.attrs[k] for k in ("dataset", "n_train", "depth", "width")}
        columns = {name: f[name][:] for name in RUN_FIELDS}
        columns["status"] = f["status"].asstr()[:]
        columns["device"] = f["device"].asstr()[:]
        stability = f["local_stability"][:] if "local_stability" in f else None
        stability_v = f["stability_v"][:] if "stability_v" in f else None
        software = f.attrs["software_versions"]
    rows = []
    for i in range(len(columns["seed"])):
        row = {name: col[i].item() if hasattr(col[i], "item") else col[i]
               for name, col in columns.items()}
        row.update({k: scalar_attr(v) for k, v in cell.items()})
        row["software_versions"] = software
        if stability is not None:
            row["local_stability"] = dict(zip(stability_v.tolist(), stability[i].tolist(),
                                              strict=True))
        rows.append(row)
    return rows


def read_label_stability(path: str | Path) -> dict[str, Any]:
    with open_h5_checked(path, required=("v", "stability")) as f:
        out = {"v": f["v"][:], "stability": f["stability"][:]}
        for key in ("dataset", "generator", "k", "d"):
            out[key] = scalar_attr(f.attrs[key])
        return out
