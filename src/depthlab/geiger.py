r"""Feature vs lazy learning (Geiger, Spigler, Jacot & Wyart): model, dynamics, measures.

Model (App. B, eqs. 20-22)
--------------------------
A fully connected net of ``L`` hidden layers of width ``h`` in NTK parameterisation::

    z~1 = d^-1/2 W0 x + B0,   z~(l+1) = h^-1/2 W_l sigma(z~l) + B_l,
    f = h^-1/2 W_L sigma(z~L) + B_L

(the paper's eq. 21 writes ``z~l`` where the text means the activity ``z_l = sigma(z~l)``),
all ``W ~ N(0, 1)``, all biases trainable and initialised at 0.  :func:`geiger_fc` builds it
as an ``nn.Sequential`` of :class:`~depthlab.kernels.empirical.NTKLinear` (``w_var = 1``,
``b_std = 1``) and :class:`GainActivation`, so the structured empirical NTK applies.  The
activation is ``a * phi`` with ``phi`` the Softplus ``log(1 + e^(beta z)) / beta`` (``beta =
5``) or ReLU, and the gain ``a = E_{z~N(0,1)}[phi(z)^2]^{-1/2}`` (:func:`activation_gain`,
a Gaussian integral by quadrature): with unit-variance preactivations and ``W ~ N(0, 1)``
the next preactivations have variance ``E[(a phi)^2] = 1`` again (Softplus, beta = 5: ``a =
1.4043``; ReLU: ``a = sqrt(2)``).  With inputs whose components have unit variance (the
PCA-whitened data) every preactivation has unit variance at initialisation.

Trained function and loss (sec. 2, eqs. 4-5)
--------------------------------------------
``F(w, x) = alpha (f(w, x) - f(w0, x))`` and ``L = 1/(alpha^2 n) sum_mu hinge(y_mu F(w, x_mu))``,
``hinge(z) = max(0, 1 - z)``, ``y = +-1`` (labels ``{0, 1}`` are mapped to ``{-1, +1}``).
``alpha^2 L`` -- the mean hinge loss of ``F`` -- starts at exactly 1 (``F(w0) = 0``).  A
point is "active" when its margin ``y F < 1``; the gradient is
``grad L = -1/(alpha n) sum_{active} y_mu grad f(x_mu)``.  Errors count ``y F <= 0`` (so a
zero output is an error).

Dynamics (eq. 6 and App. A)
---------------------------
Continuous momentum ``dw/dt = v``, ``tau dv/dt = -(v + grad L)``, integrated step by step with
the gradient held fixed over a step of length ``dt`` (the velocity relaxation is exact,
then ``w += dt v``; the scheme of Geiger's ``gradientflow`` package):

* ``tau = t / mu`` (default, ``mu = 1000``, the FC setup): ``v <- x v - (1 - x) g`` with
  ``x = (t / (t + dt))^mu`` (solution of ``dv/dt = -(mu/t)(v + g)``; ``x = 0`` at ``t = 0``);
* constant ``tau`` (``tau=...``, e.g. 10 for the CNN setup): ``x = exp(-dt / tau)``;
* ``mu=None, tau=None``: vanilla gradient descent ``w -= dt g``.

Adaptive step (App. A, eq. 18): a tentative step is accepted only if ``1e-4 < alpha max_mu
|f(w_new, x_mu) - f(w, x_mu)| < 1e-2`` (``df_band``); otherwise it is undone and retried
with ``dt`` rescaled by ``df_target / observed`` (the output change is close to linear in
``dt``); once one retry fell below the band and another above it, the next ``dt`` bisects
that bracket instead (the change need not be monotone in ``dt`` when the velocity points
against the gradient). After an accepted step the next ``dt`` is rescaled the same way, by a
factor in [1/2, 2]. Every accepted step satisfies the band; the only exception is a step
accepted after ``max_retries`` failed attempts, which is counted (``n_band_violations``,
expected 0). There is no special first or last step: the first ``dt`` is found by the same
search, and the last step is an ordinary accepted step after which every margin is >= 1 (the
dynamics is not truncated to land on the boundary).

Stopping: when the hinge loss is exactly 0 after a step (status ``"converged"``, ``t2`` = that
time); at ``max_steps`` accepted steps or ``t >= max_time`` (status ``"max_steps"``); on a
non-finite output (``"diverged"``).

Stochastic variant (App. A, eqs. 15-19), ``temperature=T > 0``: each tentative step draws a
batch of ``b = round(n / ((T/dt)(n - 1) + 1))`` distinct training points (clipped to
``[1, n]``; ``b < 1`` would be needed when ``dt < T``, then ``b = 1`` and the effective
temperature ``dt/b (1 - (b-1)/(n-1))`` is below ``T``, which is recorded), the gradient is
that of the batch-mean loss, and the band is checked on the batch outputs.  A run stops
when all margins of the batch are >= 1 after a step and a full evaluation finds the whole
training loss 0; ``alpha^2 L`` (hence ``t1``) is only known at full evaluations (the
records and those checks).  (For the CNN setup of the paper; not used by the FC study.)

Measures
--------
Along the trajectory, at log-spaced times (``record_per_decade`` per decade, the first step
whose time enters a new bin, plus ``t = 0`` and the final state): ``t``, ``alpha^2 L``,
train and test error, ``||f(w_t) - f(w0)||`` and ``||f(w_t)||`` on the test set (App. E eq.
29: the root mean square over test points, of ``f``, not ``F``) and ``||w_t - w0|| /
||w0||`` (all parameters). At the end: test error, ``t1`` (``alpha^2 L = 0.5``, linear
interpolation between the two steps around the crossing), ``t2``, the kernel change
``||Theta(w_end) - Theta(w0)||_F / ||Theta(w0)||_F`` (eq. 9) on the first ``ntk_subset``
test points, and the lazy (frozen initial NTK, App. C) prediction:
:func:`depthlab.kernels.regression.frozen_kernel_dynamics` with ``lr = 1/n`` on ``F`` (``f_0
= 0``), the hinge loss, the initial empirical NTK Grams (train x train, test x train) and
the same ``tau = t/mu`` momentum as the net (the output change per step is bounded by
``df_target``).

Ensembles (sec. 4): :func:`ensemble_stats` -- the test error of the ensemble-averaged
predictor ``sign(mean_i F_i)`` and ``Var f`` of eq. 7 (population variance over members,
averaged over test points).  :func:`exponent_fit` fits power laws for Table 1.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from depthlab.activations import activation_gain
from depthlab.kernels.empirical import (
    empirical_ntk,
    empirical_ntk_structured,
    ntk_relative_change,
)
from depthlab.models import FCSpec, GainActivation, NTKLinear, fc_net, strided_cnn

__all__ = [
    "ACTIVATIONS",
    "activation_gain",
    "GainActivation",
    "geiger_fc",
    "geiger_cnn",
    "geiger_model",
    "ARCHITECTURES",
    "resolve_device",
    "pm_labels",
    "hinge_flow",
    "train_lazy_feature",
    "frozen_ntk_prediction",
    "LAZY_TIMES",
    "ensemble_stats",
    "exponent_fit",
    "STATUSES",
    "TRAJECTORY_KEYS",
]

ACTIVATIONS = ("softplus", "relu")
STATUSES = ("converged", "max_steps", "diverged")
DF_BAND = (1e-4, 1e-2)
DF_TARGET = 10**-2.5  # aim half a decade below the band top: ~half the steps of 1e-3
SOFTPLUS_THRESHOLD = 30.0  # torch's softplus is linear above beta z = 30 (error e^-30 / beta)

Log = logging.Logger | Callable[[str], Any] | None


def _emit(log: Log, message: str) -> None:
    if log is None:
        return
    if isinstance(log, logging.Logger):
        log.info(message)
    else:
        log(message)


# ----------------------------------------------------------------------------- model


ARCHITECTURES = ("fc", "cnn")


def geiger_fc(d: int, width: int, depth: int, *, activation: str = "softplus", beta: float = 5.0,
              seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """The FC net of App. B: ``d -> width x depth -> 1``, ``W ~ N(0, 1)``, biases 0 (trainable)."""
    spec = FCSpec(activation=activation, gain=True, beta=beta, w_var=1.0, first_w_var=1.0,
                  b_std=1.0, zero_bias=True)
    return fc_net(d, width, depth, spec, seed=seed, dtype=dtype)


def geiger_model(architecture: str, d: int, width: int, depth: int, *, activation: str,
                 beta: float, seed: int, image_shape: tuple[int, ...] | None = None):
    """The net of one run: :func:`geiger_fc` or :func:`geiger_cnn` (needs ``image_shape``)."""
    if architecture == "fc":
        return geiger_fc(d, width, depth, activation=activation, beta=beta, seed=seed)
    if architecture == "cnn":
        if image_shape is None or int(np.prod(image_shape)) != d:
            raise ValueError(f"the CNN needs the image shape of its {d}-pixel inputs, got "
                             f"{image_shape}")
        return strided_cnn(image_shape, width, depth, activation=activation, beta=beta,
                           seed=seed)
    raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")


def _empirical_ntk(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor | None = None):
    """The structured MLP path where it applies (exact and fast), else NTK-vector products,
    whose memory is one block's worth of gradients (a CNN's Jacobian on 10^4 MNIST images
    would not fit)."""
    if _FCEngine.applies(model):
        return empirical_ntk_structured(model, x1, x2)
    return empirical_ntk(model, x1, x2, method="ntk_vp")


def pm_labels(y: Any) -> np.ndarray:
    """Labels as float64 ``+-1``: ``{0, 1}`` maps to ``{-1, +1}`` (0 = even digit -> -1),
    ``{-1, +1}`` is kept."""
    y = np.asarray(y).reshape(-1)
    values = set(np.unique(y).tolist())
    if values <= {0, 1}:
        return np.where(y == 1, 1.0, -1.0)
    if values <= {-1, 1}:
        return y.astype(np.float64)
    raise ValueError(f"labels must be in {{0, 1}} or {{-1, +1}}, got values {sorted(values)}")


# ----------------------------------------------------------------------------- dynamics


def _momentum_decay(t: float, dt: float, mu: float | None, tau: float | None) -> float:
    """Velocity memory ``x`` over a step (module doc); 0 = vanilla gradient descent."""
    if tau is not None:
        return math.exp(-dt / tau) if tau > 0 else 0.0
    if mu is not None and mu > 0:
        return 0.0 if t <= 0.0 else math.exp(-mu * math.log1p(dt / t))
    return 0.0


def _bucket(t: float, per_decade: int) -> float:
    return -math.inf if t <= 0 else math.floor(per_decade * math.log10(t) + 1e-9)


class _AutogradEngine:
    """Outputs and hinge-loss gradients of any scalar-output module (``torch.func``)."""

    def __init__(self, model: nn.Module):
        from torch.func import functional_call

        self.model, self.call = model, functional_call
        self.names = [k for k, _ in model.named_parameters()]

    def forward(self, w: Mapping[str, torch.Tensor], xs: torch.Tensor, need_grad: bool):
        if not need_grad:
            with torch.no_grad():
                return self.call(self.model, dict(w), (xs,)).reshape(-1), None
        leaves = {k: p.detach().requires_grad_(True) for k, p in w.items()}
        out = self.call(self.model, leaves, (xs,)).reshape(-1)
        return out.detach(), (leaves, out)

    def grad(self, w, cache, cot: torch.Tensor) -> dict[str, torch.Tensor]:
        leaves, out = cache
        grads = torch.autograd.grad(out, [leaves[k] for k in self.names], grad_outputs=cot)
        return dict(zip(self.names, grads, strict=True))


class _FCEngine:
    """Hand-written forward/backward of a :func:`geiger_fc` net (NTKLinear and GainActivation
    modules in an nn.Sequential): the same numbers as autograd, about twice as fast on CPU."""

    def __init__(self, model: nn.Module):
        self.layers: list[tuple[str, Any, str, str]] = []
        for name, m in model.named_children():
            if isinstance(m, NTKLinear):
                self.layers.append(("dense", m, f"{name}.weight", f"{name}.bias"))
            elif isinstance(m, GainActivation):
                self.layers.append(("act", m, "", ""))
            else:
                raise TypeError(f"not a geiger_fc layer: {m!r}")
        self.names = [k for k, _ in model.named_parameters()]

    @staticmethod
    def applies(model: nn.Module) -> bool:
        return isinstance(model, nn.Sequential) and all(
            isinstance(m, (NTKLinear, GainActivation)) for m in model.children()
        )

    def forward(self, w: Mapping[str, torch.Tensor], xs: torch.Tensor, need_grad: bool):
        h, cache = xs, []
        for kind, m, wn, bn in self.layers:
            if kind == "dense":
                if need_grad:
                    cache.append(h)
                h = torch.addmm(w[bn], h, w[wn].T, beta=m.b_std, alpha=m.w_scale)
            elif m.activation == "relu":
                if need_grad:
                    cache.append((h > 0).to(h.dtype).mul_(m.gain))
                h = torch.relu(h).mul_(m.gain)
            else:
                if need_grad:  # d/dz [a softplus_beta(z)] = a sigmoid(beta z)
                    cache.append(torch.sigmoid(h * m.beta).mul_(m.gain))
                h = F.softplus(h, m.beta, SOFTPLUS_THRESHOLD).mul_(m.gain)
        return h.reshape(-1), (cache if need_grad else None)

    def grad(self, w, cache, cot: torch.Tensor) -> dict[str, torch.Tensor]:
        grads: dict[str, torch.Tensor] = {}
        delta = cot.reshape(-1, 1)
        for kind, m, wn, bn in reversed(self.layers):
            if kind == "act":
                delta = delta * cache.pop()
                continue
            h_in = cache.pop()
            grads[wn] = (delta.T @ h_in).mul_(m.w_scale)
            grads[bn] = delta.sum(0).mul_(m.b_std)
            if cache:  # not the input layer
                delta = (delta @ w[wn]).mul_(m.w_scale)
        return {k: grads[k] for k in self.names}


def hinge_flow(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    alpha: float,
    out0: torch.Tensor | None = None,
    mu: float | None = 1000.0,
    tau: float | None = None,
    temperature: float = 0.0,
    df_band: tuple[float, float] = DF_BAND,
    df_target: float = DF_TARGET,
    dt0: float | None = None,
    max_steps: int = 1_000_000,
    max_time: float = math.inf,
    max_retries: int = 60,
    batch_seed: int = 0,
    record_per_decade: int = 10,
    on_record: Callable[[dict[str, torch.Tensor], dict[str, Any]], dict[str, Any]] | None = None,
    return_steps: bool = False,
    device: str = "cpu",
    log: Log = None,
) -> dict[str, Any]:
    """Train ``F = alpha (f(w, x) - f(w0, x))`` on the hinge loss (module doc).

    ``model`` is any torch module with a scalar output; its parameters are read at the start
    and *overwritten with the final ones* at the end.  ``y`` holds ``+-1``.  ``out0`` is
    ``f(w0, x)`` (computed if None).  ``on_record(params, row)`` may add entries to a
    trajectory row (``params``: name -> tensor, current).  Returns ``status``, ``t``,
    ``n_steps``, ``n_rejected``, ``n_band_violations``, ``t1``, ``t2``, ``aloss`` (final
    ``alpha^2 L``), ``train_outputs`` (final ``F`` on x), ``records`` (list of row dicts),
    ``temperature_eff`` (min, max over steps; T > 0 only) and, with ``return_steps``,
    per-accepted-step arrays ``step_t`` (time after the step), ``step_dt``, ``step_df``
    (``alpha max |f_new - f_old|`` over the checked points) and ``step_batch``.
    """
    lo, hi = float(df_band[0]), float(df_band[1])
    if not 0 < lo < df_target < hi:
        raise ValueError(
            f"need 0 < df_band[0] < df_target < df_band[1], got {df_band}, {df_target}"
        )
    alpha = float(alpha)
    n = x.shape[0]
    y = y.reshape(-1).to(x.dtype)
    stochastic = temperature > 0
    engine = _FCEngine(model) if _FCEngine.applies(model) else _AutogradEngine(model)
    names = engine.names
    w = {k: p.detach().clone() for k, p in model.named_parameters()}
    w0 = {k: v.clone() for k, v in w.items()}
    v = {k: torch.zeros_like(p) for k, p in w.items()}
    w0_norm = math.sqrt(sum(float(p.pow(2).sum()) for p in w0.values()))

    def f(params: Mapping[str, torch.Tensor], xs: torch.Tensor) -> torch.Tensor:
        return engine.forward(params, xs, False)[0]

    if out0 is None:
        out0 = f(w, x)
    out0 = out0.reshape(-1).to(x.dtype)
    gen = torch.Generator().manual_seed(int(batch_seed))

    def margins(out: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        o0, yy = (out0, y) if idx is None else (out0[idx], y[idx])
        return alpha * (out - o0) * yy

    def grad_at(params, out: torch.Tensor, cache, idx: torch.Tensor | None):
        """grad L (batch mean for a batch) from a forward pass with its cache."""
        yy = y if idx is None else y[idx]
        m = margins(out, idx)
        cot = torch.where(m < 1.0, -yy, torch.zeros_like(yy)) / (alpha * len(yy))
        return engine.grad(params, cache, cot)

    t = 0.0
    dt = float(dt0) if dt0 is not None else df_target
    n_steps = n_rejected = n_violations = 0
    status = None
    t1 = t2 = math.nan
    records: list[dict[str, Any]] = []
    steps: dict[str, list[float]] = {"step_t": [], "step_dt": [], "step_df": [], "step_batch": []}
    t_eff = [math.inf, -math.inf]

    # full-batch state: outputs and gradient at the current w
    out_full, cache = engine.forward(w, x, True)
    g = grad_at(w, out_full, cache, None)
    aloss = float(torch.clamp_min(1.0 - margins(out_full, None), 0).mean())
    prev = (0.0, aloss)

    def note_loss(value: float) -> None:
        """t1: first crossing of alpha^2 L = 0.5, interpolated between full evaluations."""
        nonlocal t1, prev
        if math.isnan(t1) and value <= 0.5:
            t_prev, l_prev = prev
            frac = (l_prev - 0.5) / (l_prev - value) if l_prev > value else 1.0
            t1 = t_prev + frac * (t - t_prev)
        prev = (t, value)

    def record() -> None:
        nonlocal out_full
        m = margins(out_full, None)
        if stochastic:
            out_full = f(w, x)
            m = margins(out_full, None)
            note_loss(float(torch.clamp_min(1.0 - m, 0).mean()))
        row: dict[str, Any] = {
            "t": t,
            "step": n_steps,
            "aloss": float(torch.clamp_min(1.0 - m, 0).mean()),
            "train_err": float((m <= 0).to(x.dtype).mean()),
            "w_change": math.sqrt(sum(float((w[k] - w0[k]).pow(2).sum()) for k in names))
            / w0_norm,
            "dt": dt,
        }
        if on_record is not None:
            row.update(on_record(w, row))
        if records and records[-1]["step"] == n_steps:
            records[-1] = row
        else:
            records.append(row)
        _emit(
            log,
            f"[step {n_steps} t={t:.3e} dt={dt:.2e}] alpha^2 L={row['aloss']:.4e} "
            f"train_err={row['train_err']:.4f} |w-w0|/|w0|={row['w_change']:.3e}"
            + ("" if "test_err" not in row else f" test_err={row['test_err']:.4f}"),
        )

    record()
    last_bucket = _bucket(t, record_per_decade)
    while status is None:
        if aloss == 0.0 and not stochastic:
            status, t2 = "converged", t
            break
        if n_steps >= max_steps or t >= max_time:
            status = "max_steps"
            break
        tries = 0
        dt_small, dt_big = 0.0, math.inf  # bracket: df below / above the band
        while True:
            tries += 1
            if stochastic:
                b_real = n / ((temperature / dt) * (n - 1) + 1.0)
                b = int(min(n, max(1, round(b_real))))
                idx = torch.randperm(n, generator=gen)[:b].sort().values.to(x.device)
                xs = x[idx]
                out_old, cache = engine.forward(w, xs, True)
                g = grad_at(w, out_old, cache, idx)
            else:
                b, idx, out_old, xs = n, None, out_full, x
            decay = _momentum_decay(t, dt, mu, tau)
            # foreach kernels: one call per update instead of one per parameter tensor
            v_list = torch._foreach_mul([v[k] for k in names], decay)
            torch._foreach_add_(v_list, [g[k] for k in names], alpha=-(1.0 - decay))
            w_list = torch._foreach_add([w[k] for k in names], v_list, alpha=dt)
            v_new = dict(zip(names, v_list, strict=True))
            w_new = dict(zip(names, w_list, strict=True))
            out_new, cache = engine.forward(w_new, xs, not stochastic)
            df = alpha * float((out_new - out_old).abs().max())
            if not math.isfinite(df):
                if tries >= max_retries:
                    status = "diverged"
                    break
                dt /= 10.0
                n_rejected += 1
                continue
            if lo < df < hi:
                break
            if tries >= max_retries:
                n_violations += 1
                break
            n_rejected += 1
            if df <= lo:
                dt_small = max(dt_small, dt)
            else:
                dt_big = min(dt_big, dt)
            if 0.0 < dt_small < dt_big < math.inf:
                # df need not be monotone in dt (the momentum can point against the
                # gradient): bisect the bracket, which holds a band crossing by continuity
                dt = math.sqrt(dt_small * dt_big)
            else:
                dt *= min(1e3, max(1e-3, df_target / df)) if df > 0 else 1e3
        if status is not None:
            break
        # accept
        w, v = w_new, v_new
        t += dt
        n_steps += 1
        if stochastic:
            t_b = dt / b * (1.0 - (b - 1) / (n - 1)) if n > 1 else dt
            t_eff = [min(t_eff[0], t_b), max(t_eff[1], t_b)]
            m_b = margins(out_new, idx)
            if bool((m_b >= 1.0).all()):
                with torch.no_grad():
                    out_full = f(w, x)
                aloss = float(torch.clamp_min(1.0 - margins(out_full, None), 0).mean())
            else:
                aloss = math.nan  # unknown without a full evaluation
        else:
            out_full = out_new
            aloss = float(torch.clamp_min(1.0 - margins(out_full, None), 0).mean())
            if aloss > 0.0:
                g = grad_at(w, out_full, cache, None)
        if return_steps:
            steps["step_t"].append(t)
            steps["step_dt"].append(dt)
            steps["step_df"].append(df)
            steps["step_batch"].append(b)
        if not math.isnan(aloss):
            note_loss(aloss)
        if stochastic and aloss == 0.0:
            status, t2 = "converged", t
        bucket = _bucket(t, record_per_decade)
        if bucket > last_bucket:
            last_bucket = bucket
            record()
        dt *= min(2.0, max(0.5, df_target / df)) if df > 0 else 2.0
    record()
    with torch.no_grad():
        for k, p in model.named_parameters():
            p.copy_(w[k])
    if stochastic:
        with torch.no_grad():
            out_full = f(w, x)
    out = {
        "status": status,
        "t": t,
        "n_steps": n_steps,
        "n_rejected": n_rejected,
        "n_band_violations": n_violations,
        "t1": t1,
        "t2": t2,
        "aloss": records[-1]["aloss"],
        "train_outputs": alpha * (out_full - out0),
        "records": records,
        "temperature_eff": tuple(t_eff) if stochastic else (0.0, 0.0),
    }
    if return_steps:
        out.update({k: np.asarray(vals) for k, vals in steps.items()})
    return out


# ----------------------------------------------------------------------------- study run


def _error(outputs: np.ndarray, y_pm: np.ndarray) -> float:
    return float(np.mean(np.asarray(outputs) * y_pm <= 0))


def _engine(model: nn.Module) -> _FCEngine | _AutogradEngine:
    return _FCEngine(model) if _FCEngine.applies(model) else _AutogradEngine(model)


def _as_inputs(x: Any, device: torch.device | str = "cpu") -> torch.Tensor:
    x = np.asarray(x, dtype=np.float64)
    return torch.as_tensor(x.reshape(len(x), -1)).to(device)


def resolve_device(device: str = "auto") -> torch.device:
    """"auto": the GPU where one is present, else the CPU.  Nets are initialised on the
    CPU (one seeded generator) and then moved, so a seed gives the same initial net
    everywhere; on CPU the numbers are bitwise reproducible."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def _ntk_blocks(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor, block: int) -> np.ndarray:
    """Empirical NTK ``Theta(x1, x2)`` with ``x1`` in row blocks (bounded memory)."""
    return np.concatenate(
        [_empirical_ntk(model, x1[s : s + block], x2) for s in range(0, len(x1), block)]
    )


