"""Empirical NTK of a ReLU MLP: structured (per-layer signals) vs per-sample autograd.

    python benchmarks/empirical_ntk.py [--n 500 --width 512 --depth 3 --d 100 --repeat 1]

Network ``d -> width x depth -> 1`` (``nn.Linear`` + ``nn.ReLU``, float64).  The baseline
loops over the inputs, takes ``torch.autograd.grad`` of ``f(x_i)`` w.r.t. all parameters,
stacks the flattened gradients into the ``n x n_params`` Jacobian ``J`` and forms ``J J^T``.
``empirical_ntk_structured`` builds the same matrix from per-layer Gram matrices of
activations and backward signals.  Both are timed in the same run (best of ``--repeat``)
and the script prints the seconds, the speed-up and the largest absolute difference; the
``torch.func`` Jacobian-contraction and NTK-vector-product variants are timed for
information (``--skip-func`` skips them).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from depthlab.kernels.empirical import (
    empirical_ntk_jacobian,
    empirical_ntk_structured,
    empirical_ntk_vp,
)


def relu_mlp(d: int, width: int, depth: int, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    n_in = d
    for _ in range(depth):
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    layers.append(nn.Linear(n_in, 1))
    return nn.Sequential(*layers).double()


def per_sample_autograd_ntk(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Baseline: one backward pass per input, Jacobian rows stacked, then ``J J^T``."""
    params = [p for p in model.parameters()]
    rows = []
    for i in range(x.shape[0]):
        out = model(x[i : i + 1]).sum()
        grads = torch.autograd.grad(out, params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    jac = torch.stack(rows)
    return (jac @ jac.T).numpy()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--skip-func", action="store_true", help="skip the torch.func variants")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    model = relu_mlp(args.d, args.width, args.depth)
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(args.n, args.d)))
    n_params = sum(p.numel() for p in model.parameters())

    def best(fn):
        times, result = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        return min(times), result

    t_loop, ref = best(lambda: per_sample_autograd_ntk(model, x))
    t_struct, theta = best(lambda: empirical_ntk_structured(model, x))
    diff = float(np.max(np.abs(theta - ref)))
    rel = diff / float(np.max(np.abs(ref)))
    print(
        f"empirical NTK, ReLU MLP d={args.d} width={args.width} depth={args.depth} "
        f"({n_params} params), n={args.n}, float64, {torch.get_num_threads()} torch thread(s)"
    )
    print(f"per-sample autograd + J J^T : {t_loop:8.3f} s")
    print(f"structured                  : {t_struct:8.3f} s")
    print(f"speed-up                    : {t_loop / t_struct:8.1f} x")
    print(f"max |difference|            : {diff:.3e}  (relative {rel:.1e})")
    result = {
        "autograd_s": t_loop,
        "structured_s": t_struct,
        "ratio": t_loop / t_struct,
        "max_abs_diff": diff,
    }
    if not args.skip_func:
        t_jac, theta_jac = best(lambda: empirical_ntk_jacobian(model, x, block_size=50))
        t_vp, theta_vp = best(lambda: empirical_ntk_vp(model, x, block_size=50))
        d_jac = float(np.max(np.abs(theta_jac - ref)))
        d_vp = float(np.max(np.abs(theta_vp - ref)))
        print(f"torch.func jacobian (info)  : {t_jac:8.3f} s  (max |diff| {d_jac:.1e})")
        print(f"torch.func ntk-vp (info)    : {t_vp:8.3f} s  (max |diff| {d_vp:.1e})")
        result.update({"func_jacobian_s": t_jac, "func_ntk_vp_s": t_vp})
    return result


if __name__ == "__main__":
    main()
