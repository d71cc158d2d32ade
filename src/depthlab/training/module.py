"""A plain trainer for any ``nn.Module``: mini-batch SGD (with momentum) or Adam, optional
step decay of the learning rate, cross-entropy or MSE on one-hot targets.

For nets the packed FC engine does not cover (convolutional, residual, batch-normalised).
Every epoch is a fresh seeded permutation of the training set in batches of ``batch_size``
(the last batch may be smaller); after each epoch the full training and test loss and
accuracy are recorded.  The run stops when training accuracy reaches 100 % (``converged``),
when the loss becomes non-finite or exceeds ``divergence_loss`` (``diverged``), or at
``max_epochs``.  With ``stop_at_interpolation=False`` (a fixed schedule, as in recipes that
train a set number of epochs) it runs to ``max_epochs`` unless it diverges; its status is then
``converged`` if the last epoch interpolates and ``max_epochs`` otherwise.  Test accuracy is
reported under three selection rules, since the rule alone can move a depth effect: at the
epoch of best training accuracy (first such epoch), at the final epoch, and at best training
accuracy with the lowest training loss among ties.

Checkpoints (``checkpoint_path``, every ``checkpoint_every`` epochs) hold the model,
optimizer, scheduler, generator and history as tensors and plain types, written and read by
:mod:`depthlab.training.checkpoint` (atomic, never unpickles code, fingerprinted by the
settings, the model's parameter shapes and the data); a rerun with the same settings and data
resumes and finishes bitwise identically on CPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from depthlab.training.checkpoint import (
    checkpoint_fingerprint,
    load_checkpoint,
    multistep_from_plain,
    remove_checkpoint,
    save_checkpoint,
)
from depthlab.training.device import Log, emit, resolve_device
from depthlab.training.packed_sgd import TrainingInterrupted
from depthlab.training.status import CONVERGED, DIVERGED, MAX_EPOCHS

__all__ = ["ModuleTrainConfig", "train_module"]

OPTIMIZERS = ("sgd", "adam")
LOSSES = ("cross_entropy", "mse")


@dataclass(frozen=True)
class ModuleTrainConfig:
    lr: float
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 100
    loss: str = "cross_entropy"
    lr_decay_epochs: tuple[int, ...] = field(default_factory=tuple)
    lr_decay: float = 0.1
    divergence_loss: float = 1e6
    seed: int = 0
    stop_at_interpolation: bool = True  # False: train the whole schedule (max_epochs)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.lr <= 0 or self.batch_size < 1 or self.max_epochs < 1:
            raise ValueError("need lr > 0, batch_size >= 1 and max_epochs >= 1")


def _loss(out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "cross_entropy":
        return F.cross_entropy(out, y)
    return F.mse_loss(out, F.one_hot(y, out.shape[1]).to(out.dtype), reduction="sum") / len(y)


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str,
              chunk: int = 4096) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    loss = correct = 0.0
    for s in range(0, len(x), chunk):
        out = model(x[s : s + chunk])
        loss += float(_loss(out, y[s : s + chunk], kind)) * len(out)
        correct += float((out.argmax(1) == y[s : s + chunk]).sum())
    model.train(was_training)
    return loss / len(x), correct / len(x)


def _selections(history: dict[str, list[float]]) -> dict[str, Any]:
    acc, loss, test = history["train_acc"], history["train_loss"], history["test_acc"]
    best = max(acc)
    first_best = acc.index(best)
    ties = [i for i, a in enumerate(acc) if a == best]
    lowest = min(ties, key=lambda i: (loss[i], i))
    return {
        "test_acc_at_best_train": test[first_best], "epoch_best_train": first_best + 1,
        "test_acc_final": test[-1],
        "test_acc_at_best_train_lowest_loss": test[lowest], "epoch_best_train_lowest_loss":
        lowest + 1,
    }


def train_module(model: nn.Module, x_train, y_train, x_test, y_test, cfg: ModuleTrainConfig, *,
                 device: str = "cpu", checkpoint_path: str | Path | None = None,
                 checkpoint_every: int = 0, log: Log = None,
                 _stop_after_epoch: int | None = None) -> dict[str, Any]:
    """Train ``model`` in place (integer class labels); returns status, epochs, the per-epoch
    history, the final train/test loss and accuracy and the three test-accuracy selections."""
    dev = resolve_device(device)
    model.to(dev)
    x_tr, x_te = torch.as_tensor(x_train).to(dev), torch.as_tensor(x_test).to(dev)
    y_tr = torch.as_tensor(y_train, dtype=torch.long).to(dev)
    y_te = torch.as_tensor(y_test, dtype=torch.long).to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.lr_decay_epochs), cfg.lr_decay)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    history: dict[str, list[float]] = {k: [] for k in
                                       ("train_loss", "train_acc", "test_loss", "test_acc")}
    # The data's content is in the fingerprint: a checkpoint of a run on other data (the
    # config's classes or N changed) is never resumed.
    fingerprint = checkpoint_fingerprint(
        {"cfg": asdict(cfg),
         "params": [(name, list(t.shape)) for name, t in model.state_dict().items()]},
        x_tr, y_tr, x_te, y_te)
    epoch, status = 0, None
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    state = load_checkpoint(ckpt, fingerprint, log)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(multistep_from_plain(state["scheduler"]))
        gen.set_state(state["generator"])
        history, epoch, status = state["history"], state["epoch"], state["status"]
        emit(log, f"resumed from {ckpt} at epoch {epoch}")
    model.train()
    while status is None and epoch < cfg.max_epochs:
        order = torch.randperm(len(x_tr), generator=gen).to(dev)
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            _loss(model(x_tr[idx]), y_tr[idx], cfg.loss).backward()
            opt.step()
        sched.step()
        epoch += 1
        tr_loss, tr_acc = _evaluate(model, x_tr, y_tr, cfg.loss)
        te_loss, te_acc = _evaluate(model, x_te, y_te, cfg.loss)
        for k, v in zip(history, (tr_loss, tr_acc, te_loss, te_acc), strict=True):
            history[k].append(v)
        emit(log, f"epoch {epoch}: train loss {tr_loss:.4g} acc {tr_acc:.4f}, "
                  f"test acc {te_acc:.4f}")
        if not math.isfinite(tr_loss) or tr_loss > cfg.divergence_loss:
            status = DIVERGED
        elif tr_acc == 1.0 and cfg.stop_at_interpolation:
            status = CONVERGED
        if ckpt is not None and checkpoint_every > 0 and epoch % checkpoint_every == 0:
            save_checkpoint(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                   "scheduler": sched.state_dict(),
                                   "generator": gen.get_state(), "history": history,
                                   "epoch": epoch, "status": status}, fingerprint)
            emit(log, f"checkpoint written at epoch {epoch}")
        if _stop_after_epoch is not None and epoch >= _stop_after_epoch:
            raise TrainingInterrupted(f"stopped after epoch {epoch} (testing hook)")
    remove_checkpoint(ckpt)
    if status is None:
        status = CONVERGED if history["train_acc"][-1] == 1.0 else MAX_EPOCHS
    return {"status": status, "epochs": epoch, "history": history,
            "train_loss": history["train_loss"][-1], "train_acc": history["train_acc"][-1],
            "test_loss": history["test_loss"][-1], "test_acc": history["test_acc"][-1],
            **_selections(history)}
