"""Finite-width nets of Fig. 2: erf MLPs in the NTK parameterisation of Xiao eq. 1,
``z^{l+1} = sigma_w / sqrt(N_l) W phi(z^l) + sigma_b b`` with W, b ~ N(0, 1) (the input layer
and the readout alike), trained by full-batch gradient descent on
``L = (1/2n) sum_i ||f(x_i) - y_i||^2`` (centred one-hot targets).

Why not the packed SGD engine (:mod:`depthlab.training.packed_sgd`): its nets have no erf,
no sigma_b-scaled standard-normal biases (NTK parameterisation with biases at zero) and its
MSE is the mean over the K outputs of the uncentred one-hot targets.  This trainer is the
same idea (every member of one architecture stacked, one batched matmul per layer, each
member its own seed and learning rate, no operation mixing members) for this family.

The learning rate of a member is ``rho * eta_theory`` with ``eta_theory = 2 n /
lambda_max(Theta_dd)`` of the analytic NTK of the training set at this depth: for L above,
the linearised update of the training residual is ``r <- (I - (eta/n) Theta) r``, stable iff
``eta < 2 n / lambda_max``.

Per member: the best train accuracy over the steps and the best test accuracy over the
steps evaluated every ``eval_every`` (Fig. 2 plots the best), the
final loss, and a status from :mod:`depthlab.training.status`: ``diverged`` when the loss is
non-finite or above ``divergence_factor`` times its initial value (the member is then frozen
and its best accuracies are those reached before), ``converged`` when it reaches 100 %
training accuracy by the end, ``max_steps`` otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from depthlab.training.status import CONVERGED, DIVERGED, MAX_STEPS


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
    """x (n, d) shared by all members -> (M, n, K)."""
    sw, sb = math.sqrt(w_var), math.sqrt(b_var)
    h = x.unsqueeze(0).expand(params[0][0].shape[0], -1, -1)
    for i, (w, b) in enumerate(params):
        z = torch.baddbmm(b * sb, h, w, alpha=sw / math.sqrt(w.shape[1]))
        h = torch.erf(z) if i < len(params) - 1 else z
    return h


def analytic_eta(x: np.ndarray, depth: int, w_var: float, b_var: float,
                 activation: str = "erf") -> tuple[float, float]:
    """(lambda_max of the analytic NTK of x at this depth, eta_theory = 2 n / lambda_max)."""
    from depthlab.kernels.layers import kernel_sweep
    from depthlab.kernels.spectra import spectrum

    ntk = kernel_sweep({"activation": activation, "w_var": w_var, "b_var": b_var},
                       [depth], x)[depth][1]
    lmax = spectrum(ntk).lambda_max
    return lmax, 2.0 * len(x) / lmax


def train_members(data: dict[str, np.ndarray], depth: int, width: int, w_var: float,
                  b_var: float, rhos: list[float], seeds: list[int], steps: int,
                  eta_theory: float, divergence_factor: float = 1e3, eval_every: int = 1,
                  dtype=torch.float64) -> list[dict[str, Any]]:
    """Train one member per (rho, seed) (module doc); one dict per member."""
    xtr = torch.as_tensor(data["x_train"].reshape(len(data["x_train"]), -1), dtype=dtype)
    xte = torch.as_tensor(data["x_test"].reshape(len(data["x_test"]), -1), dtype=dtype)
    ytr = torch.as_tensor(data["y_train"], dtype=dtype)
    freq = torch.as_tensor(data["class_freq"], dtype=dtype)
    ltr = torch.as_tensor(data["labels_train"])
    lte = torch.as_tensor(data["labels_test"])
    members = [(float(r), int(s)) for r in rhos for s in seeds]
    params = init_params(xtr.shape[1], width, depth, ytr.shape[1], [s for _, s in members],
                         dtype)
    for w, b in params:
        w.requires_grad_(True)
        b.requires_grad_(True)
    lr = torch.tensor([r * eta_theory for r, _ in members], dtype=dtype)
    m = len(members)
    alive = torch.ones(m, dtype=torch.bool)
    best_tr = torch.zeros(m, dtype=dtype)
    best_te = torch.zeros(m, dtype=dtype)
    final_tr = torch.zeros(m, dtype=dtype)
    final_loss = torch.full((m,), math.nan, dtype=dtype)
    first_loss = None
    diverged_at = [-1] * m
    n = xtr.shape[0]
    for step in range(steps + 1):
        out = forward(params, xtr, w_var, b_var)
        loss = ((out - ytr) ** 2).sum(dim=(1, 2)) / (2 * n)
        with torch.no_grad():
            if first_loss is None:
                first_loss = loss.detach().clone()
            bad = ~torch.isfinite(loss) | (loss > divergence_factor * first_loss)
            for i in torch.nonzero(bad & alive).flatten().tolist():
                diverged_at[i] = step
            alive &= ~bad
            acc_tr = ((out + freq).argmax(-1) == ltr).to(dtype).mean(-1)
            best_tr = torch.where(alive, torch.maximum(best_tr, acc_tr), best_tr)
            if step % eval_every == 0 or step == steps:
                acc_te = ((forward(params, xte, w_var, b_var) + freq).argmax(-1) == lte
                          ).to(dtype).mean(-1)
                best_te = torch.where(alive, torch.maximum(best_te, acc_te), best_te)
            final_tr = torch.where(alive, acc_tr, final_tr)
            final_loss = torch.where(alive, loss.detach(), final_loss)
        if step == steps or not bool(alive.any()):
            break
        grads = torch.autograd.grad(loss[alive].sum(), [p for wb in params for p in wb])
        with torch.no_grad():
            step_lr = torch.where(alive, lr, torch.zeros_like(lr)).view(-1, 1, 1)
            for p, g in zip([p for wb in params for p in wb], grads, strict=True):
                p.sub_(step_lr * torch.nan_to_num(g))
    out_rows = []
    for i, (rho, seed) in enumerate(members):
        status = DIVERGED if diverged_at[i] >= 0 else (
            CONVERGED if float(final_tr[i]) == 1.0 else MAX_STEPS)
        out_rows.append({"rho": rho, "seed": seed, "lr": float(lr[i]), "status": status,
                         "best_train_acc": float(best_tr[i]), "best_test_acc": float(best_te[i]),
                         "final_train_acc": float(final_tr[i]),
                         "final_loss": float(final_loss[i]), "diverged_at": diverged_at[i]})
    return out_rows
