"""Probe every representative within a time budget, predict every job, check the requests.

Budget: the probes share ``budget_s`` seconds; each representative gets what is left divided
by the representatives left (at most ``max_rep_s``). Before a probe runs, its time is
predicted from the flop count of its shape and the rate (flop/s) of earlier probes of the
same kind (a calibration matmul at the start); a shape predicted over its share is shrunk
along a dimension of known scaling (``Probe.shrink``) and the measured seconds are scaled
back by the flop ratio: those rows say ``extrapolated from <shape>``. A probe that still runs
past ``3 x`` its share is killed and retried one size smaller.

Predictions (per job): ``core_s`` = sum over units of units x seconds per unit, measured on
one thread of this CPU. On its Slurm request: a CPU job's wall time is ``core_s / (threads x
PARALLEL_EFFICIENCY)``; a GPU job's is an *estimate*: ``core_s x`` (this core's measured
matmul rate) / (``GPU_FLOPS[dtype] x GPU_UTILISATION``), the published A100 peak
throughput, labelled as such. Memory: a fresh interpreter's RSS (torch, numpy, h5py
imported) + the probe's own peak (scaled by the flop ratio when extrapolated: a bound) + the
job's data arrays. Checks: predicted wall x ``RUNTIME_MARGIN`` against ``runtime`` (times
the profile's ``retries`` + 1 where the job checkpoints: a killed job is resubmitted and
resumes), predicted memory x ``MEM_MARGIN`` against ``mem_mb``; a job over 48 h whose rule
does not checkpoint is flagged whatever its request.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from depthlab.probe import kinds as K
from depthlab.probe.jobs import JobInfo
from depthlab.probe.runner import rss_mb, run_forked
from depthlab.probe.shapes import ShapeClass, job_work, rule_probe, work_is_bound
from depthlab.probe.slurm import requests
from depthlab.provenance import cpu_model

PARALLEL_EFFICIENCY = 0.5
RUNTIME_MARGIN = 1.5
MEM_MARGIN = 1.3
LIMIT_48H_S = 48 * 3600
# Published peak throughput of one A100 (dense, non-tensor-core), flop/s, and the fraction
# of it these small-batch nets are assumed to reach: an estimate until a GPU probe exists.
GPU_FLOPS = {"float32": 19.5e12, "float64": 9.7e12}
GPU_UTILISATION = 0.3


def calibrate() -> dict[str, float]:
    """One-thread matmul rates (flop/s) in float32 and float64, and the RSS of a fresh
    interpreter that imported what every job script imports."""
    import torch

    out: dict[str, float] = {}
    for name, dt in (("float32", torch.float32), ("float64", torch.float64)):
        a = torch.randn(512, 512, dtype=dt)
        a @ a
        t0 = time.perf_counter()
        for _ in range(8):
            a @ a
        out[name] = 8 * 2 * 512**3 / (time.perf_counter() - t0)
    code = ("import torch, numpy, h5py, scipy.linalg; import depthlab.training.packed_sgd;"
            "f=open('/proc/self/statm'); import os;"
            "print(int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20)")
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, check=True)
        out["baseline_mb"] = float(res.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        out["baseline_mb"] = rss_mb()
    return out


def _measure_in_child(kind: str, shape: dict[str, Any], k: int) -> dict[str, float]:
    import torch

    torch.set_num_threads(1)
    return K.KINDS[kind].measure(shape, k)


def _chain(shape: dict[str, Any], shrink) -> list[dict[str, Any]]:
    """The real shape and its successively smaller versions, smallest first."""
    chain = [shape]
    while len(chain) < 16:
        smaller = shrink(chain[-1])
        if smaller is None:
            break
        chain.append(smaller)
    return chain[::-1]


def _fit(points: list[tuple[float, float]], x: float) -> float:
    """Affine extrapolation through the last two (cost, value) points (a fixed overhead per
    step plus a part proportional to the flops) where their flops differ by 3x or more (less
    is timing noise); otherwise proportional to the last point (an upper bound: it scales
    the overhead too)."""
    (x1, y1) = points[-1]
    if len(points) >= 2:
        (x0, y0) = points[-2]
        if x1 >= 3 * x0 and y1 > y0:
            slope = (y1 - y0) / (x1 - x0)
            return y1 + slope * (x - x1)
        if y1 <= y0 and x1 > x0:
            # more flops measured faster: one of the two is timing noise (a step count
            # differenced from two nearly equal wall times); scale the slower rate, a bound
            return max(y * x / c for c, y in points[-2:] if c > 0)
    return y1 * x / x1 if x1 > 0 else y1


def probe_classes(classes: list[ShapeClass], *, budget_s: float, max_rep_s: float,
                  calib: Mapping[str, float], mem_cap_mb: float,
                  n_jobs: Mapping[ShapeClass, int] | None = None,
                  log: Callable[[str], None] = print) -> dict[ShapeClass, dict[str, Any]]:
    """Measure each probed class (module doc); returns class -> measurement record.

    Per class: measure the smallest shape of its shrink chain, then jump to the largest
    shape whose probe is predicted (proportionally to flops, from the last probe's wall
    time) to fit what is left of the class's share; stop at the real shape or when nothing
    larger fits. A class not measured at its real shape is extrapolated affinely in flops
    from its last two measured shapes."""
    probed = [c for c in classes if c.kind in K.KINDS]
    out: dict[ShapeClass, dict[str, Any]] = {}
    t_start = time.perf_counter()
    # a class's share of the budget grows with its job count (sqrt: the many small classes
    # still get their turn)
    n_jobs = n_jobs or {}
    weights = [math.sqrt(max(1, n_jobs.get(c, 1))) for c in probed]
    for i, cls in enumerate(probed):
        left = budget_s - (time.perf_counter() - t_start)
        share = max(1.0, min(max_rep_s, left * weights[i] / sum(weights[i:])))
        cost, shrink = K.KINDS[cls.kind].cost, K.KINDS[cls.kind].shrink
        real = cls.shape
        chain = _chain(real, shrink)
        main = next(u for u in cost(real) if u != "fixed")
        k = 5
        t_cls = time.perf_counter()
        points: list[dict[str, Any]] = []
        j, errors = 0, []
        while True:
            remaining = share - (time.perf_counter() - t_cls)
            res = run_forked(_measure_in_child, cls.kind, chain[j], k,
                             timeout_s=max(10.0, 2 * remaining), mem_cap_mb=mem_cap_mb)
            if not res.get("ok"):
                errors.append(f"{res.get('error')} at {_diff(real, chain[j]) or 'real shape'}")
                break
            points.append({"shape": chain[j], "cost": cost(chain[j]), "sec": res["result"],
                           "peak": res["peak_delta_mb"], "wall": res["wall_s"]})
            if j == len(chain) - 1:
                break
            remaining = share - (time.perf_counter() - t_cls)
            c_now = cost(chain[j])[main]
            fits = [m for m in range(j + 1, len(chain))
                    if res["wall_s"] * cost(chain[m])[main] / c_now <= remaining]
            if not fits:
                break
            j = fits[-1]
        if not points:
            log(f"[{i + 1}/{len(probed)}] {cls.label}: FAILED ({'; '.join(errors)})")
            out[cls] = {"ok": False, "error": "; ".join(errors),
                        "probe_wall_s": time.perf_counter() - t_cls}
            continue
        last = points[-1]
        extrapolated = last["shape"] != real
        c_real = cost(real)
        sec = {}
        for u, v in last["sec"].items():
            cu = u if u in c_real else main
            pts = [(p["cost"].get(cu, 0.0), p["sec"].get(u, 0.0)) for p in points]
            sec[u] = _fit(pts, c_real[cu]) if extrapolated else v
        mem_model = K.KINDS[cls.kind].memory
        peak = last["peak"]
        if extrapolated and mem_model is not None:
            peak += max(0.0, mem_model(real) - mem_model(last["shape"]))
        rec = {"ok": True, "sec": sec, "measured_sec": last["sec"], "k": k,
               "measured_shape": last["shape"], "extrapolated": extrapolated,
               "peak_delta_mb": max(peak, 0.0), "probe_wall_s": time.perf_counter() - t_cls,
               "share_s": share, "levels": len(points), "errors": errors}
        out[cls] = rec
        log(f"[{i + 1}/{len(probed)}] {cls.label}: "
            + ", ".join(f"{u}={v:.3g}s" for u, v in sec.items())
            + (f" (extrapolated from {_diff(real, last['shape'])}, {len(points)} sizes)"
               if extrapolated else "")
            + f" peak+{rec['peak_delta_mb']:.0f} MB, probe {rec['probe_wall_s']:.1f}s")
    return out


def _diff(real: Mapping[str, Any], shape: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={shape[k]}" for k in real if shape[k] != real[k])


def data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    """Memory of the job's data arrays (and, for kernel rules, its Gram blocks), MB: what
    its rule's :class:`~depthlab.probe.shapes.RuleProbe` says (0 where unknown)."""
    rp = rule_probe(job.rule)
    if rp is None:
        return 0.0
    try:
        return float(rp.data_mb(job, config))
    except (KeyError, TypeError, ValueError):
        return 0.0


