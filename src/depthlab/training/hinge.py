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
           "hinge_flow", "packed_hinge_flow", "pm_labels"]

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
    """Hand-written forward/backward of a plain FC net (an nn.Sequential of NTKLinear and
    GainActivation modules, :func:`depthlab.models.fc_net`): the same numbers as autograd,
    about twice as fast on CPU."""

    def __init__(self, model: nn.Module):
        self.layers: list[tuple[str, Any, str, str]] = []
        for name, m in model.named_children():
            if isinstance(m, NTKLinear):
                self.layers.append(("dense", m, f"{name}.weight", f"{name}.bias"))
            elif isinstance(m, GainActivation):
                self.layers.append(("act", m, "", ""))
            else:
                raise TypeError(
                    f"not a layer of a plain FC net (NTKLinear / GainActivation): {m!r}")
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


def hinge_engine(model: nn.Module) -> _FCEngine | _AutogradEngine:
    """The hand-written FC engine where it applies (same numbers, ~2x faster), else autograd."""
    return _FCEngine(model) if _FCEngine.applies(model) else _AutogradEngine(model)


# ------------------------------------------------------------------------------- packs
#
# One loop, :func:`_flow`, trains a pack of nets: M nets (the members; they differ in initial
# weights and alpha), each with its own step control, momentum, clock, stopping and records,
# their parameters as flat rows ``(rows, P)``.  :func:`hinge_flow` is a pack of one
# (:class:`_LoneEngine`: the member's own forward/backward on views of its row, any module);
# :func:`packed_hinge_flow` packs FC nets of one architecture (:class:`_PackedFC`: batched
# matmuls over the pack).  A member's trajectory in a pack is bitwise the one it has alone on
# CPU; the rules that keep it so were found by probing torch 2.x / MKL float64 kernels
# (tests/unit/test_packed_hinge.py checks them end to end):
#
# * hidden layers: ``baddbmm`` over the pack gives, per member, the bits of the unpacked
#   ``addmm`` (and ``bmm`` those of the backward's ``delta.T @ h``, ``delta @ W``) -- but the
#   scalar-output layer must be computed transposed, ``W (1 x h) @ h^T``: the batched
#   ``h @ W^T`` with one output column takes another MKL path than ``addmm``'s;
# * except for small products (torch computes a batched product of fewer than ~400
#   multiply-adds per member with its own loop, not MKL): each matmul of the net is checked
#   once per training-set size, on random operands of its shapes, against the unpacked op,
#   and where the bits differ that matmul runs member by member with the unpacked op (kernel
#   choice depends on shapes and alignment, not on values);
# * a batched pack has at least two rows (a lone member is duplicated): a batch of one takes
#   MKL's plain-gemm path;
# * per-member scalars enter element-wise ops as broadcast tensors, with the same rounding
#   as the Python scalar: ``v * decay``; the fused ``add(a, b, alpha=c)`` is an fma, and so is
#   ``addcmul(a, b, c)`` (while ``a + b * c`` rounds twice); a pack of one row uses the
#   Python scalars themselves (no tensors to build at every step);
# * row-wise reductions (``mean``/``amax``/``sum`` over a member's slab) equal the unpacked
#   whole-tensor ones; records (rare) are computed from a member's parameters copied out,
#   with the unpacked code.
# * parameters of a member live in one flat row, each tensor starting on a 64-byte
#   boundary (as a fresh allocation does), the row length a multiple of 8 doubles.

_FLAT_ALIGN = 8  # doubles: 64 bytes


