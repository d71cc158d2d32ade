"""The probes of Nichani jobs: :class:`depthlab.probe.kinds.Probe` s found by name by
:data:`depthlab.probe.kinds.KINDS`, and ``RULES``, how each job of its rules is planned
(:class:`depthlab.probe.shapes.RuleProbe`: its shape, work, data size).

* ``nichani`` (``PROBE``; rules nichani_train, nichani_resnet):
  ``depthlab.studies.nichani.runs._train_one`` (``train_module``) for one epoch over k
  batches; unit ``step``.
* ``nichani_kernel`` (rule nichani_kernel): one tile of the job's edge through
  ``depthlab.kernels.conv.conv_sweep`` (CNTK) or a panel through
  ``depthlab.kernels.layers.kernel_sweep`` (FC NTK) at every depth of the variant, and
  ``kernel_regression_fit`` at n = 1024; units ``entry`` (one Gram entry, NNGP and NTK,
  through the whole depth sweep: the depths are shape) and ``chol_flop``. Shrunk along the
  recursion's depth (half the deepest).
* ``nichani_linear`` (rule nichani_linear): ``runs.build_linear`` + ``runs.train_linear``
  (full-batch Adam) at every depth of the task, ``models.linear_operator``; unit ``step``
  = one step of each depth's net, ``fixed`` = set-up and final measures of one seed.

Inputs are synthetic stand-ins of the real shape (the step and entry costs do not depend
on the values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from depthlab.probe import kinds as K
from depthlab.probe.jobs import JobInfo
from depthlab.probe.shapes import RuleProbe, dataset


def _conv_macs(shape: dict[str, Any]) -> float:
    s = shape["image_size"] ** 2
    w, ks = shape["width"], shape["kernel_size"] ** 2
    if shape["model"] == "resnet":
        macs, c, side = 3 * w * ks * s, w, s
        for stage, nb in enumerate(shape["blocks"]):
            c_out = w * 2**stage
            if stage:
                side /= 4
            macs += nb * 2 * ks * c_out * c_out * side + (c * c_out * ks * side if stage else 0)
            c = c_out
        return macs
    if shape["model"] == "fully_conv":
        return ks * s * (3 * w + (shape["depth"] - 1) * w * w + w * shape["n_classes"])
    return 3 * s * w + w * shape["n_classes"]


def cost(shape: dict[str, Any]) -> dict[str, float]:
    return {"step": 6.0 * shape["batch"] * _conv_macs(shape)}


def shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    if shape["batch"] > 8:
        return {**shape, "batch": shape["batch"] // 2}
    return None


def measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    from depthlab.studies.nichani.runs import _train_one

    gen = np.random.default_rng(0)
    b, kc, side = shape["batch"], shape["n_classes"], shape["image_size"]

    def data(n):
        return {"x_train": gen.random((n, 3, side, side), dtype=np.float32),
                "y_train": np.arange(n) % kc,
                "x_test": gen.random((b, 3, side, side), dtype=np.float32),
                "y_test": np.arange(b) % kc, "n_classes": kc}

    if shape["model"] == "resnet":
        tr = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
              "batch_size": b, "max_epochs": 1, "loss": "mse", "mse_reduction": "mean",
              "lr_decay_epochs": [], "lr_decay": 0.1, "stop_at_interpolation": False,
              "checkpoint_every": 0, "device": "cpu"}
        study = {"resnets": {"training": tr, "softmax_output": True, "augment": True,
                             "crop_padding": 4}}
        job = {"model": "resnet", "blocks": list(shape["blocks"]), "width": shape["width"],
               "kernel_size": shape["kernel_size"], "seeds": [0]}
    else:
        tr = {"optimizer": "adam", "lr": 1e-4, "momentum": 0.0, "weight_decay": 0.0,
              "batch_size": b, "max_epochs": 1, "loss": "cross_entropy", "lr_decay_epochs": [],
              "lr_decay": 0.1, "checkpoint_every": 0, "device": "cpu"}
        study = {"fully_conv": {"width": shape["width"], "fc_width": shape["width"],
                                "kernel_size": shape["kernel_size"], "negative_slope": 0.01,
                                "training": tr}}
        job = {"model": shape["model"], "depth": shape["depth"], "seeds": [0]}
    d1, d2 = data(b), data((1 + k) * b)
    _train_one(d1, study, job, 0)  # warm-up
    t1 = K.timed(lambda: _train_one(d1, study, job, 0))
    t2 = K.timed(lambda: _train_one(d2, study, job, 0))
    step = max(t2 - t1, 1e-9) / k
    return {"step": step, "fixed": max(t1 - step, 0.0)}


def memory(s: dict[str, Any]) -> float:
    # activations ~ flops per sample / (9 width) per layer, kept for backward; 4 bytes
    return 3 * s["batch"] * _conv_macs(s) / max(9 * s["width"], 1) * 4 / K.MB


PROBE = K.Probe(measure, cost, shrink, memory)


# --------------------------------------------------------------------------- kernels
# nichani_kernel (scripts/kernel.py -> runs.kernel_job): one variant's Grams (train x train,
# test x train) at every depth of its list from one recursion, then one ridgeless fit per
# depth. The CNTK runs depthlab.kernels.conv.conv_sweep in tiles of image pairs whose edge
# follows the library's memory budget (each pair of a "full" layout -- GAP readout -- holds
# P x P per-pixel covariances, P = H W; a flatten readout keeps the spatial diagonal, P);
# the FC NTK runs depthlab.kernels.layers.kernel_sweep on the flattened images.

# kernel_job's FC NTK spec (first layer w_var 1 on the raw pixels, ReLU, w_var 2 after)
FC_NTK_SPEC = {"activation": "relu", "w_var": 2.0, "b_var": 0.0, "first_w_var": 1.0,
               "first_b_var": 0.0}
_ITEMSIZE = {"float32": 4, "float64": 8}
_FC_ROWS, _FC_COLS = 64, 1024  # the FC probe's panel (kernel_sweep tiles it by 128)
_CHOL_N, _CHOL_COLS = 1024, 10  # the fit probe: about the paper's largest n_train (1000)


def _pixels_per_pair(shape: dict[str, Any]) -> int:
    """Entries of one pair's kernel tensor: P^2 in the full layout (a GAP readout needs
    the off-diagonal spatial covariance all the way), P on the spatial diagonal."""
    p = shape["image"][1] * shape["image"][2]
    return p * p if shape["readout"] == "gap" else p


def kernel_cost(shape: dict[str, Any]) -> dict[str, float]:
    depth, heads = max(shape["depths"]), len(shape["depths"])
    if shape["net"] == "fc":
        entry = 2.0 * shape["d"] + 30.0 * depth + 4.0 * heads
    else:
        # per layer and entry: the joint f x f shift sums of NNGP and NTK, the ReLU pass;
        # per depth read: the readout (a mean over the pair's tensor)
        entry = _pixels_per_pair(shape) * (depth * (4.0 * shape["filter_size"] ** 2 + 30.0)
                                           + 4.0 * heads)
    return {"entry": entry, "chol_flop": 1.0}


def kernel_shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    # the recursion's depth: time per entry is linear in it (the tile, i.e. the
    # per-entry overheads and the per-pixel tensors, stays the job's)
    depths = tuple(d for d in shape["depths"] if d <= max(shape["depths"]) // 2)
    return {**shape, "depths": depths} if depths else None


def _time_fit(gen: np.random.Generator) -> float:
    """Seconds per flop of kernel_regression_fit (float64 Cholesky + solves)."""
    from depthlab.kernels.regression import kernel_regression_fit

    n = _CHOL_N
    a = gen.standard_normal((n, n))
    g = a @ a.T / n + np.eye(n)
    y = gen.standard_normal((n, _CHOL_COLS))
    kernel_regression_fit(g[:128, :128].copy(), y[:128], 1e-10)  # warm-up
    t = K.timed(kernel_regression_fit, g.copy(), y, 1e-10)
    return t / (n**3 / 3 + 2 * n * n * _CHOL_COLS)


def _repeat_timed(fn, min_s: float = 0.3) -> float:
    """Mean seconds of ``fn()``, repeated while the total is under ``min_s`` (timer noise)."""
    t, runs = K.timed(fn), 1
    while t < min_s and runs < 50:
        t += K.timed(fn)
        runs += 1
    return t / runs


def kernel_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    gen = np.random.default_rng(0)
    depths = list(shape["depths"])
    if shape["net"] == "fc":
        from depthlab.kernels.layers import kernel_sweep

        xa = gen.standard_normal((_FC_ROWS, shape["d"]))
        xb = gen.standard_normal((_FC_COLS, shape["d"]))
        kernel_sweep(FC_NTK_SPEC, depths[:1], xa[:8], xb[:64], n_threads=1)  # warm-up
        t = _repeat_timed(lambda: kernel_sweep(FC_NTK_SPEC, depths, xa, xb, n_threads=1))
        entry = t / (_FC_ROWS * _FC_COLS)
    else:
        from depthlab.kernels.conv import conv_sweep

        spec = _conv_spec(shape)
        e = shape["tile"]
        x = gen.standard_normal((2 * e, *shape["image"])).astype(shape["dtype"])
        conv_sweep(spec, depths[:1], x[:1], x[e:e + 1], n_threads=1, device="cpu")  # warm-up
        # one off-diagonal tile of the job's edge (most of a Gram's tiles), every depth
        t = _repeat_timed(lambda: conv_sweep(spec, depths, x[:e], x[e:], n_threads=1,
                                             device="cpu"))
        entry = t / (e * e)
    return {"entry": entry, "chol_flop": _time_fit(gen)}


def _conv_spec(shape: dict[str, Any]) -> dict[str, Any]:
    """kernel_job's CNTK spec (runs.kernel_job), on the CPU."""
    return {"architecture": "conv", "activation": "relu", "w_var": 2.0, "b_var": 0.0,
            "first_w_var": 1.0, "image_shape": list(shape["image"]),
            "filter_size": shape["filter_size"], "padding": shape["padding"],
            "readout": shape["readout"], "fix_first": shape["fix"], "fix_last": shape["fix"],
            "dtype": shape["dtype"], "device": "cpu"}