def has_checkpointing(job: JobInfo) -> bool:
    """Whether the rule's script resumes a killed job from a checkpoint: its RuleProbe's
    ``checkpointed`` where it says, else whether the job's params ask for checkpoints."""
    rp = rule_probe(job.rule)
    if rp is not None and rp.checkpointed is not None:
        return bool(rp.checkpointed(job))
    p = job.params
    if p.get("checkpoint") or p.get("checkpoint_every"):
        return True
    tr = p.get("training")
    return isinstance(tr, Mapping) and bool(tr.get("checkpoint_every"))


def predict_jobs(reps: Mapping[ShapeClass, list[JobInfo]],
                 measured: Mapping[ShapeClass, Mapping[str, Any]], config: Mapping[str, Any],
                 profile: Mapping[str, Any], calib: Mapping[str, float]) -> list[dict[str, Any]]:
    """One row per job: its class, the prediction (or why none) and its requests."""
    rows = []
    for cls, jobs in reps.items():
        rec = measured.get(cls)
        for job in jobs:
            req = requests(job, profile)
            row: dict[str, Any] = {
                "rule": job.rule, "study": job.wildcards.get("study", _study_of(job)),
                "job": job.label, "class": cls.label, "kind": cls.kind,
                "threads": req["threads"], "gpu": int(req["gpu"] or 0),
                "runtime_min": req["runtime"], "mem_mb": req["mem_mb"],
                "checkpointed": has_checkpointing(job), "bound": work_is_bound(job),
                # a checkpointed job killed at its wall time is resubmitted (the profile's
                # `retries`) and resumes: it has that many attempts of `runtime`
                "attempts": 1 + (int(profile.get("retries") or 0)
                                 if has_checkpointing(job) else 0),
                "status": "unprobed" if cls.kind == "unprobed" else "failed",
            }
            if rec and rec.get("ok"):
                try:
                    work = job_work(job, config)
                except (KeyError, TypeError, ValueError) as err:
                    row["status"] = f"failed: work of the job: {err}"
                    rows.append(row)
                    continue
                # kinds without a set-up measurement (a Gram tile, a solve) count it as 0
                missing = [u for u in work if u not in rec["sec"] and u != "fixed"]
                if missing:
                    raise KeyError(f"probe of {cls.label} lacks units {missing}")
                core_s = sum(n * rec["sec"].get(u, 0.0) for u, n in work.items())
                dtype = cls.shape.get("dtype", K.KINDS[cls.kind].dtype)
                cpu_rate = calib[dtype if dtype in calib else "float32"]
                gpu_s = core_s * cpu_rate / (GPU_FLOPS[dtype if dtype in GPU_FLOPS
                                                       else "float32"] * GPU_UTILISATION)
                wall = gpu_s if row["gpu"] else core_s / (
                    row["threads"] * (PARALLEL_EFFICIENCY if row["threads"] > 1 else 1.0))
                mem = calib["baseline_mb"] + rec["peak_delta_mb"] + data_mb(job, config)
                row.update(status="extrapolated" if rec["extrapolated"] else "measured",
                           core_s=core_s, gpu_s_est=gpu_s if row["gpu"] else 0.0,
                           wall_s=wall, mem_pred_mb=mem)
            rows.append(row)
    return rows


