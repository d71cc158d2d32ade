"""Lee et al.'s deep narrow CNN (sec. 4, Fig. 3.2) against independent truth: the exact
finite-depth NTK at init of the notes (sec. 2.4, built from the sampled filters, no forward
pass) equals the autograd NTK; the CNN job of the study (module trainer, the paper's MSE
convention, scalar target) and its checkpoint resume."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthlab.models import narrow_cnn
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