TRAJECTORY_KEYS = ("t", "step", "aloss", "train_err", "test_err", "df_test", "f_test",
                   "w_change", "dt")
LAZY_TIMES = 10.0 ** (np.arange(-30, 91) / 10.0)  # 1e-3 .. 1e9, 10 per decade


def frozen_ntk_prediction(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    width: int,
    depth: int,
    seed: int,
    activation: str = "softplus",
    beta: float = 5.0,
    architecture: str = "fc",
    image_shape: tuple[int, ...] | None = None,
    mu: float | None = 1000.0,
    tau: float | None = None,
    max_df: float = DF_TARGET,
    max_steps: int = 5_000_000,
    device: str = "cpu",
    ntk_block: int = 1024,
) -> dict[str, Any]:
    """Lazy limit of :func:`train_lazy_feature` (App. C, eq. 26): hinge dynamics of ``F`` with
    the empirical NTK of the *initial* net (same ``width, depth, seed``) frozen.

    It does not depend on ``alpha`` (the loss' ``1/alpha^2`` and ``F``'s ``alpha`` cancel),
    so one call serves a whole alpha sweep of a seed.  Uses
    :func:`~depthlab.kernels.regression.frozen_kernel_dynamics` with ``lr = 1/n`` (Geiger's
    mean loss), ``f_0 = 0``, the nets' momentum (``tau = t/mu``, or a constant ``tau``;
    ``mu=None`` and ``tau=None``: vanilla gradient flow) and an adaptive step moving no
    output by more than ``max_df``.  ``architecture`` and ``image_shape`` as in
    :func:`train_lazy_feature`.

    Returns ``lazy_status`` ("converged" or "max_steps"), ``lazy_t2`` (stopping time),
    ``lazy_test_outputs`` (``F`` on the test set), ``lazy_test_err``, ``lazy_train_err``,
    ``lazy_times`` / ``lazy_aloss`` (its ``alpha^2 L`` on :data:`LAZY_TIMES`, constant after
    the stop), ``lazy_n_steps``.
    """
    from depthlab.kernels.regression import frozen_kernel_dynamics

    dev = resolve_device(device)
    xtr, xte = _as_inputs(x_train, dev), _as_inputs(x_test, dev)
    ytr, yte = pm_labels(y_train), pm_labels(y_test)
    model = geiger_model(architecture, xtr.shape[1], width, depth, activation=activation,
                         beta=beta, seed=seed, image_shape=image_shape).to(dev)
    k_tr = _empirical_ntk(model, xtr)
    k_te = _ntk_blocks(model, xte, xtr, ntk_block)
    try:
        run = frozen_kernel_dynamics(
            k_tr, ytr, LAZY_TIMES, loss="hinge", lr=1.0 / len(ytr), max_df=max_df,
            **({"tau": float(tau)} if tau is not None else {"mu": mu}),
            k_test_train=k_te, max_steps=max_steps,
        )
    except RuntimeError:  # ran out of steps before the last record time
        nan = np.full(len(yte), np.nan)
        return {"lazy_status": "max_steps", "lazy_t2": math.nan, "lazy_test_outputs": nan,
                "lazy_test_err": math.nan, "lazy_train_err": math.nan,
                "lazy_times": LAZY_TIMES.copy(), "lazy_aloss": np.full(len(LAZY_TIMES), np.nan),
                "lazy_n_steps": max_steps}
    stopped = not math.isnan(run.stop_time)
    return {
        "lazy_status": "converged" if stopped else "max_steps",
        "lazy_t2": float(run.stop_time),
        "lazy_test_outputs": run.test[-1, :, 0],
        "lazy_test_err": _error(run.test[-1, :, 0], yte),
        "lazy_train_err": _error(run.train[-1, :, 0], ytr),
        "lazy_times": LAZY_TIMES.copy(),
        "lazy_aloss": run.loss,
        "lazy_n_steps": run.n_steps,
    }


