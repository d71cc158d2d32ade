r"""Infinite-width NNGP and NTK kernels of convolutional networks (CNNGP / CNTK), in torch.

Same style as the fully connected engine :mod:`depthlab.kernels.layers`: one small function
per layer kind returns a :class:`Layer`, networks are compositions (:func:`serial`), and a
depth sweep reads every depth off one recursion (:func:`conv_sweep`).  float64 by default,
float32 on request, CPU or CUDA from the same code; Grams are computed in tiles of input
pairs whose size follows a memory budget, so any N runs in bounded memory.

Inputs and state
----------------
Images are ``(n, C, H, W)`` (torch's layout; flat rows are read with
:func:`as_images`).  A :class:`ConvState` holds, for a tile of pairs of images,

* ``nngp``/``ntk`` -- :math:`\Sigma_{\alpha\alpha'}(x, x')`, :math:`\Theta_{\alpha\alpha'}(x, x')`
  with layout ``"full"`` ``(*batch, H, W, H, W)``, ``"diag"`` ``(*batch, H, W)`` (spatial
  diagonal :math:`\alpha = \alpha'` only) or ``"flat"`` ``(*batch,)`` after a readout;
* ``side1``/``side2`` -- the *self* states of the two image sets (batch ``(n1,)``,
  ``(n2,)``; entry ``i`` is the pair ``(x_i, x_i)``), which give the per-pixel variances
  :math:`\Sigma_{\alpha\alpha}(x, x)` the nonlinearities need.  A self state has no sides.
* ``e_nngp``/``e_ntk`` -- power-of-two exponents: the kernels are ``nngp * 2**e_nngp`` and
  ``ntk * 2**e_ntk`` (see Numerics).

The input state is the per-pixel-pair channel average :math:`\Sigma^0_{\alpha\alpha'} =
x_\alpha\cdot x'_{\alpha'}/C`, :math:`\Theta^0 = 0` (the input has no parameters).

Layers (NTK parameterisation, neural-tangents ``stax`` conventions)
------------------------------------------------------------------
``conv(filter_size, w_var, b_var, stride, padding, trainable)``
    :math:`\Sigma' = w\,\bar A(\Sigma) + b`, :math:`\Theta' = w\,\bar A(\Theta) + \Sigma'`
    (without :math:`+\Sigma'` when ``trainable=False``: fixed weights contribute to the NNGP
    but not to the NTK), where :math:`[\bar A K]_{\alpha\alpha'} = f^{-2}\sum_\beta
    K_{s\alpha+\beta, s\alpha'+\beta}` is the *joint* shift average over the ``f x f``
    filter window (Xiao et al. eq. 90; ``s`` = stride), with ``circular`` or ``zero``
    ("same") padding.  It maps the spatial diagonal to itself, so it runs in both layouts.
``relu()``, ``erf()`` (closed form), ``identity()``, ``pointwise(fn, dfn)`` (Gauss-Hermite
quadrature: ``tanh``, ``softplus``)
    :math:`\Sigma' = E[\phi(u)\phi(v)]`, :math:`\Theta' = \Theta\,E[\phi'(u)\phi'(v)]`,
    pixel by pixel, with the variances of the sides.
``avg_pool(window, stride)``
    independent box average over :math:`\alpha` and :math:`\alpha'` (needs ``full``).
``global_avg_pool()``
    mean over all :math:`(\alpha, \alpha')` (needs ``full``) -> ``flat``.
``flatten()``
    mean of the spatial diagonal -> ``flat`` (runs on the ``diag`` layout).
``dense(w_var, b_var, trainable)``
    the readout on a ``flat`` state, as in :func:`depthlab.kernels.layers.dense`.

:func:`serial` decides the layout once per network, as neural-tangents does: ``full`` from
the input up to the last layer that needs it (pooling), ``diag`` everywhere else, so a stack
that ends in ``flatten`` costs :math:`O(P)` per pair instead of :math:`O(P^2)`.  The sides
carry the full self covariance only when a pooling layer is followed by a nonlinearity.

Arora et al.'s CNTK (Nichani et al.'s baseline) is ``conv(3, 1, 0, padding="zero",
trainable=False)``, ``[relu(), conv(3, 2, 0, padding="zero")] x (D-2)``, ``relu()``,
``global_avg_pool()``, ``dense(2, 0, trainable=False)`` ("GAP + fix"); the config form is a
:class:`ConvSpec` with ``fix_first``/``fix_last``.

Numerics
--------
* ReLU never forms ``arccos``: ``theta = 2 arctan(sqrt(a/b))`` with ``a = s - n``, ``b = s +
  n``, ``s = sqrt(v1 v2)``, exactly 0 for parallel and pi for antiparallel pixel pairs,
  and pairs parallel up to rounding (``tan(theta/2)`` below ``sqrt(32 eps)``) are snapped
  to ``theta = 0`` -- the rule of :mod:`depthlab.kernels.layers`.
* The self states use the cross formulas at ``n = v1 = v2``, and the joint-shift sums run in
  the same order in both layouts, so the spatial diagonal of a pair ``(x, x)`` equals its
  self state bit for bit at every layer: the diagonal of a Gram equals :func:`self_kernel`.
* Overflow/underflow: after every layer the kernels are rescaled by an exact power of two
  when the largest variance (a bound on every entry, the kernels being PSD) leaves
  ``[2**-T, 2**T]`` (``T`` = a quarter of the dtype's exponent range).  The NNGP is only
  rescaled when every nonlinearity is positively homogeneous (ReLU, identity), where
  :math:`E[\phi(su)\phi(sv)] = s\,E[\phi(u)\phi(v)]`.  Power-of-two scalings are exact, so
  results are bitwise those of the unscaled recursion wherever that one does not overflow;
  the chaotic-phase NTK (growing like :math:`\chi_1^l`) thus survives float32 and depths
  beyond float64's range (``scaled=True`` returns mantissas and exponents).

Speed
-----
* A symmetric Gram's diagonal tiles hold only the pairs ``i <= j`` (a ``(m,)`` batch with
  ``ConvState.pairs``), mirrored when stored: ``n (n + 1) / 2`` pairs, not ``n^2``.
* ReLU and erf run fused kernels: the per-image factors (``sqrt(v)``, ``(1 + 2v)^-1/2``)
  are computed once per image, and the per-pair work is a short chain of in-place passes
  (ReLU: no masks, ``sqrt(a b) = t b``, the snap as one ``threshold_``).  On CPU the
  square roots, arctan and arcsin are NumPy's SIMD loops, in place (< 1 ulp).
* Inside :func:`conv_sweep_panel` and :func:`self_kernel` the kernel-sized buffers that a
  layer drops are pooled and handed to the next layers (fresh allocations of that size are
  page-faulted in on every layer otherwise); the caller's tensors are never reused.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from depthlab.activations import names_for

__all__ = [
    "ConvSpec",
    "ConvState",
    "Layer",
    "CONV_ACTIVATIONS",
    "as_images",
    "avg_pool",
    "activation",
    "check_kernel_spec",
    "conv",
    "conv_sweep",
    "conv_sweep_panel",
    "dense",
    "erf",
    "flatten",
    "global_avg_pool",
    "identity",
    "input_state",
    "is_conv_spec",
    "kernel_matrices",
    "pointwise",
    "relu",
    "self_kernel",
    "serial",
]

_PI = math.pi
PADDINGS = ("circular", "zero")
READOUTS = ("flatten", "gap")
DEFAULT_MEMORY = 1 << 29  # bytes per tile (512 MiB): about 16 kernel-sized buffers


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvState:
    """Kernels of a tile of image pairs after some layers (module doc).

    ``side1 is None`` marks a self state (batch ``(n,)``, entry ``i`` = pair ``(x_i,
    x_i)``); otherwise the batch is the grid ``(n1, n2)``.  ``same``: the grid pairs a set
    with itself (``side1 is side2``).  ``pairs``: instead of the grid, the batch is ``(m,)``,
    the listed pairs ``(x1[i[k]], x2[j[k]])`` (the upper triangle of a symmetric tile).
    ``spatial`` is the current ``(H, W)``.
    """

    nngp: torch.Tensor | None
    ntk: torch.Tensor | None
    layout: str
    spatial: tuple[int, int]
    side1: ConvState | None = None
    side2: ConvState | None = None
    e_nngp: int = 0
    e_ntk: int = 0
    same: bool = False
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def is_self(self) -> bool:
        return self.side1 is None

    @property
    def valid(self) -> bool:
        return self.nngp is not None

    def variances(self) -> torch.Tensor:
        """Per-pixel variances of a self state: ``(n, H, W)`` (or ``(n,)`` when flat)."""
        if not self.is_self:
            raise ValueError("variances() is defined for self states")
        if not self.valid:
            raise ValueError(
                "a pooling layer ran on the spatial diagonal only; a nonlinearity after "
                "pooling needs the full self covariance (serial() arranges this)"
            )
        if self.layout == "full":
            return _spatial_diagonal(self.nngp)
        return self.nngp

    def values(self, kind: str = "ntk") -> torch.Tensor:
        """The kernel with its exponent applied, as float64 (``inf`` beyond float64)."""
        t, e = (self.ntk, self.e_ntk) if kind == "ntk" else (self.nngp, self.e_nngp)
        return _ldexp(t.to(torch.float64), e)


def _pow2(x: float, e: int) -> float:
    """``x * 2**e`` as a Python float (0 stays 0, overflow gives inf)."""
    if x == 0.0:
        return 0.0
    try:
        return math.ldexp(x, e)
    except OverflowError:
        return math.copysign(math.inf, x)


def _ldexp(t: torch.Tensor, e: int) -> torch.Tensor:
    if e == 0:
        return t
    # 2**e may itself overflow float64 even where t * 2**e does not: apply it in two halves
    half = e // 2
    return t * _pow2(1.0, half) * _pow2(1.0, e - half)


def _spatial_diagonal(t: torch.Tensor) -> torch.Tensor:
    """``(*B, H, W, H, W) -> (*B, H, W)``: entries ``alpha = alpha'`` (contiguous)."""
    d = torch.diagonal(t, dim1=-4, dim2=-2)  # (*B, W, W, H)
    d = torch.diagonal(d, dim1=-3, dim2=-2)  # (*B, H, W)
    return d.contiguous()