class _FlatRows:
    """Members' parameters as flat rows ``(rows, P)``: ``slots`` maps a parameter name to its
    (offset, shape) in a row, each offset a multiple of ``_FLAT_ALIGN``; ``min_rows`` is the
    least number of rows the engine computes on (a lone member is repeated up to it)."""

    names: list[str]
    slots: dict[str, tuple[int, tuple[int, ...]]]
    width: int
    min_rows = 1

    def pad(self, members: list[int]) -> list[int]:
        """The pack's rows for these members (each member once, repeated when too few)."""
        return members * self.min_rows if len(members) < self.min_rows else members

    def flatten(self, params: list[Mapping[str, torch.Tensor]]) -> torch.Tensor:
        """Stack members' parameter dicts into flat rows (zero padding between tensors)."""
        ref = params[0][self.names[0]]
        flat = torch.zeros(len(params), self.width, dtype=ref.dtype, device=ref.device)
        for k, (off, shape) in self.slots.items():
            size = math.prod(shape)
            flat[:, off : off + size] = torch.stack([p[k].reshape(-1) for p in params])
        return flat

    def view(self, flat: torch.Tensor, key: str) -> torch.Tensor:
        """(members, *shape) view of one parameter tensor in flat rows."""
        off, shape = self.slots[key]
        return flat[:, off : off + math.prod(shape)].view(flat.shape[0], *shape)

    def member(self, row: torch.Tensor) -> dict[str, torch.Tensor]:
        """One member's parameters (a flat row), copied out as fresh tensors."""
        return {k: row[off : off + math.prod(shape)].reshape(shape).clone()
                for k, (off, shape) in self.slots.items()}