def _study_of(job: JobInfo) -> str:
    # the shared rules (rules/kernels.smk, rules/data.smk): no study wildcard
    if job.rule in ("gram", "kernel_regression", "kernel_spectrum", "make_dataset"):
        return "(shared kernels/datasets)"
    return "-"


def _round_up(x: float, step: float) -> float:
    return float(math.ceil(x / step) * step)


def cost_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (study, rule): counts, core- and GPU-hours, the longest job vs runtime, the
    largest memory vs mem_mb, and the flags."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["study"], r["rule"]), []).append(r)
    out = []
    for (study, rule), rs in sorted(groups.items()):
        pred = [r for r in rs if "wall_s" in r]
        row: dict[str, Any] = {
            "study": study, "rule": rule, "jobs": len(rs), "jobs_predicted": len(pred),
            "status": _status(rs), "upper_bound": any(r["bound"] for r in pred),
            "gpu": max(r["gpu"] for r in rs), "threads": max(r["threads"] for r in rs),
            "core_hours": "", "gpu_hours_est": "", "longest_job_h": "", "runtime_request_h": "",
            "largest_mem_mb": "", "mem_request_mb": "", "over_48h_no_checkpoint": 0,
            "flags": "",
        }
        reqs = [r["runtime_min"] for r in rs if isinstance(r["runtime_min"], int | float)]
        mems = [r["mem_mb"] for r in rs if isinstance(r["mem_mb"], int | float)]
        # the smallest request of the rule, else (below) that of its longest / largest job
        row["runtime_request_h"] = min(reqs) / 60 if reqs else ""
        row["mem_request_mb"] = min(mems) if mems else ""
        flags = []
        if pred:
            row["core_hours"] = sum(r["core_s"] for r in pred) / 3600
            row["gpu_hours_est"] = sum(r["gpu_s_est"] for r in pred) / 3600
            longest = max(pred, key=lambda r: r["wall_s"])
            biggest = max(pred, key=lambda r: r["mem_pred_mb"])
            row["longest_job_h"] = longest["wall_s"] / 3600
            row["largest_mem_mb"] = round(biggest["mem_pred_mb"])
            if isinstance(longest["runtime_min"], int | float):
                row["runtime_request_h"] = longest["runtime_min"] / 60
            if isinstance(biggest["mem_mb"], int | float):
                row["mem_request_mb"] = biggest["mem_mb"]
            short = [r for r in pred if isinstance(r["runtime_min"], int | float)
                     and r["wall_s"] * RUNTIME_MARGIN
                     > r["runtime_min"] * 60 * r.get("attempts", 1)]
            resumable = [r for r in short if r.get("attempts", 1) > 1]
            if short and len(resumable) == len(short):
                # every short job checkpoints: more resubmissions do it, at the same request
                worst = max(short, key=lambda r: r["wall_s"] / r["runtime_min"])
                tries = math.ceil(worst["wall_s"] * RUNTIME_MARGIN / (worst["runtime_min"] * 60))
                flags.append(f"runtime: {len(short)} checkpointed job(s) need more than "
                             f"{worst['attempts']} attempts of {worst['runtime_min']} min; set "
                             f"the profile's retries to {tries - 1} (or a longer runtime) "
                             f"for {rule}")
            elif short:
                need = max(r["wall_s"] / r.get("attempts", 1) for r in short) \
                    * RUNTIME_MARGIN / 60
                flags.append(f"runtime: {len(short)} job(s) over the request; request "
                             f"runtime {int(_round_up(need, 60))} min for {rule}")
            low = [r for r in pred if isinstance(r["mem_mb"], int | float)
                   and r["mem_pred_mb"] * MEM_MARGIN > r["mem_mb"]]
            if low:
                need = max(r["mem_pred_mb"] for r in low) * MEM_MARGIN
                flags.append(f"mem_mb: {len(low)} job(s) over the request; request mem_mb "
                             f"{int(_round_up(need, 1000))} for {rule}")
            long_ = [r for r in pred if r["wall_s"] > LIMIT_48H_S and not r["checkpointed"]]
            row["over_48h_no_checkpoint"] = len(long_)
            if long_:
                flags.append(f"{len(long_)} job(s) over 48 h without checkpointing")
        out.append({**row, "flags": "; ".join(flags)})
    return out