def kernel_memory(s: dict[str, Any]) -> float:
    heads = len(s["depths"])
    if s["net"] == "fc":
        # kernel_sweep's 128 x 128 tiles (a few float64 buffers) and the panel's Grams
        return (16 * 128 * 128 * 8 + heads * 2 * _FC_ROWS * _FC_COLS * 8) / K.MB
    # the tile's per-pixel covariance buffers (the library pools about 16 of them, the
    # memory budget that sets the tile edge) and its Grams at every depth read
    e = s["tile"]
    return (16 * e * e * _pixels_per_pair(s) * _ITEMSIZE[s["dtype"]]
            + heads * 2 * e * e * 8) / K.MB


# --------------------------------------------------------------------------- linear nets
# nichani_linear (scripts/linear.py -> runs.linear_job): for every depth, every seed in
# turn: build_linear, train_linear (full-batch Adam, float64, until loss_tol or
# max_steps), the operator by the identity trick and its SVD. A ``step`` here is one Adam
# step of each of the job's nets (one per depth): the job runs every depth for every seed.


def _linear_macs(shape: dict[str, Any], depth: int) -> float:
    """Multiply-adds of one sample through the depth-``depth`` net."""
    if shape["task"] == "toeplitz_ae":
        return depth * shape["dim"] ** 2
    c, h, w = shape["image"]
    chans = [c, *([shape["width"]] * (depth - 1)), shape["out"]]
    pairs = sum(a * b for a, b in zip(chans[:-1], chans[1:], strict=True))
    return h * w * shape["kernel_size"] ** 2 * pairs


