"""Scale of the DAG: dry-run time and cluster job counts of a config (default: the paper's).

    python benchmarks/dag_dryrun.py [--configfile config/paper.yaml --repeat 3]

Prints, in one run:
  * seconds to parse the Snakefile alone (`--list-rules`), which every cluster job repeats;
  * seconds and job count of `snakemake -n` (the DAG a local run would execute);
  * the cluster jobs of `snakemake --profile slurm -n`: one per ungrouped job plus one per
    group job (profiles/slurm `groups` / `group-components`), against one per rule job
    without grouping, and what each group job would ask Slurm for (CPUs, memory, time),
    sized as in a real (non-dry) run: members beyond the profile's per-group `resources`
    budget run in series.
Runs in a fresh temporary directory, so nothing exists yet and every job is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
GROUP_MARK = "DEPTHLAB_GROUP_JOB "


def _snakemake(args: list[str], cwd: Path, group_report: bool = False) -> tuple[float, str]:
    cmd = ([sys.executable, __file__, "--as-snakemake"] if group_report else SNAKEMAKE)
    cmd = [*cmd, "--snakefile", str(REPO / "Snakefile"), "--directory", str(cwd), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    elapsed = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{out[-4000:]}")
    return elapsed, out


def job_stats(out: str) -> Counter:
    """The 'Job stats' table of a dry run: rule -> job count."""
    table = out[out.index("Job stats:"):]
    counts = Counter()
    for line in table.splitlines()[3:]:
        parts = line.split()
        if len(parts) < 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def cluster_jobs(out: str) -> tuple[Counter, list[dict]]:
    """Cluster submissions of a dry run under a profile with groups.

    A group job is logged as a 'Group job NAME' header followed by its member jobs indented;
    an ungrouped job is a top-level 'rule NAME:' block. `all` only collects targets and runs
    in the main process, so it is not a cluster job.
    """
    single = Counter(
        m.group(1) for m in re.finditer(r"^rule (\w+):$", out, re.M) if m.group(1) != "all"
    )
    groups = [json.loads(line[len(GROUP_MARK):]) for line in out.splitlines()
              if line.startswith(GROUP_MARK)]
    return single, groups


def _as_snakemake(argv: list[str]) -> int:
    """Run the snakemake CLI, also printing each group job's Slurm request (see docstring)."""
    import snakemake.cli as cli
    from snakemake.jobs import GroupJob
    from snakemake.resources import GroupResources, Resource

    class Unconstrained:
        """The workflow's resource limits as in a real cluster run: no --cores limit."""

        def __init__(self, limits):
            self.limits = limits

        def get(self, name):
            return Resource(name, None) if name == "_cores" else self.limits.get(name)

    log_info = GroupJob.log_info

    def log_info_with_request(self):
        request = GroupResources.basic_layered(
            toposorted_jobs=self.toposorted,
            constraints=Unconstrained(self.global_resources),
            run_local=False,
            additive_resources=["runtime"],
            sortby=["runtime"],
        )
        members = Counter(job.rule.name for job in self.jobs)
        print(GROUP_MARK + json.dumps({
            "group": self.groupid, "members": dict(members),
            "cpus": request.get("cpus_per_task", request.get("_cores")),
            "mem_mb": request.get("mem_mb"), "runtime_min": request.get("runtime"),
        }), flush=True)
        log_info(self)

    GroupJob.log_info = log_info_with_request
    sys.argv = ["snakemake", *argv]
    return cli.main()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=str(REPO / "config" / "paper.yaml"))
    parser.add_argument("--profile", default=str(REPO / "profiles" / "slurm"))
    parser.add_argument("--repeat", type=int, default=3, help="timed dry runs (median shown)")
    args = parser.parse_args(argv)
    config = ["--configfile", str(Path(args.configfile).resolve())]

    with tempfile.TemporaryDirectory(prefix="dag_dryrun_") as tmp:
        work = Path(tmp)
        parse_s = statistics.median(
            _snakemake(["--list-rules", *config], work)[0] for _ in range(args.repeat))
        runs = [_snakemake(["-n", "--quiet", "rules", "--cores", "1", *config], work)
                for _ in range(args.repeat)]
        dry_s = statistics.median(t for t, _ in runs)
        counts = job_stats(runs[0][1])
        _, out = _snakemake(["--profile", args.profile, "-n", *config], work,
                            group_report=True)
    single, groups = cluster_jobs(out)
    rule_jobs = sum(n for rule, n in counts.items() if rule != "all")
    n_cluster = sum(single.values()) + len(groups)

    print(f"config: {args.configfile}")
    print(f"Snakefile parse (--list-rules): {parse_s:.2f} s  (every cluster job repeats it)")
    print(f"dry run (-n): {dry_s:.2f} s (median of {args.repeat}), "
          f"{sum(counts.values())} jobs: " + ", ".join(f"{r} {n}" for r, n in counts.items()))
    print(f"cluster jobs without grouping: {rule_jobs} (one per rule job; `all` runs locally)")
    print(f"cluster jobs with {Path(args.profile).name} profile grouping: {n_cluster} = "
          f"{sum(single.values())} single ("
          + ", ".join(f"{r} {n}" for r, n in single.items())
          + f") + {len(groups)} group jobs")
    by_shape = Counter(
        (g["group"], json.dumps(g["members"], sort_keys=True), g["cpus"], g["mem_mb"],
         g["runtime_min"]) for g in groups)
    for (name, members, cpus, mem, runtime), n in sorted(by_shape.items()):
        members = ", ".join(f"{k} {v}" for k, v in json.loads(members).items())
        print(f"  {n} x group {name} [{members}]: {cpus} CPUs, {mem} MB, {runtime} min")
    return {"parse_s": parse_s, "dryrun_s": dry_s, "jobs": sum(counts.values()),
            "cluster_jobs_ungrouped": rule_jobs, "cluster_jobs_grouped": n_cluster}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--as-snakemake":
        sys.exit(_as_snakemake(sys.argv[2:]))
    main()
