"""The Nichani study cube.

Trained nets: ``fc_*`` over ``(depth, seed)`` (Fully-Conv) and ``mlp_*`` over ``seed`` (the
FC baseline): test accuracy at the paper's rule (best training accuracy, first such epoch),
at the final epoch and at best train with lowest-loss tie-break, test loss at the paper's
rule, train accuracy, status, epochs.  Kernels: ``k_*`` over ``(kernel, kernel_depth)``
(NaN where a kernel lacks a depth).  Linear nets: ``lin_*`` over ``(task, lin_depth,
lin_seed)`` (status ``not_run`` where a task lacks a cell) and the minimum-norm values
``lin_min_norm_*`` over ``task``.  ResNets: ``rn_*`` over ``(rn_blocks, rn_width,
rn_kernel, rn_seed)`` (blocks per stage as "n1-n2-n3-n4", coordinate ``rn_depth``; status
``not_run`` where no grid trains a cell), final-epoch and best-train values.  Attributes:
the study config (every default filled in), the data source, sizes.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from depthlab.data.io import dataset_arrays
from depthlab.provenance import provenance_attrs
from depthlab.results import read_arrays
from depthlab.training.status import NOT_RUN

FC_KEYS = ("test_acc", "test_loss", "train_acc", "train_loss", "test_acc_final",
           "test_loss_final", "test_acc_lowest_loss", "epochs", "epoch_best_train",
           "wall_time_s")
RN_KEYS = ("test_loss_final", "test_acc_final", "train_loss_final", "train_acc_final",
           "test_loss", "test_acc", "train_loss", "train_acc", "test_acc_lowest_loss", "epochs",
           "epoch_best_train", "n_params", "lr_used", "weight_decay_used", "wall_time_s")
LIN_KEYS = ("final_loss", "op_norm", "stable_rank", "dist_min_norm", "train_acc", "test_acc",
            "steps", "wall_time_s")


def _runs(files: list[str]) -> xr.Dataset:
    fc, mlp = {}, {}
    software = ""
    for path in files:
        arr, attrs = read_arrays(path)
        software = software or str(attrs.get("software_versions", ""))
        for i, seed in enumerate(arr["seed"]):
            rec = {k: float(arr[k][i]) for k in FC_KEYS} | {"status": str(arr["status"][i])}
            if attrs["model"] == "fully_conv":
                fc[(int(attrs["depth"]), int(seed))] = rec
            else:
                mlp[int(seed)] = rec
    out = xr.Dataset()
    if fc:
        depths = sorted({d for d, _ in fc})
        seeds = sorted({s for _, s in fc})
        data = {}
        for k in (*FC_KEYS, "status"):
            a = np.full((len(depths), len(seeds)), NOT_RUN if k == "status" else np.nan,
                        dtype=object if k == "status" else float)
            for (d, s), rec in fc.items():
                a[depths.index(d), seeds.index(s)] = rec[k]
            data[f"fc_{k}"] = (("depth", "seed"), a.astype(str) if k == "status" else a)
        out = xr.Dataset(data, coords={"depth": depths, "seed": seeds})
    if mlp:
        seeds = sorted(mlp)
        out = out.merge(xr.Dataset(
            {f"mlp_{k}": ("mlp_seed", [mlp[s][k] for s in seeds]) for k in (*FC_KEYS, "status")},
            coords={"mlp_seed": seeds}))
    out.attrs["training_software_versions"] = software
    return out


def _kernels(files: list[str]) -> xr.Dataset:
    if not files:
        return xr.Dataset()
    loaded = [read_arrays(p) for p in files]
    names = [str(a["name"]) for _, a in loaded]
    depths = sorted({int(d) for arr, _ in loaded for d in arr["depth"]})
    data = {}
    for k in ("test_loss", "test_acc", "train_acc", "jitter_used"):
        a = np.full((len(names), len(depths)), np.nan)
        for i, (arr, _) in enumerate(loaded):
            for d, v in zip(arr["depth"], arr[k], strict=True):
                a[i, depths.index(int(d))] = v
        data[f"k_{k}"] = (("kernel", "kernel_depth"), a)
    data["k_readout"] = ("kernel", [str(a["readout"]) for _, a in loaded])
    data["k_fix"] = ("kernel", [bool(a["fix"]) for _, a in loaded])
    data["k_gram_seconds"] = ("kernel", [float(a["gram_seconds"]) for _, a in loaded])
    data["k_n_test"] = ("kernel", [int(a["n_test"]) for _, a in loaded])
    data["k_n_train"] = ("kernel", [int(a["n_train"]) for _, a in loaded])
    return xr.Dataset(data, coords={"kernel": names, "kernel_depth": depths})


def _linear(files: list[str]) -> xr.Dataset:
    if not files:
        return xr.Dataset()
    loaded = [read_arrays(p) for p in files]
    names = [str(a["name"]) for _, a in loaded]
    depths = sorted({int(d) for arr, _ in loaded for d in arr["depth"]})
    seeds = sorted({int(s) for arr, _ in loaded for s in arr["seed"]})
    shape = (len(names), len(depths), len(seeds))
    data = {}
    for k in (*LIN_KEYS, "status"):
        a = np.full(shape, NOT_RUN, dtype=object) if k == "status" else np.full(shape, np.nan)
        for t, (arr, _) in enumerate(loaded):
            for i, d in enumerate(arr["depth"]):
                for j, s in enumerate(arr["seed"]):
                    a[t, depths.index(int(d)), seeds.index(int(s))] = arr[k][i, j]
        data[f"lin_{k}"] = (("task", "lin_depth", "lin_seed"), a.astype(str) if k == "status"
                            else a)
    for k in ("min_norm_norm", "min_norm_stable_rank", "min_norm_test_acc",
              "min_norm_max_abs_test_output"):
        data[f"lin_{k}"] = ("task", [float(a.get(k, np.nan)) for _, a in loaded])
    data["lin_kind"] = ("task", [str(a["task"]) for _, a in loaded])
    return xr.Dataset(data, coords={"task": names, "lin_depth": depths, "lin_seed": seeds})


def _resnets(files: list[str]) -> xr.Dataset:
    if not files:
        return xr.Dataset()
    recs = {}
    stops = set()
    for path in files:
        arr, attrs = read_arrays(path)
        key = (str(attrs["blocks"]), int(attrs["width"]), int(attrs["kernel_size"]),
               int(arr["seed"][0]))
        recs[key] = {k: float(arr[k][0]) for k in RN_KEYS} | {"status": str(arr["status"][0])}
        if "trainer_stops_at_interpolation" in arr:
            stops.add(bool(arr["trainer_stops_at_interpolation"][0]))
    depth = lambda b: 2 + 2 * sum(int(n) for n in b.split("-"))  # noqa: E731
    blocks = sorted({k[0] for k in recs}, key=lambda b: (depth(b), b))
    widths = sorted({k[1] for k in recs})
    kernels = sorted({k[2] for k in recs})
    seeds = sorted({k[3] for k in recs})
    shape = (len(blocks), len(widths), len(kernels), len(seeds))
    dims = ("rn_blocks", "rn_width", "rn_kernel", "rn_seed")
    data = {}
    for k in (*RN_KEYS, "status"):
        a = np.full(shape, NOT_RUN, dtype=object) if k == "status" else np.full(shape, np.nan)
        for (b, w, ks, s), rec in recs.items():
            a[blocks.index(b), widths.index(w), kernels.index(ks), seeds.index(s)] = rec[k]
        data[f"rn_{k}"] = (dims, a.astype(str) if k == "status" else a)
    out = xr.Dataset(data, coords={"rn_blocks": blocks, "rn_width": widths,
                                   "rn_kernel": kernels, "rn_seed": seeds,
                                   "rn_depth": ("rn_blocks", [depth(b) for b in blocks])})
    out.attrs["rn_trainer_stops_at_interpolation"] = str(sorted(stops))
    return out


def build_cube(name: str, study: dict[str, Any], *, data: str, runs: list[str],
                       kernels: list[str], linear: list[str],
                       resnets: list[str] | None = None) -> xr.Dataset:
    # the shared dataset file the study names, verified (hash, config) on read
    d_arr, d_attrs = dataset_arrays(data, data=study["data"])
    runs_ds = _runs(runs)
    rn_ds = _resnets(resnets or [])
    cube = xr.merge([runs_ds, _kernels(kernels), _linear(linear), rn_ds],
                    combine_attrs="drop")
    cube.attrs.update(provenance_attrs({"study": study}, study=name))
    cube.attrs["data_source"] = str(d_attrs["data_source"])
    cube.attrs["n_classes"] = int(d_attrs["n_classes"])
    cube.attrs["n_train"] = len(d_arr["y_train"])
    cube.attrs["n_test"] = len(d_arr["y_test"])
    cube.attrs["image_shape"] = str(d_attrs["image_shape"])
    cube.attrs["training_software_versions"] = runs_ds.attrs.get("training_software_versions", "")
    cube.attrs["study_json"] = json.dumps(study, default=str)
    cube.attrs["selection_rule"] = (
        "fc_test_acc / fc_test_loss: at the first epoch of best training accuracy (the "
        "paper's rule); fc_test_acc_final: final epoch; fc_test_acc_lowest_loss: best train "
        "accuracy, lowest training loss among ties. BN in eval mode for every metric.")
    if rn_ds.sizes:
        cube.attrs["rn_trainer_stops_at_interpolation"] = rn_ds.attrs[
            "rn_trainer_stops_at_interpolation"]
        cube.attrs["rn_selection"] = (
            "rn_*_final: final epoch (Yang et al.'s recipe, what the ResNet figures plot by "
            "default); rn_test_acc / rn_test_loss / rn_train_*: the first epoch of best "
            "training accuracy (the paper's Fully-Conv rule); rn_test_acc_lowest_loss: best "
            "train accuracy, lowest training loss among ties. Losses: the trainer's MSE on "
            "the softmax, summed over classes, mean over images (Yang's reported loss).")
    cube.attrs["depth_conventions"] = (
        "Fully-Conv depth d = d + 1 conv layers; kernel_depth = conv layers of the CNTK "
        "(Arora et al.'s --depth D = kernel_depth + 1) or hidden layers of the FC NTK; "
        "lin_depth = conv (Toeplitz) layers, output layer included; rn_depth = 2 + 2 x "
        "blocks (stem conv, two convs per BasicBlock, linear layer)")
    return cube
