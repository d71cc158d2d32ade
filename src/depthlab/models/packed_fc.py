"""Packed ensembles of fully connected networks (Mori & Ueda, eqs. 4-6).

`FCEnsemble` holds M independent networks with one architecture,

    z(0) = x,   z(l) = phi(z(l-1) W(l) + b(l))  (l = 1..L),   f(x) = z(L) W(L+1) + b(L+1),

with weights stacked as (M, n_in, n_out) and biases as (M, 1, n_out), so a layer of all M
members is one batched matmul (`torch.baddbmm`). Depth L = 0 is the linear perceptron d -> K.

Member m draws its initial weights from its own `torch.Generator` seeded by ``seeds[m]``
(on the CPU, then moved to the device), so a member's initial state does not depend on which
other members share the pack, nor on the device.

Besides an autograd-capable `forward`, the class has a fused, hand-written SGD step
(`sgd_step_`: forward, backward and in-place update with batched matmuls, no autograd), which
is the hot loop of training. Every operation in it acts on each member separately and is
chosen to give bitwise-identical results for a member whatever the pack around it, given
three rules found by probing MKL's batched sgemm (see `sgd_step_`):

* the pack has at least two rows (a batch of one takes MKL's plain-gemm path, whose kernels
  differ); `depthlab.training` pads a lone member with a duplicate;
* every member's slab of every matmul operand starts on a 16-byte boundary (MKL picks
  kernels by alignment): weights are stored with a per-member stride rounded up to
  `ALIGN_FLOATS` (`aligned_stack`), and batches have a row count making ``rows * width`` a
  multiple of `ALIGN_FLOATS` for every layer width (`padded_rows`; padding rows carry a zero
  step so they change nothing);
* only element-wise ops whose result does not depend on the element's position are used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from depthlab.activations import names_for

ACTIVATIONS = names_for("packed")  # relu, softplus, tanh, linear
INITS = ("glorot_uniform", "glorot_normal", "normal_ntk", "deep_narrow", "torch_default",
         "he_uniform")
# Lee et al.'s deep narrow init (ReLU MLPs, width d + K + 1): its explicit parameters.
DEEP_NARROW_DEFAULTS = {"C_L": 1.0, "rho": 1.0, "beta": 1.0}
LOSSES = ("cross_entropy", "mse")
ALIGN_FLOATS = 4  # 16 bytes: MKL's batched sgemm kernel choice depends on this alignment


def aligned_stack(tensors: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Stack (or copy) matrices into an (M, r, c) tensor whose members each start 16-byte aligned.

    Contiguous when r * c is a multiple of `ALIGN_FLOATS` (the usual case); otherwise a strided
    view with per-member stride rounded up, so the batched matmuls see aligned members.
    """
    t = tensors if isinstance(tensors, torch.Tensor) else torch.stack(list(tensors))
    m, r, c = t.shape
    if (r * c) % ALIGN_FLOATS == 0 or t.device.type != "cpu":
        return t.contiguous()
    stride = -(-(r * c) // ALIGN_FLOATS) * ALIGN_FLOATS
    out = torch.zeros(m * stride, dtype=t.dtype, device=t.device)
    out = out.as_strided((m, r, c), (stride, c, 1))
    out.copy_(t)
    return out


def padded_rows(rows: int, widths: Sequence[int]) -> int:
    """Smallest row count >= rows with rows * w a multiple of `ALIGN_FLOATS` for all widths."""
    padded = rows
    while any((padded * w) % ALIGN_FLOATS for w in widths):
        padded += 1
    return padded


def softplus(z: torch.Tensor) -> torch.Tensor:
    """log(1 + e^z) = max(z, 0) + log1p(e^-|z|).

    Written out because torch's fused softplus gives position-dependent last-ulp results on
    CPU (vector body vs scalar tail), which would break packing invariance.
    """
    return torch.clamp_min(z, 0).add_(torch.log1p(torch.exp(-z.abs())))


def _activate_(z: torch.Tensor, activation: str) -> torch.Tensor:
    """Apply the activation, in place where torch allows it; returns the result."""
    if activation == "relu":
        return z.relu_()
    if activation == "tanh":
        return z.tanh_()
    if activation == "softplus":
        return softplus(z)
    return z  # linear


def _activation_backward_(grad: torch.Tensor, out: torch.Tensor, activation: str) -> torch.Tensor:
    """d(loss)/dz from d(loss)/d(phi(z)) using only the post-activation `out`; reuses `grad`."""
    if activation == "relu":
        # (out > 0) == (z > 0) for ReLU; one fused select kernel, as autograd uses.
        return torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)
    if activation == "tanh":
        return grad.mul_(1 - out * out)
    if activation == "softplus":
        # sigmoid(z) = 1 - exp(-softplus(z))
        return grad.mul_(torch.expm1(-out).neg_())
    return grad  # linear


