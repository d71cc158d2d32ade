"""Packed mini-batch SGD training of independent fully connected nets (Mori & Ueda, sec. 2.3).

`train_members` trains M members (a seed and a learning rate each) of one architecture
together: every SGD step of all members is a handful of batched matmuls (see
`depthlab.models.FCEnsemble.sgd_step_`). Packing is purely a performance device: a member's
numbers (status, epochs, errors, loss, final parameters) are bitwise identical on CPU whether it
is trained alone or with others, because

* its initial weights come from its own generator (seeded by its seed), its mini-batch order
  from another generator of its own (seeded from ``SeedSequence([seed, _SHUFFLE_STREAM])``);
* each member's loss is the mean over its own batch and the update is per member
  (``p -= lr_m * grad``), with no operation mixing members;
* members that stop are removed from the pack and the pack is never a single row (a lone
  member is padded with a duplicate, since the CPU BLAS takes another code path for a batch
  of one; this doubles the cost of a lone straggler).

Data sets: one shared by every member (x (N, d)), or one per member (x (M, N, d), y (M, N);
same N), for the training and the test set each, so members that differ in their data draw
still share a pack: a row's mini-batches and error checks index its own member's set.

Epochs: each epoch is one pass over a fresh random permutation of the training set in
batches of B; the last batch is kept even if it is smaller than B (then its gradient is the
mean over its own size), so every epoch sees every sample once, as in the paper.

Stopping: every ``check_every`` epochs (and at ``max_epochs``) the full training error and
loss are computed; a member with zero training error is "converged" and stops. A member whose
epoch-mean batch loss (checked every epoch, one host sync per epoch) or full loss is
non-finite or above ``divergence_loss`` is "diverged" and stops; one that reaches
``max_epochs`` otherwise is "max_epochs". Errors of a member whose outputs are not all finite
are recorded as NaN.

Checkpoints: with ``checkpoint_path`` and ``checkpoint_every`` > 0, the whole state is
written atomically at check boundaries; a later call with the same config, members and data
resumes from it and finishes bitwise identically (on the same device and thread count). The
file is deleted when training finishes.

GPU: with ``device="auto"`` and CUDA available, data and parameters are moved once to the GPU.
Shuffling and init are drawn on the CPU so they are the same on every device; the GPU run is
deterministic up to cuBLAS/atomics, and packing invariance there is not guaranteed to the bit.
TF32 follows torch's global setting (off by default for float32 matmuls).

Threads: `torch.set_num_threads` is left to the caller. Give each training process no more
intra-op threads than the cores it really has: oversubscribed OpenMP stalls every op (on a
shared 2-core machine, two 2-thread jobs made each small op take ~8 ms, a 10-20x slowdown).
Bitwise reproducibility is promised for a fixed thread count (1 and 2 threads agreed where
checked, but MKL does not guarantee it).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from depthlab.models.packed_fc import (
    ACTIVATIONS,
    ALIGN_FLOATS,
    INITS,
    LOSSES,
    FCEnsemble,
    padded_rows,
)
from depthlab.provenance import config_hash, content_hash
from depthlab.training.checkpoint import load_checkpoint, save_checkpoint
from depthlab.training.device import Log, describe_device, emit, resolve_device

ENGINE_VERSION = 1  # bump when a change alters trajectories, to invalidate old checkpoints
EVAL_CHUNK = 8192  # rows per evaluation chunk (bounds memory: M * chunk * H floats)
_SHUFFLE_STREAM = 0x5EED_5F1E
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Member:
    seed: int
    lr: float


@dataclass
class TrainConfig:
    depth: int
    width: int
    n_classes: int = 2
    loss: str = "cross_entropy"  # or "mse" (MSE on one-hot targets, mean over the K outputs)
    batch_size: int = 50
    check_every: int = 50  # epochs between full training-error checks (paper: 50)
    max_epochs: int = 2500
    checkpoint_every: int = 0  # epochs, rounded up to a multiple of check_every; 0 = none
    device: str = "auto"  # "auto" -> cuda if available else cpu
    divergence_loss: float = 1e6  # loss above this or non-finite -> diverged
    activation: str = "relu"
    init: str = "glorot_uniform"
    init_params: dict | None = None  # explicit init parameters (deep_narrow: C_L, rho, beta)
    dtype: str = "float32"  # or "float64" (parameters, data and steps)


    @classmethod
    def from_settings(cls, settings: dict[str, Any], *, depth: int, width: int, n_classes: int,
                      **overrides: Any) -> TrainConfig:
        """From a study's `training` config block (keys TrainConfig lacks, such as `pack`,
        are workflow settings and ignored here)."""
        from dataclasses import fields

        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in settings.items() if k in known}
        kw.update(depth=int(depth), width=int(width), n_classes=int(n_classes), **overrides)
        return cls(**kw)


class TrainingInterrupted(RuntimeError):
    """Raised by the `_stop_after_epoch` testing hook after the checkpoint of that epoch."""


def shuffle_generator(seed: int) -> torch.Generator:
    """The member's mini-batch-order generator, a stream distinct from its init generator."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, _SHUFFLE_STREAM])
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(state.generate_state(1, np.uint64)[0]) & 0x7FFFFFFFFFFFFFFF)
    return gen