def train_lazy_feature(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    alpha: float,
    width: int,
    depth: int,
    seed: int,
    activation: str = "softplus",
    beta: float = 5.0,
    architecture: str = "fc",
    image_shape: tuple[int, ...] | None = None,
    mu: float | None = 1000.0,
    tau: float | None = None,
    temperature: float = 0.0,
    df_band: tuple[float, float] = DF_BAND,
    df_target: float = DF_TARGET,
    max_steps: int = 1_000_000,
    max_time: float = math.inf,
    record_per_decade: int = 10,
    ntk_subset: int | None = 256,
    lazy: bool | Mapping[str, Any] = True,
    lazy_max_df: float = DF_TARGET,
    ntk_block: int = 1024,
    return_steps: bool = False,
    device: str = "cpu",
    log: Log = None,
) -> dict[str, Any]:
    """Train one net (App. B) at scale ``alpha`` with the momentum dynamics and measure it
    (module doc).  Labels may be ``{0, 1}`` or ``+-1``.  float64 throughout.

    ``architecture``: "fc" (setup A, full batch, ``tau = t/mu``) or "cnn" (setup B, with
    ``image_shape``; the paper runs it with ``tau=10`` and a ``temperature`` T > 0, the
    stochastic variant, whose batches are drawn from a generator seeded by ``seed``).
    ``device``: "cpu", "cuda" or "auto" (:func:`resolve_device`); float64 on either.

    ``lazy``: True computes :func:`frozen_ntk_prediction` here; a dict already returned by
    it (same data, width, depth, seed) is reused -- it does not depend on ``alpha``, so an
    alpha sweep should compute it once per seed; False skips it (lazy entries nan).

    Returns a dict of scalars -- ``status`` (converged / max_steps / diverged), ``alpha``,
    ``width``, ``depth``, ``seed``, ``activation``, ``act_gain``, ``n_params``, ``n_steps``,
    ``n_rejected``, ``n_band_violations``, ``t_end``, ``t1``, ``t2`` (nan unless converged),
    ``aloss`` (final ``alpha^2 L``), ``train_err``, ``test_err``, ``df_test`` (final
    ``||f - f0||``, RMS over the test set, unscaled ``f``), ``w_change`` (``||w - w0|| /
    ||w0||``), ``ntk_change`` (eq. 9 on the first ``ntk_subset`` test points), ``ntk_norm0`` /
    ``ntk_norm`` (Frobenius norms of that Gram at init / end), ``lazy_vs_net`` (relative L2
    distance ``||F - F_lazy|| / ||F_lazy||`` on the test set), ``wall_time``, the scalars of
    :func:`frozen_ntk_prediction` -- and arrays: ``traj_*`` (``t``, ``step``, ``aloss``,
    ``train_err``, ``test_err``, ``df_test``, ``w_change``, ``dt``) at the log-spaced
    records, ``test_outputs`` (final ``F`` on the test set), ``test_f0`` (``f(w0)`` on the
    test set, unscaled), ``train_outputs`` (final ``F`` on train), ``lazy_test_outputs``,
    ``lazy_times`` / ``lazy_aloss``, plus ``step_t, step_dt, step_df, step_batch`` with
    ``return_steps``.  ``traj_f_test`` is ``||f(w_t)||`` (App. E eq. 29, unscaled ``f``).
    """
    start = time.perf_counter()
    dev = resolve_device(device)
    xtr, xte = _as_inputs(x_train, dev), _as_inputs(x_test, dev)
    ytr, yte = pm_labels(y_train), pm_labels(y_test)
    model = geiger_model(architecture, xtr.shape[1], width, depth, activation=activation,
                         beta=beta, seed=seed, image_shape=image_shape).to(dev)
    engine = _engine(model)
    w_init = {k: p.detach() for k, p in model.named_parameters()}
    out0_tr = engine.forward(w_init, xtr, False)[0]
    out0_te = engine.forward(w_init, xte, False)[0]
    x_ntk = xte if ntk_subset is None else xte[: int(ntk_subset)]
    theta0 = _empirical_ntk(model, x_ntk)

    if isinstance(lazy, Mapping):
        res: dict[str, Any] = dict(lazy)
        if len(res["lazy_test_outputs"]) != len(yte):
            raise ValueError("the precomputed lazy prediction is for another test set")
    elif lazy:
        res = frozen_ntk_prediction(
            x_train, y_train, x_test, y_test, width=width, depth=depth, seed=seed,
            activation=activation, beta=beta, architecture=architecture,
            image_shape=image_shape, mu=mu, tau=tau, max_df=lazy_max_df, ntk_block=ntk_block,
            device=device,
        )
    else:
        res = {"lazy_status": "not_run", "lazy_t2": math.nan, "lazy_test_err": math.nan,
               "lazy_train_err": math.nan, "lazy_test_outputs": np.full(len(yte), np.nan),
               "lazy_times": np.zeros(0), "lazy_aloss": np.zeros(0), "lazy_n_steps": 0}

    yte_t = torch.as_tensor(yte, device=dev)

    def on_record(params, row):
        fte = engine.forward(params, xte, False)[0]
        dte = fte - out0_te
        return {
            "test_err": float((alpha * dte * yte_t <= 0).double().mean()),
            "df_test": float(dte.pow(2).mean().sqrt()),
            "f_test": float(fte.pow(2).mean().sqrt()),
        }

    flow = hinge_flow(
        model, xtr, torch.as_tensor(ytr, device=dev), alpha=alpha, out0=out0_tr, mu=mu, tau=tau,
        temperature=temperature, batch_seed=seed, df_band=df_band, df_target=df_target,
        max_steps=max_steps, max_time=max_time, record_per_decade=record_per_decade,
        on_record=on_record, return_steps=return_steps, log=log,
    )
    w_end = {k: p.detach() for k, p in model.named_parameters()}
    test_np = (alpha * (engine.forward(w_end, xte, False)[0] - out0_te)).cpu().numpy()
    theta = _empirical_ntk(model, x_ntk)
    recs = flow["records"]
    lazy_out = np.asarray(res["lazy_test_outputs"], dtype=np.float64)
    lazy_norm = float(np.linalg.norm(lazy_out))
    res.update(
        status=flow["status"],
        alpha=float(alpha),
        width=int(width),
        depth=int(depth),
        seed=int(seed),
        activation=activation,
        act_gain=activation_gain(activation, beta),
        n_params=int(sum(p.numel() for p in model.parameters())),
        n_steps=flow["n_steps"],
        n_rejected=flow["n_rejected"],
        n_band_violations=flow["n_band_violations"],
        t_end=flow["t"],
        t1=flow["t1"],
        t2=flow["t2"],
        aloss=flow["aloss"],
        train_err=recs[-1]["train_err"],
        test_err=_error(test_np, yte),
        df_test=recs[-1]["df_test"],
        w_change=recs[-1]["w_change"],
        ntk_change=ntk_relative_change(theta, theta0),
        ntk_norm0=float(np.linalg.norm(theta0)),
        ntk_norm=float(np.linalg.norm(theta)),
        lazy_vs_net=float(np.linalg.norm(test_np - lazy_out) / lazy_norm)
        if lazy_norm > 0 and np.isfinite(lazy_norm)
        else math.nan,
        test_outputs=test_np,
        test_f0=out0_te.cpu().numpy(),
        train_outputs=flow["train_outputs"].cpu().numpy(),
        device=str(dev),
    )
    for key in TRAJECTORY_KEYS:
        res[f"traj_{key}"] = np.array([r[key] for r in recs], dtype=np.float64)
    if return_steps:
        for key in ("step_t", "step_dt", "step_df", "step_batch"):
            res[key] = flow[key]
    res["wall_time"] = time.perf_counter() - start
    _emit(
        log,
        f"done: status={res['status']} steps={res['n_steps']} t2={res['t2']:.3e} "
        f"test_err={res['test_err']:.4f} lazy_test_err={res['lazy_test_err']:.4f} "
        f"ntk_change={res['ntk_change']:.3e} wall={res['wall_time']:.1f}s",
    )
    return res


