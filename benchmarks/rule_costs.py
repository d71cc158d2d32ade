"""Where a finished run's time went: wall and CPU seconds per rule and per study, from the
`benchmark:` files every rule writes (results/benchmarks/<rule>/...tsv), and the share of it
spent starting Python and importing the libraries (measured here, now, on this machine).

    python benchmarks/rule_costs.py                # after `make run`
    python benchmarks/rule_costs.py --results other_results --startup-samples 5

Prints markdown tables (the README's "Where the time goes" comes from this script).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

# What a job's script imports before it does anything: torch jobs and the others.
STARTUP_IMPORTS = {
    "torch": "import torch, numpy, h5py, depthlab.training.packed_sgd",
    "plain": "import numpy, h5py, xarray, matplotlib.pyplot, depthlab.cube",
}
TORCH_RULES_HINT = ("train", "select_lr", "lazy", "gram", "regression", "spectrum",
                    "stability", "lee_", "nichani_", "xiao_")


def read_benchmarks(results: Path) -> list[dict]:
    rows = []
    for tsv in sorted((results / "benchmarks").glob("*/**/*.tsv")):
        rel = tsv.relative_to(results / "benchmarks").parts
        rule = rel[0]
        rest = rel[1:]
        study = rest[0] if len(rest) > 1 else Path(rest[0]).stem
        if not (results / study).is_dir() or study in ("datasets", "kernels", "logs"):
            study = "shared"
        with open(tsv) as fh:
            for rec in csv.DictReader(fh, delimiter="\t"):
                rows.append({"rule": rule, "study": study, "wall": float(rec["s"]),
                             "cpu": float(rec.get("cpu_time") or 0.0)})
    return rows


def startup_seconds(samples: int) -> dict[str, float]:
    """Median wall time of a fresh interpreter importing what each kind of job imports."""
    out = {}
    for kind, imports in STARTUP_IMPORTS.items():
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", imports], check=True)
            times.append(time.perf_counter() - t0)
        out[kind] = statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results", type=Path)
    ap.add_argument("--startup-samples", type=int, default=3)
    args = ap.parse_args()
    rows = read_benchmarks(args.results)
    if not rows:
        sys.exit(f"no benchmark files under {args.results}/benchmarks: run the workflow first")
    start = startup_seconds(args.startup_samples)
    by_rule: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by_rule[(r["study"], r["rule"])].append(r)
    total_wall = sum(r["wall"] for r in rows)
    total_cpu = sum(r["cpu"] for r in rows)
    print(f"{len(rows)} jobs, {total_wall:.0f} s of job wall time, {total_cpu:.0f} s CPU "
          f"(job wall times add up across parallel jobs)\n")
    print("| study | rule | jobs | wall s | CPU s | mean wall s | share of wall |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    startup_total = 0.0
    for (study, rule), rs in sorted(by_rule.items(), key=lambda kv: -sum(r["wall"]
                                                                         for r in kv[1])):
        wall, cpu = sum(r["wall"] for r in rs), sum(r["cpu"] for r in rs)
        kind = "torch" if any(h in rule for h in TORCH_RULES_HINT) else "plain"
        startup_total += len(rs) * start[kind]
        print(f"| {study} | {rule} | {len(rs)} | {wall:.0f} | {cpu:.0f} | "
              f"{wall / len(rs):.1f} | {wall / total_wall:.1%} |")
    print("\n| study | jobs | wall s | CPU s | share of wall |")
    print("| --- | ---: | ---: | ---: | ---: |")
    by_study: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_study[r["study"]].append(r)
    for study, rs in sorted(by_study.items(), key=lambda kv: -sum(r["wall"] for r in kv[1])):
        wall = sum(r["wall"] for r in rs)
        print(f"| {study} | {len(rs)} | {wall:.0f} | {sum(r['cpu'] for r in rs):.0f} | "
              f"{wall / total_wall:.1%} |")
    print(f"\nstart-up (fresh interpreter + imports, median of {args.startup_samples}, "
          f"measured now): torch jobs {start['torch']:.2f} s, others {start['plain']:.2f} s; "
          f"about {startup_total:.0f} s over all jobs = {startup_total / total_wall:.1%} of "
          "job wall time")


if __name__ == "__main__":
    main()