def _validate(x_train, y_train, x_test, y_test, members, cfg: TrainConfig) -> None:
    if cfg.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {cfg.loss!r}")
    if cfg.activation not in ACTIVATIONS or cfg.init not in INITS:
        raise ValueError(f"bad activation {cfg.activation!r} or init {cfg.init!r}")
    if cfg.dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {cfg.dtype!r}")
    if not members:
        raise ValueError("no members to train")
    if cfg.batch_size < 1 or cfg.check_every < 1 or cfg.max_epochs < 0:
        raise ValueError("batch_size and check_every must be >= 1, max_epochs >= 0")
    sets = {"train": (x_train, y_train), "test": (x_test, y_test)}
    for name, (x, y) in sets.items():
        if x.ndim != 3:
            continue
        # one set per member
        if y.ndim != 2 or x.shape[:2] != y.shape:
            raise ValueError(f"{name}: per-member sets need x (M, N, d) and y (M, N), got "
                             f"{x.shape} and {y.shape}")
        if len(x) != len(members):
            raise ValueError(f"{name}: {len(x)} per-member {name}ing sets for "
                             f"{len(members)} members")
        sets[name] = (x.reshape(-1, x.shape[-1]), y.reshape(-1))
    for name, (x, y) in sets.items():
        if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{name}: need x (N, d) and y (N,), got {x.shape} and {y.shape}")
        if len(y) and (y.min() < 0 or y.max() >= cfg.n_classes):
            raise ValueError(f"{name}: labels must lie in 0..{cfg.n_classes - 1}")
    (x_train, _), (x_test, _) = sets["train"], sets["test"]
    if x_train.shape[1] != x_test.shape[1] or len(x_train) == 0:
        raise ValueError("train and test inputs need the same dimension and N_train > 0")


