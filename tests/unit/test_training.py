"""Tests of the packed FC ensemble and its SGD training engine."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from depthlab.models import FCEnsemble
from depthlab.training.packed_sgd import Member, TrainConfig, TrainingInterrupted, train_members

TIMING_KEYS = ("wall_time_s",)


def one_local_data(n: int, d: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm Gaussian inputs labelled by sign(x0) (a 1-local rule)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, (x[:, 0] > 0).astype(np.int64)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    x, y = one_local_data(200, seed=0)
    xt, yt = one_local_data(300, seed=1)
    return x, y, xt, yt


def small_cfg(**kw) -> TrainConfig:
    base = dict(depth=2, width=64, check_every=10, max_epochs=600, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def strip_timing(results: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in results]


def assert_same_results(a: list[dict], b: list[dict]) -> None:
    # NaN-aware exact equality
    assert len(a) == len(b)
    for ra, rb in zip(strip_timing(a), strip_timing(b), strict=True):
        assert ra.keys() == rb.keys()
        for key in ra:
            va, vb = ra[key], rb[key]
            if isinstance(va, float) and math.isnan(va):
                assert isinstance(vb, float) and math.isnan(vb), key
            else:
                assert va == vb, (key, va, vb)


def member_params(model: FCEnsemble, m: int) -> list[torch.Tensor]:
    return [p[m].detach().cpu() for p in [*model.weights, *model.biases]]


# ---------------------------------------------------------------------------- model


def test_glorot_uniform_init_statistics():
    d, width = 300, 400
    model = FCEnsemble(d, 2, width, 2, seeds=[0, 1])
    for w, b, (n_in, n_out) in zip(
        model.weights,
        model.biases,
        zip(model.widths[:-1], model.widths[1:], strict=True),
        strict=True,
    ):
        assert w.shape == (2, n_in, n_out) and b.shape == (2, 1, n_out)
        limit = math.sqrt(6 / (n_in + n_out))
        assert float(w.detach().abs().max()) <= limit
        if n_in * n_out > 10_000:  # enough samples for a 5% variance check
            assert float(w.detach().var()) == pytest.approx(2 / (n_in + n_out), rel=0.05)
            assert abs(float(w.detach().mean())) < 0.05 * limit
        assert torch.count_nonzero(b) == 0
    assert not torch.equal(model.weights[0][0], model.weights[0][1])
    assert model.n_params_per_member == 300 * 400 + 400 + 400 * 400 + 400 + 400 * 2 + 2


def test_member_init_independent_of_pack():
    alone = FCEnsemble(7, 3, 16, 3, seeds=[5])
    packed = FCEnsemble(7, 3, 16, 3, seeds=[3, 5, 11])
    for p_alone, p_pack in zip(alone.parameters(), packed.parameters(), strict=True):
        assert torch.equal(p_alone[0], p_pack[1])


def test_forward_broadcast_and_linear_perceptron_shape():
    model = FCEnsemble(5, 0, 0, 3, seeds=[1, 2])
    x = torch.randn(4, 5)
    out = model(x)
    assert out.shape == (2, 4, 3)
    expected = torch.stack([x @ model.weights[0][m] for m in range(2)])
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(model(x.expand(2, 4, 5)), out)


@pytest.mark.parametrize(
    "activation,init,loss",
    [
        ("relu", "glorot_uniform", "cross_entropy"),
        ("relu", "glorot_uniform", "mse"),
        ("tanh", "glorot_normal", "cross_entropy"),
        ("softplus", "normal_ntk", "mse"),
        ("linear", "normal_ntk", "cross_entropy"),
    ],
)
def test_manual_sgd_step_matches_autograd(activation, init, loss):
    torch.manual_seed(0)
    m, b, d, k = 3, 9, 6, 3
    model = FCEnsemble(d, 2, 8, k, seeds=[1, 2, 3], activation=activation, init=init)
    with torch.no_grad():  # non-zero biases so their gradient path is exercised
        for bias in model.biases:
            bias.normal_(0, 0.1)
    x = torch.randn(m, b, d)
    y = torch.randint(0, k, (m, b))
    onehot = torch.nn.functional.one_hot(y, k).float()
    lr = torch.tensor([0.1, 0.5, 0.01], dtype=torch.float64)

    ref = model.select([0, 1, 2])
    out = ref(x)
    if loss == "cross_entropy":
        per_sample = torch.nn.functional.cross_entropy(
            out.reshape(-1, k), y.reshape(-1), reduction="none"
        ).view(m, b)
    else:
        per_sample = ((out - onehot) ** 2).mean(-1)
    per_sample.mean(1).sum().backward()  # sum over members keeps gradients per member
    with torch.no_grad():
        for p in ref.parameters():
            p -= lr.float().view(-1, 1, 1) * p.grad

    batch_loss = model.sgd_step_(x, onehot, y, (lr / b).float(), loss)
    torch.testing.assert_close(batch_loss, per_sample.detach().sum(1))
    for mine, theirs in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- training


@pytest.mark.parametrize("loss,lr", [("cross_entropy", 0.2), ("mse", 0.2)])
def test_small_net_converges(data, loss, lr):
    x, y, xt, yt = data
    lines: list[str] = []
    (res,) = train_members(x, y, xt, yt, [Member(0, lr)], small_cfg(loss=loss), log=lines.append)
    assert res["status"] == "converged"
    assert res["train_error"] == 0.0
    assert 0 < res["epochs"] <= 600 and res["epochs"] % 10 == 0
    assert 0.0 <= res["test_error"] < 0.3
    assert math.isfinite(res["final_loss"])
    assert res["device"] == "cpu" and res["n_params"] == 10 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2
    assert res["wall_time_s"] > 0
    assert lines and "train_error" in lines[-1]


def test_linear_perceptron_converges(data):
    x, y, xt, yt = data
    keep = np.abs(x[:, 0]) > 0.1  # a margin, so the perceptron separates it quickly
    (res,) = train_members(x[keep], y[keep], xt, yt, [Member(3, 1.0)], small_cfg(depth=0, width=0))
    assert res["status"] == "converged" and res["train_error"] == 0.0
    assert res["n_params"] == 10 * 2 + 2
    assert res["test_error"] < 0.1


def test_packing_invariance(data):
    x, y, xt, yt = data
    # different speeds, so the pack shrinks, pads a lone straggler, and sees a divergence
    members = [Member(0, 0.1), Member(1, 0.05), Member(2, 0.3), Member(4, 1e4)]
    cfg = small_cfg(max_epochs=300)
    packed, packed_model = train_members(x, y, xt, yt, members, cfg, return_model=True)
    assert {r["status"] for r in packed} >= {"converged", "diverged"}
    assert len({r["epochs"] for r in packed}) >= 3
    for i, member in enumerate(members):
        alone, alone_model = train_members(x, y, xt, yt, [member], cfg, return_model=True)
        assert_same_results(alone, [packed[i]])
        for p_alone, p_pack in zip(
            member_params(alone_model, 0), member_params(packed_model, i), strict=True
        ):
            assert torch.equal(p_alone, p_pack) or (
                torch.isnan(p_alone).any() and torch.equal(p_alone.isnan(), p_pack.isnan())
            )


@pytest.mark.parametrize(
    "shape",
    [
        # odd widths, K=3, tail batches of 7 -> alignment padding of rows
        dict(d=5, depth=2, width=33, n_classes=3, batch_size=7, activation="tanh"),
        # L=0 with a 10x3 weight (30 floats) -> strided, aligned weight storage
        dict(d=10, depth=0, width=0, n_classes=3, batch_size=16, loss="mse"),
        dict(d=7, depth=1, width=9, n_classes=5, batch_size=1, activation="softplus"),
    ],
)
def test_packing_invariance_awkward_shapes(shape):
    d = shape.pop("d")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((45, d)).astype(np.float32)
    y = rng.integers(0, shape["n_classes"], 45)
    xt = rng.standard_normal((13, d)).astype(np.float32)
    yt = rng.integers(0, shape["n_classes"], 13)
    cfg = TrainConfig(**shape, check_every=1, max_epochs=2, device="cpu")
    members = [Member(11, 0.1), Member(12, 0.3), Member(13, 0.05)]
    packed, packed_model = train_members(x, y, xt, yt, members, cfg, return_model=True)
    for i in (0, 2):
        alone, alone_model = train_members(x, y, xt, yt, [members[i]], cfg, return_model=True)
        assert_same_results(alone, [packed[i]])
        for p_alone, p_pack in zip(
            member_params(alone_model, 0), member_params(packed_model, i), strict=True
        ):
            assert torch.equal(p_alone, p_pack)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_per_member_training_sets(loss):
    """One training and test set per member (a data draw each): a member packed with others
    that train on other draws gets exactly the numbers and parameters of that member trained
    alone on its own draw (the pack shrinks, pads a lone straggler and sees a divergence)."""
    draws = [one_local_data(120, seed=10 + k) for k in range(4)]
    tests = [one_local_data(150, seed=90 + k) for k in range(4)]
    x, y = (np.stack([d[i] for d in draws]) for i in (0, 1))
    xt, yt = (np.stack([d[i] for d in tests]) for i in (0, 1))
    members = [Member(0, 0.1), Member(1, 0.05), Member(2, 0.3), Member(4, 1e4)]
    cfg = small_cfg(max_epochs=200, batch_size=16, loss=loss)
    packed, packed_model = train_members(x, y, xt, yt, members, cfg, return_model=True)
    assert {r["status"] for r in packed} >= {"converged", "diverged"}
    for i, member in enumerate(members):
        alone, alone_model = train_members(x[i:i + 1], y[i:i + 1], xt[i:i + 1],
                                           yt[i:i + 1], [member], cfg, return_model=True)
        assert_same_results(alone, [packed[i]])
        for p_alone, p_pack in zip(
            member_params(alone_model, 0), member_params(packed_model, i), strict=True
        ):
            assert torch.equal(p_alone, p_pack) or (
                torch.isnan(p_alone).any() and torch.equal(p_alone.isnan(), p_pack.isnan())
            )
    # each member really saw its own draw: the draws' sets differ, so do the trained nets,
    # and a member's own training error is the one measured on its own set
    trained = [r for r in packed if r["status"] == "converged"]
    assert trained and all(r["train_error"] == 0.0 for r in trained)


def test_per_member_sets_that_are_all_one_set_match_the_shared_set(data):
    """The per-member path is the shared path when every member gets the same set: the same
    statuses, epochs and errors (the two index their data differently, so parameters may
    differ in the last bit; the decisions may not)."""
    x, y, xt, yt = data
    members = [Member(0, 0.1), Member(1, 0.05), Member(2, 0.3)]
    cfg = small_cfg(max_epochs=100)
    shared = train_members(x, y, xt, yt, members, cfg)
    stacked = train_members(np.stack([x] * 3), np.stack([y] * 3), xt, yt, members, cfg)
    both = train_members(np.stack([x] * 3), np.stack([y] * 3), np.stack([xt] * 3),
                         np.stack([yt] * 3), members, cfg)
    assert [r["test_error"] for r in both] == [r["test_error"] for r in stacked]
    for a, b in zip(shared, stacked, strict=True):
        assert (a["status"], a["epochs"]) == (b["status"], b["epochs"])
        assert a["train_error"] == b["train_error"]
        assert a["test_error"] == pytest.approx(b["test_error"], abs=1 / len(yt))


def test_per_member_sets_must_match_the_members():
    x, y = one_local_data(40)
    xt, yt = one_local_data(20, seed=1)
    with pytest.raises(ValueError, match="2 per-member training sets for 3 members"):
        train_members(np.stack([x, x]), np.stack([y, y]), xt, yt,
                      [Member(0, 0.1), Member(1, 0.1), Member(2, 0.1)], small_cfg())
    with pytest.raises(ValueError, match=r"need x \(M, N, d\) and y \(M, N\)"):
        train_members(np.stack([x, x]), y, xt, yt, [Member(0, 0.1), Member(1, 0.1)],
                      small_cfg())


def test_step_packing_invariance_two_threads():
    """The fused step with MKL's threaded batched gemm: a member's update is the same in any
    pack of >= 2 rows, at any position (the training tests above run single-threaded)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for d, depth, width, k, rows in ((20, 2, 64, 3, 8), (500, 1, 500, 2, 52)):
            full = FCEnsemble(d, depth, width, k, seeds=range(5), activation="relu")
            x = torch.randn(5, rows, d)
            y = torch.randint(0, k, (5, rows))
            onehot = torch.nn.functional.one_hot(y, k).float()
            step = torch.linspace(0.01, 0.05, 5)
            packs = {(0, 1, 2, 3, 4): None, (3, 3): None, (1, 3): None, (3, 0, 4): None}
            for rows_ in packs:
                pack = full.select(rows_)
                idx = torch.tensor(rows_)
                for _ in range(2):
                    loss = pack.sgd_step_(x[idx], onehot[idx], y[idx], step[idx])
                packs[rows_] = (loss[rows_.index(3)], member_params(pack, rows_.index(3)))
            ref_loss, ref_params = packs[(0, 1, 2, 3, 4)]
            for loss, params in packs.values():
                assert torch.equal(loss, ref_loss)
                assert all(torch.equal(a, b) for a, b in zip(params, ref_params, strict=True))
    finally:
        torch.set_num_threads(before)


