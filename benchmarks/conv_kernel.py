"""Per-entry time of convolutional NTK/NNGP Grams: depthlab.kernels.conv against
neural-tangents 0.6.5 on the same inputs and hardware.

The net is neural-tangents' README benchmark: 21 layers of 3x3 conv ("SAME" = zero padding)
+ ReLU on 32x32x3 images, then global average pooling (CNN-P) or flatten (CNN-F) and a dense
readout, NTK parameterisation with W_std^2 = 2, b_std^2 = 0.01 in every layer.  Per entry =
wall time / (N x N) for both libraries (ours computes only the N (N + 1) / 2 pairs of the
upper triangle of a symmetric Gram; neural-tangents all N^2 of them).  Timed after
compilation (neural-tangents: AOT ``jit(...).lower().compile()``, once per case in a worker
process; ours has nothing to compile).  Each case is timed ``--repeats`` times, ours and
neural-tangents alternating (so both see the same machine load), and the medians are
reported; ``nt/ours`` is the ratio of the medians.

neural-tangents must live in a throwaway virtualenv, never in the project's::

    python3 -m venv /tmp/ntvenv && /tmp/ntvenv/bin/pip install neural-tangents==0.6.5
    python benchmarks/conv_kernel.py --nt-python /tmp/ntvenv/bin/python

(or ``DEPTHLAB_NT_PYTHON=/tmp/ntvenv/bin/python``).  Without it only our side runs.  The
inputs go to a temporary .npy that both sides read.  Differences are the max over entries of
``|ours - nt| / max|ours float64|``; neural-tangents' ReLU NTK is only ~1e-7 accurate
(arccos near parallel pixel pairs), so every comparison is against our float64 result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

from depthlab.kernels.conv import conv_sweep

NT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    args = json.loads(sys.argv[1])
    import jax
    if args["dtype"] == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from neural_tangents import stax
    W, b = args["w_var"] ** 0.5, args["b_var"] ** 0.5
    act = {"relu": stax.Relu, "erf": stax.Erf}[args["activation"]]
    layers = []
    for _ in range(args["depth"]):
        layers += [stax.Conv(1, (3, 3), padding=args["padding"], W_std=W, b_std=b), act()]
    layers += [stax.GlobalAvgPool() if args["readout"] == "gap" else stax.Flatten(),
               stax.Dense(1, W_std=W, b_std=b)]
    _, _, kernel_fn = stax.serial(*layers)
    x = jnp.asarray(np.load(args["inputs"]).transpose(0, 2, 3, 1), dtype=args["dtype"])  # NHWC
    fn = jax.jit(kernel_fn, static_argnames="get")
    t0 = time.perf_counter()
    compiled = fn.lower(x, x, get=("nngp", "ntk")).compile()
    print(json.dumps({"compile_s": time.perf_counter() - t0}), flush=True)
    for line in sys.stdin:  # one timed run per "run" line (the driver interleaves its own)
        if line.strip() != "run":
            break
        t1 = time.perf_counter()
        out = compiled(x, x)
        nngp = np.asarray(out.nngp.block_until_ready(), dtype=np.float64)
        ntk = np.asarray(out.ntk, dtype=np.float64)
        t2 = time.perf_counter()
        np.savez(args["out"], nngp=nngp, ntk=ntk)
        print(json.dumps({"run_s": t2 - t1}), flush=True)
    """
)


def ours(x: np.ndarray, readout: str, activation: str, dtype: str, depth: int, device: str,
         w_var: float, b_var: float) -> tuple[float, np.ndarray, np.ndarray]:
    spec = {"architecture": "conv", "activation": activation, "w_var": w_var, "b_var": b_var,
            "image_shape": list(x.shape[1:]), "readout": readout, "padding": "zero",
            "dtype": dtype, "device": device}
    if device == "cuda":  # warm-up (kernel launches, allocator)
        conv_sweep(spec, [1], x[:2])
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    nngp, ntk = conv_sweep(spec, [depth], x.reshape(len(x), -1))[depth]
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, nngp, ntk