class FCEnsemble(nn.Module):
    """M independent fully connected nets of one architecture, evaluated together.

    Args:
        d: input dimension.
        depth: number of hidden layers L (0 = linear perceptron).
        width: hidden width H (ignored when depth == 0).
        n_out: number of outputs K.
        seeds: one init seed per member; its length is M.
        activation: "relu" (paper), "softplus", "tanh" or "linear".
        init: "glorot_uniform" (Keras default, used by the paper): W ~ U(+-sqrt(6/(n_in+n_out)));
            "glorot_normal": W ~ N(0, 2/(n_in+n_out)); "normal_ntk": NTK parameterisation,
            W ~ N(0, 1) with the layer output multiplied by 1/sqrt(n_in). Biases start at zero.
            "torch_default": ``nn.Linear``'s default (``kaiming_uniform_(a=sqrt(5))``),
            W, b ~ U(+-1/sqrt(n_in)) -- what Lee et al.'s "Kaiming" baseline code really used.
            "he_uniform": W ~ U(+-sqrt(6/n_in)), b = 0 (He et al.; what their text says).
            "deep_narrow": Lee et al. (2022) sec. 3.1, ReLU only, width = d + n_out + 1
            (carriers 0..d-1 of C_L x, a random neuron d, output carriers d+1.. of C_L):
            layer 1 W = [C_L I | u^1 | 0], b = [0, v^1, C_L 1]; layer l = 2..L
            W = [I | u^l | 0] on the carriers, identity on the output carriers, b = [0, v^l, 0];
            last W = [0; 0; I], b = -C_L 1, so every output is exactly 0 at init.
            u^l ~ N(0, rho^2/d) (d entries), v^l ~ N(0, C_L^2 beta^2); drawn in float64.
        init_params: the deep_narrow parameters ``C_L``, ``rho``, ``beta`` (defaults 1);
            any other init takes none.
        device, dtype: where the parameters live (the original three inits are drawn on the
            CPU in float32, the others in float64, then cast).
    """

    def __init__(
        self,
        d: int,
        depth: int,
        width: int,
        n_out: int,
        seeds: Sequence[int],
        activation: str = "relu",
        init: str = "glorot_uniform",
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        init_params: dict | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if depth < 0 or d < 1 or n_out < 1 or (depth > 0 and width < 1):
            raise ValueError(f"bad architecture d={d} depth={depth} width={width} K={n_out}")
        self.init_params = _check_init_params(init, init_params, d, depth, width, n_out,
                                              activation)
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("need at least one member seed")
        self.d, self.depth, self.width, self.n_out = d, depth, width, n_out
        self.activation, self.init = activation, init
        self.seeds = seeds
        self.widths = [d] + [width] * depth + [n_out]
        # Output multiplier per layer (1 except in the NTK parameterisation).
        self.multipliers = [
            1.0 / math.sqrt(n_in) if init == "normal_ntk" else 1.0 for n_in in self.widths[:-1]
        ]
        per_member = [self._init_member(seed) for seed in seeds]
        self.weights = nn.ParameterList(
            nn.Parameter(aligned_stack([w[i].to(device, dtype) for w, _ in per_member]))
            for i in range(depth + 1)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([b[i] for _, b in per_member]).to(device, dtype))
            for i in range(depth + 1)
        )

    def _init_member(self, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed)
        if self.init == "deep_narrow":
            return _deep_narrow_member(gen, self.d, self.depth, self.n_out, **self.init_params)
        if self.init in ("torch_default", "he_uniform"):
            return _uniform_member(gen, self.widths, self.init)
        weights, biases = [], []
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:], strict=True):
            if self.init == "glorot_uniform":
                limit = math.sqrt(6.0 / (n_in + n_out))
                w = torch.rand(n_in, n_out, generator=gen).mul_(2 * limit).sub_(limit)
            elif self.init == "glorot_normal":
                w = torch.randn(n_in, n_out, generator=gen).mul_(math.sqrt(2.0 / (n_in + n_out)))
            else:  # normal_ntk
                w = torch.randn(n_in, n_out, generator=gen)
            weights.append(w)
            biases.append(torch.zeros(1, n_out))
        return weights, biases

    # ------------------------------------------------------------------ bookkeeping
    @property
    def n_members(self) -> int:
        return self.weights[0].shape[0]

    @property
    def n_params_per_member(self) -> int:
        pairs = zip(self.widths[:-1], self.widths[1:], strict=True)
        return sum(n_in * n_out + n_out for n_in, n_out in pairs)

    def flops_per_sample(self) -> int:
        """Forward multiply-add FLOPs per sample per member, 2 * sum(n_in * n_out)."""
        return 2 * sum(a * b for a, b in zip(self.widths[:-1], self.widths[1:], strict=True))

    def select(self, index: Sequence[int] | torch.Tensor) -> FCEnsemble:
        """A new ensemble holding copies of members `index` (repeats allowed), same device."""
        new = FCEnsemble.__new__(FCEnsemble)
        nn.Module.__init__(new)
        for attr in ("d", "depth", "width", "n_out", "activation", "init", "widths",
                     "init_params"):
            setattr(new, attr, getattr(self, attr))
        new.multipliers = list(self.multipliers)
        idx = torch.as_tensor(index, dtype=torch.long, device=self.weights[0].device)
        new.seeds = [self.seeds[i] for i in idx.tolist()]
        grad = self.weights[0].requires_grad
        new.weights = nn.ParameterList(
            nn.Parameter(aligned_stack(w.detach().index_select(0, idx)), requires_grad=grad)
            for w in self.weights
        )
        new.biases = nn.ParameterList(
            nn.Parameter(b.detach().index_select(0, idx), requires_grad=grad) for b in self.biases
        )
        return new

    @torch.no_grad()
    def assign_(
        self, index: Sequence[int], source: FCEnsemble, source_index: Sequence[int]
    ) -> None:
        """Copy members `source_index` of `source` into this ensemble's members `index`."""
        dst = torch.as_tensor(index, dtype=torch.long, device=self.weights[0].device)
        src = torch.as_tensor(source_index, dtype=torch.long, device=source.weights[0].device)
        for mine, theirs in zip(
            [*self.weights, *self.biases], [*source.weights, *source.biases], strict=True
        ):
            mine.index_copy_(0, dst, theirs.detach().index_select(0, src).to(mine.device))

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (M, B, d), or (B, d) shared by all members -> outputs (M, B, K)."""
        h = self._expand_input(x)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = torch.baddbmm(b, h, w, alpha=self.multipliers[i])
            if i < last:
                z = _activate(z, self.activation)
            h = z
        return h

    def _expand_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x.unsqueeze(0).expand(self.n_members, -1, -1)
        if x.dim() != 3 or x.shape[0] != self.n_members:
            raise ValueError(
                f"expected input (M={self.n_members}, B, d) or (B, d), got {tuple(x.shape)}"
            )
        return x

    # ------------------------------------------------------------------ fused SGD step
    @torch.no_grad()
    def sgd_step_(
        self,
        x: torch.Tensor,
        targets: torch.Tensor,
        labels: torch.Tensor | None,
        step: torch.Tensor,
        loss: str = "cross_entropy",
        n_valid: int | None = None,
    ) -> torch.Tensor:
        """One plain-SGD step for every member, in place; returns the batch loss sums (M,).

        x: (M, B, d) inputs, each member its own batch; targets: (M, B, K) one-hot labels;
        labels: (M, B) int64 class indices (needed for cross-entropy); step: learning rate
        divided by the batch size, (M,) or per row (M, B), so that member m does
        ``p -= lr_m * grad(mean over its batch of the loss)``. Rows with a zero step (and rows
        from `n_valid` on, which the returned loss leaves out) are padding: they change nothing.

        Loss per sample: cross-entropy ``-log softmax(f)_y`` (eq. 8) or, for "mse", the mean
        over the K outputs of ``(f_k - onehot_k)^2`` (Keras convention).

        Implementation: forward keeping post-activations; the output gradient is scaled by
        ``lr_m / B`` up front (backprop is linear in it), so each weight update is one fused
        in-place ``W.baddbmm_(h^T, delta, alpha=-1)`` made after ``delta W^T`` has been taken
        from the old weights. Only ops whose per-element result does not depend on the
        element's position in the tensor are used (batched gemm, exact arithmetic, row-wise
        softmax, inner reductions), which makes the pack layout invisible in the numbers.
        """
        hs = [self._expand_input(x)]
        z_bufs, grad_bufs = self._workspace(hs[0])
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = torch.baddbmm(b, hs[-1], w, alpha=self.multipliers[i], out=z_bufs[i])
            hs.append(_activate_(z, self.activation) if i < last else z)
        out = hs.pop()
        if loss == "cross_entropy":
            if labels is None:
                raise ValueError("cross_entropy needs integer labels")
            logp = torch.log_softmax(out, dim=-1)
            per_sample = logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1).neg_()
            delta = torch.softmax(out, dim=-1).sub_(targets)
        elif loss == "mse":
            delta = out.sub_(targets)  # `out` is not needed any more
            per_sample = (delta * delta).mean(-1)
            delta.mul_(2.0 / self.n_out)
        else:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        delta.mul_(step.unsqueeze(-1) if step.dim() == 2 else step.view(-1, 1, 1))
        for i in range(last, -1, -1):
            w, b, h = self.weights[i], self.biases[i], hs[i]
            mult = self.multipliers[i]
            grad_h = None
            if i > 0:
                grad_h = torch.bmm(delta, w.transpose(1, 2), out=grad_bufs[i])
                if mult != 1.0:
                    grad_h.mul_(mult)
            w.baddbmm_(h.transpose(1, 2), delta, alpha=-mult)
            b.sub_(delta.sum(1, keepdim=True))
            if grad_h is not None:
                delta = _activation_backward_(grad_h, h, self.activation)
        if n_valid is not None and n_valid < per_sample.shape[1]:
            per_sample = per_sample[:, :n_valid]
        return per_sample.sum(1)

    def _workspace(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """Reused (M, rows, width) buffers for layer outputs and input gradients of a step.

        Saves an allocation per matmul in the hot loop (~4% on CPU). Keyed by the batch shape;
        fresh buffers are 64-byte aligned and contiguous, as the alignment rules require.
        """
        key = (x.shape[0], x.shape[1], x.device, x.dtype)
        cache = self.__dict__.setdefault("_step_workspace", {})
        if key not in cache:
            m, rows = x.shape[0], x.shape[1]
            z = [x.new_empty(m, rows, n) for n in self.widths[1:]]
            grad = [None] + [x.new_empty(m, rows, n) for n in self.widths[1:-1]]  # none for x
            cache[key] = (z, grad)
        return cache[key]


def _check_init_params(init: str, params: dict | None, d: int, depth: int, width: int,
                       n_out: int, activation: str) -> dict:
    """The init's explicit parameters with defaults, validated (deep_narrow only has any)."""
    params = dict(params or {})
    if init != "deep_narrow":
        if params:
            raise ValueError(f"init {init!r} takes no init_params, got {sorted(params)}")
        return {}
    unknown = sorted(set(params) - set(DEEP_NARROW_DEFAULTS))
    if unknown:
        raise ValueError(f"deep_narrow init_params are {sorted(DEEP_NARROW_DEFAULTS)}, "
                         f"got unknown {unknown}")
    params = {**DEEP_NARROW_DEFAULTS, **{k: float(v) for k, v in params.items()}}
    if min(params.values()) <= 0:
        raise ValueError(f"deep_narrow needs C_L, rho, beta > 0, got {params}")
    if depth < 1 or width != d + n_out + 1:
        raise ValueError(f"deep_narrow needs depth >= 1 and width = d + n_out + 1 = "
                         f"{d + n_out + 1}; got depth {depth}, width {width}")
    if activation != "relu":
        raise ValueError(f"deep_narrow is a ReLU init, got activation {activation!r}")
    return params


