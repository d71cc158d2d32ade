"""The Xiao rules' jobs: data file, one sweep, one finite-width run (HDF5, atomic, with
provenance attributes)."""

from __future__ import annotations

import json
import time
from typing import Any

import h5py
import numpy as np

from depthlab.provenance import atomic_output, provenance_attrs
from depthlab.studies.xiao import data as xdata

LABELLED = ("x_train", "x_test", "y_train", "y_test", "labels_train", "labels_test",
            "class_freq")


def _attrs(f: h5py.File, config_slice: Any, **extra: Any) -> None:
    for k, v in provenance_attrs(config_slice, **extra).items():
        f.attrs[k] = v if isinstance(v, (str, int, float)) else json.dumps(v, default=str)


def write_data(study: dict[str, Any], path: str) -> None:
    spec = study["data"]
    seed = int(spec["seed"])
    need_raw = any(study.get(b) for b in ("plane", "pool", "cliff"))
    raw = xdata._raw_images(spec) if need_raw else None
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        _attrs(f, {"data": spec, "phase": study.get("phase")}, seed=seed)
        f.attrs["data_source"] = xdata.data_source(spec)
        if study.get("phase"):
            for m, k in study["phase"]["sizes"]:
                g = f.create_group(f"synth_m{m}_k{k}")
                g["x"] = xdata.synthetic_images(int(m), int(k), seed + 1000 * int(m) + int(k))
        for block, pool in (("plane", 1), ("pool", None), ("cliff", 1)):
            b = study.get(block)
            if not b:
                continue
            factor = int(b["image_pool"]) if pool is None else 1
            s = xdata.labelled_set(spec, int(b["n_train"]), int(b["n_test"]),
                                   seed + {"plane": 0, "pool": 1, "cliff": 2}[block],
                                   image_pool=factor, raw=raw)
            g = f.create_group(block)
            for key in LABELLED:
                g[key] = s[key]


def read_group(path: str, group: str) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {k: f[group][k][()] for k in f[group]}


def write_sweep(study_slice: dict[str, Any], sweep: dict[str, Any], data_path: str, path: str,
                threads: int) -> None:
    from depthlab.studies.xiao.sweep import compute

    t0 = time.perf_counter()
    out = compute(study_slice, sweep, read_group(data_path, sweep["data"]), threads)
    attrs = out.pop("attrs")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        _attrs(f, {"study": study_slice, "sweep": sweep})
        f.attrs["sweep"] = json.dumps(sweep, default=str)
        f.attrs["phase_point"] = json.dumps(attrs, default=str)
        f.attrs["wall_time_s"] = time.perf_counter() - t0
        for k, v in out.items():
            f[k] = v


def write_run(study_slice: dict[str, Any], run: dict[str, Any], data_path: str,
              path: str) -> None:
    import torch

    from depthlab.studies.xiao.train import analytic_eta, train_members

    cliff = study_slice["cliff"]
    data = read_group(data_path, "cliff")
    b_var = float(study_slice["b_var"])
    x = data["x_train"].reshape(len(data["x_train"]), -1)
    t0 = time.perf_counter()
    lmax, eta = analytic_eta(x, run["depth"], run["w_var"], b_var, study_slice["activation"])
    rows = train_members(data, run["depth"], int(cliff["width"]), run["w_var"], b_var,
                         list(cliff["rho"]), list(cliff["seeds"]), int(cliff["steps"]), eta,
                         divergence_factor=float(cliff["divergence_factor"]),
                         eval_every=int(cliff["eval_every"]),
                         dtype={"float32": torch.float32, "float64": torch.float64}[
                             cliff["dtype"]])
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        _attrs(f, {"study": study_slice, "run": run})
        f.attrs["lambda_max"] = lmax
        f.attrs["eta_theory"] = eta
        f.attrs["depth"] = run["depth"]
        f.attrs["w_var"] = run["w_var"]
        f.attrs["w_label"] = run["w_label"]
        f.attrs["wall_time_s"] = time.perf_counter() - t0
        for key in rows[0]:
            vals = [r[key] for r in rows]
            f[key] = np.asarray(vals, dtype="S16" if key == "status" else None)
