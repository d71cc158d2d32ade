"""The probes of Xiao jobs: their :class:`depthlab.probe.kinds.Probe` s, found by name by
:data:`depthlab.probe.kinds.KINDS`, and ``RULES``, how each job of its rules is planned
(:class:`depthlab.probe.shapes.RuleProbe`: its shape, work, data size). Rules planned:

* ``xiao_train``, ``xiao_plane_train`` -- probe kind ``xiao`` (``PROBE``): the finite-width
  trainer :func:`depthlab.studies.xiao.train.train_members`, capped by its own ``steps``;
  unit ``step``.
* ``xiao_sweep`` -- probe kind ``xiao_sweep`` (``PROBES``): one kernel depth sweep,
  :func:`depthlab.studies.xiao.sweep.compute`, i.e. one recursion to the largest depth
  (``run_kernel_sweep``: the numpy FC engine, or the torch conv engine, which runs on the
  GPU where the job has one) and, at every recorded depth, the spectra (Fig. 1 sets, with
  the dropout kappas) or the labelled predictors (``labelled_row``: eigendecompositions,
  the ridge solve, gradient flow and the GP draws; numpy on the CPU). Units:

  - ``layer_pair``: one layer of the recursion for one pair of images, at the job's tile
    size (FC tiles of ``DEFAULT_TILE`` rows, conv tiles from the memory budget);
  - ``depth_row``: the per-depth analysis of one recorded depth at the job's N.

Inputs are synthetic stand-ins of the real shape (Gaussian images; for the per-depth
analysis, PSD Grams of the FC erf kernel of Gaussian inputs and random labels). No step
cost depends on sigma_w^2 or sigma_b^2 (closed-form erf/ReLU maps), so the sweeps of one
(set, architecture) share a class whatever their sigma_w^2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from depthlab.probe import kinds as K
from depthlab.probe.jobs import JobInfo
from depthlab.probe.shapes import RuleProbe
from depthlab.studies.xiao import data as xdata

CIFAR_DIM = 3 * 32 * 32


def cost(shape: dict[str, Any]) -> dict[str, float]:
    p = K.fc_params(shape["d"], shape["depth"], shape["width"], 10)
    return {"step": 6.0 * shape["members"] * shape["batch"] * p}


def shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    if shape["batch"] > 32:
        return {**shape, "batch": shape["batch"] // 2}
    if shape["width"] > 256:
        return {**shape, "width": shape["width"] // 2}
    return None


def measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    import torch

    from depthlab.studies.xiao.train import train_members

    gen = np.random.default_rng(0)
    b = shape["batch"]
    n = b * 2  # batches drawn from a permutation of n rows: n only sets the index range
    labels_tr, labels_te = gen.integers(0, 10, n), gen.integers(0, 10, 64)
    eye = np.eye(10)
    freq = eye[labels_tr].mean(0)
    data = {"x_train": gen.standard_normal((n, shape["d"])) / math.sqrt(shape["d"]),
            "x_test": gen.standard_normal((64, shape["d"])) / math.sqrt(shape["d"]),
            "y_train": eye[labels_tr] - freq, "y_test": eye[labels_te] - freq,
            "labels_train": labels_tr, "labels_test": labels_te, "class_freq": freq}
    dtype = {"float32": torch.float32, "float64": torch.float64}[shape["dtype"]]
    rhos = [0.3] * shape["members"]
    kw = dict(w_var=1.5, b_var=0.05, rhos=rhos, seeds=[0], eta_theory=0.01,
              eval_every=10**9, dtype=dtype, batch_size=b if b < n else None, device="cpu")
    # full-batch jobs (cliff): batch = n rows, as the job's own full batch
    if shape["batch"] >= shape["n_train"]:
        kw["batch_size"] = None
        data["x_train"] = data["x_train"][:b]
        for key in ("y_train", "labels_train"):
            data[key] = data[key][:b]
    train_members(data, shape["depth"], min(shape["width"], 64), steps=1, **kw)  # warm-up
    t1 = K.timed(lambda: train_members(data, shape["depth"], shape["width"], steps=1, **kw))
    t2 = K.timed(lambda: train_members(data, shape["depth"], shape["width"], steps=1 + k, **kw))
    step = max(t2 - t1, 1e-9) / k
    return {"step": step, "fixed": max(t1 - 2 * step, 0.0)}


def memory(s: dict[str, Any]) -> float:
    p = K.fc_params(s["d"], s["depth"], s["width"], 10)
    by = 8 if s["dtype"] == "float64" else 4
    act = s["members"] * s["batch"] * s["width"] * s["depth"]
    return (3 * s["members"] * p + 3 * act) * by / K.MB


PROBE = K.Probe(measure, cost, shrink, memory)


# --------------------------------------------------------------------------- its rules


def _block(job: JobInfo) -> Mapping[str, Any]:
    return job.params["study"][job.params["block"]]


def _train_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    blk = _block(job)
    n = int(blk["n_train"])
    batch = min(int(blk.get("batch_size") or n), n)
    rhos = blk["rho"] if isinstance(blk["rho"], list) else [blk["rho"]]
    return dict(
        block=job.params["block"], depth=int(job.params["run"]["depth"]),
        width=int(blk["width"]), batch=batch, members=len(rhos) * len(blk["seeds"]),
        dtype=blk.get("dtype", "float32"), d=CIFAR_DIM, n_train=n, n_test=int(blk["n_test"]),
        eval_every=int(blk["eval_every"]))


def _train_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    return {"fixed": 1.0, "step": float(_block(job)["steps"])}


def _train_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    blk = _block(job)
    return (int(blk["n_train"]) + int(blk["n_test"])) * CIFAR_DIM * 12 / K.MB


# --------------------------------------------------------------------------- kernel sweeps

# sigma_w^2, sigma_b^2 of the probe's kernels: they set the numbers, not the cost
W_PROBE, B_PROBE = 1.5, 0.18
STAND_IN_DIM = 64  # inputs of the stand-in Grams of the per-depth analysis


def _images_in_gram(shape: dict[str, Any]) -> int:
    # labelled sets: train + test in one symmetric sweep; Fig. 1 sets: the m images
    return shape["n_train"] + shape["n_test"]


def _fc_tile() -> int:
    from depthlab.kernels.layers import DEFAULT_TILE

    return DEFAULT_TILE


def _tile(shape: dict[str, Any]) -> int:
    """Images per tile edge of the job's recursion: the FC engine's fixed tile; the conv
    engine's edge from its memory budget (float64; CNN-P keeps the full pixel x pixel
    covariance, CNN-F its spatial diagonal)."""
    if shape["arch"] == "fc":
        return _fc_tile()
    from depthlab.kernels import conv

    _, h, w = shape["image"]
    return conv._tile_edge(h * w, shape["arch"] == "cnn_p", 8, conv.DEFAULT_MEMORY)


def _pairs(arch: str, n: int, tile: int) -> int:
    """Image pairs one layer of the symmetric recursion over n images computes: the conv
    engine's diagonal tiles hold only the upper pairs (n (n + 1) / 2 in all); the FC
    engine's upper tiles are computed whole, diagonal ones included."""
    if arch != "fc":
        return n * (n + 1) // 2
    sizes = [min(tile, n - i) for i in range(0, n, tile)]
    return (n * n + sum(s * s for s in sizes)) // 2


