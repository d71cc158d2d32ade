"""The fully connected net of every study, built from one spec (autograd path).

``fc_net`` stacks ``depth`` hidden :class:`~depthlab.models.layers.NTKLinear` layers with an
activation module between them and an ``NTKLinear`` readout: ``d -> width x depth -> n_out``.
The studies differ only in the spec:

* Mori & Ueda supp. A: ReLU, first-layer ``w_var = 1``, later ``w_var = 2``, bias scale
  ``beta`` (0.1), biases standard normal;
* Geiger et al. App. B: ``a * phi`` with the unit-variance gain (Softplus beta = 5 or ReLU),
  ``w_var = 1``, bias scale 1, biases initialised at 0.

(each study package holds its own spec).

Weights and biases are drawn from one CPU generator seeded by ``seed``, layer by layer
(weight, then bias), so the initial net depends only on the spec; zeroed biases are drawn
first and then cleared, which keeps the draw order and hence the weights the same either way.
The packed trainer (:class:`~depthlab.models.FCEnsemble`) is the fast path for the same
family of nets when many members train together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from depthlab.models.layers import GainActivation, NTKLinear

__all__ = ["FCSpec", "fc_net"]


@dataclass(frozen=True)
class FCSpec:
    """What an FC net is, apart from its sizes and seed."""

    activation: str = "relu"
    gain: bool = False  # multiply by the unit-variance gain (GainActivation) or plain ReLU
    beta: float = 5.0  # softplus sharpness (gain nets)
    w_var: float = 1.0
    first_w_var: float = 1.0
    b_std: float = 1.0
    zero_bias: bool = False



def _activation_module(spec: FCSpec) -> nn.Module:
    if spec.gain:
        return GainActivation(spec.activation, spec.beta)
    if spec.activation != "relu":
        raise ValueError(f"plain FC nets use relu; got {spec.activation!r} (set gain=True)")
    return nn.ReLU()


def fc_net(d: int, width: int, depth: int, spec: FCSpec, *, seed: int = 0, n_out: int = 1,
           dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """``d -> width x depth -> n_out`` (``depth = 0``: the linear model); output ``(n, n_out)``."""
    if d < 1 or depth < 0 or n_out < 1 or (depth > 0 and width < 1):
        raise ValueError(f"bad architecture d={d} width={width} depth={depth} n_out={n_out}")
    gen = torch.Generator().manual_seed(int(seed))
    layers: list[nn.Module] = []
    n_in, wv = d, spec.first_w_var
    for _ in range(int(depth)):
        layers += [NTKLinear(n_in, width, wv, spec.b_std, gen, dtype), _activation_module(spec)]
        n_in, wv = width, spec.w_var
    layers.append(NTKLinear(n_in, n_out, wv, spec.b_std, gen, dtype))
    if spec.zero_bias:
        with torch.no_grad():
            for m in layers:
                if isinstance(m, NTKLinear):
                    m.bias.zero_()
    return nn.Sequential(*layers)