def test_deterministic_repeat(data):
    x, y, xt, yt = data
    members = [Member(0, 0.1), Member(1, 0.05)]
    a = train_members(x, y, xt, yt, members, small_cfg(max_epochs=40))
    b = train_members(x, y, xt, yt, members, small_cfg(max_epochs=40))
    assert_same_results(a, b)


def test_resume_from_checkpoint_is_exact(data, tmp_path):
    x, y, xt, yt = data
    members = [Member(0, 0.1), Member(1, 0.05), Member(2, 0.3)]
    cfg = small_cfg(checkpoint_every=15)  # rounded up to 20 (multiple of check_every)
    ckpt = tmp_path / "run.ckpt"

    reference, ref_model = train_members(x, y, xt, yt, members, cfg, return_model=True)
    assert not ckpt.exists()

    with pytest.raises(TrainingInterrupted):
        train_members(x, y, xt, yt, members, cfg, checkpoint_path=ckpt, _stop_after_epoch=70)
    assert ckpt.exists()
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries

    lines: list[str] = []
    resumed, res_model = train_members(
        x, y, xt, yt, members, cfg, checkpoint_path=ckpt, log=lines.append, return_model=True
    )
    assert any("resumed from" in line and "epoch 60" in line for line in lines)
    assert_same_results(reference, resumed)
    for p_ref, p_res in zip(ref_model.parameters(), res_model.parameters(), strict=True):
        assert torch.equal(p_ref, p_res)
    assert not ckpt.exists()  # cleaned up after success