def sweep_cost(shape: dict[str, Any]) -> dict[str, float]:
    """Flops per unit (ratios only). ``depth_row`` first: it is what a shrink (N) scales."""
    n, nt = shape["n_train"], shape["n_test"]
    big_n = n + nt
    if shape["labelled"]:
        k, t = xdata.N_CLASSES, shape["times"]
        row = (2 * 4 / 3 * n**3  # eigvalsh of the NTK and NNGP train blocks
               + 9.0 * n**3  # flow_eig: eigh with eigenvectors
               + n**3 / 3 + 2 * nt * n * k  # ridge solve and the test predictions
               + big_n**3 / 3  # GP draws: Cholesky of the train + test NNGP
               + shape["draws"] * (2 * big_n**2 * k + t * (4 * n * n + 2 * nt * n) * k))
    else:
        row = (2 + shape["dropout"]) * 4 / 3 * n**3
    _, h, w = shape["image"]
    window = shape["filter_size"] ** 2
    per_pair = {"fc": 1.0, "cnn_f": window * h * w, "cnn_p": window * (h * w) ** 2}
    return {"depth_row": float(max(row, 1.0)), "layer_pair": 30.0 * per_pair[shape["arch"]]}


def sweep_shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    # the per-depth analysis scales as N^3: halve N where one analysis takes seconds
    # (Fig. 3 top's 2048 + 2048 images; at 1000 + 1000 the probe runs the real size, as
    # its smaller sizes are ruled by the layer probe, which does not shrink with N)
    if shape["labelled"] and shape["n_train"] > 1024:
        return {**shape, "n_train": shape["n_train"] // 2, "n_test": shape["n_test"] // 2}
    return None


def _probe_spec(shape: dict[str, Any]) -> dict[str, Any]:
    from depthlab.studies.xiao.sweep import kernel_spec

    study = {"activation": shape["activation"], "b_var": B_PROBE,
             "filter_size": shape["filter_size"] or 3}
    spec = kernel_spec(study, shape["arch"], W_PROBE, shape["image"])
    # the conv engine runs on one CPU core here: the unit the planner scales to a GPU
    return spec if shape["arch"] == "fc" else {**spec, "device": "cpu"}


def _layer_pair_seconds(shape: dict[str, Any], k: int) -> float:
    """Seconds per image pair and layer: ``run_kernel_sweep`` (the function ``compute``
    calls) over the job's images, at most two tile edges of them (a diagonal and an
    off-diagonal tile: the job's mix), to depth 1 and 1 + L; the difference is L layers."""
    from depthlab.studies.xiao.sweep import run_kernel_sweep

    spec, tile = _probe_spec(shape), _tile(shape)
    n = min(_images_in_gram(shape), 2 * tile)
    x = np.random.default_rng(0).standard_normal((n, *shape["image"]))

    def run(depth: int) -> None:
        run_kernel_sweep(spec, [depth], x, 1)

    run(1)  # warm-up
    t_one = K.timed(run, 1)
    layers = max(int(k), 1)
    while True:  # tiny Fig. 1 sets: time enough layers to be above the timer's noise
        t = K.timed(run, 1 + layers)
        if t - t_one >= 0.2 or layers >= 4096:
            break
        layers *= 4
    return max(t - t_one, 1e-9) / (layers * _pairs(shape["arch"], n, tile))


def _stand_in_grams(m: int) -> tuple[np.ndarray, np.ndarray]:
    """(NNGP, NTK) of an FC erf kernel of m Gaussian inputs: PSD and full rank like the
    job's Grams, at a fraction of their cost."""
    from depthlab.kernels.layers import kernel_sweep

    x = np.random.default_rng(1).standard_normal((m, STAND_IN_DIM))
    spec = {"activation": "erf", "w_var": W_PROBE, "b_var": B_PROBE}
    return kernel_sweep(spec, [1], x, n_threads=1)[1]


def _row_fn(shape: dict[str, Any], n: int, nt: int):
    """The per-depth body of :func:`depthlab.studies.xiao.sweep.compute` at n train and nt
    test images, as a function of the two Grams."""
    from depthlab.kernels import spectra
    from depthlab.kernels.phase import phase_point
    from depthlab.studies.xiao import sweep as S

    if not shape["labelled"]:
        keeps = [1.0 - 0.1 * i for i in range(shape["dropout"])]

        def row(nngp, ntk):
            S.spectrum_row(nngp, ntk)
            for kp in keeps:
                spectra.spectrum(S.dropout_ntk(ntk, kp, B_PROBE))
        return row
    gen = np.random.default_rng(2)
    lt, lte = gen.integers(0, xdata.N_CLASSES, n), gen.integers(0, xdata.N_CLASSES, nt)
    y, yt, freq = xdata.centred_labels(lt, lte)
    data = {"y_train": y, "y_test": yt, "labels_train": lt, "labels_test": lte,
            "class_freq": freq}
    settings = {"ridge": 1e-6, "draws": shape["draws"],
                "times": [10.0 ** (2 + i) for i in range(shape["times"])]}
    point = phase_point(W_PROBE, B_PROBE, shape["activation"])
    return lambda nngp, ntk: S.labelled_row(nngp, ntk, data, settings, point, seed=0)


def _depth_row_seconds(shape: dict[str, Any]) -> float:
    n, nt = shape["n_train"], shape["n_test"]
    small_n, small_nt = min(n, 16), min(nt, 16)
    _row_fn(shape, small_n, small_nt)(*_stand_in_grams(small_n + small_nt))  # warm-up
    row, grams = _row_fn(shape, n, nt), _stand_in_grams(n + nt)

    def repeat(times: int) -> None:
        for _ in range(times):
            row(*grams)

    reps, t = 1, K.timed(repeat, 1)
    while t < 0.2 and reps < 4096:  # the Fig. 1 sets' 12 x 12 spectra: microseconds
        reps *= 4
        t = K.timed(repeat, reps)
    return t / reps


def sweep_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    return {"depth_row": _depth_row_seconds(shape),
            "layer_pair": _layer_pair_seconds(shape, k)}


def sweep_memory(s: dict[str, Any]) -> float:
    """MB that grow with N in the probe and the per-depth analysis: the two stand-in Grams,
    and the analysis' work arrays (the GP Cholesky and its jittered copy, eigenvectors,
    the regularised train block)."""
    big_n, n = _images_in_gram(s), s["n_train"]
    return (5 * big_n**2 + 3 * n**2) * 8 / K.MB


SWEEP_PROBE = K.Probe(sweep_measure, sweep_cost, sweep_shrink, sweep_memory, dtype="float64")
PROBES: dict[str, K.Probe] = {"xiao_sweep": SWEEP_PROBE}


def _image(block: Mapping[str, Any]) -> tuple[int, int, int]:
    """(C, H, W) of the images a data block names (depthlab.data.images: Gaussian images
    of its size, centred digits 8x8 x 1 or CIFAR-10 32x32 x 3, average pooled)."""
    if block["generator"] == "gaussian_images":
        k = int(block["image_size"])
        return int(block.get("channels", 3)), k, k
    side, channels = (8, 1) if block["source"] == "digits" else (32, 3)
    side //= int(block.get("image_pool", 1))
    return channels, side, side


def _sweep_block(job: JobInfo) -> Mapping[str, Any]:
    return xdata.data_block(job.params["study"], job.params["sweep"]["data"])


def _sweep_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    sw, study = job.params["sweep"], job.params["study"]
    block = _sweep_block(job)
    labelled = block["generator"] != "gaussian_images"  # read_set: no labels for Fig. 1
    settings = study[sw["group"]] if labelled else {}
    return dict(
        arch=sw["arch"], image=_image(block), n_train=int(block["n_train"]),
        n_test=int(block["n_test"]) if labelled else 0, labelled=labelled,
        draws=int(settings.get("draws", 0)), times=len(settings.get("times", ())),
        dropout=len(sw.get("dropout_keep") or ()), activation=study["activation"],
        filter_size=int(study["filter_size"]) if sw["arch"] != "fc" else 0, dtype="float64")


def _sweep_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    """One recursion to the largest depth, plus one readout per recorded depth (counted as
    a layer: a readout costs less), and one analysis per recorded depth. Exact counts."""
    s = _sweep_shape(job, config)
    depths = {int(d) for d in job.params["sweep"]["depths"]}
    pairs = _pairs(s["arch"], _images_in_gram(s), _fc_tile())
    return {"layer_pair": float(pairs * (max(depths) + len(depths))),
            "depth_row": float(len(depths))}


def _sweep_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    """The NNGP and NTK Grams of every recorded depth (``compute`` holds them all), and the
    images (the file's arrays, their train + test concatenation, the engine's copy)."""
    s = _sweep_shape(job, config)
    big_n = _images_in_gram(s)
    depths = len({int(d) for d in job.params["sweep"]["depths"]})
    c, h, w = s["image"]
    return (2 * depths * big_n**2 + 3 * big_n * c * h * w) * 8 / K.MB


# xiao_train, xiao_plane_train run train_members for exactly `steps` steps: the count is
# exact, not a cap; xiao_sweep's counts are exact too (no checkpoint: params name none)
RULES: dict[str, RuleProbe] = {
    **{rule: RuleProbe("xiao", _train_shape, _train_work, data_mb=_train_data_mb)
       for rule in ("xiao_train", "xiao_plane_train")},
    "xiao_sweep": RuleProbe("xiao_sweep", _sweep_shape, _sweep_work, data_mb=_sweep_data_mb),
}
