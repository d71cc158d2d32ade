r"""The scaled NTK of deep narrow MLPs with the ``deep_narrow`` init of
:mod:`depthlab.models.packed_fc` ("Neural Tangent Kernel Analysis of Deep Narrow Neural
Networks", ICML 2022, Thm. 3.1-3.3).

Conventions (the study's reading notes, sec. 0): ``D`` = number of hidden layers (depthlab's
``FCEnsemble(depth=D)``, the authors' ``--depth``), width ``n = d + K + 1``, and the scaled
NTK is ``Theta~ = Theta / (D C_L^2)``.

``limit_kernel``
    the infinite-depth limit in closed form (float64),

        Theta~^inf(x, x') = x.x' + K + k1(x, x')       (times I_K),
        k1 = sqrt(s s') / (2 pi) (sin t + (pi - t) cos t),   cos t = Sigma(x, x') / sqrt(s s'),
        Sigma(x, x') = (rho^2 / d) x.x' + beta^2,  s = Sigma(x, x),

    the arc-cosine kernel of order 1, i.e. ``E[relu(g(x)) relu(g(x'))]`` for g ~ GP(0, Sigma).
    The thesis writes ``+ 1`` for the constant; it is ``+ K`` for K outputs (one ``C_L^2``
    per output carrier per layer; notes sec. 2.2).  It does not depend on D or C_L.
``finite_init_kernel``
    the exact scaled NTK of a deep-narrow ensemble *at initialization* from its sampled
    random-neuron weights (notes sec. 2.2): with r_l(x) the random neuron of layer l,

        Theta_0 = (x.x' + 1) + sum_{l=1}^{D} [C_L^2 (x.x' + K) + relu(r_l) relu(r_l') + 1],

    a Monte-Carlo average of D draws of relu(g) relu(g'), hence its 1/sqrt(D) spread.
``empirical_scaled_ntk``
    the empirical NTK of any packed :class:`~depthlab.models.FCEnsemble` (ReLU), per output
    block, from one forward and one backward pass per output through every layer (the
    structured form sum_l <delta_l, delta_l'> (a_{l-1}.a_{l-1}' + 1); cost linear in depth,
    no per-sample Jacobians), divided by ``D C_L^2`` for deep-narrow members.
``stability_lambda``, ``kernel_gd``
    lambda_max(K(X, X) / N) and full-batch kernel gradient descent with a step tau
    (``r_{t+1} = (I - tau K / N) r_t``), the linearised dynamics of one SGD step of the
    torch MSE loss (tau = 2 eta D C_L^2 / K).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "arccos1",
    "empirical_scaled_ntk",
    "finite_init_kernel",
    "kernel_gd",
    "limit_kernel",
    "random_neuron_preactivations",
    "sample_init_kernel",
    "shift_inputs",
    "stability_lambda",
    "tau_of_lr",
]


def shift_inputs(x: Any, shift: float) -> np.ndarray:
    """x <- (1 - s) x + s: pixels in [0, 1] become strictly positive (the theorem's x > 0)."""
    if not 0.0 <= shift < 1.0:
        raise ValueError(f"input_shift must be in [0, 1), got {shift}")
    x = np.asarray(x, dtype=np.float64)
    return x if shift == 0.0 else (1.0 - shift) * x + shift


def arccos1(s1: np.ndarray, s2: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """E[relu(u) relu(v)] for a centred Gaussian pair with variances s1, s2 (broadcast) and
    covariance ``cross`` (Cho & Saul's arc-cosine kernel of order 1), float64."""
    s1, s2, cross = (np.asarray(a, dtype=np.float64) for a in (s1, s2, cross))
    norm = np.sqrt(s1 * s2)
    cos = np.clip(cross / norm, -1.0, 1.0)
    theta = np.arccos(cos)
    return norm / (2 * math.pi) * (np.sin(theta) + (math.pi - theta) * cos)


def limit_kernel(x1: Any, x2: Any = None, *, n_out: int = 1, rho: float = 1.0,
                 beta: float = 1.0) -> np.ndarray:
    """Theta~^inf(x1, x2) of one output block (n1, n2), float64 (module doc)."""
    a = np.asarray(x1, dtype=np.float64)
    b = a if x2 is None else np.asarray(x2, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need (n1, d) and (n2, d) inputs, got {a.shape} and {b.shape}")
    d = a.shape[1]
    dot = a @ b.T
    c = rho**2 / d
    s1 = c * np.einsum("ij,ij->i", a, a) + beta**2
    s2 = c * np.einsum("ij,ij->i", b, b) + beta**2
    return dot + n_out + arccos1(s1[:, None], s2[None, :], c * dot + beta**2)


def tau_of_lr(lr: float, depth: int, C_L: float, n_out: int) -> float:
    """Kernel time per SGD step of the mean-over-(batch, outputs) MSE: 2 eta D C_L^2 / K."""
    return 2.0 * lr * depth * C_L**2 / n_out


def stability_lambda(k_train: np.ndarray) -> float:
    """lambda_max(K(X, X) / N): full-batch GD on the linearised model is stable for
    tau * lambda_max < 2."""
    k = np.asarray(k_train, dtype=np.float64)
    return float(np.linalg.eigvalsh(0.5 * (k + k.T))[-1] / k.shape[0])


def kernel_gd(k_train: np.ndarray, k_eval_train: np.ndarray, y_train: np.ndarray, tau: float,
              steps: int, f0_train: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch kernel GD with step ``tau`` from f = 0 (or ``f0_train``): returns the
    predictions at the evaluation points and the train residuals after ``steps`` steps.

    r_{t+1} = (I - tau K / N) r_t on the train set; the evaluation points follow
    f_eval(t+1) = f_eval(t) - tau K(eval, X) r_t / N.  Exact via the eigendecomposition.
    """
    k = np.asarray(k_train, dtype=np.float64)
    n = k.shape[0]
    y = np.asarray(y_train, dtype=np.float64).reshape(n, -1)
    r0 = (np.zeros_like(y) if f0_train is None else np.asarray(f0_train).reshape(n, -1)) - y
    lam, vec = np.linalg.eigh(0.5 * (k + k.T) / n)
    gain = 1.0 - tau * lam
    # sum_{t<T} (1 - tau lam)^t = (1 - g^T) / (tau lam); -> T where tau lam ~ 0
    with np.errstate(divide="ignore", invalid="ignore"):
        geom = np.where(np.abs(tau * lam) > 1e-300, (1.0 - gain**steps) / (tau * lam), steps)
    coef = vec.T @ r0
    r_t = vec @ (gain[:, None] ** steps * coef)
    # f_eval(T) = f_eval(0) - tau/N K(eval, X) sum_t r_t
    sum_r = vec @ (geom[:, None] * coef)
    f_eval = -tau / n * np.asarray(k_eval_train, dtype=np.float64) @ sum_r
    return f_eval, r_t


# --------------------------------------------------------------------------- finite nets

def _relu(z):
    return np.maximum(z, 0.0)


def random_neuron_preactivations(model, x: Any) -> np.ndarray:
    """r_l(x) of every deep-narrow member at init, (M, D, n) float64, read off the weights:
    r_1 = x.u^1 + v^1, r_l = C_L x.u^l + v^l (the carriers hold C_L x at init)."""
    if model.init != "deep_narrow":
        raise ValueError(f"needs a deep_narrow ensemble, got init {model.init!r}")
    x = np.asarray(x, dtype=np.float64)
    d, c = model.d, model.init_params["C_L"]
    u = np.stack([w.detach().cpu().double().numpy()[:, :d, d] for w in model.weights[:-1]], 1)
    v = np.stack([b.detach().cpu().double().numpy()[:, 0, d] for b in model.biases[:-1]], 1)
    scale = np.full(model.depth, c)
    scale[0] = 1.0
    # (M, D, d) @ (d, n) -> (M, D, n)
    return np.einsum("mld,nd->mln", u * scale[None, :, None], x) + v[:, :, None]


def finite_init_kernel(model, x1: Any, x2: Any = None) -> np.ndarray:
    """Exact scaled NTK Theta_0 / (D C_L^2) of each deep-narrow member at init, (M, n1, n2)
    (one output block; the off-diagonal blocks are exactly 0)."""
    a = np.asarray(x1, dtype=np.float64)
    b = a if x2 is None else np.asarray(x2, dtype=np.float64)
    depth, k_out, c = model.depth, model.n_out, model.init_params["C_L"]
    r1 = _relu(random_neuron_preactivations(model, a))
    r2 = r1 if x2 is None else _relu(random_neuron_preactivations(model, b))
    dot = a @ b.T
    sig = np.einsum("mla,mlb->mab", r1, r2)
    theta = (dot + 1.0) + depth * (c**2 * (dot + k_out) + 1.0) + sig
    return theta / (depth * c**2)


def empirical_scaled_ntk(model, x1: Any, x2: Any = None, *, scale: float | None = None,
                         members: Any = None) -> np.ndarray:
    """Empirical NTK blocks Theta_kk(x1, x2) / scale of every member, (M, K, n1, n2) float64.

    ``scale`` defaults to D C_L^2 for deep-narrow ensembles and 1 otherwise.  Computed in the
    model's dtype from per-layer activations and per-output backward signals of a ReLU
    :class:`~depthlab.models.FCEnsemble` (module doc); ``members`` selects pack rows.
    """
    import torch

    if model.activation != "relu":
        raise ValueError("empirical_scaled_ntk is written for ReLU ensembles")
    if scale is None:
        scale = model.depth * model.init_params["C_L"] ** 2 if model.init == "deep_narrow" else 1.0
    ref = model.weights[0]
    idx = None if members is None else torch.as_tensor(list(members), device=ref.device)

    def params(p):
        p = p.detach()
        return p if idx is None else p.index_select(0, idx)

    ws = [params(w) for w in model.weights]
    bs = [params(b) for b in model.biases]
    mult = model.multipliers

    def signals(x):
        xt = torch.as_tensor(np.asarray(x), dtype=ref.dtype, device=ref.device)
        h = xt.unsqueeze(0).expand(ws[0].shape[0], -1, -1)
        acts = [h]
        with torch.no_grad():
            for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
                z = torch.baddbmm(b, h, w, alpha=mult[i])
                h = torch.relu(z) if i < len(ws) - 1 else z
                acts.append(h)
        return acts

    a1 = signals(x1)
    a2 = a1 if x2 is None else signals(x2)
    m, n1, n2 = a1[0].shape[0], a1[0].shape[1], a2[0].shape[1]
    k_out = model.n_out
    out = torch.zeros(m, k_out, n1, n2, dtype=ref.dtype, device=ref.device)
    last = len(ws) - 1
    eye = torch.eye(k_out, dtype=ref.dtype, device=ref.device)
    # backward signals of all K outputs at once: (M, K, n, width), top layer first
    d1 = eye[None, :, None, :].expand(m, k_out, n1, k_out)
    d2 = eye[None, :, None, :].expand(m, k_out, n2, k_out)
    with torch.no_grad():
        for i in range(last, -1, -1):
            inner = torch.bmm(a1[i], a2[i].transpose(1, 2)).mul_(mult[i] ** 2).add_(1.0)
            w = d1.shape[-1]
            dd = torch.bmm(d1.reshape(m * k_out, n1, w),
                           d2.reshape(m * k_out, n2, w).transpose(1, 2)).view(m, k_out, n1, n2)
            out.addcmul_(dd, inner.unsqueeze(1))
            if i > 0:
                wt = ws[i].transpose(1, 2) * mult[i]  # (M, n_out_i, n_in_i)
                d1 = torch.matmul(d1, wt.unsqueeze(1)).mul_((a1[i] > 0).unsqueeze(1))
                d2 = torch.matmul(d2, wt.unsqueeze(1)).mul_((a2[i] > 0).unsqueeze(1))
    return out.to(torch.float64).cpu().numpy() / scale


def sample_init_kernel(x1: Any, x2: Any = None, *, depth: int, n_out: int, seed: int,
                       C_L: float = 1.0, rho: float = 1.0, beta: float = 1.0) -> np.ndarray:
    """``finite_init_kernel`` of the deep-narrow member with this seed, from the same draws
    (u^l, v^l in the init's order) without building the net: (n1, n2), float64.  Cost
    O(D n d) draws and O(D n1 n2) products, so D = 10^4 takes well under a second."""
    import torch

    a = np.asarray(x1, dtype=np.float64)
    b = a if x2 is None else np.asarray(x2, dtype=np.float64)
    d = a.shape[1]
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    u = np.empty((depth, d))
    v = np.empty(depth)
    for layer in range(depth):  # the draw order of packed_fc._deep_narrow_member
        draw = torch.randn(d, generator=gen, dtype=torch.float64)
        u[layer] = (draw * (rho / math.sqrt(d))).numpy()
        v[layer] = float(torch.randn(1, generator=gen, dtype=torch.float64)[0] * (C_L * beta))
    scale = np.full(depth, C_L)
    scale[0] = 1.0
    r1 = _relu((u * scale[:, None]) @ a.T + v[:, None])
    r2 = r1 if x2 is None else _relu((u * scale[:, None]) @ b.T + v[:, None])
    dot = a @ b.T
    theta = (dot + 1.0) + depth * (C_L**2 * (dot + n_out) + 1.0) + r1.T @ r2
    return theta / (depth * C_L**2)
