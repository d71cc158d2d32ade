"""Every claim kind of Lee et al.'s paper_claims on small synthetic cubes: one where the
paper's statement is true (``holds``), one where it is false (``fails``) and, where the rule
has noise or the run is not the paper's, ``not resolved``."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from depthlab.claims import FAILS, HOLDS, NOT_RESOLVED, PAPER_CLAIM, PROJECT_CHECK
from depthlab.studies.lee import paper_claims as pc

N_TEST = 10000  # the paper's MNIST test set
COVERED: set[str] = set()
STUDY = {"training": {"batch_size": 100}, "figures": {},
         "grids": [{"init": ["deep_narrow"], "epochs": 1500},
                   {"init": ["he_uniform"], "epochs": 2},
                   {"arch": "cnn", "init": ["deep_narrow"], "epochs": 12}],
         "table41": [{"grid": 0, "task": "10-class MNIST", "paper_train_loss": 0.0055,
                      "paper_test_acc": 0.9748},
                     {"grid": None, "arch": "cnn", "task": "binary", "note": "too deep",
                      "paper_train_loss": 0.031257, "paper_test_acc": 0.9887}]}


def _verdicts(cube, study=STUDY, kind=None):
    rows = pc.claims(cube, study)
    for r in rows:
        assert r.where, r.claim_id
        assert r.origin == PROJECT_CHECK or (r.quote and r.origin == PAPER_CLAIM), r.claim_id
        COVERED.add(r.kind)
    return {r.claim_id: r for r in rows if kind is None or r.kind == kind}


def _runs(specs, source="MNIST (local IDX files)", n_epoch=4):
    """specs: dicts with grid, init, arch, depth, C_L, lr_label, seed, acc, loss, status,
    epochs, history (train loss per epoch), tau."""
    n = len(specs)
    hist = np.full((n, n_epoch), np.nan)
    for i, s in enumerate(specs):
        h = s.get("history", [1.0, 0.5, 0.2, 0.1])
        hist[i, : len(h)] = h
    coords = {k: ("run", [s.get(k, d) for s in specs]) for k, d in (
        ("grid", 0), ("init", "deep_narrow"), ("arch", "mlp"), ("pool", 1), ("depth", 4000),
        ("width", 10), ("C_L", 4.0), ("lr_label", "1e-05"), ("seed", 0))}
    coords["epoch"] = np.arange(1, n_epoch + 1)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, N_TEST)
    data = {
        "status": ("run", [s.get("status", "max_epochs") for s in specs]),
        "test_acc_final": ("run", [s["acc"] for s in specs]),
        "final_loss": ("run", [s.get("loss", 0.0055) for s in specs]),
        "epochs": ("run", [s.get("epochs", 1500) for s in specs]),
        "lr_used": ("run", [1e-5] * n), "tau": ("run", [s.get("tau", 1.0) for s in specs]),
        "tau_lambda_max": ("run", [0.5] * n), "lambda_max_init": ("run", [2.0] * n),
        "train_loss": (("run", "epoch"), hist),
        "test_pred": (("run", "test_point"), np.tile(y, (n, 1))),
        "y_test": ("test_point", y), "krr_test_pred": ("test_point", y),
        "krr_test_acc": ((), 0.9), "majority_rate": ((), 0.11),
        "best_constant_mse": ((), 0.09),
    }
    return xr.Dataset(data, coords=coords, attrs={"data_source": source, "n_train": 1000})


def test_trains_mlp():
    good = _verdicts(_runs([{"acc": 0.97, "seed": s} for s in range(3)]), kind="trains")
    assert [r.verdict for r in good.values()] == [HOLDS]
    bad = _verdicts(_runs([{"acc": 0.2, "seed": s} for s in range(3)]), kind="trains")
    assert [r.verdict for r in bad.values()] == [FAILS]
    edge = _verdicts(_runs([{"acc": 0.8}]), kind="trains")
    assert [r.verdict for r in edge.values()] == [NOT_RESOLVED]
    # every deep-narrow depth gets its row (Fig. 4.2(a)'s depth-1000 MLP at paper scale)
    both = _verdicts(_runs([{"acc": 0.97}, {"acc": 0.95, "depth": 1000, "grid": 1,
                                            "C_L": 1.0}]), kind="trains")
    assert set(both) == {"trains_deep_narrow_D4000_lr1e-05", "trains_deep_narrow_D1000_lr1e-05"}


def test_trains_cnn_gate_reads_the_run():
    cnn = {"arch": "cnn", "acc": 0.2, "depth": 100, "tau": 0.01, "epochs": 12}
    learning = _verdicts(_runs([cnn]), kind="trains")
    (row,) = learning.values()
    # still learning when the short budget ran out: not resolved, the reason from the run
    assert row.verdict == NOT_RESOLVED
    assert "kernel time 1.2 < 1000" in row.notes and "1 -> 0.2 -> 0.1" in row.notes
    # the loss stalled: the budget was not what stopped it, the row fails
    flat = _verdicts(_runs([{**cnn, "history": [0.09, 0.09, 0.09, 0.09]}]), kind="trains")
    assert [r.verdict for r in flat.values()] == [FAILS]
    diverged = _verdicts(_runs([{**cnn, "status": "diverged"}]), kind="trains")
    assert [r.verdict for r in diverged.values()] == [FAILS]
    trains = _verdicts(_runs([{**cnn, "acc": 0.95}]), kind="trains")
    assert [r.verdict for r in trains.values()] == [HOLDS]


def test_baseline_fails():
    base = {"init": "he_uniform", "grid": 1, "depth": 1000, "epochs": 2}
    untrainable = _runs([{**base, "acc": 0.1, "loss": 0.09, "lr_label": lr}
                         for lr in ("0.001", "0.1")])
    assert [r.verdict for r in _verdicts(untrainable, kind="baseline_fails").values()] == [HOLDS]
    trainable = _runs([{**base, "acc": 0.1, "loss": 0.09, "lr_label": "0.001"},
                       {**base, "acc": 0.9, "loss": 0.01, "lr_label": "0.1"}])
    assert [r.verdict for r in _verdicts(trainable, kind="baseline_fails").values()] == [FAILS]
    short = _runs([{**base, "acc": 0.1, "loss": 0.09, "epochs": 1}])
    assert [r.verdict for r in _verdicts(short, kind="baseline_fails").values()] == [
        NOT_RESOLVED]


def test_table41():
    paper_run = _runs([{"acc": 0.975, "loss": 0.006}])
    rows = _verdicts(paper_run)
    assert rows["table41_test_acc_mlp_10class"].verdict == HOLDS
    assert rows["table41_train_loss_mlp_10class"].verdict == HOLDS
    # the binary row is not run: not resolved with the config's reason
    assert rows["table41_test_acc_cnn_binary"].verdict == NOT_RESOLVED
    assert "too deep" in rows["table41_test_acc_cnn_binary"].notes
    worse = _verdicts(_runs([{"acc": 0.90, "loss": 0.05}]))
    assert worse["table41_test_acc_mlp_10class"].verdict == FAILS
    assert worse["table41_train_loss_mlp_10class"].verdict == FAILS
    # the laptop's stand-in run: not the paper's, the differences read from the run
    laptop = _verdicts(_runs([{"acc": 0.975, "depth": 1000, "C_L": 1.0, "epochs": 12}],
                             source="scikit-learn digits (8x8, bundled), not MNIST"))
    row = laptop["table41_test_acc_mlp_10class"]
    assert row.verdict == NOT_RESOLVED
    assert "depth 1000 vs 4000" in row.notes and "epochs 12 vs 1500" in row.notes
    assert laptop["table41_train_loss_mlp_10class"].verdict == NOT_RESOLVED
    assert pc.paper_row(0.9402)["epochs"] == 2000


def _spread_cube(scale):
    """theta0 = theta_inf (1 + noise scale(D) / sqrt(seed noise))."""
    rng = np.random.default_rng(1)
    depths = np.array([10, 100, 1000])
    noise = rng.standard_normal((3, 32, 2))
    theta_inf = np.array([1.0, 0.5])
    theta0 = theta_inf * (1 + noise * np.array([scale(d) for d in depths])[:, None, None])
    return xr.Dataset({"theta0": (("spread_depth", "spread_seed", "pair"), theta0),
                       "theta_inf": ("pair", theta_inf), "spread_C_L": ((), 1.0)},
                      coords={"spread_depth": depths, "spread_seed": np.arange(32),
                              "pair": ["a", "b"]})


def test_init_converges_and_spread():
    good = _verdicts(_spread_cube(lambda d: 1 / math.sqrt(d)))
    assert good["init_converges_to_limit"].verdict == HOLDS
    assert good["init_spread_slope"].verdict == HOLDS
    assert good["init_spread_slope"].origin == PROJECT_CHECK
    bad = _verdicts(_spread_cube(lambda d: 0.01 * math.sqrt(d)))
    assert bad["init_converges_to_limit"].verdict == FAILS
    assert bad["init_spread_slope"].verdict == FAILS
    flat = _verdicts(_spread_cube(lambda d: 0.1))
    assert flat["init_converges_to_limit"].verdict == NOT_RESOLVED


def _toy_cube(change, rms):
    """change(depth), rms(depth) -> per-seed values around them."""
    depths = [100, 1000]
    # seed scatter of +-30 %, opposite pattern at the two depths: equal means stay equal
    jitter = 0.3 * np.array([[1, -1, 1, -1], [-1, 1, -1, 1]])
    ch = np.array([[change(d) * (1 + jitter[i, j]) for j in range(4)]
                   for i, d in enumerate(depths)])
    target = np.zeros(5)
    kgd = np.zeros((2, 5))
    pred = np.array([[[rms(d) * (1 + jitter[i, j])] * 5 for j in range(4)]
                     for i, d in enumerate(depths)])
    return xr.Dataset({"ntk_rel_change": (("toy_depth", "toy_seed"), ch),
                       "toy_pred": (("toy_depth", "toy_seed", "gamma"), pred),
                       "kgd_pred": (("toy_depth", "gamma"), kgd),
                       "toy_target": ("gamma", target)},
                      coords={"toy_depth": depths, "toy_seed": np.arange(4),
                              "gamma": np.linspace(0.1, 1.5, 5)})


def test_toy_kinds():
    good = _verdicts(_toy_cube(lambda d: 1 / d, lambda d: 1 / d))
    assert good["kernel_change_falls_with_depth"].verdict == HOLDS
    assert good["net_approaches_limit_kernel_dynamics"].verdict == HOLDS
    bad = _verdicts(_toy_cube(lambda d: d, lambda d: d))
    assert bad["kernel_change_falls_with_depth"].verdict == FAILS
    assert bad["net_approaches_limit_kernel_dynamics"].verdict == FAILS
    same = _verdicts(_toy_cube(lambda d: 1.0, lambda d: 1.0))
    assert same["kernel_change_falls_with_depth"].verdict == NOT_RESOLVED
    assert same["net_approaches_limit_kernel_dynamics"].verdict == NOT_RESOLVED


def test_krr_agreement_project_check():
    cube = _runs([{"acc": 0.9}])
    row = _verdicts(cube)["krr_agreement_D4000"]
    assert row.verdict == HOLDS and row.origin == PROJECT_CHECK
    cube["krr_test_pred"] = ("test_point", (cube.y_test.values + 1) % 10)
    assert _verdicts(cube)["krr_agreement_D4000"].verdict == FAILS


def test_every_kind_has_a_counter_example():
    """Runs last in this file: every kind the module can emit was produced above."""
    assert set(pc.KINDS) <= COVERED, sorted(set(pc.KINDS) - COVERED)
