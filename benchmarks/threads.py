"""Is one thread per job right on this machine? Small BLAS and torch ops timed at 1 thread
and at every core, alone and with a second busy process competing (as two jobs of a
2-core run do). Prints time ratios; a ratio > 1 means more threads were slower.

    python benchmarks/threads.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(repeats: int, cores: int) -> dict[str, dict[int, float]]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 256))
    sym = a @ a.T
    x = torch.randn(64, 256)
    w = torch.randn(256, 256)
    cases = {
        "numpy eigh(256)": lambda: np.linalg.eigh(sym),
        "numpy cholesky(256)": lambda: np.linalg.cholesky(sym + 256 * np.eye(256)),
        "torch 64x256 @ 256x256": lambda: x @ w,
    }
    out: dict[str, dict[int, float]] = {}
    for name, fn in cases.items():
        out[name] = {}
        for n in sorted({1, cores}):
            with threadpool_limits(limits=n):
                torch.set_num_threads(n)
                fn()
                out[name][n] = _best(fn, repeats)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"{cores} cores; times are the best of {args.repeats}")
    for label, busy in (("alone", False), ("with one busy process", True)):
        stop = mp.Event()
        proc = mp.Process(target=_spin, args=(stop,)) if busy else None
        if proc:
            proc.start()
        try:
            res = measure(args.repeats, cores)
        finally:
            if proc:
                stop.set()
                proc.join()
        print(f"\n{label}:")
        for name, t in res.items():
            many = t[cores]
            print(f"  {name:26s} 1 thread {t[1] * 1e3:8.3f} ms   {cores} threads "
                  f"{many * 1e3:8.3f} ms   ratio {many / t[1]:6.2f}")


if __name__ == "__main__":
    main()