def linear_cost(shape: dict[str, Any]) -> dict[str, float]:
    step = sum(6.0 * shape["n"] * _linear_macs(shape, d) for d in shape["depths"])
    d_in = _in_dim(shape)
    fixed = sum(2.0 * d_in * _linear_macs(shape, d) for d in shape["depths"])
    return {"step": step, "fixed": fixed}


def _in_dim(shape: dict[str, Any]) -> int:
    return shape["dim"] if shape["task"] == "toeplitz_ae" else int(np.prod(shape["image"]))


def _in_shape(shape: dict[str, Any]) -> tuple[int, ...]:
    return (shape["dim"],) if shape["task"] == "toeplitz_ae" else tuple(shape["image"])


def linear_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    from depthlab.studies.nichani.models import linear_operator, stable_rank
    from depthlab.studies.nichani.runs import build_linear, train_linear

    gen = np.random.default_rng(0)
    in_shape = _in_shape(shape)
    x = gen.standard_normal((shape["n"], *in_shape))
    y = np.where(np.arange(shape["n"]) % 2, 1.0, -1.0) if shape["task"] == "toy" else x
    task = {"task": shape["task"], "width": shape.get("width", 0),
            "kernel_size": shape.get("kernel_size", 3), "padding": shape.get("padding", "zero"),
            "init": "xavier_normal"}
    # loss_tol -1: never converged, every step is taken; a small lr keeps the arithmetic
    # finite (the step's cost does not depend on the values)
    lr, tol = 1e-4, -1.0
    step = fixed = 0.0
    for depth in shape["depths"]:
        fixed += K.timed(build_linear, task, depth, 0, in_shape)
        model = build_linear(task, depth, 0, in_shape)
        train_linear(model, x, y, lr, tol, 1)  # warm-up
        t_one = K.timed(train_linear, model, x, y, lr, tol, 1)
        kd = int(min(200, max(k, 0.1 / max(t_one, 1e-6))))
        t_many = K.timed(train_linear, model, x, y, lr, tol, 1 + kd)
        step += max(t_many - t_one, 1e-9) / kd

    # the final measures (the operator by the identity trick: d basis inputs through the
    # net, then its SVD) of the deepest net, scaled to every depth by the layer count:
    # the deep conv_ae's alone take seconds
    depths = shape["depths"]
    deepest = build_linear(task, max(depths), 0, in_shape)

    def finish():
        w = linear_operator(deepest, in_shape)
        np.linalg.norm(w)
        stable_rank(w)

    fixed += K.timed(finish) * sum(depths) / max(depths)
    return {"step": step, "fixed": fixed}


