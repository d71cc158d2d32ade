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


# --------------------------------------------------------------------------------------
# Lee et al.'s deep narrow CNN (depthlab.models.deep_narrow_cnn)
# --------------------------------------------------------------------------------------


def _convs(net):
    return [m for m in net if isinstance(m, nn.Conv2d)]


def test_deep_narrow_cnn_filters_follow_fig_3_2():
    from depthlab.models import narrow_cnn

    c_l, rho, beta, k, depth = 3.0, 0.5, 2.0, 2, 5
    net = narrow_cnn((2, 6, 6), k, depth, init="deep_narrow", seed=4,
                     init_params={"C_L": c_l, "rho": rho, "beta": beta})
    convs = _convs(net)
    assert len(convs) == depth + 1 and net.channels == 2 + k + 1
    iota = torch.zeros(3, 3, dtype=torch.float64)
    iota[1, 1] = 1.0
    w1, b1 = convs[0].weight.detach(), convs[0].bias.detach()
    assert w1.shape == (5, 2, 3, 3)
    for i in range(2):  # carriers: C_L iota on their own input channel, bias 0
        assert torch.equal(w1[i, i], c_l * iota) and not w1[i, 1 - i].any() and b1[i] == 0
    assert w1[2].abs().min() > 0 and b1[2] != 0  # the random channel: u^1, v^1
    assert not w1[3:].any() and torch.equal(b1[3:], torch.full((2,), c_l, dtype=torch.float64))
    us, vs = [w1[2]], [b1[2]]
    for conv in convs[1:-1]:
        w, b = conv.weight.detach(), conv.bias.detach()
        assert w.shape == (5, 5, 3, 3)
        for i in (0, 1, 3, 4):  # carriers and output carriers: iota on themselves
            expect = torch.zeros(5, 3, 3, dtype=torch.float64)
            expect[i] = iota
            assert torch.equal(w[i], expect) and b[i] == 0
        assert not w[2, 2:].any()  # the random channel reads the carriers only
        us.append(w[2, :2])
        vs.append(b[2])
    wl, bl = convs[-1].weight.detach(), convs[-1].bias.detach()
    expect = torch.zeros(2, 5, 3, 3, dtype=torch.float64)
    expect[0, 3], expect[1, 4] = iota, iota
    assert torch.equal(wl, expect) and torch.equal(bl, torch.full((2,), -c_l,
                                                                  dtype=torch.float64))
    # u ~ N(0, rho^2 / c) per tap, v ~ N(0, C_L^2 beta^2): a larger sample for the moments
    big = narrow_cnn((2, 6, 6), k, 400, init="deep_narrow", seed=5,
                     init_params={"C_L": c_l, "rho": rho, "beta": beta})
    u = torch.cat([c.weight.detach()[2, :2].flatten() for c in _convs(big)[1:-1]])
    v = torch.stack([c.bias.detach()[2] for c in _convs(big)[:-1]])
    assert float(u.std()) == pytest.approx(rho / math.sqrt(2), rel=0.05)
    assert float(v.std()) == pytest.approx(c_l * beta, rel=0.1)
    assert abs(float(u.mean())) < 0.02


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pool", [1, 2])
def test_deep_narrow_cnn_output_exactly_zero_at_init(dtype, pool):
    from depthlab.models import narrow_cnn

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(7, 64, generator=gen, dtype=torch.float64).to(dtype)  # flat 8x8 rows
    for c_l in (1.0, 7.5, 50.0):
        net = narrow_cnn((8, 8), 10, 30, init="deep_narrow", init_params={"C_L": c_l},
                         pool=pool, seed=1, dtype=dtype)
        out = net(x)
        assert out.shape == (7, 10) and out.dtype == dtype
        assert torch.equal(out, torch.zeros_like(out))
    # ... but not after a step: the gradient reaches every layer's output carrier
    out = net(x)
    out.sum().backward()
    assert all(c.bias.grad is not None and c.bias.grad.abs().sum() > 0 for c in _convs(net))


def test_cnn_baselines_and_validation():
    from depthlab.models import CNN_INITS, narrow_cnn

    assert CNN_INITS == ("deep_narrow", "torch_default", "he_uniform")
    td = narrow_cnn((8, 8), 10, 40, init="torch_default", seed=0)
    he = narrow_cnn((8, 8), 10, 40, init="he_uniform", seed=0)
    for net, bound, bias in ((td, lambda f: 1 / math.sqrt(f), True),
                             (he, lambda f: math.sqrt(6 / f), False)):
        for conv in _convs(net):
            fan_in = conv.weight.shape[1] * 9
            w = conv.weight.detach()
            assert w.abs().max() <= bound(fan_in) and w.abs().max() > 0.8 * bound(fan_in)
            assert bool(conv.bias.detach().abs().max() > 0) == bias
            assert conv.bias.detach().abs().max() <= bound(fan_in)
    assert torch.equal(_convs(narrow_cnn((8, 8), 10, 3, init="he_uniform", seed=0))[1].weight,
                       _convs(he)[1].weight)  # layer-by-layer draws: a prefix of a deeper net
    # the collapse the paper reports: at depth 200 the default init's output ignores x
    deep = narrow_cnn((8, 8), 10, 200, init="torch_default", seed=0, dtype=torch.float32)
    x = torch.rand(16, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert float(deep(x).std(0).max()) < 1e-6
    with pytest.raises(ValueError, match="channels"):
        narrow_cnn((8, 8), 10, 3, init="deep_narrow", channels=20)
    with pytest.raises(ValueError, match="C_L, rho, beta > 0"):
        narrow_cnn((8, 8), 10, 3, init_params={"C_L": 0.0})
    with pytest.raises(ValueError, match="unknown"):
        narrow_cnn((8, 8), 10, 3, init_params={"gamma": 1.0})
    with pytest.raises(ValueError, match="no init_params"):
        narrow_cnn((8, 8), 10, 3, init="he_uniform", init_params={"C_L": 1.0})
    with pytest.raises(ValueError, match="pool"):
        narrow_cnn((8, 8), 10, 3, pool=3)
    with pytest.raises(ValueError, match="init must be"):
        narrow_cnn((8, 8), 10, 3, init="glorot_uniform")
