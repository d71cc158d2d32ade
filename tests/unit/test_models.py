"""Shared models: the one FC builder reproduces both studies' former builders bit for bit."""

import math

import pytest
import torch
from torch import nn

from depthlab.models import FCSpec, GainActivation, NTKLinear, fc_net
from depthlab.studies.geiger.runs import geiger_fc


def _old_mori_ueda_net(d, width, depth, beta, seed, n_out=1, dtype=torch.float64):
    """The Mori-Ueda builder as it was before the shared models (kernels/empirical.py)."""
    gen = torch.Generator().manual_seed(int(seed))
    layers, n_in, wv = [], d, 1.0
    for _ in range(depth):
        layers += [NTKLinear(n_in, width, wv, beta, gen, dtype), nn.ReLU()]
        n_in, wv = width, 2.0
    layers.append(NTKLinear(n_in, n_out, wv, beta, gen, dtype))
    return nn.Sequential(*layers)


def _old_geiger_fc(d, width, depth, activation, beta, seed, dtype=torch.float64):
    """The Geiger builder as it was before the shared models (geiger.py)."""
    gen = torch.Generator().manual_seed(int(seed))
    layers, n_in = [], d
    for _ in range(depth):
        layers += [NTKLinear(n_in, width, 1.0, 1.0, gen, dtype), GainActivation(activation, beta)]
        n_in = width
    layers.append(NTKLinear(n_in, 1, 1.0, 1.0, gen, dtype))
    with torch.no_grad():
        for m in layers:
            if isinstance(m, NTKLinear):
                m.bias.zero_()
    return nn.Sequential(*layers)


def _same(a: nn.Module, b: nn.Module, x: torch.Tensor) -> None:
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), k
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_fc_net_is_the_mori_ueda_net(depth):
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    spec = FCSpec(activation="relu", w_var=2.0, first_w_var=1.0, b_std=0.1)
    _same(fc_net(5, 16, depth, spec, seed=3, n_out=2),
          _old_mori_ueda_net(5, 16, depth, 0.1, 3, 2), x)


@pytest.mark.parametrize("activation", ["softplus", "relu"])
def test_fc_net_is_the_geiger_net(activation):
    x = torch.randn(7, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    _same(geiger_fc(10, 32, 3, activation=activation, seed=4),
          _old_geiger_fc(10, 32, 3, activation, 5.0, 4), x)


def test_fc_net_ntk_parameterisation():
    net = fc_net(4, 8, 2, FCSpec(w_var=2.0, first_w_var=1.0, b_std=0.5), seed=0)
    first, hidden = net[0], net[2]
    assert math.isclose(first.w_scale, math.sqrt(1.0 / 4)) and first.b_std == 0.5
    assert math.isclose(hidden.w_scale, math.sqrt(2.0 / 8))


def test_fc_net_rejects_bad_specs():
    with pytest.raises(ValueError, match="bad architecture"):
        fc_net(0, 8, 1, FCSpec())
    with pytest.raises(ValueError, match="gain=True"):
        fc_net(3, 8, 1, FCSpec(activation="tanh"))
    with pytest.raises(ValueError, match="activation"):
        GainActivation("tanh")