def _broadcast_variances(state: ConvState) -> tuple[torch.Tensor, torch.Tensor]:
    """Variances of the two members of every pair, broadcastable against ``state.nngp``."""
    if state.is_self:
        v = state.variances()
        if state.layout == "full":
            return v[..., :, :, None, None], v[..., None, None, :, :]
        return v, v
    v1 = state.side1.variances()
    v2 = state.side2.variances()
    if state.pairs is not None:
        v1, v2 = v1[state.pairs[0]], v2[state.pairs[1]]
        if state.layout == "full":
            return v1[:, :, :, None, None], v2[:, None, None, :, :]
        return v1, v2
    if state.layout == "full":
        return v1[:, None, :, :, None, None], v2[None, :, None, None, :, :]
    if state.layout == "diag":
        return v1[:, None], v2[None, :]
    return v1[:, None], v2[None, :]


# --------------------------------------------------------------------------------------
# Layers and composition
# --------------------------------------------------------------------------------------

Update = Callable[[ConvState], ConvState]


@dataclass(frozen=True)
class Layer:
    """A kernel layer: ``layer(state) -> state`` plus what :func:`serial` needs to plan the
    layouts: ``needs_full`` (needs the off-diagonal spatial covariance: pooling),
    ``nonlinear`` (needs the sides' variances), ``homogeneous`` (``E[phi(su)phi(sv)] =
    s E[phi(u)phi(v)]``), ``readout`` (ends the spatial axes)."""

    update: Update
    name: str
    needs_full: bool = False
    nonlinear: bool = False
    homogeneous: bool = True
    readout: bool = False
    parts: tuple[Layer, ...] = field(default=(), repr=False)

    def flat_parts(self) -> tuple[Layer, ...]:
        if not self.parts:
            return (self,)
        return tuple(p for part in self.parts for p in part.flat_parts())

    def __call__(self, state: ConvState) -> ConvState:
        return _run(self.flat_parts(), state, _plan(self.flat_parts()))

    def __repr__(self) -> str:
        return self.name


def _layer(update: Update, name: str, **flags: bool) -> Layer:
    return Layer(update, name, **flags)


@dataclass(frozen=True)
class _Plan:
    full_until: int  # layers with index < full_until run on the full layout
    sides_full: bool
    rescale_nngp: bool

    @property
    def input_full(self) -> bool:
        return self.full_until > 0


def _plan(layers: Sequence[Layer]) -> _Plan:
    last_full = max((i for i, lay in enumerate(layers) if lay.needs_full), default=-1)
    sides_full = any(
        lay.needs_full and any(m.nonlinear for m in layers[i + 1 :])
        for i, lay in enumerate(layers)
    )
    rescale_nngp = all(lay.homogeneous for lay in layers if lay.nonlinear)
    return _Plan(last_full + 1, sides_full, rescale_nngp)


def serial(*layers: Layer) -> Layer:
    """Compose layers left to right (the layout plan is made over the whole composition)."""
    parts = tuple(layers)
    flat = tuple(p for lay in parts for p in lay.flat_parts())
    return Layer(
        lambda s: _run(flat, s, _plan(flat)),
        "serial(" + ", ".join(lay.name for lay in parts) + ")",
        needs_full=any(p.needs_full for p in flat),
        nonlinear=any(p.nonlinear for p in flat),
        homogeneous=all(p.homogeneous for p in flat if p.nonlinear),
        readout=any(p.readout for p in flat),
        parts=parts,
    )


def _to_diag(state: ConvState) -> ConvState:
    """Drop the off-diagonal spatial entries (the sides go with it unless flat)."""
    if state.layout != "full":
        return state
    side1 = side2 = None
    if not state.is_self:
        side1 = _to_diag(state.side1)
        side2 = side1 if state.same else _to_diag(state.side2)
    return replace(
        state,
        nngp=_spatial_diagonal(state.nngp),
        ntk=_spatial_diagonal(state.ntk),
        layout="diag",
        side1=side1,
        side2=side2,
    )


def _run(layers: Sequence[Layer], state: ConvState, plan: _Plan,
         rescale_nngp: bool | None = None) -> ConvState:
    rescale = plan.rescale_nngp if rescale_nngp is None else rescale_nngp
    # the input state is the caller's (a layer may pass its tensors on unchanged); the
    # tensors made here are ours, and dropped ones go back to the pool
    callers = _storages(state) if _POOL.get() is not None else set()
    for i, lay in enumerate(layers):
        prev = state
        if i >= plan.full_until and state.layout == "full":
            state = _to_diag(state)
        state = lay.update(state)
        state = _rescale(state, rescale)
        if i:
            _release_state(prev, state, callers)
    return state


# ---- buffer reuse ----------------------------------------------------------------------
#
# Every layer makes a few kernel-sized tensors and drops as many.  Fresh allocations of
# that size are page-faulted in again and again by the C allocator (the freed memory is
# returned to the system), which on CPU costs as much as the arithmetic; inside the tile
# loops a pool hands the dropped buffers back out instead.


