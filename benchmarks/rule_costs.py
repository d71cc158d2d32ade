"""Where a finished run's time went: wall and CPU seconds per rule and per study, from the
`benchmark:` files every rule writes (results/benchmarks/<rule>/...tsv), and the share of it
spent starting Python and importing the libraries (measured here, now, on this machine).

    python benchmarks/rule_costs.py                # after `make run`
    python benchmarks/rule_costs.py --results other_results --startup-samples 5

With the run's Snakemake log (default: the newest .snakemake/log/*.snakemake.log) it also
prints the run's makespan, how busy the cores were, the jobs that ran with a core idle at
the end (the critical tail), and rules whose jobs wrote no benchmark file.

Prints markdown tables (the README's "Where the time goes" comes from this script).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import re
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


def read_log(log: Path) -> list[tuple[float, float, str]]:
    """(start, end, rule) of every finished job in a Snakemake log, seconds from its start."""
    stamp = re.compile(r"^\[(\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d \d{4})\]")
    rule_re = re.compile(r"^(?:local)?rule (\w+):")
    jobid_re = re.compile(r"^\s+jobid: (\d+)")
    done_re = re.compile(r"^Finished jobid: (\d+)")
    now = t0 = None
    pending_rule = None
    started: dict[str, tuple[datetime.datetime, str]] = {}
    jobs = []
    for line in log.read_text().splitlines():
        if m := stamp.match(line):
            now = datetime.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
            t0 = t0 or now
        elif m := rule_re.match(line):
            pending_rule = m.group(1)
        elif (m := jobid_re.match(line)) and pending_rule:
            started[m.group(1)] = (now, pending_rule)
            pending_rule = None
        elif (m := done_re.match(line)) and m.group(1) in started:
            begin, rule = started.pop(m.group(1))
            jobs.append(((begin - t0).total_seconds(), (now - t0).total_seconds(), rule))
    return sorted(jobs)


def newest_log() -> Path | None:
    logs = sorted(Path(".snakemake/log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def print_schedule(jobs: list[tuple[float, float, str]], cores: int, benchmarked: set[str]) -> None:
    if not jobs:
        return
    makespan = max(end for _, end, _ in jobs)
    busy = sum(end - begin for begin, end, _ in jobs)
    print(f"\nrun: {len(jobs)} jobs, makespan {makespan / 60:.1f} min; the jobs kept "
          f"{busy / (makespan * cores):.0%} of {cores} cores busy")
    # seconds with a core idle, and the long jobs that ran through them (the critical path
    # a better job order or a split job would shorten)
    idle, lonely = 0, {}
    for second in range(int(makespan)):
        running = [(b, e, r) for b, e, r in jobs if b <= second < e]
        if len(running) < cores:
            idle += cores - len(running)
            for b, e, r in running:
                if e - b > 30:
                    lonely[(b, e, r)] = lonely.get((b, e, r), 0) + 1
    print(f"core-seconds idle: {idle} ({idle / (makespan * cores):.0%}); long jobs running "
          "with a core idle: " + (", ".join(f"{r} ({e - b:.0f} s, {n} s of it alone)"
                                            for (b, e, r), n in sorted(lonely.items()))
                                  or "none"))
    missing = sorted({r for _, _, r in jobs} - benchmarked - {"all"})
    if missing:
        print("rules without a benchmark file: " + ", ".join(missing))


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
    ap.add_argument("--startup-samples", type=int, default=3,
                    help="fresh interpreters to time per kind of job (0: skip)")
    ap.add_argument("--log", type=Path, default=None,
                    help="the run's Snakemake log (default: the newest in .snakemake/log)")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    rows = read_benchmarks(args.results)
    if not rows:
        sys.exit(f"no benchmark files under {args.results}/benchmarks: run the workflow first")
    start = startup_seconds(args.startup_samples) if args.startup_samples > 0 else None
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
        startup_total += len(rs) * start[kind] if start else 0.0
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
    if start:
        print(f"\nstart-up (fresh interpreter + imports, median of {args.startup_samples}, "
              f"measured now): torch jobs {start['torch']:.2f} s, others "
              f"{start['plain']:.2f} s; about {startup_total:.0f} s over all jobs = "
              f"{startup_total / total_wall:.1%} of job wall time")
    log = args.log or newest_log()
    if log is not None and log.is_file():
        print_schedule(read_log(log), args.cores, {rule for _, rule in by_rule})


if __name__ == "__main__":
    main()
