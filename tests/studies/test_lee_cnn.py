"""Lee et al.'s deep narrow CNN (sec. 4, Fig. 3.2) against independent truth: the exact
finite-depth NTK at init of the notes (sec. 2.4, built from the sampled filters, no forward
pass) equals the autograd NTK; the CNN job of the study (module trainer, the paper's MSE
convention, scalar target) and its checkpoint resume; the net's filters, zero output at init
and baseline inits."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthlab.studies.lee.cnn import CNN_INITS, narrow_cnn
from depthlab.training.module import ModuleTrainConfig, train_module
from depthlab.training.packed_sgd import TrainingInterrupted


def _convs(net):
    return [m for m in net if isinstance(m, torch.nn.Conv2d)]


def _window_sums(a: torch.Tensor) -> torch.Tensor:
    """(n, C, d, d) -> (n, C, 3, 3): for each tap (s, u), the sum of a over the in-bound
    source window psi_su (zero padding 1)."""
    n, c, d, _ = a.shape
    pad = F.pad(a, (1, 1, 1, 1))
    return torch.stack([torch.stack([pad[:, :, s:s + d, u:u + d].sum((2, 3)) for u in range(3)],
                                    -1) for s in range(3)], -2)


def _notes_ntk(net, x: torch.Tensor, c_l: float, k: int) -> torch.Tensor:
    """Theta_0 of one output block from the notes' sec. 2.4 formula (c = 1 channel):
    [d^-4 sum_su S_psi x S_psi x' + 1] + sum_{l=1}^{D} (d^-4 sum_su [C_L^2 S_psi x S_psi x'
    + S_psi relu(r_l) S_psi relu(r_l)' + k C_L^2 p_d(s, u)] + 1), r_1 = u^1 * x + v^1,
    r_l = u^l * (C_L x) + v^l, p_d(s, u) = (d - |s - 2|)^2 (d - |u - 2|)^2 (1-based taps)."""
    d = x.shape[-1]
    convs = _convs(net)
    depth = len(convs) - 1
    sx = _window_sums(x)[:, 0].flatten(1)  # (n, 9)
    taps = torch.arange(3, dtype=x.dtype)
    side = d - (taps - 1).abs()
    p_d = (side[:, None] ** 2 * side[None, :] ** 2).flatten()
    theta = (sx @ sx.T) / d**4 + 1.0
    for layer in range(depth):
        w, b = convs[layer].weight.detach(), convs[layer].bias.detach()
        u, v = w[1:2, :1], b[1:2]  # the random channel reads the carrier (channel 0)
        src = x if layer == 0 else c_l * x
        r = F.conv2d(src, u, v, padding=1)
        sr = _window_sums(torch.relu(r))[:, 0].flatten(1)
        theta = theta + (c_l**2 * (sx @ sx.T) + sr @ sr.T + k * c_l**2 * p_d.sum()) / d**4 + 1.0
    return theta


def _autograd_ntk(net, x: torch.Tensor, k: int) -> torch.Tensor:
    params = [p for p in net.parameters()]
    jac = []
    for j in range(k):
        rows = []
        for i in range(len(x)):
            g = torch.autograd.grad(net(x[i:i + 1])[0, j], params)
            rows.append(torch.cat([t.flatten() for t in g]))
        jac.append(torch.stack(rows))
    return torch.stack([torch.stack([a @ b.T for b in jac]) for a in jac])  # (k, k, n, n)


@pytest.mark.parametrize(("d", "k", "depth", "c_l"), [(4, 1, 5, 7.5), (5, 2, 8, 1.0)])
def test_cnn_init_ntk_equals_the_notes_formula(one_thread, d, k, depth, c_l):
    net = narrow_cnn((d, d), k, depth, init="deep_narrow", seed=3,
                     init_params={"C_L": c_l, "rho": 0.7, "beta": 1.3})
    x = torch.rand(6, 1, d, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(net(x), torch.zeros(6, k, dtype=torch.float64))
    emp = _autograd_ntk(net, x, k)
    formula = _notes_ntk(net, x, c_l, k)
    for j in range(k):
        np.testing.assert_allclose(emp[j, j].numpy(), formula.numpy(), rtol=1e-12)
        for jj in range(k):
            if jj != j:
                assert torch.all(emp[j, jj] == 0)  # off-diagonal output blocks exactly 0


def _digits(n_train=120, n_test=60, classes=None):
    from depthlab.studies.lee.data import load_lee_data

    spec = {"source": "digits", "n_train": n_train, "n_test": n_test, "seed": 0,
            "classes": classes}
    return load_lee_data(spec)


def test_cnn_checkpoint_resume_is_bitwise(one_thread, tmp_path):
    data = _digits()
    cfg = ModuleTrainConfig(lr=1e-3, batch_size=32, max_epochs=4, loss="mse", seed=5)

    def fresh():
        return narrow_cnn((8, 8), 10, 12, init="deep_narrow", pool=2, seed=2,
                          init_params={"C_L": 2.0})

    args = (data["x_train"], data["y_train"], data["x_test"], data["y_test"], cfg)
    straight = fresh()
    ref = train_module(straight, *args)
    ckpt = tmp_path / "cnn.pt"
    with pytest.raises(TrainingInterrupted):
        train_module(fresh(), *args, checkpoint_path=ckpt, checkpoint_every=1,
                     _stop_after_epoch=2)
    resumed = fresh()
    res = train_module(resumed, *args, checkpoint_path=ckpt, checkpoint_every=1)
    assert res["history"] == ref["history"]
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not ckpt.exists()


def test_cnn_job_paper_conventions(one_thread):
    """train_cnn_job runs the module trainer at lr / K, so one step equals torch SGD on the
    paper's F.mse_loss (mean over batch and outputs); scalar targets train one output."""
    from depthlab.studies.lee.runs import train_cnn_job

    data = _digits(64, 32)
    study = {"data": {"source": "digits", "classes": None},
             "deep_narrow": {"rho": 1.0, "beta": 1.0},
             "training": {"batch_size": 64, "dtype": "float64", "device": "cpu",
                          "checkpoint_every": 0, "divergence_loss": 1e6},
             "grids": [{"arch": "cnn", "pool": 2, "init": ["deep_narrow"], "depth": [4],
                        "C_L": 2.0, "lr": [0.05], "seeds": [0], "epochs": 1}]}
    member = {"grid": 0, "init": "deep_narrow", "depth": 4, "lr_label": "0.05",
              "lr_spec": 0.05, "seed": 0}
    data = {**data, "n_classes": 10}
    res = train_cnn_job(data, study, [member])
    # the same step by hand: one full batch (64 rows), torch SGD on F.mse_loss
    net = narrow_cnn((8, 8), 10, 4, init="deep_narrow", pool=2, seed=0,
                     init_params={"C_L": 2.0})
    x = torch.as_tensor(data["x_train"])
    y = F.one_hot(torch.as_tensor(data["y_train"]), 10).double()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    F.mse_loss(net(x), y).backward()
    opt.step()
    with torch.no_grad():
        loss = float(F.mse_loss(net(x), y))
    assert res["final_loss"][0] == pytest.approx(loss, rel=1e-9)
    assert res["tau"][0] == pytest.approx(2 * 0.05 * 4 * 2.0**2 / 10, rel=1e-12)
    assert res["_attrs"]["arch"] == "cnn" and res["_attrs"]["width"] == 12
    # Table 4.1's binary task: one output, targets 0 / 1, accuracy = round(f)
    binary = _digits(60, 30, classes=[0, 1])
    study["data"] = {"source": "digits", "classes": [0, 1], "scalar_target": True}
    small = {**member, "lr_label": "0.005", "lr_spec": 0.005}  # tau x lambda_max ~ 0.7
    res = train_cnn_job({**binary, "n_classes": 2}, study, [small])
    assert res["_attrs"]["width"] == 3
    assert set(np.unique(res["test_pred"])) <= {0, 1}
    assert 0.0 < res["final_loss"][0] < 0.5  # the paper's (f - y)^2, from 0.5 at f = 0
    assert res["tau"][0] == pytest.approx(2 * 0.005 * 4 * 2.0**2, rel=1e-12)  # K = 1


# --------------------------------------------------------------------------------------
# The net itself: Fig. 3.2's filters, its zero output at init, the baseline inits
# --------------------------------------------------------------------------------------


def test_deep_narrow_cnn_filters_follow_fig_3_2():
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