class _Pool:
    """Free contiguous tensors by (shape, dtype, device)."""

    def __init__(self) -> None:
        self.free: dict[tuple, list[torch.Tensor]] = {}
        self.ptrs: set[int] = set()

    def take(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        stack = self.free.get((tuple(shape), like.dtype, like.device))
        if stack:
            t = stack.pop()
            self.ptrs.discard(t.data_ptr())
            return t
        return torch.empty(tuple(shape), dtype=like.dtype, device=like.device)

    def give(self, t: torch.Tensor | None) -> None:
        if (t is None or t._base is not None or not t.is_contiguous()
                or t.storage_offset() != 0 or t.data_ptr() in self.ptrs
                or t.untyped_storage().nbytes() != t.numel() * t.element_size()):
            return
        self.ptrs.add(t.data_ptr())
        self.free.setdefault((tuple(t.shape), t.dtype, t.device), []).append(t)


_POOL: contextvars.ContextVar[_Pool | None] = contextvars.ContextVar("_POOL", default=None)


@contextlib.contextmanager
def _pooled() -> Iterator[None]:
    token = _POOL.set(_Pool())
    try:
        yield
    finally:
        _POOL.reset(token)


def _new(shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor (from the pool inside :func:`_pooled`)."""
    pool = _POOL.get()
    if pool is None:
        return torch.empty(tuple(shape), dtype=like.dtype, device=like.device)
    return pool.take(shape, like)


def _release(*ts: torch.Tensor | None) -> None:
    """Hand tensors that nothing references any more back to the pool."""
    pool = _POOL.get()
    if pool is not None:
        for t in ts:
            pool.give(t)


def _state_tensors(state: ConvState | None) -> Iterator[torch.Tensor]:
    if state is None:
        return
    for t in (state.nngp, state.ntk):
        if t is not None:
            yield t
    if not state.is_self:
        yield from _state_tensors(state.side1)
        if not state.same:
            yield from _state_tensors(state.side2)


def _storages(state: ConvState) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in _state_tensors(state)}


def _release_state(old: ConvState, new: ConvState, keep: set[int] = frozenset()) -> None:
    """Release the tensors of ``old`` (a state made here that nothing else holds) whose
    memory neither ``new`` nor ``keep`` (storage pointers) uses."""
    if _POOL.get() is None:
        return
    keep = keep | _storages(new)
    _release(*(t for t in _state_tensors(old) if t.untyped_storage().data_ptr() not in keep))


# ---- exact power-of-two rescaling ------------------------------------------------------


def _exp_bound(dtype: torch.dtype) -> int:
    return {torch.float64: 256, torch.float32: 32}.get(dtype, 16)


def _log2_max(t: torch.Tensor | None) -> float:
    if t is None or t.numel() == 0:
        return 0.0
    lo, hi = torch.aminmax(t)  # one pass: max |t| = max(hi, -lo)
    m = float(torch.maximum(hi, lo.neg()))
    if m == 0.0 or not math.isfinite(m):
        return 0.0
    return math.log2(m)


def _rescale(state: ConvState, rescale_nngp: bool) -> ConvState:
    """Rescale by an exact power of two when the largest variance leaves [2^-T, 2^T]."""
    if not state.valid:
        return state
    bound = _exp_bound(state.ntk.dtype)
    if state.is_self:
        sides = [state]
    else:
        sides = [state.side1] if state.same else [state.side1, state.side2]
    sides = [s for s in sides if s is not None and s.valid]

    def shift_for(kind: str) -> int:
        logs = [_log2_max(s.variances() if kind == "nngp" else _self_diag(s.ntk, s.layout))
                for s in sides]
        top = max(logs) if logs else 0.0
        if -bound <= top <= bound:
            return 0
        return int(math.floor(top))

    m_ntk = shift_for("ntk")
    m_nngp = shift_for("nngp") if rescale_nngp else 0
    if m_ntk == 0 and m_nngp == 0:
        return state
    return _shift(state, m_nngp, m_ntk)


def _self_diag(t: torch.Tensor, layout: str) -> torch.Tensor:
    return _spatial_diagonal(t) if layout == "full" else t


def _shift(state: ConvState, m_nngp: int, m_ntk: int) -> ConvState:
    if state is None or not state.valid:
        return state
    side1 = side2 = None
    if not state.is_self:
        side1 = _shift(state.side1, m_nngp, m_ntk)
        side2 = side1 if state.same else _shift(state.side2, m_nngp, m_ntk)
    return replace(
        state,
        nngp=state.nngp * _pow2(1.0, -m_nngp) if m_nngp else state.nngp,
        ntk=state.ntk * _pow2(1.0, -m_ntk) if m_ntk else state.ntk,
        e_nngp=state.e_nngp + m_nngp,
        e_ntk=state.e_ntk + m_ntk,
        side1=side1,
        side2=side2,
    )


# ---- the generic wrapper: update the sides, then the pairs ---------------------------


def _with_sides(pair_update: Callable[[ConvState], ConvState]) -> Update:
    """Apply ``pair_update`` to the sides (self states) and then to the state itself."""

    def update(state: ConvState) -> ConvState:
        if state.is_self:
            return pair_update(state)
        side1 = update(state.side1) if state.side1.valid else state.side1
        side2 = side1 if state.same else (
            update(state.side2) if state.side2.valid else state.side2
        )
        new = pair_update(state)
        return replace(new, side1=side1, side2=side2)

    return update


# ---- spatial sums ---------------------------------------------------------------------


def _pad(t: torch.Tensor, dim: int, p: int, padding: str) -> torch.Tensor:
    if p == 0:
        return t
    n = t.shape[dim]
    if padding == "circular":
        idx = torch.arange(-p, n + p, device=t.device) % n
        return torch.index_select(t, dim, idx)
    shape = list(t.shape)
    shape[dim] = p
    z = t.new_zeros(shape)
    return torch.cat([z, t, z], dim=dim)


def _window_sum(t: torch.Tensor, dims: tuple[int, ...], f: int, stride: int, pad: int,
                padding: str) -> torch.Tensor:
    """``out[o] = sum_beta t_pad[stride o + beta]`` jointly along ``dims`` (a shift of
    all of them together), ``beta = 0 .. f-1``, after padding each by ``pad``."""
    for d in dims:
        t = _pad(t, d, pad, padding)
    n_pad = t.shape[dims[0]]
    n_out = (n_pad - f) // stride + 1
    out = None
    for beta in range(f):
        sl = [slice(None)] * t.ndim
        for d in dims:
            sl[d] = slice(beta, beta + stride * (n_out - 1) + 1, stride)
        piece = t[tuple(sl)]
        out = piece.clone() if out is None else out.add_(piece)
    return out


def _shift_blocks(n: int, beta: int, padding: str) -> list[tuple[slice, slice]]:
    """``(out, in)`` slice pairs with ``out[o] <- in[o + beta]`` along one axis (stride 1):
    one block for zero padding (entries shifted in from outside are 0), two for circular."""
    if padding == "zero":
        if abs(beta) >= n:
            return []
        if beta >= 0:
            return [(slice(0, n - beta), slice(beta, n))]
        return [(slice(-beta, n), slice(0, n + beta))]
    b = beta % n
    if b == 0:
        return [(slice(0, n), slice(0, n))]
    return [(slice(0, n - b), slice(b, n)), (slice(n - b, n), slice(0, b))]


def _joint_shift_sum(t: torch.Tensor, dims: tuple[int, ...], f: int, padding: str
                     ) -> torch.Tensor:
    """Stride-1 joint window sum without a padded copy: the centre, then shifts ``-p .. p``
    added in place block by block (the same order in every layout)."""
    n = t.shape[dims[0]]
    p = f // 2
    if padding == "circular" and p >= n:
        # wraps more than once: the generic padded sum handles it
        return _window_sum(t, dims, f, 1, p, padding)
    out = _new(t.shape, t).copy_(t)
    for beta in (*range(-p, 0), *range(1, p + 1)):
        blocks = _shift_blocks(n, beta, padding)
        combos: list[list[tuple[slice, slice]]] = [[]]
        for _ in dims:
            combos = [c + [blk] for c in combos for blk in blocks]
        for combo in combos:
            o_sl = [slice(None)] * t.ndim
            i_sl = [slice(None)] * t.ndim
            for d, (o, i) in zip(dims, combo, strict=True):
                o_sl[d], i_sl[d] = o, i
            out[tuple(o_sl)] += t[tuple(i_sl)]
    return out


def _joint_box(t: torch.Tensor, layout: str, f: tuple[int, int], stride: tuple[int, int],
               padding: str) -> torch.Tensor:
    """Sum over the filter window of joint shifts (height axes, then width axes)."""
    if layout == "full":
        axes = ((-4, -2), (-3, -1))
    else:
        axes = ((-2,), (-1,))
    src = t
    for (fa, sa, dims) in zip(f, stride, axes, strict=True):
        if fa == 1 and sa == 1:
            continue
        prev = t
        if sa == 1:
            t = _joint_shift_sum(t, dims, fa, padding)
        else:
            t = _window_sum(t, dims, fa, sa, fa // 2, padding)
        if prev is not src:
            _release(prev)
    return _new(t.shape, t).copy_(t) if t is src else t  # callers update it in place


def _out_size(n: int, f: int, stride: int) -> int:
    return (n + 2 * (f // 2) - f) // stride + 1


# ---- layer kinds ----------------------------------------------------------------------


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def conv(
    filter_size: int | Sequence[int] = 3,
    w_var: float = 2.0,
    b_var: float = 0.0,
    *,
    stride: int | Sequence[int] = 1,
    padding: str = "circular",
    trainable: bool = True,
) -> Layer:
    """Convolution with odd ``filter_size`` (``f`` or ``(fh, fw)``), NTK parameterisation:
    weights ``sqrt(w_var / (C f^2)) N(0, 1)``, bias ``sqrt(b_var) N(0, 1)``; ``padding``
    ``circular`` or ``zero`` ("same": ``f // 2`` on each side), ``stride``; fixed weights
    (``trainable=False``) contribute to the NNGP only."""
    f = _pair(filter_size)
    s = _pair(stride)
    if any(k < 1 or k % 2 == 0 for k in f):
        raise ValueError(f"filter_size must be odd and positive, got {filter_size}")
    if any(k < 1 for k in s):
        raise ValueError(f"stride must be positive, got {stride}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    w_var, b_var = float(w_var), float(b_var)
    scale = w_var / (f[0] * f[1])

    def pair(state: ConvState) -> ConvState:
        if state.layout == "flat":
            raise ValueError("conv after a readout (flatten / global_avg_pool)")
        b = _pow2(b_var, -state.e_nngp)
        nngp = _joint_box(state.nngp, state.layout, f, s, padding)
        nngp.mul_(scale).add_(b)
        ntk = _joint_box(state.ntk, state.layout, f, s, padding)
        ntk.mul_(scale)
        if trainable:
            ntk.add_(nngp, alpha=_pow2(1.0, state.e_nngp - state.e_ntk))
        hw = (_out_size(state.spatial[0], f[0], s[0]), _out_size(state.spatial[1], f[1], s[1]))
        return replace(state, nngp=nngp, ntk=ntk, spatial=hw)

    fixed = "" if trainable else ", fixed"
    return _layer(_with_sides(pair),
                  f"conv({f[0]}x{f[1]}, {w_var:g}, {b_var:g}, stride={s}, {padding}{fixed})")


def dense(w_var: float, b_var: float, *, trainable: bool = True) -> Layer:
    """Dense layer on a flat state (the readout): ``nngp' = w nngp + b``, ``ntk' = w ntk +
    nngp'`` (``trainable=False``: ``ntk' = w ntk``)."""
    w_var, b_var = float(w_var), float(b_var)

    def pair(state: ConvState) -> ConvState:
        if state.layout != "flat":
            raise ValueError("dense needs a flat state: put flatten() or global_avg_pool() first")
        nngp = state.nngp * w_var + _pow2(b_var, -state.e_nngp)
        ntk = state.ntk * w_var
        if trainable:
            ntk.add_(nngp, alpha=_pow2(1.0, state.e_nngp - state.e_ntk))
        return replace(state, nngp=nngp, ntk=ntk)

    fixed = "" if trainable else ", fixed"
    return _layer(_with_sides(pair), f"dense({w_var:g}, {b_var:g}{fixed})")


def flatten() -> Layer:
    """Flatten readout: the mean of the spatial diagonal (Xiao eq. 98, left)."""

    def pair(state: ConvState) -> ConvState:
        if state.layout == "flat":
            return state
        nngp, ntk = state.nngp, state.ntk
        if state.layout == "full":
            nngp, ntk = _spatial_diagonal(nngp), _spatial_diagonal(ntk)
        return replace(state, nngp=nngp.mean(dim=(-2, -1)), ntk=ntk.mean(dim=(-2, -1)),
                       layout="flat", spatial=(1, 1))

    return _layer(_with_sides(pair), "flatten", readout=True)


def _needs_full_pair(name: str, fn: Callable[[torch.Tensor], torch.Tensor], out_layout: str,
                     spatial_fn: Callable[[tuple[int, int]], tuple[int, int]]) -> Update:
    def pair(state: ConvState) -> ConvState:
        if state.layout == "flat":
            raise ValueError(f"{name} after a readout")
        if state.layout != "full":
            if state.is_self:
                # diagonal-only self state (a side): its pooled covariance is unknown
                return replace(state, nngp=None, ntk=None, layout=out_layout,
                               spatial=spatial_fn(state.spatial))
            raise ValueError(f"{name} needs the full spatial covariance")
        return replace(state, nngp=fn(state.nngp), ntk=fn(state.ntk), layout=out_layout,
                       spatial=spatial_fn(state.spatial))

    return pair


def global_avg_pool() -> Layer:
    """Global average pooling readout: the mean over all pixel pairs (Xiao eq. 98, right)."""

    def fn(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(*t.shape[:-4], -1).mean(dim=-1)

    return _layer(
        _with_sides(_needs_full_pair("global_avg_pool", fn, "flat", lambda hw: (1, 1))),
        "global_avg_pool", needs_full=True, readout=True,
    )


def avg_pool(window: int | Sequence[int] = 2, stride: int | Sequence[int] | None = None) -> Layer:
    """Average pooling (no padding) of every feature map: an independent box average over
    ``alpha`` and over ``alpha'`` (needs the full spatial covariance)."""
    k = _pair(window)
    s = k if stride is None else _pair(stride)

    def fn(t: torch.Tensor) -> torch.Tensor:
        for ka, sa, dims in zip(k, s, ((-4,), (-3,)), strict=True):
            t = _window_sum(t, dims, ka, sa, 0, "zero")
        for ka, sa, dims in zip(k, s, ((-2,), (-1,)), strict=True):
            t = _window_sum(t, dims, ka, sa, 0, "zero")
        return t.mul_(1.0 / (k[0] * k[1]) ** 2)

    def hw(sp: tuple[int, int]) -> tuple[int, int]:
        return ((sp[0] - k[0]) // s[0] + 1, (sp[1] - k[1]) // s[1] + 1)

    return _layer(_with_sides(_needs_full_pair("avg_pool", fn, "full", hw)),
                  f"avg_pool({k}, stride={s})", needs_full=True)


# ---- activations ----------------------------------------------------------------------

Cross = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


Fused = tuple[Callable[[torch.Tensor], torch.Tensor],
              Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]


def activation(cross: Cross, name: str, homogeneous: bool = False, *,
               fused: Fused | None = None) -> Layer:
    """An activation from ``cross(n, v1, v2) -> (E[phi(u)phi(v)], E[phi'(u)phi'(v)])``
    (broadcasting tensors).  Self states use the same function at ``n = v1 = v2``.

    ``fused = (side, kernel)``, the fast path of the closed forms: ``side(v)`` maps the
    per-pixel variances of each image set to a factor, and ``kernel(n, q)`` gets ``q =
    side(v1) side(v2)`` as a fresh tensor of ``n``'s shape (it may overwrite it) and returns
    the same pair as ``cross``; the per-pixel work on the small sides is done once, not once
    per pair."""

    def pair(state: ConvState) -> ConvState:
        if not homogeneous and state.e_nngp != 0:
            raise ValueError(f"{name}: NNGP carries a scale exponent (not homogeneous)")
        if fused is not None:
            k1, k0 = fused[1](state.nngp, _side_product(state, fused[0]))
        else:
            v1, v2 = _broadcast_variances(state)
            k1, k0 = cross(state.nngp, v1, v2)
        k0.mul_(state.ntk)
        return replace(state, nngp=k1, ntk=k0)

    return _layer(_with_sides(pair), name, nonlinear=True, homogeneous=homogeneous)


def _side_product(state: ConvState, side: Callable[[torch.Tensor], torch.Tensor]
                  ) -> torch.Tensor:
    """``side(v1) * side(v2)`` for every pair of ``state`` (pixel by pixel, or every pixel
    pair on the full layout), as a new contiguous tensor shaped like ``state.nngp``."""
    gathered = []
    if state.is_self:
        a = b = side(state.variances())
    else:
        a = side(state.side1.variances())
        b = a if state.same else side(state.side2.variances())
        if state.pairs is not None:
            gathered = [torch.index_select(v, 0, idx, out=_new((len(idx), *v.shape[1:]), v))
                        for v, idx in ((a, state.pairs[0]), (b, state.pairs[1]))]
            a, b = gathered
        else:
            a, b = a[:, None], b[None, :]
    if state.layout == "full":
        a, b = a[..., :, :, None, None], b[..., None, None, :, :]
    if gathered and state.layout != "full":  # (m, H, W) each: multiply in place
        out = a.mul_(b)
        _release(b)
        return out
    out = torch.mul(a, b, out=_new(state.nngp.shape, state.nngp))
    _release(*gathered)
    return out


def _np_inplace_(t: torch.Tensor, np_fn: Callable, torch_fn_: Callable) -> torch.Tensor:
    """``t = fn(t)`` in place: NumPy's SIMD transcendental (several times faster than
    torch's on CPU, <1 ulp) on contiguous CPU tensors, torch's elsewhere."""
    if (t.device.type == "cpu" and t.is_contiguous()
            and t.dtype in (torch.float64, torch.float32)):
        a = t.detach().numpy()
        np_fn(a, out=a)
        return t
    return torch_fn_(t)


def _snap_tan(dtype: torch.dtype) -> float:
    """tan(theta/2) below which 1 - cos(theta) < 64 eps (``layers._SNAP_TAN`` in float64)."""
    return math.sqrt(32 * torch.finfo(dtype).eps)


def _below_snap(dtype: torch.dtype) -> float:
    """The largest value of ``dtype`` below :func:`_snap_tan` (``t > it`` iff ``t >= snap``
    in that dtype, so ``threshold_`` snaps exactly the ``t < snap`` of the comparison)."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    c = np.asarray(_snap_tan(dtype), dtype=np_dtype)
    return float(np.nextafter(c, np_dtype(0)))


def _relu_kernel(n: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Arc-cosine kernels from ``n`` and ``s = sqrt(v1 v2)`` (overwritten), through
    ``t = tan(theta/2) = sqrt(a/b)``, ``a = s - n``, ``b = s + n`` (see
    :func:`_relu_cross`); ``sqrt(a b) = t b``."""
    dtype = n.dtype
    t = torch.sub(s, n, out=_new(n.shape, n)).clamp_min_(0.0)  # a
    b = s.add_(n).clamp_min_(0.0)
    # a / b: 0/0 (both variances 0) -> 0; antiparallel (b = 0 < a) -> the largest finite
    # value: its root changes no atan (pi/2 either way) and gives sqrt(a b) = t b = 0 exactly
    t.div_(b).nan_to_num_(nan=0.0, posinf=torch.finfo(dtype).max)
    _np_inplace_(t, np.sqrt, torch.sqrt_)
    # snap: t < sqrt(32 eps) -> 0 (the rule of layers._relu_cross); t b is then 0 too
    torch.nn.functional.threshold_(t, _below_snap(dtype), 0.0)
    det = torch.mul(t, b, out=_new(n.shape, n))
    k0 = _np_inplace_(t, np.arctan, torch.atan_).mul_(-1.0 / _PI).add_(0.5)  # (pi-theta)/2pi
    k1 = torch.mul(k0, n, out=b).add_(det, alpha=1.0 / (2.0 * _PI))
    _release(det)
    return k1, k0


def _relu_cross(n: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor):
    # arc-cosine kernels (Cho & Saul) through tan(theta/2) = sqrt(a/b), see layers._relu_cross:
    # theta = 2 arctan(sqrt(a/b)) with a = s - n, b = s + n, s = sqrt(v1 v2): exactly 0 for
    # parallel and pi for antiparallel pairs; tan(theta/2) < sqrt(32 eps) is snapped to 0
    s = torch.sqrt(v1) * torch.sqrt(v2)  # square roots on the (small) variance tensors
    return _relu_kernel(n, s.expand(n.shape).contiguous() if s.shape != n.shape else s)


def relu() -> Layer:
    """ReLU, closed form (arc-cosine kernel), positively homogeneous."""
    return activation(_relu_cross, "relu", homogeneous=True, fused=(torch.sqrt, _relu_kernel))


def _erf_side(v: torch.Tensor) -> torch.Tensor:
    return torch.rsqrt(2.0 * v + 1.0)


def _erf_kernel(n: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``erf`` kernels from ``n`` and ``q = 1 / sqrt((1 + 2 v1) (1 + 2 v2))`` (see
    :func:`_erf_cross`)."""
    r = torch.mul(n, q, out=_new(n.shape, n)).mul_(2.0).clamp_(-1.0, 1.0)  # 2n / sqrt(..)
    w = torch.neg(r, out=_new(n.shape, n)).add_(1.0)  # 1 - r
    w.addcmul_(w, r).rsqrt_()  # 1 / sqrt((1 - r) (1 + r))
    k0 = torch.mul(q, w, out=w).mul_(4.0 / _PI)
    _release(q)
    k1 = _np_inplace_(r, np.arcsin, torch.asin_).mul_(2.0 / _PI)
    return k1, k0


def _erf_cross(n: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor):
    # E[erf erf] = 2/pi arcsin(2n / sqrt((1+2v1)(1+2v2))), E[erf' erf'] = 4/pi / sqrt(... - 4n^2)
    return _erf_kernel(n, torch.broadcast_to(_erf_side(v1) * _erf_side(v2), n.shape))


def erf() -> Layer:
    """``erf``, closed form (Williams 1997)."""
    return activation(_erf_cross, "erf", fused=(_erf_side, _erf_kernel))


def identity() -> Layer:
    """Linear activation."""
    return activation(lambda n, v1, v2: (n.clone(), torch.ones_like(n)), "identity",
                      homogeneous=True)


_QUAD_BUDGET = 1 << 22  # function evaluations per chunk


def pointwise(fn: Callable[[torch.Tensor], torch.Tensor],
              dfn: Callable[[torch.Tensor], torch.Tensor], *, deg: int = 48,
              name: str = "pointwise") -> Layer:
    """Smooth activation by Gauss-Hermite quadrature (``deg`` nodes per axis) over the
    bivariate Gaussian ``u = s1 z1``, ``v = s2 (c z1 + sqrt(1 - c^2) z2)`` -- the rule of
    :func:`depthlab.kernels.layers.pointwise` (no kinks)."""
    z_np, w_np = np.polynomial.hermite_e.hermegauss(deg)
    w_np = w_np / math.sqrt(2.0 * _PI)

    def cross(n: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor):
        shape = torch.broadcast_shapes(n.shape, v1.shape, v2.shape)
        nf = n.expand(shape).reshape(-1)
        s1 = torch.sqrt(v1.expand(shape).reshape(-1))
        s2 = torch.sqrt(v2.expand(shape).reshape(-1))
        z = torch.as_tensor(z_np, dtype=n.dtype, device=n.device)
        w = torch.as_tensor(w_np, dtype=n.dtype, device=n.device)
        k1 = torch.empty_like(nf)
        k0 = torch.empty_like(nf)
        chunk = max(1, _QUAD_BUDGET // (deg * deg))
        for i in range(0, nf.numel(), chunk):
            sl = slice(i, i + chunk)
            a, b = s1[sl], s2[sl]
            c = torch.where((a * b) > 0, nf[sl] / (a * b), torch.zeros_like(a)).clamp(-1.0, 1.0)
            cp = torch.sqrt((1.0 - c) * (1.0 + c))
            u = a[:, None] * z  # (m, D)
            v = b[:, None, None] * (c[:, None, None] * z[None, :, None] + cp[:, None, None] * z)
            inner_f = fn(v) @ w  # (m, D)
            inner_d = dfn(v) @ w
            k1[sl] = (fn(u) * inner_f) @ w
            k0[sl] = (dfn(u) * inner_d) @ w
        return k1.reshape(shape), k0.reshape(shape)

    return activation(cross, name)


def _tanh_d(u: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(u) ** 2


def _softplus(u: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.softplus(u, beta=1.0, threshold=1e300)


CONV_ACTIVATIONS: dict[str, Callable[[], Layer]] = {
    "relu": relu,
    "erf": erf,
    "linear": identity,
    "tanh": lambda: pointwise(torch.tanh, _tanh_d, name="tanh"),
    "softplus": lambda: pointwise(_softplus, torch.sigmoid, name="softplus"),
}
"""Activation layers by the names of :data:`depthlab.activations.ACTIVATIONS` (``kernel``
engine; softplus with beta = 1, as in the FC kernels)."""


# --------------------------------------------------------------------------------------
# Input states and kernels of whole image sets
# --------------------------------------------------------------------------------------


def as_images(x: Any, image_shape: Sequence[int] | None = None, *,
              dtype: torch.dtype = torch.float64, device: Any = "cpu") -> torch.Tensor:
    """``(n, C, H, W)`` tensor from images or from flat rows ``(n, C*H*W)`` read channel
    first with ``image_shape`` ``(H, W)`` or ``(C, H, W)``."""
    t = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    t = t.to(dtype=dtype, device=device)
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        shape = (1, *shape) if len(shape) == 2 else shape
        t = t.reshape(t.shape[0], *shape)
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4:
        raise ValueError("images must be (n, C, H, W) or flat rows with image_shape; "
                         f"got {tuple(t.shape)}")
    return t


def _channel_products(x1: torch.Tensor, x2: torch.Tensor, layout: str, grid: bool,
                      pairs: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``sum_c x1_c[alpha] x2_c[alpha'] / C`` accumulated channel by channel, elementwise,
    so every layout and batch shape gives bitwise the same value for the same pixels.
    ``pairs``: only the pairs ``(x1[i], x2[j])`` (batch ``(m,)``) instead of the grid."""
    c = x1.shape[1]
    acc = None
    for k in range(c):
        a, b = x1[:, k], x2[:, k]  # (n, H, W)
        if pairs is not None:
            a, b = torch.index_select(a, 0, pairs[0]), torch.index_select(b, 0, pairs[1])
        elif grid:
            a, b = a[:, None], b[None, :]
        if layout == "full":
            a, b = a[..., :, :, None, None], b[..., None, None, :, :]
        term = a * b
        acc = term if acc is None else acc.add_(term)
    return acc.div_(c)


def _self_input(x: torch.Tensor, layout: str) -> ConvState:
    nngp = _channel_products(x, x, layout, grid=False)
    return ConvState(nngp, torch.zeros_like(nngp), layout, (x.shape[2], x.shape[3]))


def input_state(x1: torch.Tensor, x2: torch.Tensor | None = None, *, layout: str = "full",
                side_layout: str = "diag", upper: bool = False) -> ConvState:
    """State of the inputs: ``Sigma_{alpha alpha'} = x_alpha . x'_{alpha'} / C``, ``Theta =
    0``.  ``x2=None`` pairs ``x1`` with itself (``same``); then ``upper=True`` keeps only
    the pairs ``i <= j`` (batch ``(n (n + 1) / 2,)``, ``pairs`` = their indices)."""
    if layout not in ("full", "diag"):
        raise ValueError(f"layout must be 'full' or 'diag', got {layout!r}")
    same = x2 is None or x2 is x1
    x2 = x1 if same else x2
    if x2.shape[1:] != x1.shape[1:]:
        raise ValueError(f"image shapes differ: {tuple(x1.shape)} vs {tuple(x2.shape)}")
    pairs = None
    if same and upper:
        ij = torch.triu_indices(x1.shape[0], x1.shape[0], device=x1.device)
        pairs = (ij[0], ij[1])
    nngp = _channel_products(x1, x2, layout, grid=True, pairs=pairs).contiguous()
    side1 = _self_input(x1, side_layout)
    side2 = side1 if same else _self_input(x2, side_layout)
    return ConvState(nngp, torch.zeros_like(nngp), layout, (x1.shape[2], x1.shape[3]),
                     side1, side2, same=same, pairs=pairs)


def _finish(state: ConvState) -> ConvState:
    if state.layout != "flat":
        raise ValueError("the network must end in a readout (flatten or global_avg_pool, "
                         "then dense)")
    return state


# ---- tiles ------------------------------------------------------------------------------


def _tile_edge(n_pixels: int, layout_full: bool, itemsize: int, memory: int) -> int:
    per_pair = itemsize * (n_pixels * n_pixels if layout_full else n_pixels) * 16
    pairs = max(1, int(memory) // max(1, per_pair))
    return max(1, int(math.isqrt(pairs)))


def _tiles(na: int, nb: int, edge: int, prefix_same: bool):
    """Tiles ``(i0, i1, j0, j1)``; with ``prefix_same`` only the upper tiles of the leading
    ``na x na`` square (square diagonal tiles), then the columns beyond it."""
    for i0 in range(0, na, edge):
        i1 = min(i0 + edge, na)
        start = 0
        if prefix_same:
            for j0 in range(i0, na, edge):
                yield i0, i1, j0, min(j0 + edge, na)
            start = na
        for j0 in range(start, nb, edge):
            yield i0, i1, j0, min(j0 + edge, nb)


def _symmetrize_(t: torch.Tensor) -> torch.Tensor:
    upper = torch.triu(t)
    return upper + torch.triu(t, 1).T


def _resolve_device(device: Any) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class _Threads:
    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        self.before = torch.get_num_threads()
        if self.n:
            torch.set_num_threads(int(self.n))

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


Network = Layer | Callable[[int], tuple[Sequence[Layer], Layer]]


def _stages(net: Any, depths: list[int]) -> tuple[list[Layer], Callable[[int], Layer]]:
    """(trunk layers up to the largest depth, head(depth))."""
    if isinstance(net, Layer):
        if depths != [0]:
            raise ValueError("a Layer is one network: use depths=[0] or a ConvSpec for sweeps")
        return [], lambda d: net
    spec = ConvSpec.coerce(net)
    return [spec.trunk_layer(i) for i in range(max(depths))], spec.head


def conv_sweep_panel(
    net: Any,
    depths: int | Iterable[int],
    xa: Any,
    xb: Any,
    *,
    prefix_same: bool = False,
    dtype: torch.dtype | str = torch.float64,
    device: Any = "cpu",
    memory: int = DEFAULT_MEMORY,
    n_threads: int | None = None,
    scaled: bool = False,
) -> dict[int, tuple[np.ndarray, ...]]:
    """Kernels between the images ``xa`` and ``xb`` (``(n, C, H, W)``) at several depths of a
    :class:`ConvSpec` (or of one :class:`Layer` network, ``depths=[0]``).

    ``prefix_same=True`` declares ``xa == xb[:na]``: only upper tiles of the leading square
    are computed and mirrored (exactly symmetric).  Tiles hold about ``memory`` bytes.
    Returns ``{depth: (nngp, ntk)}`` float64 arrays ``(na, nb)``; with ``scaled=True``,
    ``{depth: (nngp, ntk, e_nngp, e_ntk)}`` with int exponent arrays (kernel = value * 2**e).
    """
    ds = _depths(depths)
    dtype = _dtype(dtype)
    dev = _resolve_device(device)
    trunk, head = _stages(net, ds)
    xa = as_images(xa, dtype=dtype, device=dev)
    xb = as_images(xb, dtype=dtype, device=dev)
    na, nb = xa.shape[0], xb.shape[0]
    if prefix_same and na > nb:
        raise ValueError("prefix_same needs xa to be a prefix of xb")
    plans = {d: _plan([p for lay in (*trunk[:d], head(d)) for p in lay.flat_parts()])
             for d in ds}
    whole = _plan([p for lay in (*trunk, *(head(d) for d in ds)) for p in lay.flat_parts()])
    layout = "full" if any(p.input_full for p in plans.values()) else "diag"
    side_layout = "full" if any(p.sides_full for p in plans.values()) else "diag"
    trunk_plan = _Plan(10**9 if layout == "full" else 0, side_layout == "full",
                       whole.rescale_nngp)
    hw = xa.shape[2] * xa.shape[3]
    edge = _tile_edge(hw, layout == "full", xa.element_size(), memory)
    out = {d: [np.empty((na, nb)), np.empty((na, nb))] for d in ds}
    if scaled:
        for d in ds:
            out[d] += [np.zeros((na, nb), dtype=np.int64), np.zeros((na, nb), dtype=np.int64)]
    wanted = set(ds)
    with _Threads(n_threads), torch.no_grad(), _pooled():
        for i0, i1, j0, j1 in _tiles(na, nb, edge, prefix_same):
            same = prefix_same and i0 == j0
            state = input_state(xa[i0:i1], None if same else xb[j0:j1], layout=layout,
                                side_layout=side_layout, upper=same)
            for L in range(ds[-1] + 1):
                if L:
                    prev, state = state, _run(trunk[L - 1].flat_parts(), state, trunk_plan)
                    _release_state(prev, state)
                if L in wanted:
                    parts = head(L).flat_parts()
                    res = _finish(_run(parts, state, _plan(parts), whole.rescale_nngp))
                    _store(out[L], res, i0, i1, j0, j1, same,
                           mirror=prefix_same and j0 < na and not same, scaled=scaled)
            _release(*_state_tensors(state))
    return {d: tuple(v) for d, v in out.items()}


def _store(out: list[np.ndarray], res: ConvState, i0: int, i1: int, j0: int, j1: int,
           same: bool, mirror: bool, scaled: bool) -> None:
    pieces = []
    for t, e in ((res.nngp, res.e_nngp), (res.ntk, res.e_ntk)):
        t = t.to(torch.float64)
        if not scaled:
            t = _ldexp(t, e)
        if res.pairs is not None:  # upper triangle of a symmetric tile: mirror it
            full = t.new_empty((i1 - i0, j1 - j0))
            full[res.pairs[0], res.pairs[1]] = t
            full[res.pairs[1], res.pairs[0]] = t
            t = full
        elif same:
            t = _symmetrize_(t)
        pieces.append((t.cpu().numpy(), e))
    for k, (arr, e) in enumerate(pieces):
        out[k][i0:i1, j0:j1] = arr
        if mirror:
            out[k][j0:j1, i0:i1] = arr.T
        if scaled:
            out[2 + k][i0:i1, j0:j1] = e
            if mirror:
                out[2 + k][j0:j1, i0:i1] = e


def _depths(depths: int | Iterable[int]) -> list[int]:
    ds = [int(depths)] if np.ndim(depths) == 0 else [int(d) for d in depths]  # type: ignore[arg-type]
    if not ds or min(ds) < 0:
        raise ValueError(f"depths must be non-negative integers, got {depths!r}")
    return sorted(set(ds))


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    return {"float64": torch.float64, "float32": torch.float32}[str(dtype)]


def conv_sweep(
    net: Any,
    depths: int | Iterable[int],
    x1: Any,
    x2: Any = None,
    **kwargs: Any,
) -> dict[int, tuple[np.ndarray, ...]]:
    """``{depth: (nngp, ntk)}`` of a :class:`ConvSpec` (dict or object) at every requested
    depth, from one recursion.  ``x2=None`` gives the symmetric Gram of ``x1`` (upper tiles,
    exactly symmetric).  Keyword arguments as :func:`conv_sweep_panel`; ``image_shape`` of
    the spec reads flat rows."""
    shape = None
    if not isinstance(net, Layer):
        net = ConvSpec.coerce(net)
        shape = net.image_shape or None
        kwargs.setdefault("dtype", net.dtype)
    dtype = _dtype(kwargs.get("dtype", torch.float64))
    xa = as_images(x1, shape, dtype=dtype)
    if x2 is None or x2 is x1:
        return conv_sweep_panel(net, depths, xa, xa, prefix_same=True, **kwargs)
    return conv_sweep_panel(net, depths, xa, as_images(x2, shape, dtype=dtype), **kwargs)


def kernel_matrices(net: Any, x1: Any, x2: Any = None, depth: int | None = None,
                    **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(nngp, ntk)`` of one network: a :class:`Layer` (``depth`` unused) or a spec at
    ``depth``."""
    if isinstance(net, Layer):
        return conv_sweep(net, [0], x1, x2, **kwargs)[0][:2]
    if depth is None:
        raise ValueError("a ConvSpec needs a depth")
    return conv_sweep(net, [depth], x1, x2, **kwargs)[int(depth)][:2]


def self_kernel(
    net: Any,
    x: Any,
    depth: int | None = None,
    *,
    dtype: torch.dtype | str | None = None,
    device: Any = "cpu",
    memory: int = DEFAULT_MEMORY,
    n_threads: int | None = None,
    block_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(nngp, ntk)`` self kernels ``k(x_i, x_i)``, shape ``(n,)``, by the self recursion
    (blocks of images; ``O(P^2)`` per image with pooling)."""
    shape = None
    if isinstance(net, Layer):
        layers: list[Layer] = [net]
        depth = 0
    else:
        spec = ConvSpec.coerce(net)
        if depth is None:
            raise ValueError("a ConvSpec needs a depth")
        shape = spec.image_shape or None
        dtype = spec.dtype if dtype is None else dtype
        layers = [*(spec.trunk_layer(i) for i in range(int(depth))), spec.head(int(depth))]
    dtype = _dtype(dtype or torch.float64)
    dev = _resolve_device(device)
    xs = as_images(x, shape, dtype=dtype, device=dev)
    flat = [p for lay in layers for p in lay.flat_parts()]
    plan = _plan(flat)
    layout = "full" if plan.input_full else "diag"
    hw = xs.shape[2] * xs.shape[3]
    if block_size is None:
        per = xs.element_size() * (hw * hw if layout == "full" else hw) * 16
        block_size = max(1, int(memory) // per)
    nngp = np.empty(xs.shape[0])
    ntk = np.empty(xs.shape[0])
    with _Threads(n_threads), torch.no_grad(), _pooled():
        for r0 in range(0, xs.shape[0], block_size):
            r1 = min(r0 + block_size, xs.shape[0])
            state = _finish(_run(flat, _self_input(xs[r0:r1], layout), plan))
            nngp[r0:r1] = state.values("nngp").cpu().numpy()
            ntk[r0:r1] = state.values("ntk").cpu().numpy()
    return nngp, ntk


# --------------------------------------------------------------------------------------
# Specs (the workflow's config form)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvSpec:
    """Kernel of the conv net ``[conv -> activation] x depth -> readout -> dense``.

    Conv layer ``i`` (0-based) has filter ``filter_size``, stride ``strides[i]`` (1 beyond
    the list), ``padding``; layer 0 uses ``first_w_var``/``first_b_var`` (default
    ``w_var``/``b_var``), the others and the dense readout ``w_var``/``b_var``.
    ``readout``: ``flatten`` (CNN-F) or ``gap`` (global average pooling, CNN-P).
    ``fix_first``/``fix_last``: the first conv / the readout are not trained (Arora et al.'s
    ``fix``).  At depth 0 the readout is the only layer (``first_*`` variances).
    ``image_shape`` ``(H, W)`` or ``(C, H, W)`` reads flat input rows channel first.
    ``dtype``: ``float64`` or ``float32``; ``device``: ``auto`` (CUDA when present), ``cpu``
    or ``cuda``.
    """

    architecture: str = "conv"
    activation: str = "relu"
    w_var: float = 2.0
    b_var: float = 0.0
    first_w_var: float | None = None
    first_b_var: float | None = None
    image_shape: tuple[int, ...] = ()
    filter_size: int = 3
    padding: str = "circular"
    strides: tuple[int, ...] = ()
    readout: str = "flatten"
    fix_first: bool = False
    fix_last: bool = False
    dtype: str = "float64"
    device: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        problems = _spec_problems(self)
        if problems:
            raise ValueError(problems[0])

    @classmethod
    def coerce(cls, spec: ConvSpec | Mapping[str, Any]) -> ConvSpec:
        if isinstance(spec, ConvSpec):
            return spec
        known = {f.name for f in fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown conv kernel spec key(s) {sorted(unknown)}; "
                             f"known: {sorted(known)}")
        return cls(**dict(spec))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        d["strides"] = list(self.strides)
        return d

    @property
    def input_w_var(self) -> float:
        return self.w_var if self.first_w_var is None else self.first_w_var

    @property
    def input_b_var(self) -> float:
        return self.b_var if self.first_b_var is None else self.first_b_var

    def stride(self, i: int) -> int:
        return self.strides[i] if i < len(self.strides) else 1

    def conv_layer(self, i: int) -> Layer:
        first = i == 0
        return conv(
            self.filter_size,
            self.input_w_var if first else self.w_var,
            self.input_b_var if first else self.b_var,
            stride=self.stride(i),
            padding=self.padding,
            trainable=not (first and self.fix_first),
        )

    def trunk_layer(self, i: int) -> Layer:
        """Conv layer ``i`` and its activation."""
        return serial(self.conv_layer(i), CONV_ACTIVATIONS[self.activation]())

    def head(self, depth: int) -> Layer:
        """Readout and dense output layer of the depth-``depth`` net."""
        pool = flatten() if self.readout == "flatten" else global_avg_pool()
        if depth == 0:
            out = dense(self.input_w_var, self.input_b_var,
                        trainable=not (self.fix_first or self.fix_last))
        else:
            out = dense(self.w_var, self.b_var, trainable=not self.fix_last)
        return serial(pool, out)

    def network(self, depth: int) -> Layer:
        """The whole depth-``depth`` network as one :class:`Layer`."""
        return serial(*(self.trunk_layer(i) for i in range(int(depth))), self.head(int(depth)))


def _spec_problems(spec: ConvSpec) -> list[str]:
    out = []
    if spec.architecture != "conv":
        out.append(f"architecture: must be 'conv', got {spec.architecture!r}")
    allowed = [a for a in names_for("kernel") if a in CONV_ACTIVATIONS]
    if spec.activation not in allowed:
        out.append(f"activation: {spec.activation!r} is not one of {allowed}")
    for name in ("w_var", "b_var", "first_w_var", "first_b_var"):
        value = getattr(spec, name)
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)
                                      and value >= 0):
            out.append(f"{name}: must be a finite non-negative number, got {value!r}")
    if len(spec.image_shape) not in (2, 3) or min(spec.image_shape, default=0) < 1:
        out.append(f"image_shape: must be [H, W] or [C, H, W] of positive sizes, "
                   f"got {list(spec.image_shape)}")
    if not (isinstance(spec.filter_size, int) and spec.filter_size >= 1
            and spec.filter_size % 2 == 1):
        out.append(f"filter_size: must be an odd positive integer, got {spec.filter_size!r}")
    if spec.padding not in PADDINGS:
        out.append(f"padding: must be one of {list(PADDINGS)}, got {spec.padding!r}")
    if any(s < 1 for s in spec.strides):
        out.append(f"strides: must be positive, got {list(spec.strides)}")
    if spec.readout not in READOUTS:
        out.append(f"readout: must be one of {list(READOUTS)}, got {spec.readout!r}")
    if spec.dtype not in ("float64", "float32"):
        out.append(f"dtype: must be float64 or float32, got {spec.dtype!r}")
    if spec.device not in ("auto", "cpu", "cuda") and not str(spec.device).startswith("cuda:"):
        out.append(f"device: must be auto, cpu or cuda[:i], got {spec.device!r}")
    return out


def is_conv_spec(spec: Any) -> bool:
    """Whether a kernel spec (dict or object) describes a conv net."""
    if isinstance(spec, ConvSpec):
        return True
    return isinstance(spec, Mapping) and spec.get("architecture", "fc") == "conv"


def check_kernel_spec(key: str, spec: Mapping[str, Any],
                      datasets: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Config checks a schema cannot express, for the kernel spec at config ``key`` (e.g.
    ``kernels.cntk``).  Raises ``ValueError`` whose message starts with the key (and the
    offending sub-key).  FC specs pass through (their checks live in ``KernelSpec``).
    ``datasets`` (name -> dataset config, those the kernel is used with): the image must
    hold exactly ``d`` inputs."""
    if not is_conv_spec(spec):
        return
    known = {f.name for f in fields(ConvSpec)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"{key}: unknown conv kernel key(s) {unknown}; known: {sorted(known)}")
    try:
        cs = ConvSpec.coerce(spec)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{key}.{err}") from None
    h, w = cs.image_shape[-2:]
    for i, s in enumerate(cs.strides):
        if s > 1 and (h == 1 and w == 1):
            raise ValueError(f"{key}.strides[{i}]: stride {s} on a 1x1 image")
    for name, ds in (datasets or {}).items():
        d = ds.get("d")
        if d is not None and int(d) != int(np.prod(cs.image_shape)):
            raise ValueError(
                f"{key}.image_shape: {list(cs.image_shape)} holds "
                f"{int(np.prod(cs.image_shape))} inputs but dataset {name!r} has d = {d}"
            )
