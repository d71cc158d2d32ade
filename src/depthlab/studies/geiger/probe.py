"""The probes of Geiger jobs: their :class:`depthlab.probe.kinds.Probe` s, found by name by
:data:`depthlab.probe.kinds.KINDS`, and ``RULES``, how each job of its rules is planned
(:class:`depthlab.probe.shapes.RuleProbe`: its shape, work, data size). Rules planned:

* ``geiger_train`` -- probe kind ``geiger`` (``PROBE``):
  :func:`depthlab.studies.geiger.runs.train_lazy_feature` (the rule's script) capped by its
  own ``max_steps``; units ``step`` and ``fixed``.
* ``geiger_lazy`` -- probe kind ``geiger_lazy`` (``PROBES``):
  :func:`depthlab.studies.geiger.runs.frozen_ntk_prediction`, the frozen-initial-NTK flow of
  one seed. Units ``entry`` (one empirical NTK entry of the train x train and test x train
  Grams: n (n + n_test) a job, exact), ``step`` (one step of the frozen-kernel hinge flow at
  the job's n, counted at the function's own ``max_steps``: a cap the flow stops before
  once every margin is met) and ``fixed``. The Grams are timed through
  ``frozen_ntk_prediction`` itself on a subset of rows (``LAZY_SUBSET``; per entry an upper
  bound: the per-point passes are amortised over fewer entries than in a job), the flow
  step on a synthetic Gram of the real n; the Grams' memory at the real n is modelled.

Inputs are synthetic stand-ins of the real shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from depthlab.probe import kinds as K
from depthlab.probe.jobs import JobInfo
from depthlab.probe.shapes import RuleProbe, dataset


def _macs_per_sample(shape: dict[str, Any]) -> float:
    w, L = shape["width"], shape["depth"]
    if shape["architecture"] == "fc":
        return float(K.fc_params(shape["d"], L, w, 1))
    # setup (B): stride 2 before the first and in the middle hidden conv layers, 3x3 filters
    h, wd = shape["image_shape"] if shape["image_shape"] else (28, 28)
    macs, c_in, side = 0.0, 1, h * wd
    for layer in range(L):
        if layer == 0 or layer == L // 2:
            side /= 4
        macs += 9 * c_in * w * side
        c_in = w
    return macs + w


def cost(shape: dict[str, Any]) -> dict[str, float]:
    return {"step": 6.0 * shape["n_train"] * _macs_per_sample(shape),
            "fixed": 6.0 * (shape.get("ntk_subset") or 256) * _macs_per_sample(shape)}


def shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    # full-batch dynamics: the cost of a step is linear in the training rows (setup B draws
    # an adaptive batch b <= n per step: linear in n is an upper bound there); then width
    if shape["n_train"] > 256:
        return {**shape, "n_train": shape["n_train"] // 2}
    if shape["width"] > 8:
        return {**shape, "width": shape["width"] // 2}
    return None


def measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    from depthlab.studies.geiger.runs import train_lazy_feature

    gen = np.random.default_rng(0)
    n, d = shape["n_train"], shape["d"]
    n_test = max(64, min(n, shape["n_test"]))
    if shape["architecture"] == "cnn":
        xtr, xte = gen.random((n, d)), gen.random((n_test, d))
    else:
        xtr, xte = gen.standard_normal((n, d)), gen.standard_normal((n_test, d))
    ytr, yte = gen.integers(0, 2, n), gen.integers(0, 2, n_test)
    # the initial/final empirical NTK on `ntk_subset` test points is set-up cost, not step
    # cost: probed on at most 64 points and scaled linearly (a bound: see module doc)
    subset = int(shape.get("ntk_subset") or 256)
    probe_subset = min(subset, 64 if shape["architecture"] == "fc" else 16)
    kw = dict(alpha=1.0, width=shape["width"], depth=shape["depth"], seed=0,
              activation=shape["activation"], architecture=shape["architecture"],
              image_shape=shape["image_shape"], mu=shape["mu"], tau=shape["tau"],
              temperature=shape["temperature"], ntk_subset=probe_subset, lazy=False,
              device="cpu")
    # warm-up (one-off lazy initialisation) on a few rows, then the timed pair
    train_lazy_feature(xtr[:32], ytr[:32], xte[:32], yte[:32], max_steps=1,
                       **{**kw, "ntk_subset": 16})
    t1 = K.timed(lambda: train_lazy_feature(xtr, ytr, xte, yte, max_steps=1, **kw))
    t2 = K.timed(lambda: train_lazy_feature(xtr, ytr, xte, yte, max_steps=1 + k, **kw))
    step = max(t2 - t1, 1e-9) / k
    return {"step": step, "fixed": max(t1 - step, 0.0) * subset / probe_subset}


def memory(s: dict[str, Any]) -> float:
    w, L = s["width"], s["depth"]
    if s["architecture"] == "fc":
        per, p = w * L, K.fc_params(s["d"], L, w, 1)  # activations per sample, parameters
    else:
        h, wd = s["image_shape"] if s["image_shape"] else (28, 28)
        side, per = h * wd, 0.0
        for layer in range(L):
            if layer == 0 or layer == L // 2:
                side /= 4
            per += w * side
        p = 9 * w * w * L
    # float64: activations and their gradients, parameters with momentum and w0 copies
    return (4 * s["n_train"] * per + 4 * p) * 8 / K.MB


PROBE = K.Probe(measure, cost, shrink, memory, dtype="float64")


# --------------------------------------------------------------------------- its rules


def _train_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    wc, run = job.wildcards, job.params["run"]
    ds = dataset(config, config["studies"][wc["study"]]["dataset"])
    dyn = run["dynamics"]
    return dict(
        architecture=run["architecture"], activation=wc["activation"],
        depth=int(wc["depth"]), width=int(wc["width"]), n_train=int(run["n_train"]),
        n_test=int(ds["n_test"]), d=int(ds["d"]), image_shape=run["image_shape"],
        temperature=float(dyn.get("temperature") or 0.0), tau=dyn.get("tau"),
        mu=dyn.get("mu"), ntk_subset=dyn.get("ntk_subset"))


def _train_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    return {"fixed": 1.0, "step": float(job.params["run"]["dynamics"]["max_steps"])}


def _train_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    ds = config["datasets"][config["studies"][job.wildcards["study"]]["dataset"]]
    # float64 inputs and their work copy
    return (int(ds["n_train"]) + int(ds["n_test"])) * int(ds["d"]) * 16 / K.MB


def _stops_early(job: JobInfo) -> bool:
    # counted at max_steps; the dynamics stop once every margin is met
    return True


# --------------------------------------------------------------------------- the lazy flow
# Rule geiger_lazy: depthlab.studies.geiger.runs.frozen_ntk_prediction at the job's cell. Its
# cost is two parts of very different shape:
#
# * the empirical NTK Grams of the initial net, train x train (n x n, computed in full and
#   symmetrised) and test x train (row blocks of ntk_block test points against all n): unit
#   ``entry``, n (n + n_test) of them. FC nets take the structured path (per layer two
#   Gram matmuls over the activations and backward signals; the signals of all n training
#   points are recomputed for every test block); the CNN takes NTK-vector products (per
#   32 x 32 block pair a vmapped jvp of 32 tangents through 32 images: about one
#   forward-mode pass of the net per entry);
# * the frozen-kernel hinge flow (kernels.regression.frozen_kernel_dynamics): unit ``step``,
#   one n x n matvec (memory-bound at the real n: the 8 n^2 byte Gram is read once a step)
#   plus O(n) updates, at most the function's own ``max_steps`` (the script passes none);
#   it stops earlier once every margin is met: ``bound``. A bound likely met: on MNIST
#   parity the flow took 157k / 298k / 971k steps at n = 250 / 500 / 1000 (setup A,
#   width 64, depth 5), and setup B (width 8) hit the 5 * 10^6 cap already at n = 125.
#
# ``fixed``: the model's initialisation, the flow's set-up pass over the Gram and the final
# test prediction (one (n_test x n) @ (n x 121) product).

LAZY_SUBSET = {"fc": (1024, 1024), "cnn": (32, 64)}
"""(train rows, test rows) of the Grams the probe times: FC one full test block of the
structured path; CNN one x2 block of 32 training points against 1 + 2 blocks of x1 points:
2 vjps (each about a third of a jvp block: measured at width 16) next to 3 jvp blocks, so
per entry about 1.2x a job's (where about 2 vjps come per 630 jvp blocks)."""