class NeuralTangents:
    """A neural-tangents worker process: compiles the kernel once, then times one run of it
    per :meth:`run` (so the driver can interleave its own runs with these)."""

    def __init__(self, nt_python: str, inputs: Path, readout: str, activation: str,
                 dtype: str, depth: int, w_var: float, b_var: float, workdir: Path,
                 threads: int):
        self.out = workdir / f"nt_{readout}_{activation}_{dtype}.npz"
        args = {"inputs": str(inputs), "readout": readout, "activation": activation,
                "dtype": dtype, "depth": depth, "w_var": w_var, "b_var": b_var,
                "padding": "SAME", "out": str(self.out)}
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
        if threads == 1:  # XLA's CPU client otherwise uses every core it may run on
            env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1")
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([nt_python, "-c", NT_SCRIPT, json.dumps(args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)
        self.compile_s = self._reply()["compile_s"]

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=60)
            self.stderr.seek(0)
            raise RuntimeError(f"neural-tangents run failed:\n{self.stderr.read()[-3000:]}")
        return json.loads(line)

    def run(self) -> float:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._reply()["run_s"]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        data = np.load(self.out)
        return data["nngp"], data["ntk"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        self.stderr.close()


def _diff(a: np.ndarray, truth: np.ndarray) -> float:
    return float(np.max(np.abs(a - truth)) / np.max(np.abs(truth)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nt-python", default=os.environ.get("DEPTHLAB_NT_PYTHON", ""),
                   help="python of a venv with neural-tangents 0.6.5 (env DEPTHLAB_NT_PYTHON)")
    p.add_argument("--n-gap", type=int, default=2, help="images for the pooled (CNN-P) Grams")
    p.add_argument("--n-flatten", type=int, default=16, help="images for the flatten Grams")
    p.add_argument("--n-flatten-large", type=int, default=0,
                   help="also time the flatten Grams at this larger N (0: not)")
    p.add_argument("--depth", type=int, default=21)
    p.add_argument("--repeats", type=int, default=5,
                   help="timed runs per case, ours and neural-tangents alternating (medians)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads of both sides (1: single-threaded XLA too; on a shared "
                        "2-core machine OpenMP threads stall when oversubscribed)")
    p.add_argument("--devices", default="cpu,cuda", help="ours: cpu and/or cuda (if present)")
    p.add_argument("--no-erf", action="store_true", help="skip the erf agreement cases")
    p.add_argument("--readouts", default="gap,flatten", help="cases to run: gap and/or flatten")
    p.add_argument("--dtypes", default="float64,float32",
                   help="dtypes to time (float32: ReLU cases only)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    w_var, b_var = 2.0, 0.01
    devices = [d for d in a.devices.split(",") if d == "cpu" or torch.cuda.is_available()]
    nt_python = a.nt_python if a.nt_python and Path(a.nt_python).exists() else ""
    print(f"conv NTK benchmark: {a.depth} x [3x3 conv (zero pad) + act], 32x32x3, "
          f"W_std^2 = {w_var}, b_std^2 = {b_var}; torch {torch.__version__}, "
          f"{a.threads} threads, devices {devices}")
    if not nt_python:
        print("neural-tangents: SKIPPED (no --nt-python / DEPTHLAB_NT_PYTHON venv found)")
    cases = [("gap", "relu", a.n_gap), ("flatten", "relu", a.n_flatten)]
    if a.n_flatten_large:
        cases += [("flatten", "relu", a.n_flatten_large)]
    if not a.no_erf:
        cases += [("gap", "erf", a.n_gap), ("flatten", "erf", a.n_flatten)]
        if a.n_flatten_large:
            cases += [("flatten", "erf", a.n_flatten_large)]
    cases = [c for c in cases if c[0] in a.readouts.split(",")]
    rng = np.random.default_rng(0)
    header = (f"{'readout':8} {'act':5} {'N':>3} {'dtype':8} {'device':6} {'ours ms/entry':>14} "
              f"{'nt ms/entry':>12} {'nt/ours':>8} {'max|dNNGP|':>11} {'max|dNTK|':>10}")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for readout, act, n in cases:
            x = rng.standard_normal((n, 3, 32, 32))
            inputs = work / f"x_{n}.npy"
            np.save(inputs, x)
            truth = None
            dtypes = ["float64", "float32"] if act == "relu" else ["float64"]
            dtypes = [d for d in dtypes if d in a.dtypes.split(",")]
            for dtype in dtypes:
                for device in devices:
                    nt = None
                    if nt_python and device == "cpu":
                        nt = NeuralTangents(nt_python, inputs, readout, act, dtype, a.depth,
                                            w_var, b_var, work, a.threads)
                    ours_s, nt_s = [], []
                    try:
                        for _ in range(max(1, a.repeats)):
                            t, nngp, ntk = ours(x, readout, act, dtype, a.depth, device,
                                                w_var, b_var)
                            ours_s.append(t)
                            if nt is not None:
                                nt_s.append(nt.run())
                        if nt is not None:
                            nt_nngp, nt_ntk = nt.result()
                    finally:
                        if nt is not None:
                            nt.close()
                    t = float(np.median(ours_s))
                    if truth is None:
                        truth = (nngp, ntk)
                    dn, dk = _diff(nngp, truth[0]), _diff(ntk, truth[1])
                    nt_ms, ratio = "-", "-"
                    if nt is not None:
                        nt_t = float(np.median(nt_s)) / n**2
                        nt_ms, ratio = f"{1e3 * nt_t:.3f}", f"{nt_t / (t / n**2):.2f}"
                        dn, dk = _diff(nt_nngp, truth[0]), _diff(nt_ntk, truth[1])
                    print(f"{readout:8} {act:5} {n:>3} {dtype:8} {device:6} "
                          f"{1e3 * t / n**2:>14.3f} {nt_ms:>12} {ratio:>8} {dn:>11.1e} "
                          f"{dk:>10.1e}", flush=True)
    print("differences: neural-tangents (or, without it / on CUDA, ours) against our float64 "
          "CPU result; nt/ours > 1 means ours is faster; times are medians of "
          f"{max(1, a.repeats)} alternating runs.")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