def deep_narrow_width(d: int, n_out: int) -> int:
    """The fixed width of Lee et al.'s deep narrow MLP: d carriers, 1 random neuron, K outputs."""
    return d + n_out + 1


def _deep_narrow_member(gen: torch.Generator, d: int, depth: int, n_out: int, *, C_L: float,
                        rho: float, beta: float):
    """One member's weights (depthlab layout W: (n_in, n_out) = paper W^T), float64.

    Draw order per hidden layer l = 1..L: u^l (d normals), then v^l (one normal).
    """
    n = d + n_out + 1
    r = d  # the random neuron
    out = slice(d + 1, n)  # output carriers
    f64 = torch.float64
    weights, biases = [], []
    for layer in range(depth):
        u = torch.randn(d, generator=gen, dtype=f64) * (rho / math.sqrt(d))
        v = torch.randn(1, generator=gen, dtype=f64) * (C_L * beta)
        if layer == 0:
            w = torch.zeros(d, n, dtype=f64)
            w[:, :d] = C_L * torch.eye(d, dtype=f64)
            w[:, r] = u
            b = torch.zeros(1, n, dtype=f64)
            b[0, r] = v[0]
            b[0, out] = C_L
        else:
            w = torch.zeros(n, n, dtype=f64)
            w[:d, :d] = torch.eye(d, dtype=f64)
            w[:d, r] = u
            w[out, out] = torch.eye(n_out, dtype=f64)
            b = torch.zeros(1, n, dtype=f64)
            b[0, r] = v[0]
        weights.append(w)
        biases.append(b)
    w = torch.zeros(n, n_out, dtype=f64)
    w[out, :] = torch.eye(n_out, dtype=f64)
    weights.append(w)
    biases.append(torch.full((1, n_out), -C_L, dtype=f64))
    return weights, biases


def _uniform_member(gen: torch.Generator, widths: Sequence[int], init: str):
    """torch_default (nn.Linear: W, b ~ U(+-1/sqrt(n_in))) or he_uniform (W ~ U(+-sqrt(6/n_in)),
    b = 0), float64; draw order per layer: W then b."""
    weights, biases = [], []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        limit = 1.0 / math.sqrt(n_in) if init == "torch_default" else math.sqrt(6.0 / n_in)
        w = torch.rand(n_in, n_out, generator=gen, dtype=torch.float64).mul_(2 * limit)
        weights.append(w.sub_(limit))
        if init == "torch_default":
            b = torch.rand(1, n_out, generator=gen, dtype=torch.float64).mul_(2 * limit)
            biases.append(b.sub_(limit))
        else:
            biases.append(torch.zeros(1, n_out, dtype=torch.float64))
    return weights, biases


def _activate(z: torch.Tensor, activation: str) -> torch.Tensor:
    """Out-of-place activation (autograd-safe), numerically identical to `_activate_`."""
    if activation == "relu":
        return torch.relu(z)
    if activation == "tanh":
        return torch.tanh(z)
    if activation == "softplus":
        return torch.clamp_min(z, 0) + torch.log1p(torch.exp(-z.abs()))
    return z
