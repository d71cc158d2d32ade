"""Finite-width nets of Figs. 2 and 3 (top): erf MLPs in the NTK parameterisation of Xiao
eq. 1, ``z^{l+1} = sigma_w / sqrt(N_l) W phi(z^l) + sigma_b b`` with W, b ~ N(0, 1) (the
input layer and the readout alike), trained by gradient descent on
``L = (1/2b) sum_{i in batch} ||f(x_i) - y_i||^2`` (centred one-hot targets): full-batch
(b = n, Fig. 2) or SGD over mini-batches of b (Fig. 3 top: b = 1024).

Why not the packed SGD engine (:mod:`depthlab.training.packed_sgd`) or the plain
``nn.Module`` trainer (:mod:`depthlab.training.module`): their nets have no erf, no
sigma_b-scaled standard-normal biases (NTK parameterisation with biases at zero) and their
MSE is taken on uncentred one-hot targets.  This trainer is the same idea (every member of
one architecture stacked, one batched matmul per layer, each member its own seed and
learning rate, no operation mixing members) for this family.

The learning rate of a member is ``rho * eta_theory`` with ``eta_theory = 2 b /
lambda_max(Theta_BB)`` of the analytic NTK at this depth of the first b training points
(all n for full batch): for L above, the linearised update of the batch residual is
``r <- (I - (eta/b) Theta_BB) r``, stable iff ``eta < 2 b / lambda_max``.

Mini-batches: member i (seed s) visits the training set in epochs, each a permutation drawn
from ``numpy.random.default_rng([s, 7, epoch])`` cut into floor(n/b) batches of exactly b
(the rest of the permutation is skipped, so every step has the b the rate was set for).
The order is a pure function of (seed, step), so a resumed run needs no generator state.

Per member: the best train / test accuracy over the evaluations (every ``eval_every``
steps and at the last step; full batch: train accuracy at every step, from the training
forward), the final ones, the final loss, and a status from
:mod:`depthlab.training.status`: ``diverged`` when the loss is non-finite or above
``divergence_factor`` times its initial value (the member is then frozen and its best
accuracies are those reached before), ``converged`` when it ends at 100 % training
accuracy, ``max_steps`` otherwise.

Checkpoints (``checkpoint_path``, every ``checkpoint_every`` steps): the parameters and
every running record, written atomically (temporary name, then rename) with a fingerprint
of the settings; a rerun with the same settings resumes from it and finishes bitwise
identically on CPU (tested); a checkpoint of other settings is ignored.  ``device``:
``auto`` (the GPU where present, else the CPU), ``cpu`` or ``cuda[:i]``; nets are
initialised on the CPU from seeded generators, then moved.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from depthlab.training.checkpoint import (
    checkpoint_fingerprint,
    load_checkpoint,
    remove_checkpoint,
    save_checkpoint,
)
from depthlab.training.device import Log, emit, resolve_device
from depthlab.training.packed_sgd import TrainingInterrupted
from depthlab.training.status import CONVERGED, DIVERGED, MAX_STEPS

__all__ = ["TrainingInterrupted", "analytic_eta", "empirical_lambda_max", "forward", "init_params",
           "train_members"]

EVAL_CHUNK = 4096


def init_params(d: int, width: int, depth: int, n_out: int, seeds: list[int],
                dtype=torch.float64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Standard-normal weights and biases per layer, stacked over members (own generators)."""
    sizes = [d] + [width] * depth + [n_out]
    layers: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s))
        layers.append([(torch.randn(a, b, generator=gen, dtype=torch.float64),
                        torch.randn(1, b, generator=gen, dtype=torch.float64))
                       for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
    return [(torch.stack([m[i][0] for m in layers]).to(dtype),
             torch.stack([m[i][1] for m in layers]).to(dtype)) for i in range(depth + 1)]


def forward(params, x: torch.Tensor, w_var: float, b_var: float) -> torch.Tensor:
    """x (n, d) shared by all members, or (M, n, d) one set per member -> (M, n, K)."""
    sw, sb = math.sqrt(w_var), math.sqrt(b_var)
    h = x.unsqueeze(0).expand(params[0][0].shape[0], -1, -1) if x.dim() == 2 else x
    for i, (w, b) in enumerate(params):
        z = torch.baddbmm(b * sb, h, w, alpha=sw / math.sqrt(w.shape[1]))
        h = torch.erf(z) if i < len(params) - 1 else z
    return h


def analytic_eta(x: np.ndarray, depth: int, w_var: float, b_var: float,
                 activation: str = "erf") -> tuple[float, float]:
    """(lambda_max of the analytic NTK of x at this depth, eta_theory = 2 n / lambda_max)
    for the trainer's loss (1/2n) sum ||f - y||^2 over these n = len(x) points."""
    from depthlab.kernels.layers import kernel_sweep
    from depthlab.kernels.spectra import spectrum

    ntk = kernel_sweep({"activation": activation, "w_var": w_var, "b_var": b_var},
                       [depth], x)[depth][1]
    lmax = spectrum(ntk).lambda_max
    return lmax, 2.0 * len(x) / lmax


def _flat_forward(n_layers: int, x: torch.Tensor, w_var: float, b_var: float):
    """:func:`forward` of one member as a function of its flat parameter tensors."""
    def f(*ts):
        return forward([(ts[2 * i], ts[2 * i + 1]) for i in range(n_layers)], x, w_var, b_var)
    return f


def empirical_lambda_max(params, x: torch.Tensor, w_var: float, b_var: float, *,
                         iters: int = 20, seed: int = 0) -> list[float]:
    """lambda_max of each member's own (empirical) NTK at ``params`` on inputs ``x`` (n, d),
    for the same loss normalisation as :func:`analytic_eta` (the per-output n x n kernel;
    the empirical nK x nK kernel J J^T has the same top eigenvalue up to finite-width
    fluctuations). Power iteration on v -> J (J^T v) with a VJP and a JVP, so no Jacobian is
    ever stored (depth 20 x width 64 would be 10^8 entries). The finite-width nets train
    at eta = rho * eta_theory of the *analytic* NTK; their own kernel decides where GD
    diverges, eta_crit = 2 n / lambda_emp.

    All members iterate at once: a member's outputs depend on its own parameters only, so
    one VJP of the stacked outputs gives every member's J^T v and one JVP every J (J^T v),
    each vector normalised per member (one packed pass per iteration instead of one per
    member: the per-member loop cost 3x the training itself). 20 iterations: the top
    eigenvalue (the kernel's mean mode) stands well apart from the rest, and 20 and 40
    iterations agree to 1e-5 relative on the Fig. 2 nets (depth 20, 40 members)."""
    from torch.func import jvp, vjp

    flat = [t.detach() for wb in params for t in wb]
    f = _flat_forward(len(params), x, w_var, b_var)
    y, pull = vjp(f, *flat)
    gen = torch.Generator().manual_seed(int(seed))
    v = torch.randn(y.shape, generator=gen, dtype=y.dtype).to(y.device)
    lam = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
    for _ in range(iters):
        v = v / v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
        cot = pull(v)
        _, jv = jvp(f, tuple(flat), tuple(cot))
        lam = (v * jv).flatten(1).sum(1)
        v = jv
    return [float(val) for val in lam]


@torch.no_grad()
def _accuracy(params, x: torch.Tensor, labels: torch.Tensor, freq: torch.Tensor,
              w_var: float, b_var: float) -> torch.Tensor:
    """Accuracy per member of argmax(f + frequencies), in chunks of EVAL_CHUNK inputs."""
    correct = None
    for s in range(0, len(x), EVAL_CHUNK):
        hit = ((forward(params, x[s:s + EVAL_CHUNK], w_var, b_var) + freq).argmax(-1)
               == labels[s:s + EVAL_CHUNK]).sum(-1)
        correct = hit if correct is None else correct + hit
    return correct.to(freq.dtype) / len(x)


class _Batches:
    """Member-wise mini-batch indices of a step (module doc), one permutation per epoch."""

    def __init__(self, seeds: list[int], n: int, b: int, device: torch.device):
        self.seeds, self.n, self.b, self.device = seeds, n, b, device
        self.per_epoch = n // b
        self._epoch, self._perms = -1, None

    def __call__(self, step: int) -> torch.Tensor:
        epoch, j = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._perms = np.stack([np.random.default_rng([int(s), 7, epoch]).permutation(self.n)
                                    for s in self.seeds])
            self._epoch = epoch
        return torch.as_tensor(self._perms[:, j * self.b:(j + 1) * self.b], device=self.device)


def train_members(data: dict[str, np.ndarray], depth: int, width: int, w_var: float,
                  b_var: float, rhos: list[float], seeds: list[int], steps: int,
                  eta_theory: float, divergence_factor: float = 1e3, eval_every: int = 1,
                  dtype=torch.float64, batch_size: int | None = None,
                  device: str | torch.device = "cpu", checkpoint_path: str | Path | None = None,
                  checkpoint_every: int = 0, log: Log = None, measure_lambda: bool = False,
                  _stop_after_step: int | None = None) -> list[dict[str, Any]]:
    """Train one member per (rho, seed) (module doc); one dict per member.

    ``measure_lambda``: each member's own NTK lambda_max (:func:`empirical_lambda_max`, on
    the first b training points, as eta_theory) at init and at the end (NaN for diverged
    members), as ``lambda_emp_init`` / ``lambda_emp_final``: whether a finite net trains past
    eta_theory because its own kernel is flatter, or because training flattens it
    (catapult: rho * lambda_emp_final / lambda_max ends near 1, the edge of stability).

    ``batch_size`` None or >= n: full batch.  ``eta_theory`` must be for that batch size
    (:func:`analytic_eta` of the first b training points).  ``_stop_after_step`` raises
    :class:`TrainingInterrupted` once that many updates are done (testing hook)."""
    dev = resolve_device(device) if isinstance(device, str) else device
    n = len(data["x_train"])
    xtr = torch.as_tensor(data["x_train"].reshape(n, -1), dtype=dtype).to(dev)
    xte = torch.as_tensor(data["x_test"].reshape(len(data["x_test"]), -1), dtype=dtype).to(dev)
    ytr = torch.as_tensor(data["y_train"], dtype=dtype).to(dev)
    freq = torch.as_tensor(data["class_freq"], dtype=dtype).to(dev)
    ltr = torch.as_tensor(data["labels_train"]).to(dev)
    lte = torch.as_tensor(data["labels_test"]).to(dev)
    full = batch_size is None or int(batch_size) >= n
    b = n if full else int(batch_size)
    members = [(float(r), int(s)) for r in rhos for s in seeds]
    m = len(members)
    params = [(w.to(dev), bb.to(dev)) for w, bb in
              init_params(xtr.shape[1], width, depth, ytr.shape[1], [s for _, s in members],
                          dtype)]
    lr = torch.tensor([r * eta_theory for r, _ in members], dtype=dtype).to(dev)
    lam_init = [math.nan] * m
    if measure_lambda:  # members of one seed share their init: one measurement per seed
        by_seed = dict(zip(seeds, empirical_lambda_max(
            [(w[: len(seeds)], bb[: len(seeds)]) for w, bb in params], xtr[:b], w_var, b_var),
            strict=True))
        lam_init = [by_seed[sd] for _, sd in members]
    batches = None if full else _Batches([s for _, s in members], n, b, dev)
    state: dict[str, Any] = {
        "step": 0, "alive": torch.ones(m, dtype=torch.bool, device=dev),
        "best_tr": torch.zeros(m, dtype=dtype, device=dev),
        "best_te": torch.zeros(m, dtype=dtype, device=dev),
        "final_tr": torch.zeros(m, dtype=dtype, device=dev),
        "final_te": torch.zeros(m, dtype=dtype, device=dev),
        "final_loss": torch.full((m,), math.nan, dtype=dtype, device=dev),
        "first_loss": None, "diverged_at": [-1] * m}
    # Settings plus the content of every data array (train/test inputs, targets, labels,
    # class frequencies): a checkpoint of other data is never resumed.
    fingerprint = checkpoint_fingerprint(
        {"depth": depth, "width": width, "w_var": w_var, "b_var": b_var, "members": members,
         "steps": steps, "eta_theory": eta_theory, "divergence_factor": divergence_factor,
         "eval_every": eval_every, "dtype": str(dtype), "batch": b, "n": n,
         "n_test": len(xte), "arrays": sorted(data)},
        *(data[k] for k in sorted(data)))
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    saved = load_checkpoint(ckpt, fingerprint, log)
    if saved is not None:
        params = [(w.to(dev), bb.to(dev)) for w, bb in saved["params"]]
        state = {k: (v.to(dev) if isinstance(v, torch.Tensor) else v)
                 for k, v in saved["state"].items()}
        emit(log, f"resumed from {ckpt} at step {state['step']}")
    for w, bb in params:
        w.requires_grad_(True)
        bb.requires_grad_(True)
    flat = [p for wb in params for p in wb]
    s_ = state
    for step in range(s_["step"], steps + 1):
        if full:
            xb, yb = xtr, ytr
        else:
            idx = batches(step)
            xb, yb = xtr[idx], ytr[idx]
        out = forward(params, xb, w_var, b_var)
        loss = ((out - yb) ** 2).sum(dim=(1, 2)) / (2 * b)
        with torch.no_grad():
            if s_["first_loss"] is None:
                s_["first_loss"] = loss.detach().clone()
            bad = ~torch.isfinite(loss) | (loss > divergence_factor * s_["first_loss"])
            for i in torch.nonzero(bad & s_["alive"]).flatten().tolist():
                s_["diverged_at"][i] = step
            s_["alive"] &= ~bad
            alive = s_["alive"]
            evaluate = step % eval_every == 0 or step == steps
            acc_tr = None
            if full:
                acc_tr = ((out + freq).argmax(-1) == ltr).to(dtype).mean(-1)
            elif evaluate:
                acc_tr = _accuracy(params, xtr, ltr, freq, w_var, b_var)
            if acc_tr is not None:
                s_["best_tr"] = torch.where(alive, torch.maximum(s_["best_tr"], acc_tr),
                                            s_["best_tr"])
                s_["final_tr"] = torch.where(alive, acc_tr, s_["final_tr"])
            if evaluate:
                acc_te = _accuracy(params, xte, lte, freq, w_var, b_var)
                s_["best_te"] = torch.where(alive, torch.maximum(s_["best_te"], acc_te),
                                            s_["best_te"])
                s_["final_te"] = torch.where(alive, acc_te, s_["final_te"])
                emit(log, f"step {step}: loss {[round(float(v), 5) for v in loss]}, train acc "
                          f"{[round(float(v), 3) for v in s_['final_tr']]}, "
                          f"{int(alive.sum())}/{m} alive")
            s_["final_loss"] = torch.where(alive, loss.detach(), s_["final_loss"])
        if step == steps or not bool(alive.any()):
            break
        grads = torch.autograd.grad(loss[alive].sum(), flat)
        with torch.no_grad():
            step_lr = torch.where(alive, lr, torch.zeros_like(lr)).view(-1, 1, 1)
            for p, g in zip(flat, grads, strict=True):
                p.sub_(step_lr * torch.nan_to_num(g))
        s_["step"] = step + 1
        if (ckpt is not None and checkpoint_every > 0 and s_["step"] % checkpoint_every == 0
                and s_["step"] < steps):
            save_checkpoint(ckpt, {
                "params": [(w.detach().cpu(), bb.detach().cpu()) for w, bb in params],
                "state": {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v)
                          for k, v in s_.items()}}, fingerprint)
            emit(log, f"checkpoint written at step {s_['step']}")
        if _stop_after_step is not None and s_["step"] >= _stop_after_step:
            raise TrainingInterrupted(f"stopped after step {s_['step']} (testing hook)")
    remove_checkpoint(ckpt)
    lam_final = [math.nan] * m
    if measure_lambda:
        alive_ids = [i for i in range(m) if s_["diverged_at"][i] < 0]
        if alive_ids:
            idx = torch.tensor(alive_ids, device=dev)
            final = empirical_lambda_max([(w.detach()[idx], bb.detach()[idx])
                                          for w, bb in params], xtr[:b], w_var, b_var)
            for i, lam in zip(alive_ids, final, strict=True):
                lam_final[i] = lam
    out_rows = []
    for i, (rho, seed) in enumerate(members):
        status = DIVERGED if s_["diverged_at"][i] >= 0 else (
            CONVERGED if float(s_["final_tr"][i]) == 1.0 else MAX_STEPS)
        out_rows.append({"rho": rho, "seed": seed, "lr": float(lr[i]), "status": status,
                         "best_train_acc": float(s_["best_tr"][i]),
                         "best_test_acc": float(s_["best_te"][i]),
                         "final_train_acc": float(s_["final_tr"][i]),
                         "final_test_acc": float(s_["final_te"][i]),
                         "final_loss": float(s_["final_loss"][i]),
                         "diverged_at": s_["diverged_at"][i],
                         **({"lambda_emp_init": lam_init[i], "lambda_emp_final": lam_final[i]}
                            if measure_lambda else {})})
    return out_rows
