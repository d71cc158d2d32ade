r"""Momentum hinge-loss dynamics with App. A's adaptive step (Geiger, Spigler, Jacot & Wyart).

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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from depthlab.activations import SOFTPLUS_THRESHOLD
from depthlab.models.layers import GainActivation, NTKLinear
from depthlab.training.device import Log
from depthlab.training.device import emit as _emit
from depthlab.training.status import CONVERGED, DIVERGED, MAX_STEPS

__all__ = ["DF_BAND", "DF_TARGET", "StepControl", "TrajectoryRecorder", "hinge_engine",
           "hinge_flow", "pm_labels"]

DF_BAND = (1e-4, 1e-2)
DF_TARGET = 10**-2.5  # aim half a decade below the band top: ~half the steps of 1e-3


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


class StepControl:
    """App. A's adaptive step (eq. 18): a tentative step of length ``dt`` is accepted only if
    the largest output change ``df = alpha max |f_new - f_old|`` lies inside ``df_band``.

    A rejected step is retried with ``dt`` rescaled by ``df_target / df`` (the change is close
    to linear in ``dt``); once one retry fell below the band and another above it, ``dt``
    bisects that bracket instead (``df`` need not be monotone in ``dt`` when the velocity
    points against the gradient).  After ``max_retries`` tries the step is accepted anyway
    and counted as a band violation; a non-finite ``df`` shrinks ``dt`` tenfold, and
    ``max_retries`` of those mean divergence.  After an accepted step the next ``dt`` is
    rescaled the same way, by a factor in [1/2, 2].
    """

    ACCEPT, RETRY, DIVERGED = "accept", "retry", "diverged"

    def __init__(self, df_band: tuple[float, float] = DF_BAND, df_target: float = DF_TARGET,
                 dt0: float | None = None, max_retries: int = 60):
        self.lo, self.hi = float(df_band[0]), float(df_band[1])
        if not 0 < self.lo < df_target < self.hi:
            raise ValueError(
                f"need 0 < df_band[0] < df_target < df_band[1], got {df_band}, {df_target}"
            )
        self.target, self.max_retries = df_target, max_retries
        self.dt = float(dt0) if dt0 is not None else df_target
        self.n_rejected = self.n_violations = 0
        self.begin()

    def begin(self) -> None:
        """A new step: fresh retry count and bracket (df below / above the band)."""
        self.tries, self._small, self._big = 0, 0.0, math.inf

    def judge(self, df: float) -> str:
        """The verdict on a tentative step of length ``self.dt`` that moved outputs by ``df``;
        on ``RETRY`` ``self.dt`` already holds the next length to try."""
        self.tries += 1
        if not math.isfinite(df):
            if self.tries >= self.max_retries:
                return self.DIVERGED
            self.dt /= 10.0
            self.n_rejected += 1
            return self.RETRY
        if self.lo < df < self.hi:
            return self.ACCEPT
        if self.tries >= self.max_retries:
            self.n_violations += 1
            return self.ACCEPT
        self.n_rejected += 1
        if df <= self.lo:
            self._small = max(self._small, self.dt)
        else:
            self._big = min(self._big, self.dt)
        if 0.0 < self._small < self._big < math.inf:
            # the bracket holds a band crossing by continuity
            self.dt = math.sqrt(self._small * self._big)
        else:
            self.dt *= min(1e3, max(1e-3, self.target / df)) if df > 0 else 1e3
        return self.RETRY

    def accepted(self, df: float) -> None:
        """Rescale ``dt`` for the next step after an accepted one."""
        self.dt *= min(2.0, max(0.5, self.target / df)) if df > 0 else 2.0


class TrajectoryRecorder:
    """Trajectory rows at log-spaced times (``per_decade`` per decade: the first step whose
    time enters a new bin, plus ``t = 0`` and the final state) and ``t1``, the first time
    ``alpha^2 L`` crosses 0.5 (linear interpolation between the two losses around it)."""

    def __init__(self, per_decade: int, log: Log = None):
        self.per_decade, self.log = per_decade, log
        self.rows: list[dict[str, Any]] = []
        self.t1 = math.nan
        self._prev = (0.0, math.nan)
        self._last_bucket = -math.inf

    def start(self, aloss: float) -> None:
        """The loss at t = 0 (the first point of the t1 interpolation)."""
        self._prev = (0.0, aloss)

    def note_loss(self, t: float, value: float) -> None:
        if math.isnan(self.t1) and value <= 0.5:
            t_prev, l_prev = self._prev
            frac = (l_prev - 0.5) / (l_prev - value) if l_prev > value else 1.0
            self.t1 = t_prev + frac * (t - t_prev)
        self._prev = (t, value)

    def due(self, t: float) -> bool:
        """Whether time ``t`` opens a new log bin (then a row is due)."""
        bucket = _bucket(t, self.per_decade)
        if bucket > self._last_bucket:
            self._last_bucket = bucket
            return True
        return False

    def add(self, row: dict[str, Any]) -> None:
        """Append a row (replacing the last one if it is of the same step) and log it."""
        if self.rows and self.rows[-1]["step"] == row["step"]:
            self.rows[-1] = row
        else:
            self.rows.append(row)
        _emit(
            self.log,
            f"[step {row['step']} t={row['t']:.3e} dt={row['dt']:.2e}] alpha^2 L="
            f"{row['aloss']:.4e} train_err={row['train_err']:.4f} |w-w0|/|w0|="
            f"{row['w_change']:.3e}"
            + ("" if "test_err" not in row else f" test_err={row['test_err']:.4f}"),
        )


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
    """Train ``F = alpha (f(w, x) - f(w0, x))`` on the hinge loss (module doc): the loop
    around :class:`StepControl` and :class:`TrajectoryRecorder`.

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
    control = StepControl(df_band, df_target, dt0, max_retries)
    recorder = TrajectoryRecorder(record_per_decade, log)
    alpha = float(alpha)
    n = x.shape[0]
    y = y.reshape(-1).to(x.dtype)
    stochastic = temperature > 0
    engine = hinge_engine(model)
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
    n_steps = 0
    status = None
    t2 = math.nan
    steps: dict[str, list[float]] = {"step_t": [], "step_dt": [], "step_df": [], "step_batch": []}
    t_eff = [math.inf, -math.inf]

    # full-batch state: outputs and gradient at the current w
    out_full, cache = engine.forward(w, x, True)
    g = grad_at(w, out_full, cache, None)
    aloss = float(torch.clamp_min(1.0 - margins(out_full, None), 0).mean())
    recorder.start(aloss)

    def record() -> None:
        nonlocal out_full
        m = margins(out_full, None)
        if stochastic:
            out_full = f(w, x)
            m = margins(out_full, None)
            recorder.note_loss(t, float(torch.clamp_min(1.0 - m, 0).mean()))
        row: dict[str, Any] = {
            "t": t,
            "step": n_steps,
            "aloss": float(torch.clamp_min(1.0 - m, 0).mean()),
            "train_err": float((m <= 0).to(x.dtype).mean()),
            "w_change": math.sqrt(sum(float((w[k] - w0[k]).pow(2).sum()) for k in names))
            / w0_norm,
            "dt": control.dt,
        }
        if on_record is not None:
            row.update(on_record(w, row))
        recorder.add(row)

    record()
    recorder.due(t)
    while status is None:
        if aloss == 0.0 and not stochastic:
            status, t2 = CONVERGED, t
            break
        if n_steps >= max_steps or t >= max_time:
            status = MAX_STEPS
            break
        control.begin()
        while True:
            if stochastic:
                b_real = n / ((temperature / control.dt) * (n - 1) + 1.0)
                b = int(min(n, max(1, round(b_real))))
                idx = torch.randperm(n, generator=gen)[:b].sort().values.to(x.device)
                xs = x[idx]
                out_old, cache = engine.forward(w, xs, True)
                g = grad_at(w, out_old, cache, idx)
            else:
                b, idx, out_old, xs = n, None, out_full, x
            dt = control.dt
            decay = _momentum_decay(t, dt, mu, tau)
            # foreach kernels: one call per update instead of one per parameter tensor
            v_list = torch._foreach_mul([v[k] for k in names], decay)
            torch._foreach_add_(v_list, [g[k] for k in names], alpha=-(1.0 - decay))
            w_list = torch._foreach_add([w[k] for k in names], v_list, alpha=dt)
            v_new = dict(zip(names, v_list, strict=True))
            w_new = dict(zip(names, w_list, strict=True))
            out_new, cache = engine.forward(w_new, xs, not stochastic)
            df = alpha * float((out_new - out_old).abs().max())
            verdict = control.judge(df)
            if verdict == StepControl.DIVERGED:
                status = DIVERGED
            if verdict != StepControl.RETRY:
                break
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
            recorder.note_loss(t, aloss)
        if stochastic and aloss == 0.0:
            status, t2 = CONVERGED, t
        if recorder.due(t):
            record()
        control.accepted(df)
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
        "n_rejected": control.n_rejected,
        "n_band_violations": control.n_violations,
        "t1": recorder.t1,
        "t2": t2,
        "aloss": recorder.rows[-1]["aloss"],
        "train_outputs": alpha * (out_full - out0),
        "records": recorder.rows,
        "temperature_eff": tuple(t_eff) if stochastic else (0.0, 0.0),
    }
    if return_steps:
        out.update({k: np.asarray(vals) for k, vals in steps.items()})
    return out


def hinge_engine(model: nn.Module) -> _FCEngine | _AutogradEngine:
    """The hand-written FC engine where it applies (same numbers, ~2x faster), else autograd."""
    return _FCEngine(model) if _FCEngine.applies(model) else _AutogradEngine(model)