def linear_memory(s: dict[str, Any]) -> float:
    # float64: the deepest net's activations kept for the backward pass, and the
    # identity-trick batch (d basis inputs) through it without grad: two activations and
    # the CPU convolution's unfolded input (d x C k^2 x HW), the largest part
    deep = max(s["depths"])
    d = _in_dim(s)
    if s["task"] == "toeplitz_ae":
        return (s["n"] * s["dim"] * deep + 2 * d * d) * 8 / K.MB
    c, h, w = s["image"]
    per_layer = max(s["width"], c) * h * w
    unfold = max(s["width"], c) * s["kernel_size"] ** 2 * h * w
    return (3 * s["n"] * per_layer * deep + d * (2 * per_layer + unfold) + d * d) * 8 / K.MB


PROBES = {
    "nichani_kernel": K.Probe(kernel_measure, kernel_cost, kernel_shrink, kernel_memory,
                              dtype="float32"),
    "nichani_linear": K.Probe(linear_measure, linear_cost, memory=linear_memory,
                              dtype="float64"),
}


# --------------------------------------------------------------------------- its rules


def _data(job: JobInfo, config: Mapping[str, Any]) -> Mapping[str, Any]:
    data = config["studies"][job.wildcards["study"]]["data"]
    # `data.dataset` names a dataset of the config's `datasets` block; the config check
    # copies its parameters (classes, image_size, n per class) into `data`, but the probe
    # plans from the raw config file: read them from the named block
    if "dataset" in data:
        ds = dataset(config, data["dataset"])
        # the generator's size where the block names none (depthlab.data.images): digits
        # are 8x8, CIFAR-10 / ImageNet32 are downsampled to image_size, 16 by default
        size = 8 if ds.get("source") == "digits" else int(ds.get("image_size", 16))
        return {**ds, "image_size": size, **data}
    return data