def test_mismatched_checkpoint_starts_fresh(data, tmp_path, caplog):
    x, y, xt, yt = data
    cfg = small_cfg(checkpoint_every=10, max_epochs=40)
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(TrainingInterrupted):
        train_members(x, y, xt, yt, [Member(0, 0.01)], cfg, ckpt, _stop_after_epoch=20)
    logger = logging.getLogger("depthlab.test")
    with caplog.at_level(logging.WARNING, logger="depthlab.test"):
        other = train_members(x, y, xt, yt, [Member(0, 0.02)], cfg, ckpt, log=logger)
    assert "fingerprint mismatch" in caplog.text
    fresh = train_members(x, y, xt, yt, [Member(0, 0.02)], cfg)
    assert_same_results(other, fresh)
    assert not ckpt.exists()

    ckpt.write_bytes(b"truncated garbage")  # a corrupt checkpoint is ignored, not fatal
    lines: list[str] = []
    again = train_members(x, y, xt, yt, [Member(0, 0.02)], cfg, ckpt, log=lines.append)
    assert any("unreadable" in line for line in lines)
    assert_same_results(again, fresh)


def test_divergence_and_max_epochs_do_not_raise(data):
    x, y, xt, yt = data
    res = train_members(x, y, xt, yt, [Member(0, 1e4), Member(1, 1e-4)], small_cfg(max_epochs=3))
    diverged, slow = res
    assert diverged["status"] == "diverged"
    assert diverged["epochs"] <= 3
    for key in ("train_error", "test_error"):
        assert math.isnan(diverged[key]) or 0.0 <= diverged[key] <= 1.0
    assert slow["status"] == "max_epochs" and slow["epochs"] == 3
    assert slow["train_error"] > 0 and math.isfinite(slow["final_loss"])
