"""Throughput of the ReLU NTK Gram: depthlab.kernels vs a straightforward NumPy version.

    python benchmarks/gram_throughput.py [--n 5000 --d 100 --depth 7 --repeat 1]

Both compute the float64 N x N NTK of the Mori-Ueda ReLU network (first layer w_var = 1,
then w_var = 2, b_var = beta^2) for N random inputs in the same run and print the
seconds of each, the speed-up and the largest absolute difference.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from depthlab.kernels import he_relu_spec, kernel_matrices
from depthlab.kernels.layers import default_threads


def naive_relu_ntk(x: np.ndarray, depth: int, beta: float = 0.1) -> np.ndarray:
    """Obvious per-layer implementation: full-matrix temporaries and arccos."""
    d = x.shape[1]
    b = beta**2
    sigma = x @ x.T / d + b
    theta_ntk = sigma.copy()
    for _ in range(depth):
        diag = np.sqrt(np.diag(sigma))
        norm = np.outer(diag, diag)
        cos = np.clip(sigma / norm, -1.0, 1.0)
        angle = np.arccos(cos)
        sigma_new = 2.0 * norm * (np.sin(angle) + (math.pi - angle) * cos) / (2 * math.pi) + b
        sigma_dot = 2.0 * (math.pi - angle) / (2 * math.pi)
        theta_ntk = sigma_dot * theta_ntk + sigma_new
        sigma = sigma_new
    return theta_ntk


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--depth", type=int, default=7)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--tile", type=int, default=None)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], size=(args.n, args.d))
    spec = he_relu_spec(args.beta)
    kwargs = {}
    if args.threads is not None:
        kwargs["n_threads"] = args.threads
    if args.tile is not None:
        kwargs["tile"] = args.tile

    def best(fn):
        times = []
        result = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        return min(times), result

    t_naive, ref = best(lambda: naive_relu_ntk(x, args.depth, args.beta))
    t_lib, (_, ntk) = best(lambda: kernel_matrices(spec, args.depth, x, **kwargs))
    diff = float(np.max(np.abs(ntk - ref)))
    rel = diff / float(np.max(np.abs(ref)))
    off = ~np.eye(args.n, dtype=bool)
    diff_off = float(np.max(np.abs(ntk - ref)[off])) if args.n > 1 else 0.0
    # exact diagonal (Mori-Ueda): Theta_L(x, x) = sum_{l<=L} |x|^2/d + (l + 1) beta^2
    sq = np.sum(x**2, axis=1) / args.d
    exact = sum(sq + (l + 1) * args.beta**2 for l in range(args.depth + 1))
    err_lib = float(np.max(np.abs(np.diag(ntk) - exact) / exact))
    err_naive = float(np.max(np.abs(np.diag(ref) - exact) / exact))
    print(
        f"ReLU NTK Gram N={args.n} d={args.d} depth={args.depth} float64, "
        f"{kwargs.get('n_threads', default_threads())} thread(s)"
    )
    print(f"naive numpy      : {t_naive:8.3f} s")
    print(f"depthlab.kernels : {t_lib:8.3f} s")
    print(f"speed-up         : {t_naive / t_lib:8.2f} x")
    print(f"max |difference| : {diff:.3e}  (relative {rel:.1e}; off-diagonal {diff_off:.1e})")
    print(f"diagonal vs exact: depthlab {err_lib:.1e}, naive {err_naive:.1e} (relative)")
    return {"naive_s": t_naive, "lib_s": t_lib, "ratio": t_naive / t_lib, "max_abs_diff": diff}


if __name__ == "__main__":
    main()
