"""The plain nn.Module trainer: convergence, honest divergence, bitwise resume, selections."""

import pytest
import torch
from torch import nn

from depthlab.training.module import ModuleTrainConfig, train_module
from depthlab.training.packed_sgd import TrainingInterrupted


def _blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 5, generator=g) * 0.5 + (2.0 * y[:, None] - 1.0)
    return x, y


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))


@pytest.fixture(scope="module")
def data():
    return (*_blobs(64, 0), *_blobs(64, 1))


def test_separable_problem_converges_with_all_selections(data, one_thread):
    cfg = ModuleTrainConfig(lr=0.1, momentum=0.9, batch_size=16, max_epochs=50, seed=3)
    out = train_module(_net(), *data, cfg)
    assert out["status"] == "converged" and out["train_acc"] == 1.0
    assert out["epochs"] == len(out["history"]["test_acc"]) < 50
    # the three selection rules read the same history
    h = out["history"]
    assert out["test_acc_final"] == h["test_acc"][-1]
    assert out["test_acc_at_best_train"] == h["test_acc"][out["epoch_best_train"] - 1]
    assert h["train_acc"][out["epoch_best_train_lowest_loss"] - 1] == max(h["train_acc"])


def test_fixed_schedule_runs_every_epoch_and_reports_interpolation(data, one_thread):
    """stop_at_interpolation=False trains the whole schedule; the first epochs match the
    stopping run bitwise and the status still says whether the net interpolates."""
    kw = dict(lr=0.1, momentum=0.9, batch_size=16, max_epochs=50, seed=3)
    stopping = train_module(_net(), *data, ModuleTrainConfig(**kw))
    fixed = train_module(_net(), *data, ModuleTrainConfig(**kw, stop_at_interpolation=False))
    n = stopping["epochs"]
    assert fixed["epochs"] == 50 and fixed["status"] == "converged"
    assert fixed["history"]["train_loss"][:n] == stopping["history"]["train_loss"]
    assert fixed["train_loss"] < stopping["train_loss"]


def test_divergence_is_recorded_not_raised(data, one_thread):
    cfg = ModuleTrainConfig(lr=1e5, loss="mse", batch_size=16, max_epochs=20)
    out = train_module(_net(), *data, cfg)
    assert out["status"] == "diverged" and out["epochs"] < 20


def test_killed_run_resumes_bitwise(tmp_path, data, one_thread):
    x, _, xt, yt = data
    noisy = torch.randint(0, 2, (len(x),), generator=torch.Generator().manual_seed(5))
    data = (x, noisy, xt, yt)  # random labels: no early convergence before the kill
    cfg = ModuleTrainConfig(lr=0.01, optimizer="adam", batch_size=16, max_epochs=6,
                            lr_decay_epochs=(3,), seed=1)
    ref = train_module(_net(7), *data, cfg)
    assert ref["status"] == "max_epochs"
    ckpt = tmp_path / "run.pt"
    net = _net(7)
    with pytest.raises(TrainingInterrupted):
        train_module(net, *data, cfg, checkpoint_path=ckpt, checkpoint_every=1,
                     _stop_after_epoch=4)
    resumed = train_module(_net(99), *data, cfg, checkpoint_path=ckpt, checkpoint_every=1)
    assert resumed["history"] == ref["history"]
    assert not ckpt.exists()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="optimizer"):
        ModuleTrainConfig(lr=0.1, optimizer="lbfgs")
