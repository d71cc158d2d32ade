"""How ``make probe-paper`` plans the Lee jobs (rules lee_train, lee_gram, lee_kernel,
lee_toy, lee_ntk_spread_job): the probes of Lee's own code, found by name by
:data:`depthlab.probe.kinds.KINDS`, and ``RULES``, how each job of those rules is planned
(:class:`depthlab.probe.shapes.RuleProbe`: its shape, work, data size, checkpointing).

Probe kinds (``PROBES``; inputs are synthetic stand-ins of the real shape):

* ``lee_train``: one training job of :func:`depthlab.studies.lee.runs.train_job`. Its MLP
  jobs run the shared packed trainer, so they are measured by the shared ``packed_fc``
  probe's own functions (:func:`depthlab.probe.kinds.packed_measure`, units ``step_M{m}``,
  ``evalrow_M{m}``); a RuleProbe names one kind per rule, and lee_train also has CNN jobs,
  hence this kind dispatching on the shape's ``arch``. The CNN jobs run
  :func:`depthlab.training.module.train_module` on
  :func:`depthlab.studies.lee.cnn.narrow_cnn`: units ``step`` (one mini-batch) and
  ``evalrow`` (one sample through the per-epoch train / test evaluation). Both shrink
  along depth first (every hidden layer costs the same: seconds are linear in depth,
  overhead included), then batch (then width for the MLP).
* ``lee_limit_gram``: :func:`depthlab.studies.lee.gram.write_limit_gram` (closed-form
  Theta~^inf in row blocks and their HDF5 writes), unit ``entry`` (one computed entry).
* ``lee_toy``: :func:`depthlab.studies.lee.runs.toy_job`, unit ``step`` (one full-batch GD
  step of the packed toy nets) and ``fixed`` (init, the four empirical NTKs, the limit
  kernel GD); shrinks along depth.
* ``lee_spread``: :func:`depthlab.studies.lee.runs.spread_job`, unit ``layer`` (the draws
  and products of one layer of one seed's init kernel).

lee_kernel runs the shared Cholesky solve (``kernel_regression_fit``) on the N x N Gram:
the shared ``cholesky`` kind, with its work counted in flops.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from depthlab.probe import kinds as K
from depthlab.probe.jobs import JobInfo
from depthlab.probe.shapes import RuleProbe, dataset, packed_shape
from depthlab.studies.lee import grid as lee_grid

_BYTES = {"float32": 4, "float64": 8}
_MIN_DEPTH = 8  # depth shrinks stop here: the first and last layers are not yet dominant
_MIN_BATCH = 8

# --------------------------------------------------------------------------- lee_train: CNN


def _cnn_macs(s: dict[str, Any]) -> float:
    """Multiply-adds of one sample through the narrow CNN: the average pool, a 3x3 conv
    1 -> c, depth - 1 convs c -> c and the last c -> K (zero padding: side^2 positions)."""
    side2, c = s["side"] ** 2, s["channels"]
    convs = 9 * side2 * (c + (s["depth"] - 1) * c * c + c * s["n_out"])
    return float(s["image_side"] ** 2 + convs)


def _cnn_cost(s: dict[str, Any]) -> dict[str, float]:
    macs = _cnn_macs(s)
    # forward 2 flops per MAC, backward 4; the evaluation is forward only
    return {"step": 6.0 * s["batch"] * macs, "evalrow": 2.0 * macs}


def _cnn_shrink(s: dict[str, Any]) -> dict[str, Any] | None:
    if s["depth"] > _MIN_DEPTH:
        return {**s, "depth": s["depth"] // 2}
    if s["batch"] > _MIN_BATCH:
        return {**s, "batch": s["batch"] // 2}
    return None


def _cnn_net(s: dict[str, Any]):
    import torch

    from depthlab.studies.lee.cnn import deep_narrow_channels, narrow_cnn
    from depthlab.studies.lee.runs import _two_class

    dtype = torch.float64 if s["dtype"] == "float64" else torch.float32
    # the deep-narrow init keeps every activation O(C_L): no denormal or NaN arithmetic in
    # the timed steps (any init costs the same flops); another channel count needs another
    init = "deep_narrow" if s["channels"] == deep_narrow_channels(1, s["n_out"]) else \
        "he_uniform"
    params = {"C_L": 1.0, "rho": 1 / 3, "beta": 1.0} if init == "deep_narrow" else None
    net = narrow_cnn((1, s["image_side"], s["image_side"]), s["n_out"], s["depth"], init=init,
                     init_params=params, channels=s["channels"], pool=s["pool"], seed=0,
                     dtype=dtype)
    return _two_class(net) if s["scalar"] else net


def _cnn_measure(s: dict[str, Any], k: int) -> dict[str, float]:
    from depthlab.training.module import ModuleTrainConfig, train_module

    b = s["batch"]
    classes = 2 if s["scalar"] else s["n_out"]
    # built once (train_module trains it in place, at a tiny lr); its build is set-up
    # (the Python loop over the layers' filters)
    t_build = K.timed(_cnn_net, s)
    model = _cnn_net(s)
    cfg = ModuleTrainConfig(lr=1e-6, batch_size=b, max_epochs=1, loss="mse",
                            divergence_loss=1e30)
    gen = np.random.default_rng(0)
    np_dtype = np.float64 if s["dtype"] == "float64" else np.float32
    x = y = None

    def epoch(n_train: int, n_test: int) -> float:
        # one epoch: ceil(n_train / b) steps, then the train and test set evaluations; the
        # faster of two runs (a run slowed by other load on the machine is not the cost)
        return min(K.timed(train_module, model, x[:n_train], y[:n_train], x[:n_test],
                           y[:n_test], cfg, device="cpu") for _ in range(2))

    def inputs(rows: int) -> None:
        nonlocal x, y
        x = gen.random((rows, s["image_side"] ** 2)).astype(np_dtype)
        y = np.arange(rows) % classes

    inputs(b)
    t0 = K.timed(train_module, model, x, y, x, y, cfg, device="cpu")  # warm-up
    k = int(min(50, max(k, 0.3 / max(t0, 1e-6))))  # tiny nets: time more steps
    inputs((1 + k) * b)
    t1 = epoch(b, b)  # 1 step + 2b evaluated rows + set-up
    t_eval = epoch(b, (1 + k) * b)  # + k b evaluated rows
    t_step = epoch((1 + k) * b, b)  # + k steps + k b evaluated rows
    evalrow = max(t_eval - t1, 1e-12) / (k * b)
    step = max((t_step - t1) / k - b * evalrow, 1e-12)
    return {"step": step, "evalrow": evalrow,
            "fixed": t_build + max(t1 - step - 2 * b * evalrow, 0.0)}


def _cnn_memory(s: dict[str, Any]) -> float:
    # kept for the backward pass: each layer's conv output and its ReLU; parameters with
    # their gradients and a checkpoint copy
    acts = 2 * s["batch"] * s["channels"] * s["side"] ** 2 * s["depth"]
    params = 9 * s["channels"] ** 2 * s["depth"]
    return (acts + 3 * params) * _BYTES[s["dtype"]] / K.MB


# --------------------------------------------------------------------------- lee_train: MLP
# the shared packed probe's functions; the shrink goes along depth first (linear), then
# batch, then the shared packed shrink (width)


def _mlp_shrink(s: dict[str, Any]) -> dict[str, Any] | None:
    if s["depth"] > _MIN_DEPTH:
        return {**s, "depth": s["depth"] // 2}
    if s["batch"] > 32:
        return {**s, "batch": s["batch"] // 2}
    return K.packed_shrink(s)


def _train_cost(s: dict[str, Any]) -> dict[str, float]:
    return _cnn_cost(s) if s["arch"] == "cnn" else K.packed_cost(s)


def _train_shrink(s: dict[str, Any]) -> dict[str, Any] | None:
    return _cnn_shrink(s) if s["arch"] == "cnn" else _mlp_shrink(s)


def _train_measure(s: dict[str, Any], k: int) -> dict[str, float]:
    return _cnn_measure(s, k) if s["arch"] == "cnn" else K.packed_measure(s, k)


def _train_memory(s: dict[str, Any]) -> float:
    return _cnn_memory(s) if s["arch"] == "cnn" else K.packed_mem(s)


# --------------------------------------------------------------------------- Gram


def _gram_cost(s: dict[str, Any]) -> dict[str, float]:
    # x.x' (2d) and the arc-cosine kernel's ~10 elementwise passes (arccos, sin, cos, sqrt)
    return {"entry": 2.0 * s["d"] + 60.0}


def _gram_measure(s: dict[str, Any], k: int) -> dict[str, float]:
    from depthlab.studies.lee.gram import write_limit_gram

    bs = s["block_size"]
    n, nt = bs, max(1, bs // 4)  # one block of train rows, a quarter block of test rows
    gen = np.random.default_rng(0)
    x, xt = gen.random((n, s["d"])), gen.random((nt, s["d"]))
    with tempfile.TemporaryDirectory() as tmp:
        write_limit_gram(Path(tmp) / "w.h5", x[:32], xt[:8], n_out=10, rho=1.0, beta=1.0,
                         block_size=16)  # warm-up
        t = K.timed(write_limit_gram, Path(tmp) / "g.h5", x, xt, n_out=10, rho=1.0,
                    beta=1.0, block_size=bs)
    return {"entry": t / _gram_entries(n, nt, bs)}


def _gram_memory(s: dict[str, Any]) -> float:
    # the probe's own row block: the closed form's 9 temporaries and one transposed copy
    # (the job's full-width blocks are its data_mb)
    return 10 * s["block_size"] ** 2 * 8 / K.MB


def _gram_entries(n: int, nt: int, bs: int) -> float:
    """Entries write_limit_gram computes: each train row block against the columns from its
    first row on (upper part, mirrored into the file), and every test row against train."""
    upper = sum((min(r0 + bs, n) - r0) * (n - r0) for r0 in range(0, n, bs))
    return float(upper + nt * n)


# --------------------------------------------------------------------------- toy


def _toy_cost(s: dict[str, Any]) -> dict[str, float]:
    p = K.fc_params(2, s["depth"], 4, 1)
    m, n = s["members"], 200  # toy_inputs: 200 points
    # a GD step of every member; set-up: two full 200 x 200 empirical NTKs (per layer the
    # activation and backward-signal products), the rows are small
    return {"step": 6.0 * m * n * p, "fixed": 2.0 * m * n * n * 20 * s["depth"]}


def _toy_shrink(s: dict[str, Any]) -> dict[str, Any] | None:
    if s["depth"] > 2 * _MIN_DEPTH:
        return {**s, "depth": s["depth"] // 2}
    return None


def _toy_measure(s: dict[str, Any], k: int) -> dict[str, float]:
    from depthlab.studies.lee.runs import toy_job

    toy = {"steps": 1, "seeds": list(range(s["members"])), "device": "cpu",
           "c_over_d2": 5e-4, "tau": 0.5, "record_every": 10,
           "accumulation_gammas": [0.3, math.pi / 4, 1.3]}
    toy_job(min(s["depth"], 10), toy)  # warm-up
    t1 = K.timed(toy_job, s["depth"], toy)
    n2 = 1 + 20 * k  # a step is small next to the set-up: time more of them
    t2 = K.timed(toy_job, s["depth"], {**toy, "steps": n2})
    step = max(t2 - t1, 1e-9) / (n2 - 1)
    return {"step": step, "fixed": max(t1 - step, 0.0)}


def _toy_memory(s: dict[str, Any]) -> float:
    # float64: parameters (and the step's activations) of the members over 200 points, the
    # per-layer activations and backward signals the empirical NTK keeps
    return (3 * s["members"] * K.fc_params(2, s["depth"], 4, 1)
            + 2 * s["members"] * 200 * 4 * s["depth"]) * 8 / K.MB


# --------------------------------------------------------------------------- spread


def _spread_measure(s: dict[str, Any], k: int) -> dict[str, float]:
    from depthlab.studies.lee.runs import spread_job

    spread_job({"depths": [10], "seeds": 1, "C_L": 1.0})  # warm-up
    depth, seeds = 400 * k, 2
    t = K.timed(spread_job, {"depths": [depth], "seeds": seeds, "C_L": 1.0})
    return {"layer": t / (depth * seeds)}


def _spread_cost(s: dict[str, Any]) -> dict[str, float]:
    # a Python loop of two small draws per layer: a constant, only for the budget
    return {"layer": 50.0 * s["d"]}


PROBES: dict[str, K.Probe] = {
    "lee_train": K.Probe(_train_measure, _train_cost, _train_shrink, _train_memory),
    "lee_limit_gram": K.Probe(_gram_measure, _gram_cost, memory=_gram_memory,
                              dtype="float64"),
    "lee_toy": K.Probe(_toy_measure, _toy_cost, _toy_shrink, _toy_memory, dtype="float64"),
    "lee_spread": K.Probe(_spread_measure, _spread_cost, dtype="float64"),
}


# --------------------------------------------------------------------------- its rules


def _study(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    """The job's study with its data block completed from the config's named dataset (the
    raw config's study block names it; params, where they carry the data block, win)."""
    raw = config["studies"][job.wildcards["study"]]
    study = job.params.get("study") or {}
    data = {**raw["data"], **(study.get("data") or {})}
    return {**raw, **study, "data": {**dataset(config, data["dataset"]), **data}}


def _sizes(study: Mapping[str, Any]) -> tuple[int, int, int]:
    data = study["data"]
    return int(data["n_train"]), int(data["n_test"]), lee_grid.input_dim(study)


def _train_grid(job: JobInfo) -> dict[str, Any]:
    return job.params["study"]["grids"][0]  # the job's one grid (grid.train_slice)


def _lee_train_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    study, g = _study(job, config), _train_grid(job)
    tr = study["training"]
    depth = int(job.params["members"][0]["depth"])
    if lee_grid.arch(g) == "cnn":
        side = lee_grid.image_side(study)
        return {"arch": "cnn", "depth": depth, "channels": lee_grid.width(study, g),
                "side": side // int(g.get("pool", 1)), "image_side": side,
                "pool": int(g.get("pool", 1)), "batch": int(tr["batch_size"]),
                "n_out": lee_grid.n_outputs(study),
                "scalar": bool(study["data"].get("scalar_target")),
                "dtype": tr.get("dtype", "float32")}
    _, _, d = _sizes(study)
    # train_job: MSE on one-hot targets, ReLU; a lone member is padded to a pack of 2
    settings = {**tr, "loss": "mse", "activation": "relu"}
    return {"arch": "mlp", **packed_shape(settings, d, depth, lee_grid.width(study, g),
                                          lee_grid.n_classes(study)),
            "M": max(2, len(job.params["members"]))}


def _lee_train_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    study, g = _study(job, config), _train_grid(job)
    tr = study["training"]
    n, nt, _ = _sizes(study)
    epochs, b = int(g["epochs"]), int(tr["batch_size"])
    steps = epochs * math.ceil(n / b)
    members = len(job.params["members"])
    if lee_grid.arch(g) == "cnn":
        # members one after another; per epoch the full train and test evaluation, then
        # the final test predictions
        return {"fixed": float(members), "step": float(members * steps),
                "evalrow": float(members * (epochs * (n + nt) + nt))}
    m = max(2, members)
    every = int(tr["eval_every"])
    # packed: the train set checked every epoch (check_every 1); the test set every
    # eval_every epochs and at the last, at the members' finish, and the final predictions
    tests = epochs // every + (epochs % every != 0) + 2
    return {"fixed": 1.0, f"step_M{m}": float(steps),
            f"evalrow_M{m}": float(epochs * n + tests * nt)}


def _lee_train_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    study = _study(job, config)
    n, nt, d = _sizes(study)
    by = _BYTES[study["training"].get("dtype", "float32")]
    k = lee_grid.n_classes(study)
    # the float64 arrays read, their training-dtype copy, and the one-hot targets
    return (n + nt) * (d * (8 + by) + k * by) / K.MB


def _stops_early(job: JobInfo) -> bool:
    # counted at the grid's epochs: both trainers stop at zero training error (or divergence)
    return True


def _train_checkpointed(job: JobInfo) -> bool:
    # both trainers write `checkpoint` every checkpoint_every epochs and resume from it
    tr = job.params["study"]["training"]
    return bool(job.params.get("checkpoint")) and int(tr.get("checkpoint_every") or 0) > 0


def _gram_block(job: JobInfo, config: Mapping[str, Any]) -> int:
    n, _, _ = _sizes(_study(job, config))
    return min(int(job.params["block_size"]), n)


def _lee_gram_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    _, _, d = _sizes(_study(job, config))
    return {"d": d, "block_size": _gram_block(job, config)}


def _lee_gram_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    n, nt, _ = _sizes(_study(job, config))
    return {"fixed": 1.0, "entry": _gram_entries(n, nt, int(job.params["block_size"]))}


def _lee_gram_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    n, nt, d = _sizes(_study(job, config))
    bs = _gram_block(job, config)
    # the first row block spans all n columns: limit_kernel's closed form holds 9 arrays of
    # its output's size at its peak (measured), and the writer one transposed copy; inputs
    return (10 * bs * n * 8 + (n + nt) * d * 8) / K.MB


def _lee_kernel_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    # a dense N x N solve: one probe times the BLAS rate (the shared kernel_regression's)
    return {"dtype": "float64"}


def _lee_kernel_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    study = _study(job, config)
    n, nt, _ = _sizes(study)
    k = lee_grid.n_classes(study)
    sub = min(int(study["training"]["stability_subset"]), n)
    # Cholesky n^3/3 and two triangular solves per one-hot column; lambda_max of the
    # stability block (eigvalsh: its tridiagonal reduction, 4/3 sub^3); the streamed
    # test x train prediction
    return {"fixed": 1.0,
            "chol_flop": n**3 / 3 + 2 * k * n * n + 4 * sub**3 / 3 + 2 * nt * n * k}


def _lee_kernel_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    n, nt, d = _sizes(_study(job, config))
    bs = min(int(job.params["block_size"]), nt)
    # the N x N Gram read and factorised in place, one test row block, the inputs
    return (8 * n * n + 8 * bs * n + (n + nt) * d * 8) / K.MB


def _toy(job: JobInfo) -> Mapping[str, Any]:
    return job.params["study"]["toy"]


def _lee_toy_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    # float64 nets of width 4 on the 200 toy points; a lone seed is padded to 2 rows
    return {"depth": int(job.wildcards["depth"]), "members": max(2, len(_toy(job)["seeds"]))}


def _lee_toy_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    return {"fixed": 1.0, "step": float(_toy(job)["steps"])}


def _lee_spread_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    return {"d": 2}  # the toy inputs: only the depth and seed counts vary, as work


def _lee_spread_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    spread = job.params["study"]["spread"]
    return {"fixed": 1.0,
            "layer": float(int(spread["seeds"]) * sum(int(d) for d in spread["depths"]))}


RULES: dict[str, RuleProbe] = {
    "lee_train": RuleProbe("lee_train", _lee_train_shape, _lee_train_work, bound=_stops_early,
                           data_mb=_lee_train_data_mb, checkpointed=_train_checkpointed),
    "lee_gram": RuleProbe("lee_limit_gram", _lee_gram_shape, _lee_gram_work,
                          data_mb=_lee_gram_data_mb),
    "lee_kernel": RuleProbe("cholesky", _lee_kernel_shape, _lee_kernel_work,
                            data_mb=_lee_kernel_data_mb),
    "lee_toy": RuleProbe("lee_toy", _lee_toy_shape, _lee_toy_work),
    "lee_ntk_spread_job": RuleProbe("lee_spread", _lee_spread_shape, _lee_spread_work),
}
