"""``python -m depthlab.probe --configfile config/paper.yaml --out results/probe``."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from depthlab.provenance import atomic_output


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str] | None = None) -> None:
    fields = fields or (list(rows[0]) if rows else ["empty"])
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m depthlab.probe", description=__doc__)
    ap.add_argument("--configfile", required=True, help="the workflow config to plan")
    ap.add_argument("--out", default="results/probe", help="output directory")
    ap.add_argument("--profile", default=None, help="Slurm profile config.yaml to check "
                    "(default profiles/slurm/config.yaml)")
    ap.add_argument("--budget", type=float, default=900.0,
                    help="seconds for all probes together (default 900)")
    ap.add_argument("--max-rep", type=float, default=20.0,
                    help="at most this many seconds per representative (default 20)")
    ap.add_argument("--rules", default="", help="comma-separated rules to probe (default all)")
    ap.add_argument("--mem-cap-mb", type=float, default=8000.0,
                    help="address-space cap of one probe (default 8000)")
    ap.add_argument("--reuse", default=None, metavar="DIR",
                    help="re-plan from the measurements of an earlier run in DIR (its "
                    "representatives.csv and machine.json; e.g. docs/probe) instead of probing: "
                    "checks edited Slurm requests or counts in seconds; classes DIR lacks are "
                    "probed")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")

    from depthlab.config import load_yaml_strict
    from depthlab.probe import plan
    from depthlab.probe.jobs import enumerate_jobs
    from depthlab.probe.shapes import representatives
    from depthlab.probe.slurm import DEFAULT_PROFILE, load_profile

    t0 = time.perf_counter()
    out = Path(args.out)
    config = load_yaml_strict(args.configfile)
    profile = load_profile(args.profile or DEFAULT_PROFILE)
    jobs = enumerate_jobs(args.configfile)
    reps = representatives(jobs, config)
    only = {r for r in args.rules.split(",") if r}
    to_probe = [c for c in reps if not only or c.rule in only]
    print(f"{len(jobs)} jobs, {len(reps)} shape classes "
          f"({sum(c.kind != 'unprobed' for c in reps)} probed kinds); DAG in "
          f"{time.perf_counter() - t0:.1f}s", flush=True)
    measured: dict = {}
    if args.reuse:
        measured, calib = plan.load_measurements(args.reuse, reps)
        info = {**json.loads((Path(args.reuse) / "machine.json").read_text()),
                "reused_from": str(args.reuse)}
        # how long the probing itself took, in the run the measurements come from
        info["probed_in_s"] = info.pop("probed_in_s", info.get("wall_s"))
        for key in ("wall_s", "configfile", "budget_s"):
            info.pop(key, None)
        to_probe = [c for c in to_probe if c not in measured]
        print(f"reusing {len(measured)} class measurements from {args.reuse} "
              f"({info['cpu_model']}); {sum(c.kind != 'unprobed' for c in to_probe)} "
              "classes left to probe", flush=True)
    else:
        calib = plan.calibrate()
        info = plan.machine_info(calib)
        print(f"machine: {info}", flush=True)
    if any(c.kind != "unprobed" for c in to_probe):
        measured.update(plan.probe_classes(
            to_probe, budget_s=args.budget, max_rep_s=args.max_rep, calib=calib,
            mem_cap_mb=args.mem_cap_mb, n_jobs={c: len(js) for c, js in reps.items()},
            log=lambda s: print(s, flush=True)))
    rows = plan.predict_jobs(reps, measured, config, profile, calib)
    table = plan.cost_table(rows)

    rep_rows = []
    for cls, js in reps.items():
        rec = measured.get(cls, {})
        rep_rows.append({
            "rule": cls.rule, "kind": cls.kind, "class": cls.label, "jobs": len(js),
            "representative": js[0].label,
            "status": ("unprobed" if cls.kind == "unprobed" else
                       "not selected" if not rec else
                       f"failed: {rec.get('error')}" if not rec.get("ok") else
                       "extrapolated" if rec["extrapolated"] else "measured"),
            "measured_shape": json.dumps(rec.get("measured_shape"), default=str) if rec else "",
            "data": "synthetic stand-in of the real shape" if rec else "",
            "k_steps": rec.get("k", ""),
            "sec_per_unit": json.dumps(rec.get("sec", {})),  # unrounded, for --reuse
            # repr, not the table's 6 digits: --reuse re-plans from it
            "peak_delta_mb": repr(float(rec["peak_delta_mb"])) if "peak_delta_mb" in rec else "",
            "probe_wall_s": rec.get("probe_wall_s", ""),
        })
    _write_csv(out / "representatives.csv", rep_rows)
    job_fields = ["rule", "study", "job", "class", "kind", "status", "bound", "threads", "gpu",
                  "core_s", "gpu_s_est", "wall_s", "mem_pred_mb", "runtime_min", "mem_mb",
                  "checkpointed", "attempts"]
    _write_csv(out / "jobs.csv", rows, job_fields)
    _write_csv(out / "cost.csv", table)
    info["wall_s"] = round(time.perf_counter() - t0, 1)
    info["configfile"] = str(args.configfile)
    info["budget_s"] = args.budget
    _write_text(out / "machine.json", json.dumps(info, indent=2) + "\n")
    _write_text(out / "report.md", report_md(table, info))
    print(f"wrote {out}/cost.csv, jobs.csv, representatives.csv, report.md "
          f"in {info['wall_s']}s", flush=True)
    return 0


def _g(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def report_md(table: list[dict[str, Any]], info: dict[str, Any]) -> str:
    from depthlab.probe import plan

    lines = [
        "# What reproducing the papers costs (probe)", "",
        f"Measured on: {info['cpu_model']}, one thread per probe "
        f"(matmul {info['matmul_gflops_float32_1thread']:.2f} GFLOP/s float32, "
        f"{info['matmul_gflops_float64_1thread']:.2f} float64), torch {info['torch']}, "
        f"CUDA: {info['cuda']}. Config: {info['configfile']}.", "",
        "core-hours: measured one-thread seconds x the job's step count; `upper_bound`: the "
        "count is the trainer's cap (max_epochs / max_steps), real runs may stop earlier. "
        f"GPU-hours are an ESTIMATE (A100 peak x {plan.GPU_UTILISATION} vs this core's matmul "
        "rate), not a measurement. Margins: runtime x "
        f"{plan.RUNTIME_MARGIN}, memory x {plan.MEM_MARGIN}.", "",
        "| study | rule | jobs | predicted | core-h | GPU-h (est) | longest job h | runtime "
        "req h | max mem MB | mem req MB | >48h no ckpt | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['study']} | {r['rule']} | {r['jobs']} | {r['status']}"
            f"{' (bound)' if r['upper_bound'] else ''} | {r['core_hours']} | "
            f"{r['gpu_hours_est']} | {r['longest_job_h']} | {r['runtime_request_h']} | "
            f"{r['largest_mem_mb']} | {r['mem_request_mb']} | {r['over_48h_no_checkpoint']} | "
            f"{r['flags']} |")
    total_c = sum(r["core_hours"] for r in table if isinstance(r["core_hours"], float))
    total_g = sum(r["gpu_hours_est"] for r in table if isinstance(r["gpu_hours_est"], float))
    lines += ["", f"Total predicted: {total_c:.1f} core-hours, {total_g:.1f} GPU-hours (est.).",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
