"""The Xiao rules' jobs: one sweep, one finite-width run of Fig. 2 (``cliff``)
or Fig. 3 top (``plane_nets``) (HDF5, atomic, with provenance attributes)."""

from __future__ import annotations

import json
import time
from typing import Any

import h5py
import numpy as np

from depthlab.provenance import atomic_output, provenance_attrs
from depthlab.studies.xiao import data as xdata


def _attrs(f: h5py.File, config_slice: Any, **extra: Any) -> None:
    for k, v in provenance_attrs(config_slice, **extra).items():
        f.attrs[k] = v if isinstance(v, (str, int, float)) else json.dumps(v, default=str)


def write_sweep(study_slice: dict[str, Any], sweep: dict[str, Any], data_path: str, path: str,
                threads: int) -> None:
    from depthlab.studies.xiao.sweep import compute

    t0 = time.perf_counter()
    # the dataset file, verified against the block of this job's params that names it
    data = xdata.read_set(data_path, xdata.data_block(study_slice, sweep["data"]))
    out = compute(study_slice, sweep, data, threads)
    attrs = out.pop("attrs")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        _attrs(f, {"study": study_slice, "sweep": sweep})
        f.attrs["sweep"] = json.dumps(sweep, default=str)
        f.attrs["phase_point"] = json.dumps(attrs, default=str)
        f.attrs["wall_time_s"] = time.perf_counter() - t0
        for k, v in out.items():
            f[k] = v


def write_run(study_slice: dict[str, Any], run: dict[str, Any], data_path: str,
              path: str, block: str = "cliff", checkpoint: str | None = None,
              checkpoint_every: int = 0, log=None) -> None:
    """Train the nets of one (depth, sigma_w^2) of ``block`` (``cliff``: every rho x seed,
    full batch unless ``batch_size``; ``plane_nets``: every seed at rho = ``rho``, SGD with
    ``batch_size``) and write one row per member."""
    import torch

    from depthlab.studies.xiao.train import analytic_eta, train_members
    from depthlab.training.device import describe_device, resolve_device

    s = study_slice[block]
    data = xdata.read_set(data_path, s)
    b_var = float(study_slice["b_var"])
    n = len(data["x_train"])
    batch = min(int(s.get("batch_size") or n), n)
    x = data["x_train"].reshape(n, -1)[:batch]
    dev = resolve_device(s.get("device", "auto"))
    t0 = time.perf_counter()
    lmax, eta = analytic_eta(x, run["depth"], run["w_var"], b_var, study_slice["activation"])
    rhos = list(s["rho"]) if isinstance(s["rho"], list) else [float(s["rho"])]
    rows = train_members(data, run["depth"], int(s["width"]), run["w_var"], b_var, rhos,
                         list(s["seeds"]), int(s["steps"]), eta,
                         divergence_factor=float(s["divergence_factor"]),
                         eval_every=int(s["eval_every"]),
                         dtype={"float32": torch.float32, "float64": torch.float64}[s["dtype"]],
                         batch_size=batch, device=dev, checkpoint_path=checkpoint,
                         checkpoint_every=int(checkpoint_every), log=log,
                         measure_lambda=block == "cliff")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        _attrs(f, {"study": study_slice, "run": run})
        f.attrs["block"] = block
        f.attrs["lambda_max"] = lmax
        f.attrs["eta_theory"] = eta
        f.attrs["batch_size"] = batch
        f.attrs["eta_on"] = (f"analytic NTK of the first {batch} training points (the batch "
                             f"size), eta_theory = 2 b / lambda_max for the loss (1/2b) sum "
                             f"||f - y||^2")
        f.attrs["device"] = describe_device(dev)
        f.attrs["depth"] = run["depth"]
        f.attrs["w_var"] = run["w_var"]
        f.attrs["w_label"] = run["w_label"]
        f.attrs["wall_time_s"] = time.perf_counter() - t0
        for key in rows[0]:
            vals = [r[key] for r in rows]
            f[key] = np.asarray(vals, dtype="S16" if key == "status" else None)
