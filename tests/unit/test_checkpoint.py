"""The one checkpoint mechanism (depthlab.training.checkpoint): a planted checkpoint runs no
code in any trainer, and a checkpoint of other data is never resumed.

The malicious file is a real pickle whose ``__reduce__`` would create a marker file when
unpickled (what ``torch.load(..., weights_only=False)`` did before): every trainer must leave
the marker absent, say in its log that it refused the file, and train exactly as from
scratch.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import plant_checkpoint as plant
from torch import nn

from depthlab.studies.xiao import data as xdata
from depthlab.studies.xiao import train as xtrain
from depthlab.training.checkpoint import (
    array_digest,
    checkpoint_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from depthlab.training.module import ModuleTrainConfig, train_module
from depthlab.training.packed_sgd import Member, TrainConfig, TrainingInterrupted, train_members

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_payload_really_runs_code_when_unpickled(tmp_path):
    """The test's own premise: the planted file does execute code under a plain unpickler
    (and under the old weights_only=False loader)."""
    marker = tmp_path / "pwned"
    plant(tmp_path / "c.pt", marker)
    with open(tmp_path / "c.pt", "rb") as fh:
        pickle.load(fh)
    assert marker.exists()
    marker.unlink()
    torch.load(str(tmp_path / "c.pt") + ".zip", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_loader_refuses_a_planted_file_without_running_it(tmp_path, suffix):
    marker = tmp_path / "pwned"
    plant(tmp_path / "c.pt", marker)
    lines: list[str] = []
    assert load_checkpoint(str(tmp_path / "c.pt") + suffix, "x", lines.append) is None
    assert not marker.exists()
    assert any("refused" in line for line in lines)


def test_roundtrip_and_fingerprint_cover_settings_and_data(tmp_path):
    x = np.arange(6.0).reshape(3, 2)
    fp = checkpoint_fingerprint({"lr": 0.1}, x)
    assert fp != checkpoint_fingerprint({"lr": 0.2}, x)
    assert fp != checkpoint_fingerprint({"lr": 0.1}, x + 1)            # other data
    assert fp != checkpoint_fingerprint({"lr": 0.1}, x.astype(np.float32))  # other dtype
    assert array_digest(torch.as_tensor(x)) == array_digest(x)
    path = tmp_path / "ok.pt"
    from collections import Counter
    save_checkpoint(path, {"t": torch.ones(2), "sched": {"milestones": Counter({3: 1})},
                           "hist": [1.0, None], "pair": (1, "a")}, fp)
    back = load_checkpoint(path, fp)
    assert torch.equal(back["t"], torch.ones(2)) and back["sched"]["milestones"] == {3: 1}
    assert back["hist"] == [1.0, None] and back["pair"] == (1, "a")
    assert load_checkpoint(path, "another") is None


# --------------------------------------------------------------------------- every trainer

def _blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 5, generator=g) * 0.5 + (2.0 * y[:, None] - 1.0)
    return x, y


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))


def test_module_trainer_ignores_a_planted_checkpoint(tmp_path):
    data = (*_blobs(64, 0), *_blobs(64, 1))
    cfg = ModuleTrainConfig(lr=0.05, momentum=0.9, batch_size=16, max_epochs=4,
                            lr_decay_epochs=(2,), seed=3, stop_at_interpolation=False)
    fresh = train_module(_net(), *data, cfg)
    ckpt, marker = tmp_path / "module.pt", tmp_path / "pwned"
    plant(ckpt, marker)
    lines: list[str] = []
    out = train_module(_net(), *data, cfg, checkpoint_path=ckpt, checkpoint_every=1,
                       log=lines.append)
    assert not marker.exists()
    assert any("refused" in line for line in lines)
    assert out["history"] == fresh["history"]
    assert not ckpt.exists()


def test_module_trainer_never_resumes_a_checkpoint_of_other_data(tmp_path):
    """The config's classes changed between two attempts: same settings, other labels. The
    old fingerprint (settings and N only) resumed it; now it starts over."""
    x, y, xt, yt = (*_blobs(64, 0), *_blobs(64, 1))
    cfg = ModuleTrainConfig(lr=0.05, batch_size=16, max_epochs=4, seed=3,
                            stop_at_interpolation=False)
    ckpt = tmp_path / "module.pt"
    with pytest.raises(TrainingInterrupted):
        train_module(_net(), x, y, xt, yt, cfg, checkpoint_path=ckpt, checkpoint_every=1,
                     _stop_after_epoch=2)
    other_labels = 1 - y
    lines: list[str] = []
    out = train_module(_net(), x, other_labels, xt, yt, cfg, checkpoint_path=ckpt,
                       checkpoint_every=1, log=lines.append)
    assert any("another run" in line for line in lines)
    assert not any("resumed" in line for line in lines)
    assert out["history"] == train_module(_net(), x, other_labels, xt, yt, cfg)["history"]


def test_packed_trainer_ignores_a_planted_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    cfg = TrainConfig(depth=2, width=16, check_every=5, max_epochs=20, device="cpu",
                      checkpoint_every=5)
    members = [Member(0, 0.1), Member(1, 0.05)]
    fresh = train_members(x, y, x, y, members, cfg)
    ckpt, marker = tmp_path / "packed.ckpt", tmp_path / "pwned"
    plant(ckpt, marker)
    lines: list[str] = []
    out = train_members(x, y, x, y, members, cfg, ckpt, log=lines.append)
    assert not marker.exists()
    assert any("refused" in line for line in lines)
    for a, b in zip(out, fresh, strict=True):
        assert {k: v for k, v in a.items() if k != "wall_time_s"} == \
               {k: v for k, v in b.items() if k != "wall_time_s"}


def test_xiao_trainer_ignores_a_planted_checkpoint(tmp_path):
    data = xdata.labelled_set({"source": "digits"}, 32, 16, 0)
    _, eta = xtrain.analytic_eta(data["x_train"].reshape(32, -1), 3, 1.5, 0.05)
    args = (data, 3, 16, 1.5, 0.05, [0.5], [0], 12, eta)
    kw = {"eval_every": 4, "device": "cpu"}
    fresh = xtrain.train_members(*args, **kw)
    ckpt, marker = tmp_path / "xiao.pt", tmp_path / "pwned"
    plant(ckpt, marker)
    lines: list[str] = []
    out = xtrain.train_members(*args, **kw, checkpoint_path=ckpt, checkpoint_every=4,
                               log=lines.append)
    assert not marker.exists()
    assert any("refused" in line for line in lines)
    assert out == fresh
    assert not ckpt.exists()
