"""The Xiao study cube: every sweep and run file in one labelled xarray Dataset.

Blocks (each with its own sigma_w^2 and depth dimensions, since their grids differ):

* ``phase_*`` (size, arch, w_phase, depth_phase): Fig. 1 / Table 1 spectra of Gaussian
  images; ``kappa_dropout`` (keep, w_phase, depth_phase) for Fig. 1 (f);
* ``plane_*`` (w_plane, depth_plane[, time]): Fig. 3 top with kernel predictors;
* ``pool_*`` (pool_arch, w_pool, depth_pool[, time]): Fig. 3 bottom;
* ``cliff_*`` (cliff_depth, w_cliff, rho, seed): the finite nets of Fig. 2 with ``status``;
* ``plane_net_*`` (w_plane, depth_plane, plane_seed): the SGD-trained nets of Fig. 3 top
  (``plane_nets``), NaN / ``not_run`` in cells the nets' subset grid leaves out.

Phase quantities (q*, c*, chi_1, chi_c*, xi_1, xi_*, phase) per sigma_w^2 of each block come
from :func:`depthlab.kernels.phase.phase_point`.  Attributes record every choice the paper
leaves open.
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np
import xarray as xr

from depthlab.data.sources import data_source
from depthlab.kernels.phase import phase_point
from depthlab.provenance import provenance_attrs
from depthlab.studies.xiao import data as xdata
from depthlab.studies.xiao import grid

PHASE_KEYS = ("q_star", "c_star", "chi_1", "chi_c", "xi_1", "xi_c", "xi_star")
SPEC_KEYS = ("lambda_max", "lambda_bulk", "lambda_min", "lambda_second", "kappa", "kappa_min",
             "kappa_12", "nngp_lambda_max", "nngp_kappa", "eta_theory", "eta_trainer")


def _read(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["sweep"]), {k: f[k][()] for k in f}


def _theory(ds: xr.Dataset, dim: str, ws: list[float], study: dict[str, Any]) -> None:
    pts = [phase_point(w, float(study["b_var"]), study["activation"]) for w in ws]
    for key in PHASE_KEYS:
        ds[f"{dim}_{key}"] = (dim, np.array([getattr(p, key) for p in pts], dtype=float))
    ds[f"{dim}_phase"] = (dim, np.array([p.phase for p in pts]))


def _w_axis(study: dict[str, Any], ws: list[Any]) -> tuple[list[float], list[str]]:
    return [grid.w_value(study, w) for w in ws], [grid.w_label(w) for w in ws]


NET_KEYS = ("best_train_acc", "best_test_acc", "final_train_acc", "final_test_acc",
            "final_loss", "lr")


def _plane_nets(ds: xr.Dataset, study: dict[str, Any], paths: list[str]) -> xr.Dataset:
    nets = study["plane_nets"]
    wl = [grid.w_label(w) for w in study["plane"]["w_vars"]]
    depths = sorted(int(d) for d in study["plane"]["depths"])
    seeds = [int(s) for s in nets["seeds"]]
    ds = ds.assign_coords(plane_seed=seeds)
    shape = (len(wl), len(depths), len(seeds))
    vals = {k: np.full(shape, np.nan) for k in NET_KEYS}
    status = np.full(shape, "not_run", dtype=object)
    cell = {k: np.full(shape[:2], np.nan) for k in ("eta_theory", "lambda_max", "wall_time_s")}
    device = np.full(shape[:2], "", dtype=object)
    for path in paths:
        with h5py.File(path, "r") as f:
            w, i = wl.index(str(f.attrs["w_label"])), depths.index(int(f.attrs["depth"]))
            for k in cell:
                cell[k][w, i] = f.attrs[k]
            device[w, i] = str(f.attrs["device"])
            for s, st, *rest in zip(f["seed"][()], f["status"][()], *(f[k][()] for k in vals),
                                    strict=True):
                idx = (w, i, seeds.index(int(s)))
                status[idx] = st.decode()
                for k, x in zip(vals, rest, strict=True):
                    vals[k][idx] = x
    dims = ("w_plane", "depth_plane", "plane_seed")
    for k, a in vals.items():
        ds[f"plane_net_{k}"] = (dims, a)
    ds["plane_net_status"] = (dims, status.astype(str))
    for k, a in cell.items():
        ds[f"plane_net_{k}"] = (dims[:2], a)
    ds["plane_net_device"] = (dims[:2], device.astype(str))
    ds.attrs["plane_nets_settings"] = json.dumps(nets)
    return ds


def build_cube(name: str, study: dict[str, Any], sweeps: list[str], runs: list[str],
               data_source: str, plane_runs: list[str] | None = None) -> xr.Dataset:
    ds = xr.Dataset()
    loaded = [_read(p) for p in sweeps]
    phase = study.get("phase")
    if phase:
        sizes = [f"m{m}k{k}" for m, k in xdata.phase_sizes(phase)]
        depths = grid.phase_depths(phase)
        wv, wl = _w_axis(study, phase["w_vars"])
        ds = ds.assign_coords(size=sizes, arch=list(phase["archs"]), w_phase=wv,
                              depth_phase=depths)
        ds["w_phase_label"] = ("w_phase", wl)
        ds["size_m"] = ("size", [int(m) for m, _ in xdata.phase_sizes(phase)])
        ds["size_k"] = ("size", [int(k) for _, k in xdata.phase_sizes(phase)])
        shape = (len(sizes), len(phase["archs"]), len(wv), len(depths))
        arrs = {k: np.full(shape, np.nan) for k in SPEC_KEYS}
        drop = phase.get("dropout")
        kd = np.full((len(drop["keep"]) if drop else 0, len(wv), len(depths)), np.nan)
        for sw, v in loaded:
            if sw["group"] != "phase":
                continue
            i = sizes.index(f"m{sw['m']}k{sw['k']}")
            j = list(phase["archs"]).index(sw["arch"])
            w = wl.index(sw["w_label"])
            di = [depths.index(int(d)) for d in v["depth"]]
            for key in SPEC_KEYS:
                arrs[key][i, j, w, di] = v[key]
            if "kappa_dropout" in v:
                kd[:, w, di] = v["kappa_dropout"].T
        for key, a in arrs.items():
            ds[f"phase_{key}"] = (("size", "arch", "w_phase", "depth_phase"), a)
        if drop:
            ds = ds.assign_coords(keep=list(drop["keep"]))
            ds["kappa_dropout"] = (("keep", "w_phase", "depth_phase"), kd)
            ds.attrs["dropout_m"] = int(drop["m"])
        _theory(ds, "w_phase", wv, study)
    for block, prefix in (("plane", "plane"), ("pool", "pool")):
        b = study.get(block)
        if not b:
            continue
        wv, wl = _w_axis(study, b["w_vars"])
        depths = sorted(b["depths"])
        archs = ["fc"] if block == "plane" else list(b["archs"])
        times = [float(t) for t in b["times"]]
        coords = {f"w_{prefix}": wv, f"depth_{prefix}": depths, f"{prefix}_arch": archs,
                  f"time_{prefix}": times}
        ds = ds.assign_coords(coords)
        ds[f"w_{prefix}_label"] = (f"w_{prefix}", wl)
        dims = (f"{prefix}_arch", f"w_{prefix}", f"depth_{prefix}")
        scalar = {k: np.full((len(archs), len(wv), len(depths)), np.nan)
                  for k in (*SPEC_KEYS, "mean_test_acc_inf", "mean_test_mse_inf", "delta_norm",
                            "ridge")}
        timed = {k: np.full((len(archs), len(wv), len(depths), len(times)), np.nan)
                 for k in ("flow_train_acc", "flow_test_acc", "single_train_acc",
                           "single_test_acc")}
        for sw, v in loaded:
            if sw["group"] != block:
                continue
            a, w = archs.index(sw["arch"]), wl.index(sw["w_label"])
            di = [depths.index(int(d)) for d in v["depth"]]
            for key in scalar:
                scalar[key][a, w, di] = v[key]
            for key in timed:
                timed[key][a, w, di, :] = v[key]
        for key, arr in scalar.items():
            ds[f"{prefix}_{key}"] = (dims, arr)
        for key, arr in timed.items():
            ds[f"{prefix}_{key}"] = ((*dims, f"time_{prefix}"), arr)
        _theory(ds, f"w_{prefix}", wv, study)
    cliff = study.get("cliff")
    if cliff:
        wv, wl = _w_axis(study, cliff["w_vars"])
        depths = sorted(int(d) for d in cliff["depths"])
        rhos = [float(r) for r in cliff["rho"]]
        seeds = [int(s) for s in cliff["seeds"]]
        ds = ds.assign_coords(cliff_depth=depths, w_cliff=wv, rho=rhos, seed=seeds)
        ds["w_cliff_label"] = ("w_cliff", wl)
        shape = (len(depths), len(wv), len(rhos), len(seeds))
        vals = {k: np.full(shape, np.nan) for k in ("best_train_acc", "best_test_acc",
                                                    "final_train_acc", "final_loss", "lr")}
        # each net's own NTK lambda_max at init and at the end (runs that measured it)
        lam = {k: np.full(shape, np.nan) for k in ("lambda_emp_init", "lambda_emp_final")}
        status = np.full(shape, "not_run", dtype=object)
        eta = np.full((len(depths), len(wv)), np.nan)
        lmax = np.full((len(depths), len(wv)), np.nan)
        for path in runs:
            with h5py.File(path, "r") as f:
                i = depths.index(int(f.attrs["depth"]))
                w = wl.index(str(f.attrs["w_label"]))
                eta[i, w], lmax[i, w] = f.attrs["eta_theory"], f.attrs["lambda_max"]
                for r, s, st, *rest in zip(f["rho"][()], f["seed"][()], f["status"][()],
                                           *(f[k][()] for k in vals), strict=True):
                    idx = (i, w, rhos.index(float(r)), seeds.index(int(s)))
                    status[idx] = st.decode()
                    for k, x in zip(vals, rest, strict=True):
                        vals[k][idx] = x
                for k in lam:
                    if k in f:
                        for r, s, x in zip(f["rho"][()], f["seed"][()], f[k][()], strict=True):
                            lam[k][i, w, rhos.index(float(r)), seeds.index(int(s))] = x
        dims = ("cliff_depth", "w_cliff", "rho", "seed")
        for k, a in vals.items():
            ds[f"cliff_{k}"] = (dims, a)
        if any(np.isfinite(a).any() for a in lam.values()):
            for k, a in lam.items():
                ds[f"cliff_{k}"] = (dims, a)
        ds["cliff_status"] = (dims, status.astype(str))
        ds["cliff_eta_theory"] = (("cliff_depth", "w_cliff"), eta)
        ds["cliff_lambda_max"] = (("cliff_depth", "w_cliff"), lmax)
        _theory(ds, "w_cliff", wv, study)
    if study.get("plane_nets") and study.get("plane"):
        ds = _plane_nets(ds, study, list(plane_runs or []))
    choices = {
        "activation": study["activation"], "b_var": study["b_var"],
        "critical_w_var": grid.critical_w(float(study["b_var"]), study["activation"]),
        "parameterisation": "NTK (Xiao eq. 1): same sigma_w^2, sigma_b^2 in every layer incl. "
                            "the readout; neural-tangents convention for the input layer",
        "depth_convention": "depth l = number of nonlinearities (FC: input dense, l x [erf, "
                            "dense]; CNN: l x [conv, erf], readout, dense)",
        "conv": f"{study['filter_size']}x{study['filter_size']} filters, stride 1, circular "
                "padding; CNN-F = flatten, CNN-P = global average pooling",
        "synthetic_inputs": "Gaussian images (m, 3, k, k), each pixel's channel vector "
                            "rescaled to mean square 1 (FC: the flattened vector)",
        "real_inputs": "pixels centred by the training mean, each image scaled to mean "
                       "square 1; images average-pooled by pool.image_pool for Fig. 3 bottom",
        "labels": "one-hot minus the training class frequencies (1^T Y = 0); predictions "
                  "classified by argmax(f + frequencies)",
        "eta_theory": "2/lambda_max(Theta_dd) for the loss 1/2 sum ||f-y||^2 (eq. 4); the "
                      "finite nets' loss is (1/2n) sum ||f-y||^2, rate 2n/lambda_max "
                      "(eta_trainer), full-batch GD, lambda_max of the analytic NTK of the "
                      "training set at that depth",
        "kappa": "kappa = lambda_max / lambda_bulk (mean of the other eigenvalues); "
                 "kappa_min = lambda_max/lambda_min; kappa_12 = lambda_1/lambda_2",
        "predictors": "mean predictor at t = inf with ridge * tr(Theta_dd)/n (eq. 69); "
                      "gradient flow at eta_theory for `time` steps; single network f0 ~ "
                      "GP(0, K_NNGP) on train+test, accuracy averaged over draws; float64",
        "fig3_top": ("SGD-trained finite nets (plane_nets) next to the kernel predictors"
                     if study.get("plane_nets") else
                     "kernel predictors (infinite width) only: no SGD-trained nets in this "
                     "config (plane_nets, paper scale)"),
        "sgd": "mini-batches of exactly b per step, per-member epoch permutations "
               "(seed, epoch); eta_theory = 2b / lambda_max of the analytic NTK of the first "
               "b training points (Fig. 3 top: b = plane_nets.batch_size, rho = "
               "plane_nets.rho); accuracies: final (end of training) and best over the "
               "evaluations every eval_every steps",
        "dropout": "keep probability rho in the penultimate layer (App. C): diagonal only",
    }
    ds.attrs.update(provenance_attrs({"study": study}))
    ds.attrs["choices"] = json.dumps(choices)
    ds.attrs["data_source"] = data_source
    ds.attrs["study"] = name
    ds.attrs["kind"] = "xiao"
    for block in ("plane", "pool", "cliff"):
        if study.get(block):
            ds.attrs[f"{block}_settings"] = json.dumps(study[block])
    if phase:
        ds.attrs["phase_settings"] = json.dumps(phase)
    return ds


def source_of(study: dict[str, Any]) -> str:
    """Where the labelled images come from (the datasets of plane, pool, cliff, plane_nets;
    the Gaussian images of the phase block when there are none)."""
    blocks = [study[b] for b in xdata.LABELLED_BLOCKS if study.get(b)]
    blocks = blocks or list((study.get("phase") or {}).get("images", []))
    return ", ".join(dict.fromkeys(data_source(b) for b in blocks))
