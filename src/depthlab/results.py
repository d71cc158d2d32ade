"""Per-job result files shared by the studies: a kernel-regression record, and a generic
record (arrays as datasets, scalars as attributes) for one run.

Small HDF5 files with the cell coordinates, config slice and software versions as
attributes, so a cube builder needs nothing but these files (study-specific run files
live with their study: ``depthlab.studies.<kind>``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from depthlab.provenance import atomic_output, open_h5_checked, provenance_attrs


def scalar_attr(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (numpy scalars -> int/float, else str)."""
    return value.item() if hasattr(value, "item") else str(value)


REGRESSION_FIELDS = ("test_error", "train_error", "jitter_used")


def write_regression(path: str | Path, result: Mapping[str, Any], cell: Mapping[str, Any],
                     config_slice: Any) -> None:
    attrs = provenance_attrs(config_slice, **dict(cell))
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        for name in REGRESSION_FIELDS:
            f.create_dataset(name, data=float(result[name]))
        f.attrs.update(attrs)
        f.attrs["result"] = json.dumps({k: v for k, v in result.items()
                                        if isinstance(v, (int, float, str))})


def read_regression(path: str | Path) -> dict[str, Any]:
    with open_h5_checked(path, required=REGRESSION_FIELDS) as f:
        out = {name: float(f[name][()]) for name in REGRESSION_FIELDS}
        for key in ("dataset", "kernel", "kernel_depth", "n_train"):
            out[key] = scalar_attr(f.attrs[key])
    return out


def write_record(path: str | Path, scalars: Mapping[str, Any], arrays: Mapping[str, Any],
                 cell: Mapping[str, Any], config_slice: Any) -> None:
    """One result as HDF5: arrays as datasets, numbers and strings as attributes of the
    group ``/scalars``, the cell coordinates and provenance as file attributes."""
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        group = f.create_group("scalars")
        for name, value in scalars.items():
            group.attrs[name] = value if isinstance(value, str) else np.float64(value)
        for name, value in arrays.items():
            f.create_dataset(name, data=np.asarray(value, dtype=np.float64))
        f.attrs.update(provenance_attrs(config_slice, **dict(cell)))


def read_record(path: str | Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """A :func:`write_record` file as one dict: cell attributes, scalars and arrays."""
    with open_h5_checked(path, required=("scalars", *required)) as f:
        out = {k: scalar_attr(v) for k, v in f.attrs.items() if k not in ("config", "config_hash")}
        out.update({k: scalar_attr(v) for k, v in f["scalars"].attrs.items()})
        for name, item in f.items():
            if isinstance(item, h5py.Dataset):
                out[name] = item[()]
    return out


def write_arrays(path: str | Path, arrays: Mapping[str, Any], attrs: Mapping[str, Any],
                 config_slice: Any,
                 dataset_attrs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Arrays (numeric or strings) as datasets and scalar attributes, with provenance,
    atomically: the result file of a study's job when no fixed schema fits.  An array keeps
    its dtype (pass typed arrays to fix a column's type); ``dataset_attrs`` maps an array's
    name to attributes of its dataset (e.g. units and a description)."""
    prov = provenance_attrs(config_slice)
    dataset_attrs = dataset_attrs or {}
    unknown = set(dataset_attrs) - set(arrays)
    if unknown:
        raise ValueError(f"dataset_attrs for arrays that are not written: {sorted(unknown)}")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        for name, value in arrays.items():
            arr = np.asarray(value)
            if arr.dtype.kind in "UO":
                ds = f.create_dataset(name, data=arr.astype(object), dtype=h5py.string_dtype())
            else:
                ds = f.create_dataset(name, data=arr)
            for key, attr in dataset_attrs.get(name, {}).items():
                ds.attrs[key] = attr
        for key, value in {**prov, **attrs}.items():
            f.attrs[key] = value if isinstance(value, (str, int, float, np.number)) else str(value)


def read_arrays(path: str | Path, required: Sequence[str] = ()
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, attributes) of a :func:`write_arrays` file (checked open: a missing or
    damaged file, or one without the ``required`` datasets, is an error naming it)."""
    with open_h5_checked(path, required=tuple(required)) as f:
        arrays = {name: (ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()])
                  for name, ds in f.items()}
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    return arrays, attrs
