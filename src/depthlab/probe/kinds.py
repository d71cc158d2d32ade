"""The probes: a few real steps (or one Gram tile) of each job kind through the library code
its rule's script calls, at a given shape.

Each kind has

* ``measure(shape, k)``: after one warm-up step, ``k`` timed steps; returns seconds per unit
  (the units of :mod:`depthlab.probe.shapes`) and the fixed set-up seconds where it has one;
* ``cost(shape)``: a flop count per unit, used only for ratios -- to pick a smaller shape
  that fits the probe's budget and to extrapolate its time back to the real shape
  (time scales with the flops of the same code path: batch rows, N, width^2);
* ``shrink(shape)``: the next smaller shape along a dimension whose cost scaling is known
  (rows of a batch first, then width), or None.

Inputs are synthetic stand-ins of the real shape (standard normal or uniform values, random
labels): none of these step costs depends on the values. The shared kinds here:

* packed_fc: ``depthlab.models.FCEnsemble`` + ``packed_sgd._run_epoch`` (the inner loop of
  ``train_members``, which rules mori_ueda_train and mori_ueda_select_lr run) and
  ``packed_sgd.evaluate``;
* gram: ``depthlab.kernels.layers.sweep_panel``, the row-block kernel of ``compute_gram_file``;
* cholesky: ``numpy.linalg.cholesky`` + triangular solves (the dense solve of
  ``kernel_regression``) at a size that fits, extrapolated by n^3.

A study's probe hook is the module ``depthlab.studies.<kind>.probe``. Where the study's jobs
run its own code, it defines ``PROBE``, a :class:`Probe` whose probe kind is the study kind's
name, and, where its rules run several kinds of job (a trainer, a frozen-kernel flow, a
kernel), ``PROBES``, more of them named ``<kind>_<what>``. Its ``RULES`` say how each of its
rules is planned (:class:`depthlab.probe.shapes.RuleProbe`: a hook without probes maps its
rules to shared kinds, e.g. Mori-Ueda's to ``packed_fc``). :func:`study_hook` and
:data:`KINDS` find those modules by name (imported on first use), so this package imports no
study package and adding a study edits nothing here.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- helpers


def fc_params(d: int, depth: int, width: int, k: int) -> int:
    """Parameters of a depth-``depth`` FC net ``d -> width x depth -> k`` (biases included)."""
    if depth == 0:
        return d * k + k
    return d * width + (depth - 1) * width * width + width * k + depth * width + k


def timed(fn, *args, **kwargs) -> float:
    """Wall seconds of one call ``fn(*args, **kwargs)``."""
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- packed FC


def packed_cost(shape: dict[str, Any]) -> dict[str, float]:
    p = fc_params(shape["d"], shape["depth"], shape["width"], shape["n_classes"])
    ms = shape["M"] if isinstance(shape["M"], tuple) else (shape["M"],)
    out = {}
    for m in ms:
        out[f"step_M{m}"] = 6.0 * m * shape["batch"] * p
        out[f"evalrow_M{m}"] = 2.0 * m * p
    return out


def packed_shrink(shape: dict[str, Any]) -> dict[str, Any] | None:
    if shape["width"] > 64 and shape["depth"] > 0:
        return {**shape, "width": shape["width"] // 2}
    return None


def packed_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    import torch

    from depthlab.models.packed_fc import FCEnsemble
    from depthlab.training import packed_sgd as ps

    dtype = ps._DTYPES[shape["dtype"]]
    b, d, kc = shape["batch"], shape["d"], shape["n_classes"]
    ms = shape["M"] if isinstance(shape["M"], tuple) else (shape["M"],)
    out: dict[str, float] = {}
    gen = np.random.default_rng(0)
    kmax = max(k, 200)  # tiny steps are timed over more of them (timer and load noise)
    n = (kmax + 1) * b
    x = gen.standard_normal((n, d)).astype(np.float32)
    y = gen.integers(0, kc, n)
    data = ps._Data(x, y, kc, torch.device("cpu"), dtype)
    n_eval = min(n, 8192)
    evdata = ps._Data(x[:n_eval], y[:n_eval], kc, torch.device("cpu"), dtype)
    for m in ms:
        full = FCEnsemble(d, shape["depth"], shape["width"], kc, list(range(m)),
                          activation=shape["activation"], device="cpu", dtype=dtype)
        for p in full.parameters():
            p.requires_grad_(False)
        rows = list(range(m))
        pack = full.select(rows)
        gens = [ps.shuffle_generator(s) for s in rows]
        # small learning rates: the step cost must not be that of NaN arithmetic
        lrs = torch.full((m,), 1e-3, dtype=torch.float64)
        scales = ps._step_scales(lrs, {b}, full.widths, torch.device("cpu"), dtype)
        t_one = timed(ps._run_epoch, pack, data, gens, rows, [(0, b)], scales,
                       shape["loss"])  # warm-up
        k_m = int(min(kmax, max(k, 0.25 / max(t_one, 1e-6))))
        steps = [(i * b, b) for i in range(k_m)]
        out[f"step_M{m}"] = timed(ps._run_epoch, pack, data, gens, rows, steps, scales,
                                   shape["loss"]) / k_m
        ps.evaluate(pack, evdata, shape["loss"])  # warm-up
        out[f"evalrow_M{m}"] = timed(ps.evaluate, pack, evdata, shape["loss"]) / n_eval
    return out


# --------------------------------------------------------------------------- Gram


def gram_cost(shape: dict[str, Any]) -> dict[str, float]:
    return {"entry": 2.0 * shape["d"] + 30.0 * shape["depth"]}


def gram_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    """Seconds per entry of the whole ``compute_gram_file`` (the rule's code path: the
    panels, their mirroring and the HDF5 writes of both kinds, which cost as much as the
    arithmetic: timing ``sweep_panel`` alone predicted a quarter to a third of an N = 8000
    job), on n = 4096 training and n / 4 test points (k = 5): the per-entry cost still
    grows slowly with n (1.3e-7 s at n = 2048, 1.6e-7 at 4096, 1.8e-7 at 8000 for d = 100,
    depth 7 on this Xeon), so the largest size the share affords."""
    import json
    import tempfile

    from depthlab.kernels.gram import compute_gram_file

    spec = json.loads(shape["spec"])
    gen = np.random.default_rng(0)
    n = 1024 * max(1, round(k * 0.8))
    x, xt = gen.standard_normal((n, shape["d"])), gen.standard_normal((n // 4, shape["d"]))
    with tempfile.TemporaryDirectory() as tmp:
        compute_gram_file(Path(tmp) / "warm.h5", x[:128], xt[:32], spec, shape["depth"],
                          block_size=1024, n_threads=1)
        t = timed(compute_gram_file, Path(tmp) / "gram.h5", x, xt, spec, shape["depth"],
                  block_size=1024, n_threads=1)
    return {"entry": t / (n * (n + 1) / 2 + (n // 4) * n)}


# --------------------------------------------------------------------------- Cholesky


def cholesky_cost(shape: dict[str, Any]) -> dict[str, float]:
    return {"chol_flop": 1.0}


def cholesky_measure(shape: dict[str, Any], k: int) -> dict[str, float]:
    import scipy.linalg as sla

    n = 1024 + 256 * min(k, 8)
    gen = np.random.default_rng(0)
    a = gen.standard_normal((n, n))
    g = a @ a.T / n + np.eye(n)
    y = gen.standard_normal((n, 2))
    sla.cho_factor(g[:256, :256].copy())

    def solve():
        c = sla.cho_factor(g.copy(), overwrite_a=True)
        sla.cho_solve(c, y)

    t = timed(solve)
    return {"chol_flop": t / (n**3 / 3 + 4 * n * n)}


# --------------------------------------------------------------------------- memory models
# Analytic memory (MB) of a shape: what grows with it (parameters and their work copies,
# activations kept for the backward pass). Used only for differences: a probe measured at a
# smaller shape adds mem(real) - mem(measured) to its measured peak.

MB = 2.0**20


def packed_mem(s: dict[str, Any]) -> float:
    m = max(s["M"]) if isinstance(s["M"], tuple) else s["M"]
    p = fc_params(s["d"], s["depth"], s["width"], s["n_classes"])
    by = 8 if s["dtype"] == "float64" else 4
    return (3 * m * p + 3 * m * s["batch"] * s["width"] * max(s["depth"], 1)) * by / MB


def _no_shrink(shape: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class Probe:
    """One probe kind (module doc): ``measure(shape, k)`` -> seconds per unit, ``cost(shape)``
    -> flops per unit, ``shrink(shape)`` -> the next smaller shape or None, ``memory(shape)``
    -> analytic MB (differences only; None: no model), and ``dtype``, the compute dtype of
    its jobs where the shape names none (the GPU estimate's peak rate)."""

    measure: Callable[[dict[str, Any], int], dict[str, float]]
    cost: Callable[[dict[str, Any]], dict[str, float]]
    shrink: Callable[[dict[str, Any]], dict[str, Any] | None] = _no_shrink
    memory: Callable[[dict[str, Any]], float] | None = None
    dtype: str = "float32"


SHARED: dict[str, Probe] = {
    "packed_fc": Probe(packed_measure, packed_cost, packed_shrink, packed_mem),
    "gram": Probe(gram_measure, gram_cost, dtype="float64"),
    "cholesky": Probe(cholesky_measure, cholesky_cost, dtype="float64"),
}

_STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"


def study_hooks() -> list[str]:
    """The study kinds with a probe hook (``studies/<kind>/probe.py``), found by file name."""
    return sorted(p.parent.name for p in _STUDIES_DIR.glob("*/probe.py")
                  if (p.parent / "__init__.py").exists())


def study_hook(kind: str) -> ModuleType | None:
    """The probe hook module of study ``kind`` (imported on first use), or None."""
    if kind not in study_hooks():
        return None
    return importlib.import_module(f"depthlab.studies.{kind}.probe")


def hook_probes(kind: str) -> dict[str, Probe]:
    """The probe kinds study ``kind``'s hook brings: ``PROBE`` under the kind's own name and
    every entry of ``PROBES``, a mapping whose names are ``<kind>`` or ``<kind>_<what>``
    (a study whose rules run several trainers or kernels has one probe per job kind). A
    hook that only maps its rules to shared kinds brings none. Checked on load: a wrong
    type or a name of another kind is an error naming the module."""
    module = study_hook(kind)
    if module is None:
        return {}
    found: dict[str, Any] = {}
    if getattr(module, "PROBE", None) is not None:
        found[kind] = module.PROBE
    extra = getattr(module, "PROBES", {})
    if not isinstance(extra, Mapping):
        raise TypeError(f"{module.__name__}.PROBES must be a mapping {{probe kind: Probe}}, "
                        f"got {type(extra).__name__}")
    for name, probe in extra.items():
        if name != kind and not str(name).startswith(f"{kind}_"):
            raise ValueError(f"{module.__name__}.PROBES names {name!r}: a study's probe "
                             f"kinds are named {kind!r} or {kind}_<what>")
        if name in found and found[name] is not probe:
            raise ValueError(f"{module.__name__}: probe kind {name!r} is both PROBE and "
                             f"in PROBES")
        found[name] = probe
    for name, probe in found.items():
        if not isinstance(probe, Probe):
            raise TypeError(f"{module.__name__}: probe kind {name!r} must be a "
                            f"depthlab.probe.kinds.Probe, got {type(probe).__name__}")
    return found


class _Kinds(Mapping[str, Probe]):
    """The shared probes, then every probe kind the study hooks bring (:func:`hook_probes`)."""

    def _study_probes(self) -> dict[str, Probe]:
        out: dict[str, Probe] = {}
        for kind in study_hooks():
            for name, probe in hook_probes(kind).items():
                if name not in SHARED:
                    out[name] = probe
        return out

    def __getitem__(self, kind: str) -> Probe:
        if kind in SHARED:
            return SHARED[kind]
        return self._study_probes()[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in SHARED or kind in self._study_probes()

    def __iter__(self) -> Iterator[str]:
        return iter([*SHARED, *self._study_probes()])

    def __len__(self) -> int:
        return len(SHARED) + len(self._study_probes())


KINDS: Mapping[str, Probe] = _Kinds()