def _status(rs: list[dict[str, Any]]) -> str:
    kinds = sorted({r["status"] for r in rs})
    return "+".join(kinds)


def machine_info(calib: Mapping[str, float]) -> dict[str, Any]:
    import torch

    return {"cpu_model": cpu_model(), "threads_per_probe": 1,
            "torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
            # unrounded: `--reuse` re-plans from these, and must give the numbers of the
            # run that measured them (a rounded baseline moved a prediction across .5 MB)
            "matmul_gflops_float32_1thread": calib["float32"] / 1e9,
            "matmul_gflops_float64_1thread": calib["float64"] / 1e9,
            "baseline_rss_mb": calib["baseline_mb"],
            "cuda": torch.cuda.is_available()}


def load_measurements(directory: str | Path, classes: Iterable[ShapeClass]
                      ) -> tuple[dict[ShapeClass, dict[str, Any]], dict[str, float]]:
    """The measurements and calibration of an earlier probe run (its ``representatives.csv``
    and ``machine.json``), matched to ``classes`` by class label, so that editing a Slurm
    request or the config's counts is re-planned in seconds, without probing again. A class
    the earlier run did not measure (a new shape) is absent from the result."""
    import csv
    import json

    directory = Path(directory)
    info = json.loads((directory / "machine.json").read_text())
    calib = {"float32": float(info["matmul_gflops_float32_1thread"]) * 1e9,
             "float64": float(info["matmul_gflops_float64_1thread"]) * 1e9,
             "baseline_mb": float(info["baseline_rss_mb"])}
    by_label = {c.label: c for c in classes}
    out: dict[ShapeClass, dict[str, Any]] = {}
    with open(directory / "representatives.csv", newline="") as f:
        for row in csv.DictReader(f):
            cls = by_label.get(row["class"])
            if cls is None or row["status"] not in ("measured", "extrapolated"):
                continue
            out[cls] = {"ok": True, "sec": json.loads(row["sec_per_unit"]),
                        "extrapolated": row["status"] == "extrapolated",
                        "measured_shape": json.loads(row["measured_shape"] or "null"),
                        "peak_delta_mb": float(row["peak_delta_mb"] or 0.0),
                        "k": row["k_steps"], "probe_wall_s": 0.0, "reused": str(directory)}
    return out, calib
