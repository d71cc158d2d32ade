"""Speed-up of packed Geiger dynamics over one net per job, in one run.

One (activation, L, h) cell of the laptop config's shape (d = 10 PCA-like inputs, n = 150
training points, Softplus, L = 5, h = 32 by default) with ``--alphas`` sqrt(h) alpha values x
``--seeds`` seeds as members.  Each member is trained

* alone: ``hinge_flow`` on its own net, one after the other in this process (what one job
  per net does, minus the job's start-up), and
* packed: all members at once with ``packed_hinge_flow``,

with the same ``max_steps`` cap (a cap keeps the run short; every step costs the same with
or without it).  Printed: wall seconds of both, the speed-up, whether every member's result
is bitwise the same (CPU), and the speed-up once each one-net job's process start-up
(``python -c "import torch, depthlab..."``, measured here) is added.  On a machine with CUDA
the same comparison runs on the GPU too (bitwise identity is only promised on CPU).

    .venv/bin/python benchmarks/geiger_packing.py [--width 32 --depth 5 --max-steps 3000]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from depthlab.studies.geiger.runs import geiger_fc
from depthlab.training.hinge import hinge_flow, packed_hinge_flow


def task(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] - 0.3 * x[:, 2] ** 2 > 0, 1.0, -1.0)
    return torch.as_tensor(x), torch.as_tensor(y)


def startup_seconds(repeats: int = 3) -> float:
    """Median wall time of a fresh Python importing torch and the dynamics (a job's floor)."""
    code = "import torch, depthlab.studies.geiger.runs"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def same(a: dict, b: dict) -> bool:
    if a["n_steps"] != b["n_steps"] or not torch.equal(a["train_outputs"], b["train_outputs"]):
        return False
    return all(np.array_equal(np.float64(ra[k]), np.float64(rb[k]), equal_nan=True)
               for ra, rb in zip(a["records"], b["records"], strict=True) for k in ra)


def compare(device: str, members, args, x, y) -> dict:
    x, y = x.to(device), y.to(device)
    nets = lambda: [geiger_fc(x.shape[1], args.width, args.depth, seed=s,  # noqa: E731
                              activation=args.activation).to(device) for _, s in members]
    kw = {"max_steps": args.max_steps, "df_target": 6e-3, "mu": 1000.0}
    alone_nets = nets()
    start = time.perf_counter()
    alone = [hinge_flow(net, x, y, alpha=a, **kw) for net, (a, _) in zip(alone_nets, members,
                                                                         strict=True)]
    t_alone = time.perf_counter() - start
    start = time.perf_counter()
    packed = packed_hinge_flow(nets(), x, y, alphas=[a for a, _ in members], **kw)
    t_packed = time.perf_counter() - start
    return {"alone": t_alone, "packed": t_packed,
            "steps": sum(r["n_steps"] for r in alone),
            "tries": sum(r["n_steps"] + r["n_rejected"] for r in alone),
            "bitwise": all(same(a, p) for a, p in zip(alone, packed, strict=True))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--activation", default="softplus")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--alphas", type=float, nargs="+",
                    default=[1e-3, 1e-2, 1e-1, 1.0, 10.0, 1e5], help="sqrt(h) alpha values")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y = task(args.n, args.d)
    members = [(a / math.sqrt(args.width), s) for a in args.alphas for s in range(args.seeds)]
    print(f"cell: {args.activation} L={args.depth} h={args.width}, n={args.n}, d={args.d}; "
          f"{len(members)} members ({len(args.alphas)} alphas x {args.seeds} seeds), "
          f"max_steps={args.max_steps}, torch threads={args.threads}, load average "
          f"{os.getloadavg()[0]:.2f}")
    boot = startup_seconds()
    print(f"one job's start-up (python + import torch, depthlab): {boot:.2f} s")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        r = compare(device, members, args, x, y)
        per_job = r["alone"] + len(members) * boot
        print(f"[{device}] alone, one after another: {r['alone']:.2f} s "
              f"({r['steps']} accepted steps, {r['tries']} tries); packed: {r['packed']:.2f} s"
              f"; speed-up {r['alone'] / r['packed']:.2f}x (dynamics), "
              f"{per_job / (r['packed'] + boot):.2f}x with one start-up per job; "
              f"bitwise identical per member: {r['bitwise']}")


if __name__ == "__main__":
    main()