def _shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    data, p = _data(job, config), job.params
    job_ = p["job"]
    k = len(data["classes"])
    common = dict(image_size=int(data["image_size"]), n_classes=k)
    if job_["model"] == "resnet":
        tr = p["resnets"]["training"]
        return dict(model="resnet", blocks=tuple(job_["blocks"]), width=int(job_["width"]),
                    kernel_size=int(job_["kernel_size"]), batch=int(tr["batch_size"]),
                    **common)
    fc = p["fully_conv"]
    width = int(fc["fc_width"]) if job_["model"] != "fully_conv" else int(fc["width"])
    return dict(model=job_["model"], depth=int(job_.get("depth", 1)), width=width,
                kernel_size=int(fc["kernel_size"]), batch=int(fc["training"]["batch_size"]),
                **common)


def _work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    data = _data(job, config)
    k = len(data["classes"])
    n = k * int(data["n_train_per_class"])
    nt = k * int(data["n_test_per_class"])
    job_ = job.params["job"]
    tr = (job.params["resnets"] if job_["model"] == "resnet"
          else job.params["fully_conv"])["training"]
    b = int(tr["batch_size"])
    seeds = len(job_["seeds"])
    epochs = int(tr["max_epochs"])
    # per epoch: ceil(N/B) steps (each carrying its share of the train-set evaluation)
    # and the test-set evaluation, counted as forward-only at 1/3 of a step per batch
    per_epoch = math.ceil(n / b) + math.ceil(nt / b) / 3.0
    return {"fixed": float(seeds), "step": seeds * epochs * per_epoch}


def _data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    data = _data(job, config)
    k = len(data["classes"])
    n = k * (int(data["n_train_per_class"]) + int(data["n_test_per_class"]))
    return n * 3 * int(data["image_size"]) ** 2 * 8 / K.MB


def _train_stops_early(job: JobInfo) -> bool:
    # counted at max_epochs; the Fully-Conv / FC trainer stops at interpolation
    return True


def _resnet_stops_early(job: JobInfo) -> bool:
    tr = job.params["resnets"]["training"]
    return bool(tr.get("stop_at_interpolation", True))


# ---- nichani_kernel


def _image(data: Mapping[str, Any]) -> tuple[int, int, int]:
    """(C, H, W) of a class_images dataset: digits are 1 x 8 x 8, CIFAR-10 / ImageNet32
    3 x image_size^2 (``_data`` fills the size)."""
    size = int(data["image_size"])
    return (1 if data.get("source") == "digits" else 3, size, size)


def _kernel_rows(job: JobInfo, config: Mapping[str, Any]) -> tuple[int, int, int]:
    """(n_train, n_test, classes) of a kernel job: kernel_job keeps the first
    ``train_per_class`` / ``test_per_class`` rows of every class (the variant's, else the
    kernels block's, else the whole dataset)."""
    data, variant, kcfg = _data(job, config), job.params["variant"], job.params["kernels"]
    k = len(data["classes"])
    tr = variant.get("train_per_class") or kcfg.get("train_per_class") \
        or data["n_train_per_class"]
    te = variant.get("test_per_class") or kcfg.get("test_per_class") \
        or data["n_test_per_class"]
    return k * int(tr), k * int(te), k


def _kernel_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    from depthlab.kernels.conv import DEFAULT_MEMORY, _tile_edge

    variant, kcfg = job.params["variant"], job.params["kernels"]
    depths = tuple(sorted({int(d) for d in variant["depths"]}))
    image = _image(_data(job, config))
    if variant["name"] == "fc_ntk":  # numpy float64 on the flattened images, whatever dtype
        return dict(net="fc", d=int(np.prod(image)), depths=depths, dtype="float64")
    n, _, _ = _kernel_rows(job, config)
    dtype = str(kcfg["dtype"])
    # the tile edge conv_sweep uses (its default memory budget: kernel_job passes none),
    # at most the Gram's side
    edge = _tile_edge(image[1] * image[2], variant["readout"] == "gap", _ITEMSIZE[dtype],
                      DEFAULT_MEMORY)
    return dict(net="cntk", readout=str(variant["readout"]), fix=bool(variant["fix"]),
                image=image, filter_size=int(kcfg["filter_size"]),
                padding=str(kcfg["padding"]), depths=depths, dtype=dtype,
                tile=int(min(edge, n)))