class _LoneEngine(_FlatRows):
    """A pack of one: the net's own engine (:func:`hinge_engine`, any scalar-output module)
    run on views of its flat row; outputs ``(1, n)``, gradients a ``(1, P)`` row."""

    def __init__(self, model: nn.Module):
        self.single = hinge_engine(model)
        self.names = self.single.names
        self.slots, offset = {}, 0
        self._pads: list[int] = []  # zeros after each tensor, up to the next aligned offset
        for k, p in model.named_parameters():
            self.slots[k] = (offset, tuple(p.shape))
            size = -(-p.numel() // _FLAT_ALIGN) * _FLAT_ALIGN
            self._pads.append(size - p.numel())
            offset += size
        self.width = offset
        self._chunks = [c for k, pad in zip(self.names, self._pads, strict=True)
                        for c in (math.prod(self.slots[k][1]), pad)]
        self._last: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None
        self._zeros: torch.Tensor | None = None

    def _params(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        # the step's forward and backward read the same row: its views are made once
        if self._last is None or self._last[0] is not flat:
            parts = flat[0].split(self._chunks)  # tensor, padding, tensor, padding, ...
            self._last = (flat, {k: parts[2 * j].view(shape)
                                 for j, (k, (_, shape)) in enumerate(self.slots.items())})
        return self._last[1]

    def forward(self, flat: torch.Tensor, xs: torch.Tensor, need_grad: bool):
        out, cache = self.single.forward(self._params(flat), xs, need_grad)
        return out.reshape(1, -1), cache

    def grad(self, flat: torch.Tensor, cache, cot: torch.Tensor) -> torch.Tensor:
        grads = self.single.grad(self._params(flat), cache, cot.reshape(-1))
        if self._zeros is None:
            self._zeros = flat.new_zeros(_FLAT_ALIGN)
        parts = []
        for k, pad in zip(self.names, self._pads, strict=True):
            parts.append(grads[k].reshape(-1))
            if pad:
                parts.append(self._zeros[:pad])
        return torch.cat(parts).reshape(1, -1)


class _PackedFC(_FlatRows):
    """The :class:`_FCEngine` forward/backward for a pack of nets of one FC architecture,
    parameters as flat rows ``(members, P)`` (one row per member, at least two rows)."""

    min_rows = 2  # a batch of one takes MKL's plain-gemm path (section note)

    def __init__(self, models: list[nn.Module]):
        if not models or not all(_FCEngine.applies(m) for m in models):
            raise TypeError("packing needs plain FC nets (an nn.Sequential of NTKLinear and "
                            "GainActivation)")
        self.single = _FCEngine(models[0])  # a member's own engine (initial outputs)
        ref = list(models[0].named_children())
        self.layers: list[tuple] = []
        self.slots: dict[str, tuple[int, tuple[int, ...]]] = {}
        offset = 0
        for name, m in ref:
            if isinstance(m, NTKLinear):
                n_out, n_in = m.weight.shape
                for key, shape in ((f"{name}.weight", (n_out, n_in)), (f"{name}.bias", (n_out,))):
                    self.slots[key] = (offset, shape)
                    offset += -(-math.prod(shape) // _FLAT_ALIGN) * _FLAT_ALIGN
                self.layers.append(("dense", m.w_scale, m.b_std, f"{name}.weight",
                                    f"{name}.bias"))
            else:
                self.layers.append(("act", m.activation, m.gain, m.beta, ""))
        self.width = offset
        self.names = [k for k, _ in models[0].named_parameters()]
        sig = self._signature(models[0])
        for m in models[1:]:
            if self._signature(m) != sig:
                raise ValueError("packed nets must share one architecture")
        self._inputs: dict[tuple[int, int], torch.Tensor] = {}
        self._batched: dict[tuple[int, int, str], bool] = {}  # (n, layer, op) -> batched ok

    @staticmethod
    def _signature(model: nn.Module):
        out = []
        for m in model.children():
            if isinstance(m, NTKLinear):
                out.append(("dense", tuple(m.weight.shape), m.w_scale, m.b_std))
            else:
                out.append(("act", m.activation, m.gain, m.beta))
        return out

    def _batched_inputs(self, xs: torch.Tensor, rows: int) -> torch.Tensor:
        key = (id(xs), rows)
        if key not in self._inputs:
            self._inputs[key] = xs.unsqueeze(0).expand(rows, *xs.shape).contiguous()
        return self._inputs[key]

    def forward(self, flat: torch.Tensor, xs: torch.Tensor, need_grad: bool):
        """Outputs ``(members, n)`` and, with ``need_grad``, the backward cache."""
        rows = flat.shape[0]
        h, cache = self._batched_inputs(xs, rows), []
        last = max(i for i, layer in enumerate(self.layers) if layer[0] == "dense")
        for i, layer in enumerate(self.layers):
            if layer[0] == "dense":
                _, w_scale, b_std, wn, bn = layer
                w, b = self.view(flat, wn), self.view(flat, bn)
                if need_grad:
                    cache.append(h)
                h = self._matmul(i, "fwd", h, w, b, w_scale, b_std, transposed=(
                    i == last and w.shape[1] == 1))
            elif layer[1] == "relu":
                _, _, gain, _, _ = layer
                if need_grad:
                    cache.append((h > 0).to(h.dtype).mul_(gain))
                h = torch.relu(h).mul_(gain)
            else:
                _, _, gain, beta, _ = layer
                if need_grad:
                    cache.append(torch.sigmoid(h * beta).mul_(gain))
                h = F.softplus(h, beta, SOFTPLUS_THRESHOLD).mul_(gain)
        return h.reshape(rows, -1), (cache if need_grad else None)

    def grad(self, flat: torch.Tensor, cache, cot: torch.Tensor) -> torch.Tensor:
        """Flat-row gradients from the cotangents ``cot`` (members, n) of the outputs."""
        rows = flat.shape[0]
        out = torch.zeros_like(flat)
        delta = cot.reshape(rows, -1, 1)
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            if layer[0] == "act":
                delta = delta * cache.pop()
                continue
            _, w_scale, b_std, wn, bn = layer
            h_in = cache.pop()
            self.view(out, wn).copy_(self._matmul(i, "grad_w", delta, h_in).mul_(w_scale))
            self.view(out, bn).copy_(delta.sum(1).mul_(b_std))
            if cache:  # not the input layer
                delta = self._matmul(i, "grad_h", delta, self.view(flat, wn)).mul_(w_scale)
        return out

    @staticmethod
    def _op(op: str, a, b, bias=None, w_scale=1.0, b_std=1.0, transposed=False, batched=True):
        """One matmul of the net over the pack: batched, or member by member with the
        unpacked engine's op (on fresh, aligned copies of each member's operands)."""
        if batched:
            if op == "grad_w":
                return torch.bmm(a.transpose(1, 2), b)
            if op == "grad_h":
                return torch.bmm(a, b)
            if transposed:  # (1 x h) @ h^T: addmm's bits (module note)
                return torch.baddbmm(bias.unsqueeze(2), b, a.transpose(1, 2), beta=b_std,
                                     alpha=w_scale).transpose(1, 2)
            return torch.baddbmm(bias.unsqueeze(1), a, b.transpose(1, 2), beta=b_std,
                                 alpha=w_scale)
        if op == "grad_w":
            return torch.stack([a[m].clone().T @ b[m].clone() for m in range(len(a))])
        if op == "grad_h":
            return torch.stack([a[m].clone() @ b[m].clone() for m in range(len(a))])
        return torch.stack([torch.addmm(bias[m].clone(), a[m].clone(), b[m].clone().T,
                                        beta=b_std, alpha=w_scale) for m in range(len(a))])

    def _matmul(self, layer: int, op: str, a: torch.Tensor, b: torch.Tensor,
                bias: torch.Tensor | None = None, w_scale: float = 1.0, b_std: float = 1.0,
                transposed: bool = False) -> torch.Tensor:
        key = (a.shape[1], layer, op)
        if key not in self._batched:  # the bits of the batched op vs the unpacked one
            gen = torch.Generator().manual_seed(layer)

            def rand(t: torch.Tensor) -> torch.Tensor:  # same shape and strides, new values
                out = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)
                return out.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype))

            args = (rand(a), rand(b), None if bias is None else rand(bias))
            kw = {"w_scale": w_scale, "b_std": b_std, "transposed": transposed}
            self._batched[key] = torch.equal(self._op(op, *args, **kw, batched=True),
                                             self._op(op, *args, **kw, batched=False))
        return self._op(op, a, b, bias, w_scale, b_std, transposed, self._batched[key])


