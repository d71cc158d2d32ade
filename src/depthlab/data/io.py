"""HDF5 layout of a dataset file: /train/{x,y}, /test/{x,y}, provenance in root attrs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from depthlab.data.refs import dataset_settings
from depthlab.provenance import (
    InputFileError,
    atomic_output,
    content_hash,
    open_h5_checked,
    provenance_attrs,
    to_json,
)

_ARRAYS = ("train/x", "train/y", "test/x", "test/y")


def _array_key(name: str) -> str:
    split, var = name.split("/")
    return f"{var}_{split}"


def write_dataset(path: str | Path, data: Mapping[str, Any], config_slice: Mapping[str, Any]):
    from depthlab.data.sources import data_source

    arrays = {name: data[_array_key(name)] for name in _ARRAYS}
    meta = data.get("meta", {})
    config_slice = dataset_settings(config_slice)
    attrs = provenance_attrs(
        config_slice,
        seed=config_slice.get("seed"),
        generator=config_slice["generator"],
        generator_meta=meta,
        content_hash=content_hash(arrays),
        # image generators count their classes (a class subset, ten digits)
        n_classes=int(meta.get("n_classes", config_slice.get("n_classes", 2))),
        source=data_source(config_slice),
    )
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, arr in arrays.items():
                f.create_dataset(
                    name, data=arr, compression="gzip", compression_opts=4, shuffle=True,
                    chunks=True,
                )
            f.attrs.update(attrs)


def read_dataset(path: str | Path, n_train: int | None = None, *,
                 verify: bool = True, expect: Mapping[str, Any] | None = None,
                 within: bool = False) -> dict[str, Any]:
    """Load a dataset; `n_train` takes the first N training rows (nested training sets).

    With ``verify`` (the default) the content hash stored at write time is recomputed over
    every array, so a file whose numbers changed since (flipped labels, a bad copy) is an
    :class:`InputFileError` naming it, never silently trained on. Cost: one SHA-256 pass over
    the file's arrays (about 10 ms for the largest laptop dataset, tests/unit/test_data.py).

    ``expect`` is the config slice the requesting job asks for (``config["datasets"][name]``,
    defaults filled in): the file's stored config slice (generator, parameters, seed) must
    equal it, so another dataset's file copied or linked in its place, or a file made from an
    older config, is an :class:`InputFileError` naming the file and both slices. Every
    workflow script passes it (:func:`expected_dataset`, :func:`dataset_arrays`). With
    ``within``, ``expect`` may hold more keys than the dataset's (a study's ``data`` block,
    which names the dataset and holds its parameters plus the study's own options): the
    file's stored slice must equal ``expect`` on every stored key.
    """
    if expect is not None:
        check_dataset_config(path, expect, within=within)
    with open_h5_checked(path, required=_ARRAYS) as f:
        available = f["train/x"].shape[0]
        if n_train is not None and n_train > available:
            raise InputFileError(f"{path}: asked for {n_train} training rows, file has {available}")
        try:
            arrays = {name: f[name][:] for name in _ARRAYS}
        except OSError as err:
            raise InputFileError(
                f"{path}: cannot read data (truncated or corrupt?): {err}"
            ) from err
        attrs = dict(f.attrs)
    if verify:
        _check_hash(path, arrays, attrs)
    sl = slice(None) if n_train is None else slice(0, n_train)
    out: dict[str, Any] = {
        "x_train": arrays["train/x"][sl],
        "y_train": arrays["train/y"][sl],
        "x_test": arrays["test/x"],
        "y_test": arrays["test/y"],
    }
    if n_train is not None:  # own copies, so the full arrays are freed
        out["x_train"], out["y_train"] = out["x_train"].copy(), out["y_train"].copy()
    out["attrs"] = attrs
    out["n_classes"] = int(out["attrs"].get("n_classes", 2))
    out["config"] = json.loads(out["attrs"]["config"])
    return out


def check_dataset_config(path: str | Path, expect: Mapping[str, Any], *,
                         within: bool = False) -> None:
    """The dataset file at ``path`` was made from the config slice ``expect``, else an
    :class:`InputFileError` naming the file, what it was made from and what was asked.
    ``within``: ``expect`` may hold further keys (see :func:`read_dataset`)."""
    with open_h5_checked(path, required=_ARRAYS) as f:
        stored_text = f.attrs.get("config")
    if stored_text is None:
        raise InputFileError(f"{path}: no config attribute, so what made it is unknown; was "
                             "it made by depthlab? Delete it and rerun the rule that makes it.")
    try:
        stored = json.loads(str(stored_text))
    except ValueError as err:
        raise InputFileError(f"{path}: its config attribute is not JSON ({err}); delete it "
                             "and rerun the rule that makes it.") from None
    stored, expect = dataset_settings(stored), dataset_settings(expect)
    if within:
        expect = {k: expect.get(k) for k in stored}
    if to_json(stored) != to_json(dict(expect)):
        differ = sorted(k for k in set(stored) | set(expect) if stored.get(k) != expect.get(k))
        raise InputFileError(
            f"{path}: made from another dataset config than the one asking for it "
            f"(differs in {differ}): the file holds {_short(to_json(stored))}, the config "
            f"asks for {_short(to_json(dict(expect)))}. Was another dataset's file copied or "
            "linked here? Delete it and rerun the rule that makes it.")


def expected_dataset(smk: Any, name: str | None = None) -> dict[str, Any]:
    """The config slice a workflow script's job expects of its dataset file: the dataset
    ``name`` (default: the job's ``dataset`` wildcard) in the job's config."""
    if name is None:
        name = smk.wildcards.dataset
    return dict(smk.config["datasets"][name])


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def dataset_arrays(path: str | Path, *, datasets: Mapping[str, Any] | None = None,
                   data: Mapping[str, Any] | None = None
                   ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, attributes) of a dataset file, verified like every dataset read: content
    hash recomputed, and the file's stored config checked against what the job asks for,
    either the config's ``datasets`` block (the file's name is its dataset's) or a study's
    ``data`` block (``within``: the dataset's parameters plus the study's own options).
    ``arrays`` holds x_train, y_train, x_test, y_test; ``attributes`` the file's, with
    ``n_classes`` (int) and ``data_source`` (what figures and cubes say)."""
    if (datasets is None) == (data is None):
        raise TypeError("give one of datasets= or data=")
    if datasets is not None:
        name = Path(path).stem
        if name not in datasets:
            raise InputFileError(f"{path}: no dataset {name!r} in the config's datasets "
                                 f"({', '.join(sorted(datasets))})")
        out = read_dataset(path, expect=datasets[name])
    else:
        out = read_dataset(path, expect=data, within=True)
    arrays = {k: out[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    attrs = dict(out["attrs"])
    attrs["n_classes"] = out["n_classes"]
    attrs["data_source"] = str(attrs.get("source", ""))
    attrs["image_shape"] = str(list(arrays["x_train"].shape[1:]))
    return arrays, attrs


def _check_hash(path: str | Path, arrays: Mapping[str, np.ndarray],
                attrs: Mapping[str, Any]) -> None:
    stored = attrs.get("content_hash")
    if stored is None:
        raise InputFileError(f"{path}: no content_hash attribute; was it made by depthlab? "
                             "Delete it and rerun the rule that makes it.")
    if content_hash(arrays) != stored:
        raise InputFileError(
            f"{path}: content hash mismatch: its arrays changed after it was written "
            "(edited or corrupted). Delete it and rerun the rule that makes it.")


def stored_content_hash(path: str | Path) -> str:
    """The content hash a dataset file records (not recomputed)."""
    with open_h5_checked(path, required=_ARRAYS) as f:
        return str(f.attrs["content_hash"])


def verify_content_hash(path: str | Path) -> bool:
    with open_h5_checked(path, required=_ARRAYS) as f:
        arrays = {name: np.asarray(f[name]) for name in _ARRAYS}
        return content_hash(arrays) == f.attrs.get("content_hash")
