"""The probe of Geiger jobs (rule geiger_train): its
:class:`depthlab.probe.kinds.Probe`, found by name (the probe kind ``geiger``) by
:data:`depthlab.probe.kinds.KINDS`, and ``RULES``, how each job of the rule is planned
(:class:`depthlab.probe.shapes.RuleProbe`: its shape, step count, data size).

Entry point: :func:`depthlab.studies.geiger.runs.train_lazy_feature` (the rule's script)
capped by its own ``max_steps``; inputs are synthetic stand-ins of the real shape.
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


RULES: dict[str, RuleProbe] = {
    "geiger_train": RuleProbe("geiger", _train_shape, _train_work, bound=_stops_early,
                              data_mb=_train_data_mb),
}