def _kernel_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    n, nt, k = _kernel_rows(job, config)
    n_depths = len(set(job.params["variant"]["depths"]))
    # the symmetric train Gram's upper triangle (diagonal tiles hold i <= j) and the full
    # test x train panel, every depth from one recursion per entry; per depth one fit
    # (Cholesky n^3/3, two triangular solves with the k targets, predictions on the test
    # and train rows; a jitter retry, rare, repeats the Cholesky: not counted)
    fit = n**3 / 3 + 2 * n * n * k + 2 * (nt + n) * n * k
    return {"fixed": 1.0, "entry": n * (n + 1) / 2 + nt * n, "chol_flop": n_depths * fit}


def _kernel_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    data = _data(job, config)
    n, nt, _ = _kernel_rows(job, config)
    d = int(np.prod(_image(data)))
    k = len(data["classes"])
    rows = k * (int(data["n_train_per_class"]) + int(data["n_test_per_class"]))
    n_depths = len(set(job.params["variant"]["depths"]))
    grams = n_depths * 2 * (n * n + nt * n)  # (NNGP, NTK) x (train x train, test x train)
    # the dataset file's arrays (float64), the kept rows and their tensors, every Gram
    # (float64), and the fit's two n x n copies (ntk.copy(), its Fortran-order work array)
    return (rows * d * 8 + (n + nt) * d * 16 + grams * 8 + 2 * n * n * 8) / K.MB


# ---- nichani_linear


def _task(job: JobInfo) -> Mapping[str, Any]:
    return job.params["task"]  # the validated task: the study's defaults filled in


def _linear_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    task = _task(job)
    depths = tuple(int(d) for d in task["depths"])
    kind = str(task["task"])
    if kind == "toeplitz_ae":  # n_images Gaussian vectors of length dim
        return dict(task=kind, dim=int(task["dim"]), n=int(task["n_images"]), depths=depths,
                    dtype="float64")
    if kind == "toy":  # pixel_toy: 6 x 6 RGB, n_per_class of each label; one output
        image, n, out = (3, 6, 6), 2 * int(task["n_per_class"]), 1
    else:  # conv_ae: its image_sample dataset's images, reproduced
        ds = dataset(config, task["dataset"])
        digits = ds.get("source") == "digits"
        size = 8 if digits else int(ds.get("image_size", 32))
        image, n = (1 if digits else 3, size, size), int(ds["n_images"])
        out = image[0]
    return dict(task=kind, image=image, n=n, out=out, width=int(task["width"]),
                kernel_size=int(task["kernel_size"]), padding=str(task["padding"]),
                depths=depths, dtype="float64")


def _linear_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    task = _task(job)
    seeds = len(task["seeds"])
    # every seed runs every depth's net to max_steps at most (a step unit: one step of
    # each depth's net); the fixed part (build, operator, SVD) once per seed and depth
    return {"fixed": float(seeds), "step": float(seeds * int(task["max_steps"]))}


def _linear_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    s = _linear_shape(job, config)
    d = _in_dim(s)
    d_out = 1 if s["task"] == "toy" else d
    rows = s["n"] + (int(_task(job)["n_test"]) if s["task"] == "toy" else 0)
    # inputs (and targets), the min-norm operator, the net's operator and its SVD copy
    return (2 * rows * d * 8 + 3 * d_out * d * 8) / K.MB


def _linear_stops_early(job: JobInfo) -> bool:
    return True  # counted at max_steps; train_linear stops at loss_tol


RULES: dict[str, RuleProbe] = {
    "nichani_train": RuleProbe("nichani", _shape, _work, bound=_train_stops_early,
                               data_mb=_data_mb),
    "nichani_resnet": RuleProbe("nichani", _shape, _work, bound=_resnet_stops_early,
                                data_mb=_data_mb),
    # no checkpoints: a killed kernel or linear job starts over
    "nichani_kernel": RuleProbe("nichani_kernel", _kernel_shape, _kernel_work,
                                data_mb=_kernel_data_mb, checkpointed=lambda job: False),
    "nichani_linear": RuleProbe("nichani_linear", _linear_shape, _linear_work,
                                bound=_linear_stops_early, data_mb=_linear_data_mb,
                                checkpointed=lambda job: False),
}