# ----------------------------------------------------------------------------- analysis


def ensemble_stats(outputs: Any, y: Any) -> dict[str, Any]:
    """Ensemble measures of sec. 4 from ``outputs`` (S members, n test points) -- pass the
    trained functions ``F_i = alpha (f(w_i) - f(w0_i))`` -- and labels (``{0,1}`` or ``+-1``).

    Returns ``member_test_err`` (S,), ``mean_test_err`` (their mean),
    ``ensemble_test_err`` (error of ``mean_i F_i``; ``y F <= 0`` counts as an error),
    ``var_f`` (eq. 7: ``< (F_i(x) - Fbar(x))^2 >`` over members and test points, population
    variance, divisor S) and ``mean_output`` (n,).
    """
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError(f"outputs must be (members, test points), got shape {out.shape}")
    y_pm = pm_labels(y)
    if out.shape[1] != len(y_pm):
        raise ValueError(f"{out.shape[1]} outputs per member but {len(y_pm)} labels")
    mean = out.mean(axis=0)
    member_err = np.mean(out * y_pm <= 0, axis=1)
    return {
        "member_test_err": member_err,
        "mean_test_err": float(member_err.mean()),
        "ensemble_test_err": _error(mean, y_pm),
        "var_f": float(np.mean((out - mean) ** 2)),
        "mean_output": mean,
    }