def fingerprint(x_train, y_train, x_test, y_test, members, cfg: TrainConfig) -> str:
    """Identity of a training run, for matching checkpoints (runtime-only knobs left out;
    the init_params and dtype fields only when set, so older checkpoints still match)."""
    run_cfg = {k: v for k, v in asdict(cfg).items() if k not in ("device", "checkpoint_every")}
    if run_cfg["init_params"] is None:
        del run_cfg["init_params"]
    if run_cfg["dtype"] == "float32":
        del run_cfg["dtype"]
    data = content_hash(
        {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    )
    return config_hash(
        {
            "engine": ENGINE_VERSION,
            "cfg": run_cfg,
            "members": [asdict(m) for m in members],
            "shapes": [list(x_train.shape), list(x_test.shape)],
            "data": data,
        }
    )


class _Data:
    """A data set moved once to the device: inputs, labels and one-hot targets.

    Shared: x (N, d). Per member (x (M, N, d), y (M, N)): stored flat as M blocks of N rows,
    member m's sample i at row m * N + i, so a batch of every pack row is one index_select.
    `n` is the samples per set either way."""

    def __init__(self, x: np.ndarray, y: np.ndarray, n_classes: int, device: torch.device,
                 dtype: torch.dtype = torch.float32):
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        self.per_member = x.ndim == 3
        self.n = y.shape[-1]
        x = x.reshape(-1, x.shape[-1])
        self.x = torch.as_tensor(np.ascontiguousarray(x, dtype=np_dtype)).to(device)
        self.y = torch.as_tensor(np.ascontiguousarray(y.reshape(-1), dtype=np.int64)).to(device)
        self.onehot = torch.nn.functional.one_hot(self.y, n_classes).to(dtype)

    def offsets(self, rows: list[int]) -> torch.Tensor | None:
        """Per pack row, the first flat row of its member's set (None when shared)."""
        if not self.per_member:
            return None
        return torch.tensor(rows, dtype=torch.int64, device=self.x.device) * self.n


@torch.no_grad()
def evaluate(model: FCEnsemble, data: _Data, loss: str, chunk: int = EVAL_CHUNK,
             rows: list[int] | None = None) -> dict:
    """Per-member error rate, mean loss and all-finite flag over a data set, in chunks.

    Returns float64 CPU tensors of shape (M,). The error counts are exact; each member's loss
    is summed along its own row only, so numbers do not depend on the pack. With per-member
    data sets, `rows` names each pack row's member (its set).
    """
    m = model.n_members
    chunk = max(256, min(chunk, (1 << 22) // max(model.widths)))
    chunk -= chunk % ALIGN_FLOATS  # chunk starts stay 16-byte aligned (see depthlab.models)
    errors = torch.zeros(m, dtype=torch.int64, device=data.x.device)
    loss_sum = torch.zeros(m, dtype=torch.float64, device=data.x.device)
    finite = torch.ones(m, dtype=torch.bool, device=data.x.device)
    for x, y, targets in _eval_chunks(model, data, chunk, rows):
        out = model(x)[:, : y.shape[-1]]  # (M, C, K); alignment padding dropped
        errors += (out.argmax(-1) != y).sum(1)
        finite &= torch.isfinite(out).all(-1).all(-1)
        if loss == "cross_entropy":
            per = torch.log_softmax(out, -1).gather(-1, y.expand(m, -1).unsqueeze(-1)).squeeze(-1)
            per = per.neg_()
        else:
            diff = out.sub_(targets)
            per = (diff * diff).mean(-1)
        loss_sum += torch.stack([per[i].sum(dtype=torch.float64) for i in range(m)])
    n = max(data.n, 1)
    return {
        "error": errors.cpu().to(torch.float64) / n,
        "loss": loss_sum.cpu() / n,
        "finite": finite.cpu(),
    }


def _eval_chunks(model: FCEnsemble, data: _Data, chunk: int, rows: list[int] | None):
    """(inputs, labels, one-hot targets) of each chunk of `data`: inputs (padded, d) shared
    by every member, or (M, padded, d) with pack row r on its own member's set rows[r];
    labels and targets cover the chunk's real rows only."""
    if not data.per_member:
        for start in range(0, data.n, chunk):
            sl = slice(start, start + chunk)
            x = data.x[sl]
            n_rows = len(x)
            padded = padded_rows(n_rows, model.widths)
            if padded > n_rows:  # alignment padding, outputs dropped
                x = torch.cat([x, x.new_zeros(padded - n_rows, x.shape[1])])
            yield x, data.y[sl], data.onehot[sl]
        return
    m = model.n_members
    if rows is None or len(rows) != m:
        raise ValueError(f"per-member data needs the member of each of the {m} pack rows")
    offsets = data.offsets(rows)[:, None]
    for start in range(0, data.n, chunk):
        n_rows = min(chunk, data.n - start)
        padded = padded_rows(n_rows, model.widths)
        local = torch.arange(start, start + padded, device=data.x.device)
        idx = offsets + local.clamp_(max=data.n - 1)  # alignment padding repeats a row
        x = data.x.index_select(0, idx.reshape(-1)).view(m, padded, -1)
        real = idx[:, :n_rows].reshape(-1)
        yield (x, data.y.index_select(0, real).view(m, n_rows),
               data.onehot.index_select(0, real).view(m, n_rows, -1))


def _params_to_cpu(model: FCEnsemble) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train_members(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    members: list[Member],
    cfg: TrainConfig,
    checkpoint_path: str | Path | None = None,
    log: Log = None,
    *,
    return_model: bool = False,
    on_epoch=None,
    _stop_after_epoch: int | None = None,
):
    """Train `members` (one architecture, own seed and learning rate each) with plain SGD,
    on one shared training set (x_train (N, d), y_train (N,)) or one per member (x_train
    (M, N, d), y_train (M, N)); the same for the test set.

    Returns a list with one dict per member, in order: seed, lr, status ("converged",
    "diverged" or "max_epochs"), epochs (epochs trained), train_error, test_error,
    final_loss (mean training loss over the full training set at stop), wall_time_s (wall
    time of the whole pack, summed over resumed sessions), device, n_params. With
    ``return_model=True`` returns ``(results, model)``, the model holding every member's final
    parameters on the CPU.

    ``on_epoch(epoch, members, pack, train_eval, evaluate_test)``, if given, is called after
    every trained epoch (before members that stop leave the pack): ``members`` are the
    indices (into ``members``) of the pack's rows, ``pack`` the packed model, ``train_eval``
    the full training-set evaluation when the epoch was a check (else None), and
    ``evaluate_test()`` evaluates the pack on the test set. It must not change the model.

    ``_stop_after_epoch`` is a testing hook: raise `TrainingInterrupted` once that epoch (and
    its checkpoint, if due) is done, to simulate a killed job.
    """
    _validate(x_train, y_train, x_test, y_test, members, cfg)
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    device_name = describe_device(device)
    n_train = y_train.shape[-1]
    b_size = cfg.batch_size
    check_every = cfg.check_every
    ckpt_every = 0
    if cfg.checkpoint_every > 0:
        ckpt_every = math.ceil(cfg.checkpoint_every / check_every) * check_every
    ckpt_path = Path(checkpoint_path) if checkpoint_path is not None else None

    dtype = _DTYPES[cfg.dtype]
    full = FCEnsemble(
        x_train.shape[-1],
        cfg.depth,
        cfg.width,
        cfg.n_classes,
        [m.seed for m in members],
        activation=cfg.activation,
        init=cfg.init,
        device="cpu",
        dtype=dtype,
        init_params=cfg.init_params,
    )
    for p in full.parameters():
        p.requires_grad_(False)
    gens = [shuffle_generator(m.seed) for m in members]
    records: list[dict[str, Any]] = [
        {
            "seed": m.seed,
            "lr": float(m.lr),
            "status": None,
            "epochs": 0,
            "train_error": math.nan,
            "test_error": math.nan,
            "final_loss": math.nan,
        }
        for m in members
    ]
    epoch = 0
    elapsed_before = 0.0

    fp = None
    if ckpt_path is not None:
        fp = fingerprint(x_train, y_train, x_test, y_test, members, cfg)
        state = load_checkpoint(ckpt_path, fp, log)
        if state is not None:
            full.load_state_dict(state["params"])
            for gen, gstate in zip(gens, state["generators"], strict=True):
                gen.set_state(gstate)
            records = [dict(r) for r in state["records"]]
            epoch = int(state["epoch"])
            elapsed_before = float(state["elapsed_s"])
            emit(log, f"resumed from {ckpt_path} at epoch {epoch}")

    train = _Data(x_train, y_train, cfg.n_classes, device, dtype)
    test = _Data(x_test, y_test, cfg.n_classes, device, dtype)
    lrs = torch.tensor([m.lr for m in members], dtype=torch.float64)
    steps = [(s, min(b_size, n_train - s)) for s in range(0, n_train, b_size)]

    active: list[int] = [i for i, r in enumerate(records) if r["status"] is None]
    pack = rows = scales = None

    def build_pack(keep: list[int] | None = None):
        """(Re)build the pack of active members; `keep`: rows of the old pack that stay."""
        nonlocal pack, rows, scales
        rows = active if len(active) > 1 else active * 2  # never a batch of one (see module doc)
        if keep is None:
            pack = full.select(rows).to(device)
        else:
            pack = pack.select(keep if len(keep) > 1 else keep * 2)
        scales = _step_scales(lrs[rows], {size for _, size in steps}, full.widths, device, dtype)

    def finish(ids: list[int], status: dict[int, str], train_eval: dict | None) -> None:
        """Record final metrics of pack rows `ids`; copy their parameters back to `full`."""
        sub_rows = ids if len(ids) > 1 else ids * 2
        sub = pack.select(sub_rows)
        tr = train_eval if train_eval is not None else evaluate(
            sub, train, cfg.loss, rows=[rows[i] for i in sub_rows])
        te = evaluate(sub, test, cfg.loss, rows=[rows[i] for i in sub_rows])
        for k, row in enumerate(ids):
            member = rows[row]
            r = records[member]
            tr_k = row if train_eval is not None else k
            r["status"] = status[row]
            r["epochs"] = epoch
            r["final_loss"] = float(tr["loss"][tr_k])
            r["train_error"] = float(tr["error"][tr_k]) if tr["finite"][tr_k] else math.nan
            r["test_error"] = float(te["error"][k]) if te["finite"][k] else math.nan
        full.assign_([rows[i] for i in ids], pack, ids)

    if active:
        build_pack()
    while active:
        stopping: dict[int, str] = {}  # pack row -> status
        train_eval = None
        if epoch < cfg.max_epochs:
            loss_acc = _run_epoch(pack, train, gens, rows, steps, scales, cfg.loss)
            epoch += 1
            mean_loss = (loss_acc / n_train).cpu()  # one host sync per epoch
            for row in range(len(active)):
                value = float(mean_loss[row])
                if not math.isfinite(value) or value > cfg.divergence_loss:
                    stopping[row] = "diverged"
        at_check = epoch % check_every == 0 or epoch >= cfg.max_epochs
        if at_check:
            train_eval = evaluate(pack, train, cfg.loss, rows=rows)
            for row in range(len(active)):
                if row in stopping:
                    continue
                loss_value = float(train_eval["loss"][row])
                if (
                    not math.isfinite(loss_value)
                    or loss_value > cfg.divergence_loss
                    or not bool(train_eval["finite"][row])
                ):
                    stopping[row] = "diverged"
                elif float(train_eval["error"][row]) == 0.0:
                    stopping[row] = "converged"
                elif epoch >= cfg.max_epochs:
                    stopping[row] = "max_epochs"
            emit(log, _progress_line(epoch, active, train_eval, records, stopping))
        if on_epoch is not None and epoch > 0:
            on_epoch(epoch, list(active), pack, train_eval,
                     lambda: evaluate(pack, test, cfg.loss, rows=rows))
        if stopping:
            ids = sorted(stopping)
            if not at_check:
                emit(log, f"epoch {epoch}: members {[active[i] for i in ids]} diverged")
            finish(ids, stopping, train_eval if at_check else None)
            keep = [row for row in range(len(active)) if row not in stopping]
            active = [active[row] for row in keep]
            if active:
                build_pack(keep)
        if ckpt_path is not None and ckpt_every and at_check and epoch % ckpt_every == 0 and active:
            full.assign_(active, pack, list(range(len(active))))
            save_checkpoint(
                ckpt_path,
                {
                    "epoch": epoch,
                    "params": _params_to_cpu(full),
                    "generators": [g.get_state() for g in gens],
                    "records": records,
                    "elapsed_s": elapsed_before + time.perf_counter() - t0,
                },
                fp,
            )
            emit(log, f"checkpoint written at epoch {epoch}")
        if _stop_after_epoch is not None and epoch >= _stop_after_epoch and active:
            raise TrainingInterrupted(f"stopped after epoch {epoch} (testing hook)")

    wall = elapsed_before + time.perf_counter() - t0
    n_params = full.n_params_per_member
    results = [
        {**r, "wall_time_s": wall, "device": device_name, "n_params": n_params} for r in records
    ]
    if ckpt_path is not None:
        ckpt_path.unlink(missing_ok=True)
    if return_model:
        return results, full
    return results


def _step_scales(
    lr: torch.Tensor, sizes: set[int], widths: list[int], device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> dict[int, tuple[int, torch.Tensor]]:
    """Per batch size: (padded row count, step tensor lr/size: (M,), or (M, padded) with zeros
    in the padding rows when the size must be padded for alignment, see `padded_rows`)."""
    out = {}
    for size in sizes:
        step = (lr / size).to(dtype)
        padded = padded_rows(size, widths)
        if padded > size:
            step = torch.cat(
                [step[:, None].expand(-1, size), step.new_zeros(len(lr), padded - size)], 1
            )
        out[size] = (padded, step.to(device))
    return out


def _run_epoch(pack, train: _Data, gens, rows, steps, scales, loss: str) -> torch.Tensor:
    """One epoch for every pack row; returns the summed per-sample losses (M,) on device."""
    device = train.x.device
    # One permutation per member from its own generator (rows may repeat a member: a padded
    # lone member draws once).
    perms = {m: torch.randperm(train.n, generator=gens[m]) for m in dict.fromkeys(rows)}
    order = torch.stack([perms[m] for m in rows]).to(device, non_blocking=True)
    n_rows = len(rows)
    offsets = train.offsets(rows)
    if offsets is not None:  # each row indexes its own member's set
        order += offsets[:, None]
    loss_acc = torch.zeros(n_rows, dtype=torch.float64, device=device)
    need_labels = loss == "cross_entropy"
    for start, size in steps:
        padded, step = scales[size]
        idx = order[:, start : start + size]
        if padded > size:  # alignment padding rows (any valid index; their step is zero)
            idx = torch.cat([idx, idx.new_zeros(n_rows, padded - size)], 1)
        idx = idx.reshape(-1)
        xb = train.x.index_select(0, idx).view(n_rows, padded, -1)
        tb = train.onehot.index_select(0, idx).view(n_rows, padded, -1)
        yb = train.y.index_select(0, idx).view(n_rows, padded) if need_labels else None
        loss_acc += pack.sgd_step_(xb, tb, yb, step, loss, n_valid=size)
    return loss_acc


def _progress_line(epoch, active, train_eval, records, stopping) -> str:
    losses = ", ".join(f"{float(v):.4g}" for v in train_eval["loss"][: len(active)])
    errors = ", ".join(f"{float(v):.4g}" for v in train_eval["error"][: len(active)])
    n_left = len(active) - len(stopping)
    return (
        f"epoch {epoch}: members {active} loss [{losses}] train_error [{errors}] "
        f"active {n_left}/{len(records)}"
    )
