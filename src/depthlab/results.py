"""The one result-file format of every job (:func:`write_arrays` / :func:`read_arrays`):
arrays (numeric or strings, 0-d for scalars) as HDF5 datasets, the cell coordinates and
other scalar facts as attributes, provenance (config slice, its hash, software versions) as
attributes, written atomically and opened checked.

Two common uses are spelled out on top of it: a *record* of one run (:func:`write_record`:
its arrays, its scalars as 0-d datasets, its cell; :func:`read_record` gives one dict) and
a *kernel-regression* result (:func:`write_regression` / :func:`read_regression`). Study
run files use :func:`write_arrays` directly, so a cube builder needs nothing but these
files and one reader.
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
# attributes every file carries that are provenance, not the result
_PROVENANCE = ("config", "config_hash")


def write_regression(path: str | Path, result: Mapping[str, Any], cell: Mapping[str, Any],
                     config_slice: Any) -> None:
    """A kernel regression's errors (0-d datasets), its cell and every other number or
    string of ``result`` (as the JSON attribute ``result``)."""
    write_arrays(path, {name: np.float64(result[name]) for name in REGRESSION_FIELDS},
                 {**dict(cell), "result": json.dumps(
                     {k: v for k, v in result.items() if isinstance(v, (int, float, str))})},
                 config_slice)


def read_regression(path: str | Path) -> dict[str, Any]:
    arrays, attrs = read_arrays(path, required=REGRESSION_FIELDS)
    out = {name: float(arrays[name]) for name in REGRESSION_FIELDS}
    for key in ("dataset", "kernel", "kernel_depth", "n_train"):
        out[key] = attrs[key]
    return out


def write_record(path: str | Path, scalars: Mapping[str, Any], arrays: Mapping[str, Any],
                 cell: Mapping[str, Any], config_slice: Any) -> None:
    """One run: its arrays (float64) and its scalars (numbers as float64, strings as they
    are) as datasets, the scalars' names in the attribute ``scalars`` (so a reader tells
    them from 0-d arrays), the cell coordinates as attributes."""
    clash = sorted(set(scalars) & set(arrays))
    if clash:
        raise ValueError(f"write_record: {clash} named both a scalar and an array")
    data = {name: np.asarray(value, dtype=np.float64) for name, value in arrays.items()}
    data.update({name: (np.asarray(value) if isinstance(value, str) else np.float64(value))
                 for name, value in scalars.items()})
    write_arrays(path, data, {**dict(cell), "scalars": json.dumps(sorted(scalars))},
                 config_slice)


def read_record(path: str | Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """A :func:`write_record` file as one dict: cell attributes, scalars and arrays."""
    arrays, attrs = read_arrays(path, required=tuple(required))
    names = json.loads(attrs.get("scalars", "[]"))
    out = {k: v for k, v in attrs.items() if k not in (*_PROVENANCE, "scalars")}
    for name, value in arrays.items():
        scalar = name in names and np.ndim(value) == 0 and hasattr(value, "item")
        out[name] = value.item() if scalar else value
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