def exponent_fit(x: Any, y: Any, fit_range: tuple[float, float] | None = None) -> dict[str, float]:
    """Least-squares power law ``y = c x^slope`` in log-log (base 10) over points with
    ``fit_range[0] <= x <= fit_range[1]`` (all if None) and finite positive x, y.

    ``y`` may have extra leading axes (e.g. seeds x points): ``x`` is broadcast to it and all
    points enter the fit.  Returns ``slope``, ``slope_stderr`` (OLS standard error,
    ``sqrt(RSS / (m - 2) / sum (log x - mean)^2)``; nan for m = 2), ``intercept`` (log10 c),
    ``prefactor`` (c), ``n_points`` (m) and ``r2``.  Table 1 quotes ``a = -slope``.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.broadcast_to(np.asarray(x, dtype=np.float64), y.shape).ravel()
    y = y.ravel()
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if fit_range is not None:
        keep &= (x >= fit_range[0]) & (x <= fit_range[1])
    lx, ly = np.log10(x[keep]), np.log10(y[keep])
    m = len(lx)
    if m < 2 or np.ptp(lx) == 0:
        raise ValueError(f"need at least 2 distinct x in the fit range, got {m} points")
    xm = lx.mean()
    sxx = float(((lx - xm) ** 2).sum())
    slope = float(((lx - xm) * (ly - ly.mean())).sum() / sxx)
    intercept = float(ly.mean() - slope * xm)
    resid = ly - (intercept + slope * lx)
    rss = float((resid**2).sum())
    stderr = math.sqrt(rss / (m - 2) / sxx) if m > 2 else math.nan
    tss = float(((ly - ly.mean()) ** 2).sum())
    return {
        "slope": slope,
        "slope_stderr": stderr,
        "intercept": intercept,
        "prefactor": 10.0**intercept,
        "n_points": m,
        "r2": 1.0 - rss / tss if tss > 0 else 1.0,
    }
