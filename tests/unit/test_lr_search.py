"""Learning-rate selection: k-fold CV + Bayesian optimization of log10(eta)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depthlab.data.synthetic import k_local_labels
from depthlab.studies.mori_ueda.lr_search import (
    DIVERGED_ERROR,
    approximate_fold_sizes,
    fold_error,
    fold_packs,
    make_folds,
    read_lr_search,
    select_lr,
    write_lr_search,
)

SETTINGS = {
    "loss": "cross_entropy",
    "batch_size": 10,
    "check_every": 5,
    "max_epochs": 15,
    "activation": "relu",
    "pack": ["seed"],  # not a TrainConfig field: ignored
    "checkpoint_every": 50,
}
BOUNDS = (1e-3, 1.0)
N_FOLDS = 3


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 5)).astype(np.float32)
    y = k_local_labels(x.astype(np.float64), np.array([0]))  # 1-local
    return x, y


def search(problem, seed=3, **kw):
    x, y = problem
    return select_lr(
        x, y, depth=1, width=8, n_classes=2, train_settings=SETTINGS, n_folds=N_FOLDS,
        bounds=BOUNDS, init_points=2, n_iter=2, seed=seed, device="cpu", **kw,
    )


@pytest.fixture(scope="module")
def result(problem):
    return search(problem)


def test_result_shape_and_choice(result):
    trace = result["trace"]
    assert 1 <= len(trace) <= 4  # 2 init + 2 iterations (a repeated suggestion is not retrained)
    assert [e["phase"] for e in trace[:2]] == ["init", "init"]
    lo, hi = BOUNDS
    assert lo <= result["lr"] <= hi
    for e in trace:
        assert lo <= e["lr"] <= hi
        assert e["lr"] == pytest.approx(10 ** e["log10_lr"], rel=1e-12)
        assert len(e["fold_errors"]) == N_FOLDS == len(e["status"]) == len(e["epochs"])
        assert all(0.0 <= v <= 1.0 for v in e["fold_errors"])
        assert e["mean_error"] == pytest.approx(np.mean(e["fold_errors"]))
        assert set(e["status"]) <= {"converged", "max_epochs", "diverged"}
        assert all(0 < ep <= SETTINGS["max_epochs"] for ep in e["epochs"])
    best = min(e["mean_error"] for e in trace)
    first_best = next(e for e in trace if e["mean_error"] == best)
    assert result["lr"] == first_best["lr"]
    assert result["mean_error"] == best
    assert len({e["log10_lr"] for e in trace}) == len(trace)
    assert result["n_folds"] == N_FOLDS and sum(result["folds"]) == 100
    assert (result["init_points"], result["n_iter"], result["seed"]) == (2, 2, 3)


def test_deterministic(problem, result):
    again = search(problem)
    assert again == result


def test_fold_error_matches_direct_training(problem, result):
    """A trace entry's fold error is the validation error of a network trained on the fold's
    complement with member seed = search seed."""
    from depthlab.studies.mori_ueda.lr_search import _train_config
    from depthlab.training.packed_sgd import Member, train_members

    x, y = problem
    tr, va = make_folds(y, N_FOLDS, 3)[1]
    entry = result["trace"][0]
    cfg = _train_config(1, 8, 2, SETTINGS, "cpu")
    rec = train_members(x[tr], y[tr], x[va], y[va], [Member(3, entry["lr"])], cfg)[0]
    assert fold_error(rec) == entry["fold_errors"][1]
    assert rec["status"] == entry["status"][1]


def test_packing_the_folds_changes_no_number(problem, result):
    """The folds of equal size train in one pack (the default), each member on its own
    fold: the trace is bitwise the one of one fold per pack."""
    x, y = problem
    sizes = [(len(tr), len(va)) for tr, va in make_folds(y, N_FOLDS, 3)]
    # the problem does put folds in one pack, for the init points and for a suggestion
    assert any(len(p) > 1 for p in fold_packs(sizes, 2, x.shape[1]))
    assert any(len(p) > 1 for p in fold_packs(sizes, 1, x.shape[1]))
    assert search(problem, pack_folds=False) == result


def test_fold_packs_group_equal_folds_under_the_memory_cap():
    sizes = [(67, 33), (66, 34), (67, 33)]
    assert fold_packs(sizes, 4, 5) == [[0, 2], [1]]
    assert fold_packs(sizes, 4, 5, pack_folds=False) == [[0], [1], [2]]
    # paper scale: a fold's sets are 30 000 x 1000 float32 = 114 MB; 5 points are over the
    # 512 MB cap, one point allows 4 folds per pack
    big = [(27000, 3000)] * 10
    assert fold_packs(big, 5, 1000) == [[k] for k in range(10)]
    assert fold_packs(big, 1, 1000) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize(("n", "k"), [(100, 3), (3000, 3), (4000, 3), (30000, 10), (7, 7)])
def test_approximate_fold_sizes_are_kfolds(n, k):
    from sklearn.model_selection import KFold

    cuts = [(len(tr), len(va)) for tr, va in KFold(k).split(np.zeros(n))]
    assert approximate_fold_sizes(n, k) == cuts


def test_folds_partition():
    y = np.array([0] * 30 + [1] * 12)
    folds = make_folds(y, 4, seed=0)
    val = np.concatenate([va for _, va in folds])
    assert sorted(val.tolist()) == list(range(42))
    for tr, va in folds:
        assert not set(tr) & set(va) and len(tr) + len(va) == 42
        assert 2 <= (y[va] == 1).sum() <= 4  # stratified
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, make_folds(y, 4, 0), strict=True))
    # a class smaller than n_folds falls back to plain KFold
    assert len(make_folds(np.array([0] * 10 + [1]), 3, 0)) == 3


def test_diverged_counts_as_error_one():
    assert fold_error({"status": "diverged", "test_error": 0.2}) == DIVERGED_ERROR == 1.0
    assert fold_error({"status": "max_epochs", "test_error": math.nan}) == 1.0
    assert fold_error({"status": "max_epochs", "test_error": 0.25}) == 0.25


def test_divergent_rates_are_charged(problem):
    x, y = problem
    settings = {**SETTINGS, "divergence_loss": 1e-3}  # every run "diverges" at once
    res = select_lr(x, y, depth=1, width=8, train_settings=settings, n_folds=2,
                    init_points=1, n_iter=0, seed=0, device="cpu")
    (entry,) = res["trace"]
    assert entry["status"] == ["diverged", "diverged"] and entry["fold_errors"] == [1.0, 1.0]


def test_write_read_roundtrip(tmp_path, result):
    path = tmp_path / "lr" / "search.h5"
    cfg = {"dataset": "tiny", "depth": 1, "width": 8, "training": SETTINGS}
    write_lr_search(path, result, cfg)
    back = read_lr_search(path)
    assert back["config"] == cfg
    assert back["attrs"]["config_hash"]
    for key in ("lr", "log10_lr", "mean_error", "n_folds", "seed", "n_iter", "init_points",
                "init_design", "bounds", "folds", "trace"):
        assert back[key] == result[key], key
    assert not list(path.parent.glob(".*tmp"))


def test_grid_design_spans_the_bounds(problem):
    """init_design="grid": the initial etas are the midpoints of equal bins of
    log10(bounds), whatever the seed; BO steps follow and stay inside the bounds."""
    x, y = problem
    res = select_lr(x, y, depth=1, width=8, train_settings=SETTINGS, n_folds=2,
                    bounds=(1e-3, 1.0), init_points=3, n_iter=1, seed=5,
                    init_design="grid", device="cpu")
    init = [e["log10_lr"] for e in res["trace"] if e["phase"] == "init"]
    assert init == pytest.approx([-2.5, -1.5, -0.5])
    assert res["init_design"] == "grid"
    assert all(-3.0 <= e["log10_lr"] <= 0.0 for e in res["trace"])
    with pytest.raises(ValueError, match="init_design"):
        select_lr(x, y, depth=1, width=8, train_settings=SETTINGS, n_folds=2,
                  init_design="sobol", device="cpu")