def _flow(
    engine: _LoneEngine | _PackedFC,
    models: list[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    alphas: list[float],
    out0: list[torch.Tensor] | None,
    mu: float | None,
    tau: float | None,
    temperature: float,
    df_band: tuple[float, float],
    df_target: float,
    dt0: float | None,
    max_steps: int,
    max_time: float,
    max_retries: int,
    batch_seed: int,
    record_per_decade: int,
    on_record: Callable[[int, dict[str, torch.Tensor], dict[str, Any]], dict[str, Any]] | None,
    return_steps: bool,
    logs: list[Log],
) -> list[dict[str, Any]]:
    """The dynamics of a pack (section note above); :func:`hinge_flow` documents the
    arguments and a member's result, :func:`packed_hinge_flow` the pack.

    A round makes one tentative step for every running member at its own ``dt``; each member
    judges its own; those accepted move on (their next round starts a new step), the rejected
    retry at their new ``dt``, so each member sees exactly its own sequence of operations.  A
    member that stops (converged, max_steps, diverged) leaves the pack.  The stochastic
    variant (``temperature > 0``) draws one batch per tentative step: packs of one only."""
    m_count = len(models)
    if len(alphas) != m_count:
        raise ValueError(f"{m_count} models but {len(alphas)} alphas")
    stochastic = temperature > 0
    if stochastic and m_count != 1:
        raise ValueError("the stochastic variant (temperature > 0) trains one net at a time")
    names = engine.names
    y = y.reshape(-1).to(x.dtype)
    alphas = [float(a) for a in alphas]
    w0 = [{k: p.detach().clone() for k, p in m.named_parameters()} for m in models]
    w0_norm = [math.sqrt(sum(float(p.pow(2).sum()) for p in w.values())) for w in w0]
    if out0 is None:
        out0 = [engine.single.forward(w, x, False)[0] for w in w0]
    out0 = [o.reshape(-1).to(x.dtype) for o in out0]
    gen = torch.Generator().manual_seed(int(batch_seed))

    controls = [StepControl(df_band, df_target, dt0, max_retries) for _ in range(m_count)]
    recorders = [TrajectoryRecorder(record_per_decade, logs[i]) for i in range(m_count)]
    t = [0.0] * m_count
    n_steps = [0] * m_count
    status: list[str | None] = [None] * m_count
    t2 = [math.nan] * m_count
    in_step = [False] * m_count
    steps = [{"step_t": [], "step_dt": [], "step_df": [], "step_batch": []}
             for _ in range(m_count)]
    t_eff = [math.inf, -math.inf]  # stochastic only (one member)
    results: list[dict[str, Any] | None] = [None] * m_count

    # the pack: row r holds member rows[r]
    rows = engine.pad(list(range(m_count)))
    w = engine.flatten([w0[i] for i in rows])
    v = torch.zeros_like(w)
    o0 = torch.stack([out0[i] for i in rows])
    a_t = torch.tensor([alphas[i] for i in rows], dtype=x.dtype, device=x.device)[:, None]
    n = x.shape[0]

    def margins(out: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        if idx is None:
            return a_t * (out - o0) * y
        return a_t * (out - o0[:, idx]) * y[idx]

    def cotangent(m: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        """d L / d out (batch-mean loss for a batch)."""
        return torch.where(m < 1.0, -yy, torch.zeros_like(yy)) / (a_t * len(yy))

    def alosses(m: torch.Tensor) -> list[float]:
        return torch.clamp_min(1.0 - m, 0).mean(1).tolist()

    def col(vals: list[float]) -> torch.Tensor:
        return torch.tensor(vals, dtype=x.dtype, device=x.device)[:, None]

    # full-batch state: outputs and gradient at the current w
    out_full, cache = engine.forward(w, x, True)
    m_full = margins(out_full)
    g = engine.grad(w, cache, cotangent(m_full, y))
    aloss = [0.0] * m_count
    for i, value in zip(rows, alosses(m_full), strict=True):
        aloss[i] = value
    for i in range(m_count):
        recorders[i].start(aloss[i])

    def record(i: int, r: int) -> None:
        nonlocal out_full
        if stochastic:  # alpha^2 L is only known at full evaluations
            out_full = engine.forward(w, x, False)[0]
        mm = alphas[i] * (out_full[r].clone() - out0[i]) * y
        value = float(torch.clamp_min(1.0 - mm, 0).mean())
        if stochastic:
            recorders[i].note_loss(t[i], value)
        params = engine.member(w[r])
        row: dict[str, Any] = {
            "t": t[i],
            "step": n_steps[i],
            "aloss": value,
            "train_err": float((mm <= 0).to(x.dtype).mean()),
            "w_change": math.sqrt(sum(float((params[k] - w0[i][k]).pow(2).sum())
                                      for k in names)) / w0_norm[i],
            "dt": controls[i].dt,
        }
        if on_record is not None:
            row.update(on_record(i, params, row))
        recorders[i].add(row)

    def finish(i: int, r: int) -> None:
        record(i, r)  # (stochastic: out_full is now the full evaluation at the final w)
        params = engine.member(w[r])
        with torch.no_grad():
            for k, p in models[i].named_parameters():
                p.copy_(params[k])
        res = {
            "status": status[i], "t": t[i], "n_steps": n_steps[i],
            "n_rejected": controls[i].n_rejected,
            "n_band_violations": controls[i].n_violations,
            "t1": recorders[i].t1, "t2": t2[i], "aloss": recorders[i].rows[-1]["aloss"],
            "train_outputs": alphas[i] * (out_full[r].clone() - out0[i]),
            "records": recorders[i].rows,
            "temperature_eff": tuple(t_eff) if stochastic else (0.0, 0.0),
        }
        if return_steps:
            res.update({k: np.asarray(vals) for k, vals in steps[i].items()})
        results[i] = res

    for r, i in enumerate(rows[:m_count]):
        record(i, r)
        recorders[i].due(0.0)
    while True:
        # members between steps: stop, or begin a new step
        first = {}
        for r, i in enumerate(rows):
            first.setdefault(i, r)
        for i, r in first.items():
            if status[i] is None and not in_step[i]:
                if aloss[i] == 0.0 and not stochastic:
                    status[i], t2[i] = CONVERGED, t[i]
                elif n_steps[i] >= max_steps or t[i] >= max_time:
                    status[i] = MAX_STEPS
                else:
                    controls[i].begin()
                    in_step[i] = True
            if status[i] is not None and results[i] is None:
                finish(i, r)
        running = [i for i in first if status[i] is None]
        if not running:
            break
        if running != list(first):  # members left: compact the pack
            new_rows = engine.pad(running)
            idx = torch.tensor([first[i] for i in new_rows], device=w.device)
            w, v, g = w[idx], v[idx], g[idx]
            out_full, o0, a_t = out_full[idx], o0[idx], a_t[idx]
            rows = new_rows
        # one tentative step for every running member
        dts = [controls[i].dt for i in rows]
        if stochastic:  # a fresh batch (eq. 19) and its gradient at every try
            b = int(min(n, max(1, round(n / ((temperature / dts[0]) * (n - 1) + 1.0)))))
            batch = torch.randperm(n, generator=gen)[:b].sort().values.to(x.device)
            xs = x[batch]
            out_old, cache = engine.forward(w, xs, True)
            g = engine.grad(w, cache, cotangent(margins(out_old, batch), y[batch]))
        else:
            b, batch, out_old, xs = n, None, out_full, x
        decays = [_momentum_decay(t[i], dt, mu, tau) for i, dt in zip(rows, dts, strict=True)]
        if len(rows) == 1:  # Python scalars: the same rounding, without building tensors
            v_new = torch.add(v * decays[0], g, alpha=-(1.0 - decays[0]))
            w_new = torch.add(w, v_new, alpha=dts[0])
        else:
            v_new = torch.addcmul(v * col(decays), g, col([-(1.0 - d) for d in decays]))
            w_new = torch.addcmul(w, v_new, col(dts))
        out_new, cache = engine.forward(w_new, xs, not stochastic)
        dfs = (out_new - out_old).abs().amax(1).tolist()
        verdicts: dict[int, str] = {}
        for r, i in enumerate(rows):
            if i not in verdicts:
                df = alphas[i] * dfs[r]
                verdicts[i] = controls[i].judge(df)
                if verdicts[i] == StepControl.DIVERGED:
                    status[i] = DIVERGED
                dfs[r] = df
        accepted = [verdicts[i] == StepControl.ACCEPT for i in rows]
        if not any(accepted):
            continue
        if all(accepted):
            w, v = w_new, v_new
        else:
            acc = torch.tensor(accepted, device=w.device)[:, None]
            w, v = torch.where(acc, w_new, w), torch.where(acc, v_new, v)
        if stochastic:
            if bool((margins(out_new, batch) >= 1.0).all()):
                out_full = engine.forward(w, x, False)[0]
                new_loss = alosses(margins(out_full))
            else:
                new_loss = [math.nan]  # unknown without a full evaluation
        else:
            out_full = out_new if all(accepted) else torch.where(acc, out_new, out_full)
            m_full = margins(out_full)
            new_loss = alosses(m_full)
            refresh = [a and new_loss[r] > 0.0 for r, a in enumerate(accepted)]
            if all(refresh):
                g = engine.grad(w, cache, cotangent(m_full, y))
            elif any(refresh):
                g = torch.where(torch.tensor(refresh, device=w.device)[:, None],
                                engine.grad(w, cache, cotangent(m_full, y)), g)
        done = set()
        for r, i in enumerate(rows):
            if not accepted[r] or i in done:
                continue
            done.add(i)
            dt, df = dts[r], dfs[r]
            t[i] += dt
            n_steps[i] += 1
            aloss[i] = new_loss[r]
            in_step[i] = False
            if stochastic:
                t_b = dt / b * (1.0 - (b - 1) / (n - 1)) if n > 1 else dt
                t_eff = [min(t_eff[0], t_b), max(t_eff[1], t_b)]
            if return_steps:
                steps[i]["step_t"].append(t[i])
                steps[i]["step_dt"].append(dt)
                steps[i]["step_df"].append(df)
                steps[i]["step_batch"].append(b)
            if not math.isnan(aloss[i]):
                recorders[i].note_loss(t[i], aloss[i])
            if stochastic and aloss[i] == 0.0:
                status[i], t2[i] = CONVERGED, t[i]
            if recorders[i].due(t[i]):
                record(i, r)
            controls[i].accepted(df)
    return results


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
    around :class:`StepControl` and :class:`TrajectoryRecorder`, as a pack of one.

    ``model`` is any torch module with a scalar output; its parameters are read at the start
    and *overwritten with the final ones* at the end.  ``y`` holds ``+-1``.  ``out0`` is
    ``f(w0, x)`` (computed if None).  ``on_record(params, row)`` may add entries to a
    trajectory row (``params``: name -> tensor, a copy of the current ones).  Returns
    ``status``, ``t``, ``n_steps``, ``n_rejected``, ``n_band_violations``, ``t1``, ``t2``,
    ``aloss`` (final ``alpha^2 L``), ``train_outputs`` (final ``F`` on x), ``records`` (list
    of row dicts), ``temperature_eff`` (min, max over steps; T > 0 only) and, with
    ``return_steps``, per-accepted-step arrays ``step_t`` (time after the step), ``step_dt``,
    ``step_df`` (``alpha max |f_new - f_old|`` over the checked points) and ``step_batch``.
    ``device`` is unused (the model's and x's device count); kept for callers.
    """
    del device
    hook = None if on_record is None else (lambda i, params, row: on_record(params, row))
    return _flow(
        _LoneEngine(model), [model], x, y, alphas=[alpha],
        out0=None if out0 is None else [out0], mu=mu, tau=tau, temperature=temperature,
        df_band=df_band, df_target=df_target, dt0=dt0, max_steps=max_steps,
        max_time=max_time, max_retries=max_retries, batch_seed=batch_seed,
        record_per_decade=record_per_decade, on_record=hook, return_steps=return_steps,
        logs=[log],
    )[0]


def packed_hinge_flow(
    models: list[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    alphas: list[float],
    out0: list[torch.Tensor] | None = None,
    mu: float | None = 1000.0,
    tau: float | None = None,
    df_band: tuple[float, float] = DF_BAND,
    df_target: float = DF_TARGET,
    dt0: float | None = None,
    max_steps: int = 1_000_000,
    max_time: float = math.inf,
    max_retries: int = 60,
    record_per_decade: int = 10,
    on_record: Callable[[int, dict[str, torch.Tensor], dict[str, Any]], dict[str, Any]]
    | None = None,
    return_steps: bool = False,
    labels: list[str] | None = None,
    log: Log = None,
) -> list[dict[str, Any]]:
    """:func:`hinge_flow` (full batch) for several FC nets of one architecture at once, their
    matmuls batched over the pack: member ``i`` is ``models[i]`` trained at ``alphas[i]``
    (``out0[i]`` = its ``f(w0, x)``, computed if None), and its result -- the list entry
    ``i``, the dict :func:`hinge_flow` returns -- is bitwise the one ``hinge_flow`` gives it
    alone on CPU (section note above).  ``on_record(i, params, row)`` as in
    :func:`hinge_flow`, with the member index.  ``labels`` name the members in the log.
    Parameters of ``models`` are overwritten with the final ones."""
    labels = labels or [f"member {i}" for i in range(len(models))]

    def logger(i: int) -> Log:
        return None if log is None else (lambda msg: _emit(log, f"[{labels[i]}] {msg}"))

    return _flow(
        _PackedFC(models), models, x, y, alphas=alphas, out0=out0, mu=mu, tau=tau,
        temperature=0.0, df_band=df_band, df_target=df_target, dt0=dt0, max_steps=max_steps,
        max_time=max_time, max_retries=max_retries, batch_seed=0,
        record_per_decade=record_per_decade, on_record=on_record, return_steps=return_steps,
        logs=[logger(i) for i in range(len(models))],
    )