def _lazy_defaults() -> tuple[int, int]:
    """frozen_ntk_prediction's own ``max_steps`` and ``ntk_block`` (the script sets neither)."""
    import inspect

    from depthlab.studies.geiger.runs import frozen_ntk_prediction

    params = inspect.signature(frozen_ntk_prediction).parameters
    return int(params["max_steps"].default), int(params["ntk_block"].default)


def _subset(s: dict[str, Any]) -> tuple[int, int]:
    m, mt = LAZY_SUBSET[s["architecture"]]
    return min(m, s["n_train"]), min(mt, s["n_test"])


def _passes(n: int, n_test: int, block: int) -> int:
    # FC structured signals: the n training points once for the train Gram, then, per test
    # block, the block and all n training points again
    return n + n_test + -(-n_test // block) * n


def _entry_flops(s: dict[str, Any]) -> float:
    """Flops of one NTK entry as the probe measures it (at its subset: the passes and vjps
    it amortises over fewer entries than a job, so an upper bound per entry)."""
    m, mt = _subset(s)
    entries = m * (m + mt)
    if s["architecture"] == "fc":
        w, L = s["width"], s["depth"]
        # per dense layer a.a' (n_in) and delta.delta' (n_out), then the fused multiply-add
        gram = 2.0 * (s["d"] + L * w) + 2.0 * (L * w + 1) + 3.0 * (L + 1)
        passes = _passes(m, mt, _lazy_defaults()[1])
        return gram + 6.0 * K.fc_params(s["d"], L, w, 1) * passes / entries
    # a forward-mode pass (primal + tangent) per entry; one vjp of 32 basis vectors per x2
    # block of 32 points and Gram call (two calls: train x train, test x train), about a
    # third of a jvp block's cost
    vjps = 2 * -(-m // 32) * 32 * 32
    return 4.0 * _macs_per_sample(s) * (1.0 + vjps / (3.0 * entries))


def lazy_cost(s: dict[str, Any]) -> dict[str, float]:
    n, nt = s["n_train"], s["n_test"]
    # "entry" first: the unit whose cost ratio predicts the probe's own time across widths
    return {"entry": _entry_flops(s), "step": 2.0 * n * n + 30.0 * n,
            "fixed": 4.0 * n * n + 2.0 * 121 * nt * n + 2.0 * _macs_per_sample(s)}


def lazy_shrink(s: dict[str, Any]) -> dict[str, Any] | None:
    # the Gram subset is fixed, so width is what sets the probe's time (the CNN's entry cost
    # grows ~ width^2; the subset takes about a second for an FC net of width 128 or a CNN
    # of width 16, 3 s for a CNN of width 32); n_train is kept: the flow step is timed at
    # the real n. The smallest shape is measured first and must fit the 10 s a probe gets
    # at the least (flow part included: 2-4 s); the CNN's conv efficiency still grows from
    # width 16 to 32 (2.8x the time for 3.9x the flops), so extrapolating from 16 is a bound
    if s["width"] > (128 if s["architecture"] == "fc" else 16):
        return {**s, "width": s["width"] // 2}
    return None


def _lazy_inputs(s: dict[str, Any], n: int, n_test: int):
    gen = np.random.default_rng(0)
    draw = gen.random if s["architecture"] == "cnn" else gen.standard_normal
    return (draw((n, s["d"])), gen.integers(0, 2, n), draw((n_test, s["d"])),
            gen.integers(0, 2, n_test))


def _model_kw(s: dict[str, Any]) -> dict[str, Any]:
    shape = tuple(s["image_shape"]) if s["image_shape"] else None
    return dict(width=s["width"], depth=s["depth"], seed=0, activation=s["activation"],
                architecture=s["architecture"], image_shape=shape)


def _time_grams(s: dict[str, Any]) -> tuple[float, float]:
    """Seconds per NTK entry and of the model's initialisation: frozen_ntk_prediction itself
    on the subset with ``max_steps=0`` (both Grams, then the flow stops at once)."""
    from depthlab.studies.geiger.runs import frozen_ntk_prediction, geiger_model

    m, mt = _subset(s)
    xtr, ytr, xte, yte = _lazy_inputs(s, m, mt)
    kw = {**_model_kw(s), "mu": s["mu"], "tau": s["tau"], "device": "cpu"}
    frozen_ntk_prediction(xtr[:8], ytr[:8], xte[:8], yte[:8], max_steps=0, **kw)  # warm-up
    t = K.timed(lambda: frozen_ntk_prediction(xtr, ytr, xte, yte, max_steps=0, **kw))
    mk = _model_kw(s)
    t_init = K.timed(geiger_model, mk["architecture"], s["d"], mk["width"], mk["depth"],
                     activation=mk["activation"], beta=5.0, seed=0,
                     image_shape=mk["image_shape"])
    return max(t - t_init, 1e-9) / (m * (m + mt)), t_init


def _set_hugepages(enabled: bool) -> bool:
    """Whether numpy asks the kernel for transparent huge pages on its large arrays (it
    does by default); returns the previous setting."""
    core = getattr(np, "_core", None) or np.core
    return bool(core.multiarray._set_madvise_hugepage(enabled))


def _time_flow(s: dict[str, Any], k: int) -> tuple[float, float]:
    """Seconds per flow step at the real n (a synthetic n x n Gram: the matvec's cost does
    not depend on its values; outputs move by at most ``DF_TARGET`` a step, so no margin
    reaches 1 and the flow cannot stop within the timed steps) and of its set-up.

    The Gram is made without numpy's huge-page request, as a job's is (torch's buffer): on a
    kernel that compacts memory to find huge pages (THP defrag ``madvise``) faulting in the
    n x n arrays took 6 s instead of 0.3 s here, for the same step time."""
    previous = _set_hugepages(False)
    try:
        return _time_flow_pages(s, k)
    finally:
        _set_hugepages(previous)


def _time_flow_pages(s: dict[str, Any], k: int) -> tuple[float, float]:
    import time

    from depthlab.kernels import regression
    from depthlab.studies.geiger.runs import LAZY_TIMES
    from depthlab.training.hinge import DF_TARGET

    n = s["n_train"]
    gram = np.full((n, n), 0.5 / n)
    np.fill_diagonal(gram, 1.0)
    y = np.where(np.random.default_rng(1).integers(0, 2, n) > 0, 1.0, -1.0)
    mom = {"tau": float(s["tau"])} if s["tau"] is not None else {"mu": s["mu"]}
    # One call of k + 1 steps, each step's start stamped by the loss it evaluates first (the
    # function looks its loss up by name at each call): the set-up (a pass over |K| for the
    # step cap, paying the page faults of its n x n temporary) is the time to the first
    # stamp, a step the median interval (a memory-bound read of the Gram, slowed by
    # whatever shares the memory bus). Repeated set-ups cost more than the steps here.
    hinge, stamps = regression.LOSSES["hinge"], []

    def stamped(f, labels):
        stamps.append(time.perf_counter())
        return hinge(f, labels)

    regression.LOSSES["hinge"] = stamped
    try:
        t0 = time.perf_counter()
        regression.frozen_kernel_dynamics(gram, y, LAZY_TIMES, loss="hinge", lr=1.0 / n,
                                          max_df=DF_TARGET, max_steps=max(k, 5) + 1, **mom)
    except RuntimeError:  # the step cap, as frozen_ntk_prediction meets it
        pass
    finally:
        regression.LOSSES["hinge"] = hinge
    return float(np.median(np.diff(stamps))), stamps[0] - t0


def _time_prediction(s: dict[str, Any]) -> float:
    """The final test prediction (kernels.regression.predict_flow_streamed, as
    frozen_kernel_dynamics calls it), timed on one row block, scaled to n_test rows."""
    from depthlab.kernels.regression import PREDICT_BLOCK, predict_flow_streamed
    from depthlab.studies.geiger.runs import LAZY_TIMES

    n, rows = s["n_train"], min(PREDICT_BLOCK // 4, s["n_test"])
    gen = np.random.default_rng(2)
    block = gen.standard_normal((rows, n))
    coef = gen.standard_normal((len(LAZY_TIMES), n, 1))
    predict_flow_streamed([block[:8]], coef)  # warm-up
    return K.timed(predict_flow_streamed, [block], coef) * s["n_test"] / rows


def lazy_measure(s: dict[str, Any], k: int) -> dict[str, float]:
    entry, t_init = _time_grams(s)
    step, t_setup = _time_flow(s, k)
    return {"entry": entry, "step": step, "fixed": t_init + t_setup + _time_prediction(s)}


def _act_floats(s: dict[str, Any], largest: bool = False) -> float:
    """Hidden activations of one input (floats), summed over layers (or the largest layer's)."""
    w, L = s["width"], s["depth"]
    if s["architecture"] == "fc":
        return float(w if largest else w * L)
    h, wd = s["image_shape"] if s["image_shape"] else (28, 28)
    side, sizes = h * wd, []
    for layer in range(L):
        if layer == 0 or layer == L // 2:
            side /= 4
        sizes.append(w * side)
    return max(sizes) if largest else sum(sizes)


def _params(s: dict[str, Any]) -> float:
    if s["architecture"] == "fc":
        return float(K.fc_params(s["d"], s["depth"], s["width"], 1))
    return 9.0 * s["width"] * (1 + s["width"] * (s["depth"] - 1)) + 2 * s["width"] * s["depth"]


def _gram_phase(s: dict[str, Any], n: int, nt: int) -> float:
    """Peak floats of the two Gram builds of ``n`` training and ``nt`` test points."""
    b = min(_lazy_defaults()[1], nt)  # a test block
    if s["architecture"] == "fc":
        # structured path: per dense layer the inputs a (n_in) and signals delta (n_out) of
        # every point, made with the autograd graph's outputs, activations and gradients
        # (held on with the views kept: counted whole); the train Gram's symmetrisation
        # holds theta, the last layer's dd and inner, theta + theta.T and its half: 5 n^2.
        # (Checked: measured 667 MB, model 712 MB at width 512, n = n_test = 3000.)
        keep = s["d"] + 2 * _act_floats(s) + 1
        making = s["d"] + 6 * _act_floats(s) + 5
        train = 5.0 * n * n + making * n
        # a test block (dd, inner, theta: 3 b n) and the signals of n + b points, next to
        # the train Gram and the blocks so far; then their concatenation
        test = n * n + max(nt * n + 3.0 * b * n + keep * (n + b), 2.0 * nt * n)
        return max(train, test)
    # NTK-vector products, per 32-point x2 block: the cotangents J2^T (32 parameter
    # vectors, twice while made) and the vmapped vjp/jvp of 32 tangents through 32 images:
    # about 12 tensors of the largest layer's size, 32 x 32 images each (measured: 10-12 at
    # widths 8 and 32); the columns so far and their torch.cat
    jac = 64.0 * _params(s) + 12.0 * 32 * 32 * _act_floats(s, largest=True)
    train = 2.0 * n * n + jac
    test = n * n + max(nt * n + 2.0 * b * n + jac, 2.0 * nt * n)
    return max(train, test)


def lazy_job_mb(s: dict[str, Any]) -> float:
    """MB of a job at shape ``s`` (the largest of its phases): the Gram builds (n x n train
    Gram and its temporaries, the test x train blocks, the FC signals or the CNN's Jacobian
    blocks) and the flow (train and test Grams and the set-up's |K| temporary)."""
    n, nt = s["n_train"], s["n_test"]
    flow = 2.0 * n * n + nt * n + 130.0 * n  # + the 121 recorded coefficient vectors
    return max(_gram_phase(s, n, nt), flow) * 8 / K.MB


def lazy_memory(s: dict[str, Any]) -> float:
    """MB the probe itself holds at its peak (:func:`lazy_measure`): the Grams of its subset
    (with the FC signals of its rows, or the CNN's Jacobian blocks at the real width), then
    the flow on a synthetic n x n Gram and the set-up's |K| temporary. The plan adds its
    difference to a measured peak where it measured a narrower net; what a job holds
    beyond it (:func:`lazy_job_mb`) is the rule's ``data_mb``."""
    m, mt = _subset(s)
    n = s["n_train"]
    return max(_gram_phase(s, m, mt), 2.0 * n * n + 130.0 * n) * 8 / K.MB


PROBES = {"geiger_lazy": K.Probe(lazy_measure, lazy_cost, lazy_shrink, lazy_memory,
                                 dtype="float64")}


_LAZY_KEYS = ("architecture", "activation", "depth", "width", "d", "image_shape", "n_train",
              "n_test", "mu", "tau")


def _lazy_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    # the training job's shape less what only the trained net's dynamics read (temperature,
    # ntk_subset): n_train sets a step's seconds (an n x n matvec), n_test the final
    # prediction's; alpha is no wildcard of the rule, the seed sets no cost
    shape = _train_shape(job, config)
    return {key: shape[key] for key in _LAZY_KEYS}


def _lazy_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    ds = config["datasets"][config["studies"][job.wildcards["study"]]["dataset"]]
    n, nt = int(job.params["run"]["n_train"]), int(ds["n_test"])
    max_steps, _ = _lazy_defaults()
    # the train Gram in full (structured: then symmetrised; vp: every block pair)
    return {"fixed": 1.0, "entry": float(n * (n + nt)), "step": float(max_steps)}


def _lazy_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    ds = config["datasets"][config["studies"][job.wildcards["study"]]["dataset"]]
    n, nt, d = int(job.params["run"]["n_train"]), int(ds["n_test"]), int(ds["d"])
    # float32 arrays as read and their float64 tensors; then what the job holds beyond the
    # probe's own peak (the probe times a subset's Grams and the flow at the real n: its
    # measured peak stands in for lazy_memory): the n x n train Gram's build with its
    # temporaries and the FC signals of all n points, the test x train Gram
    s = _lazy_shape(job, config)
    return (n + nt) * d * 12 / K.MB + max(0.0, lazy_job_mb(s) - lazy_memory(s))


RULES: dict[str, RuleProbe] = {
    "geiger_train": RuleProbe("geiger", _train_shape, _train_work, bound=_stops_early,
                              data_mb=_train_data_mb),
    "geiger_lazy": RuleProbe("geiger_lazy", _lazy_shape, _lazy_work, bound=_stops_early,
                             data_mb=_lazy_data_mb),
}
