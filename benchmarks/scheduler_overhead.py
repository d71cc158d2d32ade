"""What Snakemake's own scheduling costs, with and without `depthlab.scheduling`'s fix
(one pending re-evaluation timer instead of a new chain per finished job).

A synthetic workflow shaped like `make run` (many ready jobs waiting for few cores, each
job reading a set of input files and burning a fixed amount of CPU) runs twice on
``--cores``: as Snakemake makes it, then with the fix. Prints the Snakemake process's CPU
seconds (sampled from /proc), the makespan, and their ratios.

    python benchmarks/scheduler_overhead.py [--jobs 80] [--work 2.0] [--cores 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SNAKEFILE = """
import os
if os.environ.get("DEPTHLAB_FIX") == "1":
    from depthlab.scheduling import coalesce_reevaluations
    assert coalesce_reevaluations()

rule all:
    input: expand("out/{{i}}.txt", i=range({jobs}))

rule data:
    output: "data/{{k}}.txt"
    shell: "touch {{output}}"

rule job:
    input: expand("data/{{k}}.txt", k=range(20))
    output: "out/{{i}}.txt"
    benchmark: "bench/{{i}}.tsv"
    shell: "{python} -c 'sum(i * i for i in range({loops}))' && touch {{output}}"
"""


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def run(workdir: Path, fix: bool, cores: int) -> tuple[float, float]:
    """(makespan s, Snakemake process CPU s) of one run from scratch."""
    for sub in ("out", "bench", "data", ".snakemake"):
        subprocess.run(["rm", "-rf", str(workdir / sub)], check=True)
    env = {**os.environ, "DEPTHLAB_FIX": "1" if fix else "0",
           "PYTHONPATH": str(REPO / "src")}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", str(cores),
                             "--quiet"], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu = 0.0
    while proc.poll() is None:
        cpu = _cpu_seconds(proc.pid) or cpu
        time.sleep(0.2)
    if proc.returncode:
        raise SystemExit(f"snakemake failed (fix={fix}) in {workdir}")
    return time.perf_counter() - start, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=80)
    ap.add_argument("--work", type=float, default=2.0,
                    help="seconds of CPU per job, roughly (calibrated here)")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    t0 = time.perf_counter()
    sum(i * i for i in range(2_000_000))
    loops = int(2_000_000 * args.work / (time.perf_counter() - t0))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "Snakefile").write_text(
            SNAKEFILE.format(jobs=args.jobs, loops=loops, python=sys.executable))
        results = {fix: run(workdir, fix, args.cores) for fix in (False, True)}
    (wall0, cpu0), (wall1, cpu1) = results[False], results[True]
    print(f"{args.jobs} jobs of ~{args.work} s CPU on {args.cores} cores")
    print("| scheduler | makespan s | snakemake CPU s |\n| --- | ---: | ---: |")
    print(f"| as Snakemake makes it | {wall0:.1f} | {cpu0:.1f} |")
    print(f"| one pending re-evaluation | {wall1:.1f} | {cpu1:.1f} |")
    print(f"ratios (as made / fixed): makespan {wall0 / wall1:.2f}, "
          f"snakemake CPU {cpu0 / max(cpu1, 1e-9):.2f}")


if __name__ == "__main__":
    main()
