"""Throughput of the packed SGD engine against the machine's matmul peak and a naive loop.

    python benchmarks/train_throughput.py [--n 10000 --d 500 --depth 7 --width 500
                                           --members 10 --epochs 1 --batch 50]

Reference cell (defaults): d=500, L=7, H=500, B=50, N=10000, one epoch, 10 seeds.

FLOP count (both engines, per epoch):
    3 * 2 * N * sum_l(n_in_l * n_out_l) * members
i.e. forward 2*B*sum(n_in*n_out) per step per member, backward counted as twice the forward
(weight gradient + input gradient). Both engines skip the input gradient of the first layer,
so the real work is slightly lower than counted; the counted FLOP/s is what we compare.

Measured in one run:
  1. peak: best float32 torch.mm GFLOP/s over square sizes 2048 and 4096 (several repeats);
  2. ours: `depthlab.training.packed_sgd._run_epoch` on a pack of all members (after a short
     warm-up);
     with --end-to-end also `train_members` (init, data transfer, final evaluation);
  3. naive: one torch.nn.Sequential per member trained in turn with torch.optim.SGD and
     autograd, same batch size (optionally timed on fewer members: --naive-members).

Both engines are timed in windows of --window steps: the whole-run rate is what a job sees,
the median window rate is robust to other processes taking the CPU for a while (shared
machines); compare the two to judge whether a run was disturbed.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from depthlab.models import FCEnsemble
from depthlab.training import (
    Member,
    TrainConfig,
    _Data,
    _run_epoch,
    _step_scales,
    describe_device,
    resolve_device,
    shuffle_generator,
    train_members,
)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, repeats: int = 5) -> float:
    best = 0.0
    for n in (2048, 4096):
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        inner = 3 if device.type == "cpu" else 20
        torch.mm(a, b)
        sync(device)
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(inner):
                torch.mm(a, b)
            sync(device)
            best = max(best, 2 * n**3 * inner / (time.perf_counter() - t) / 1e9)
    return best


def make_data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, (x[:, 0] > 0).astype(np.int64)


class Timings:
    """Whole-run time plus throughput of short windows of steps.

    The median window rate is robust to other processes stealing the CPU for a while (this
    benchmark often runs on shared machines); the whole-run rate is what a job would see.
    """

    def __init__(self, flops_per_sample: float):
        self.flops_per_sample = flops_per_sample
        self.total_s = 0.0
        self.total_samples = 0
        self.window_rates: list[float] = []

    def add(self, seconds: float, n_samples: int) -> None:
        self.total_s += seconds
        self.total_samples += n_samples
        self.window_rates.append(self.flops_per_sample * n_samples / seconds / 1e9)

    @property
    def rate(self) -> float:
        return self.flops_per_sample * self.total_samples / self.total_s / 1e9

    @property
    def median(self) -> float:
        return float(np.median(self.window_rates))

    def line(self, name: str, peak: float) -> str:
        return (
            f"{name:24s} {self.rate:7.1f} GFLOP/s whole run ({self.total_s:6.2f} s, "
            f"{self.rate / peak:5.1%} of peak); windows: median {self.median:7.1f}, "
            f"best {max(self.window_rates):7.1f} GFLOP/s ({self.median / peak:5.1%} of peak)"
        )


def time_ours(x, y, args, device, flops_per_sample) -> Timings:
    """Pack of all members; flops_per_sample counts all members together."""
    cfg = TrainConfig(depth=args.depth, width=args.width, batch_size=args.batch, device=str(device))
    seeds = list(range(args.members))
    lrs = torch.full((args.members,), args.lr, dtype=torch.float64)
    train = _Data(x, y, cfg.n_classes, device)
    gens = [shuffle_generator(s) for s in seeds]
    rows = seeds if len(seeds) > 1 else seeds * 2  # the engine never packs a single row
    pack = FCEnsemble(args.d, args.depth, args.width, cfg.n_classes, rows, device=device)
    steps = [(s, min(args.batch, args.n - s)) for s in range(0, args.n, args.batch)]
    scales = _step_scales(lrs[rows], {size for _, size in steps}, pack.widths, device)
    _run_epoch(pack, train, gens, rows, steps[:3], scales, cfg.loss)  # warm-up
    sync(device)
    timings = Timings(flops_per_sample)
    for _ in range(args.epochs):
        # an epoch in windows of steps (each window draws its own permutations: negligible)
        for w in range(0, len(steps), args.window):
            window = steps[w : w + args.window]
            t = time.perf_counter()
            loss = _run_epoch(pack, train, gens, rows, window, scales, cfg.loss)
            float(loss.sum())  # the engine syncs once per epoch
            sync(device)
            timings.add(time.perf_counter() - t, sum(size for _, size in window))
    return timings


def time_naive(x, y, args, device, flops_per_sample) -> Timings:
    """One torch.nn.Sequential + torch.optim.SGD per member, trained one after the other."""
    xs = torch.as_tensor(x, device=device)
    ys = torch.as_tensor(y, device=device)
    n_naive = min(args.naive_members, args.members)
    timings = Timings(flops_per_sample / args.members)
    for seed in range(n_naive):
        torch.manual_seed(seed)
        widths = [args.d] + [args.width] * args.depth + [2]
        layers: list[torch.nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(torch.nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=args.lr)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(args.epochs):
            perm = torch.randperm(args.n, generator=gen).to(device)
            starts = list(range(0, args.n, args.batch))
            for w in range(0, len(starts), args.window):
                window = starts[w : w + args.window]
                sync(device)
                t = time.perf_counter()
                for s in window:
                    idx = perm[s : s + args.batch]
                    loss = torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                sync(device)
                timings.add(
                    time.perf_counter() - t, sum(min(args.batch, args.n - s) for s in window)
                )
    return timings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--d", type=int, default=500)
    p.add_argument("--depth", type=int, default=7)
    p.add_argument("--width", type=int, default=500)
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--device", default="auto")
    p.add_argument("--window", type=int, default=20, help="steps per timing window")
    p.add_argument(
        "--naive-members", type=int, default=10**9, help="time the naive loop on this many"
    )
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--end-to-end", action="store_true", help="also time train_members()")
    args = p.parse_args()

    device = resolve_device(args.device)
    load = os.getloadavg()[0]
    if device.type == "cpu" and load > 0.5:
        print(f"WARNING: load average {load:.2f} before start; CPU timings may be disturbed")
    widths = [args.d] + [args.width] * args.depth + [2]
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    flops_epoch = 3 * 2 * args.n * macs * args.members
    print(f"device: {describe_device(device)}, torch threads: {torch.get_num_threads()}")
    print(
        f"cell: N={args.n} d={args.d} L={args.depth} H={args.width} B={args.batch} "
        f"members={args.members} epochs={args.epochs}"
    )
    print(
        f"FLOPs/epoch = 3*2*N*sum(n_in*n_out)*members = {flops_epoch / 1e9:.1f} GFLOP "
        f"(sum n_in*n_out = {macs})"
    )

    x, y = make_data(args.n, args.d)
    peak = matmul_peak(device)
    print(f"matmul peak (float32 mm 2048/4096, best): {peak:8.1f} GFLOP/s")
    flops_per_sample = flops_epoch / args.n
    ours = time_ours(x, y, args, device, flops_per_sample)
    print(ours.line("ours (packed engine)", peak))
    if not args.skip_naive:
        naive = time_naive(x, y, args, device, flops_per_sample)
        print(naive.line("naive (Sequential+SGD)", peak))
        print(
            f"ours / naive = {ours.rate / naive.rate:.2f}x whole run, "
            f"{ours.median / naive.median:.2f}x median window"
        )
    if args.end_to_end:
        cfg = TrainConfig(
            depth=args.depth,
            width=args.width,
            batch_size=args.batch,
            max_epochs=args.epochs,
            device=str(device),
        )
        members = [Member(s, args.lr) for s in range(args.members)]
        t = time.perf_counter()
        train_members(x, y, x[:1000], y[:1000], members, cfg)
        total = time.perf_counter() - t
        print(
            f"train_members end to end ({args.epochs} epoch(s) + final evaluation): {total:.2f} s, "
            f"{flops_epoch * args.epochs / total / 1e9:.1f} GFLOP/s"
        )


if __name__ == "__main__":
    main()
