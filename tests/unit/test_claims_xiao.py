"""Every claim kind of Xiao et al.'s paper_claims on small synthetic cubes: one where the
paper's statement is true (``holds``), one where it is false (``fails``) and, where the rule
has noise, one inside the noise (``not resolved``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from depthlab.claims import FAILS, HOLDS, NOT_RESOLVED, PAPER_CLAIM
from depthlab.kernels.phase import phase_point
from depthlab.studies.xiao import paper_claims as pc
from depthlab.studies.xiao.grid import critical_w

B_VAR = 0.1849
CRIT = critical_w(B_VAR, "erf")
REPO = Path(__file__).resolve().parents[2]
STUDY = {"b_var": B_VAR, "figures": {}}
DEPTHS = np.unique(np.geomspace(1, 400, 40).round().astype(int))
COVERED: set[str] = set()


def _verdicts(cube, kind=None):
    rows = pc.claims(cube, STUDY)
    for r in rows:
        assert r.quote and r.where and r.origin == PAPER_CLAIM, r.claim_id
        COVERED.add(r.kind)
    return {r.claim_id: r.verdict for r in rows if kind is None or r.kind == kind}


def _points(ws):
    return [phase_point(w, B_VAR, "erf") for w in ws]


# ----------------------------------------------------------------------- phase block

def _phase_cube(kappa, eta=None, dropout=None, m=6, archs=("fc",)):
    """kappa(phase, chi_1, depth) -> array; eta likewise (default 2 / (m l))."""
    ws = [1.2, CRIT, 2.5]
    pts = _points(ws)
    shape = (1, len(archs), len(ws), len(DEPTHS))
    kap, et = np.zeros(shape), np.zeros(shape)
    for i, p in enumerate(pts):
        kap[0, :, i] = kappa(p.phase, p.chi_1, DEPTHS.astype(float))
        et[0, :, i] = (eta or (lambda ph, c, d: 2.0 / (m * d)))(p.phase, p.chi_1,
                                                                  DEPTHS.astype(float))
    dims = ("size", "arch", "w_phase", "depth_phase")
    ds = xr.Dataset(
        {"phase_kappa": (dims, kap), "phase_eta_theory": (dims, et),
         "phase_lambda_max": (dims, np.ones(shape)), "phase_lambda_bulk": (dims, np.ones(shape)),
         "phase_kappa_min": (dims, kap),
         "w_phase_phase": ("w_phase", [p.phase for p in pts]),
         "w_phase_q_star": ("w_phase", [p.q_star for p in pts]),
         "w_phase_chi_1": ("w_phase", [p.chi_1 for p in pts]),
         "w_phase_label": ("w_phase", ["1.2", "critical", "2.5"]),
         "size_m": ("size", [m]), "size_k": ("size", [3])},
        coords={"size": [f"m{m}k3"], "arch": list(archs), "w_phase": ws,
                "depth_phase": DEPTHS})
    if dropout is not None:
        keeps = [1.0, 0.7]
        kd = np.zeros((2, len(ws), len(DEPTHS)))
        for j, keep in enumerate(keeps):
            for i, p in enumerate(pts):
                kd[j, i] = dropout(keep, p, DEPTHS.astype(float))
        ds = ds.assign_coords(keep=keeps)
        ds["kappa_dropout"] = (("keep", "w_phase", "depth_phase"), kd)
        ds.attrs["dropout_m"] = m
    return ds


def _true_kappa(phase, chi, d, m=6):
    if phase == "chaotic":
        return 1.0 + 5.0 * 0.9**d
    if phase == "critical":
        return (m + 2) / 2 + 1.0 / d
    return chi**-d / d


def test_table1_kinds_hold_and_fail():
    good = _verdicts(_phase_cube(_true_kappa))
    assert good["chaotic_kappa_fc_m6k3"] == HOLDS
    assert good["critical_kappa_fc_m6k3"] == HOLDS
    assert good["ordered_rate_fc_m6k3"] == HOLDS
    # kappa that stays at 5 (chaotic), at 3x the limit (critical), grows like l (ordered)
    bad = _verdicts(_phase_cube(lambda ph, chi, d: np.full_like(d, 5.0) if ph == "chaotic"
                                else (np.full_like(d, 12.0) if ph == "critical" else d)))
    assert bad["chaotic_kappa_fc_m6k3"] == FAILS
    assert bad["critical_kappa_fc_m6k3"] == FAILS
    assert bad["ordered_rate_fc_m6k3"] == FAILS
    # kappa - 1 at rounding level from the first depth on: nothing to see falling
    flat = _verdicts(_phase_cube(lambda ph, chi, d: 1 + 1e-15 + 0 * d if ph == "chaotic"
                                 else _true_kappa(ph, chi, d)), "chaotic_kappa")
    assert flat == {"chaotic_kappa_fc_m6k3": NOT_RESOLVED}
    # still falling at the deepest depth, but only by 1/400: the grid is too shallow
    slow = _verdicts(_phase_cube(lambda ph, chi, d: 1 + 1 / d if ph == "chaotic"
                                 else _true_kappa(ph, chi, d)), "chaotic_kappa")
    assert slow == {"chaotic_kappa_fc_m6k3": NOT_RESOLVED}


def test_chaotic_kappa_at_rounding_level_reads_the_same_on_every_cpu():
    """kappa - 1 that reaches float64 rounding at depth (1.3e-15 on one CPU, 9e-16 on
    another: seen between two machines) counts as the floor: same measured bound, holds."""
    def run(tail):
        cube = _phase_cube(lambda ph, chi, d: np.where(d < 300, 1.0 + 5.0 * 0.9**d, 1.0 + tail)
                           if ph == "chaotic" else _true_kappa(ph, chi, d))
        (row,) = [r for r in pc.claims(cube, STUDY) if r.kind == "chaotic_kappa"]
        return row
    a, b = run(1.3e-15), run(9e-16)
    assert a.verdict == b.verdict == HOLDS
    assert a.measured == b.measured == pytest.approx(pc.KAPPA_FLOOR / 4.5)
    assert "counted as 1e-12" in a.notes


def _true_eta(phase, chi, d):
    return {"chaotic": chi**-d, "critical": 1.0 / d, "ordered": 0.3 + 0 * d}[phase]


def test_eta_depth_scaling():
    good = _verdicts(_phase_cube(_true_kappa, _true_eta), "eta_depth")
    assert set(good.values()) == {HOLDS} and len(good) == 3
    # the rivals: constant in the chaotic and critical phases, 1/l in the ordered one
    bad = _verdicts(_phase_cube(_true_kappa, lambda ph, c, d: 1.0 / d if ph == "ordered"
                                else 0.3 + 0 * d), "eta_depth")
    assert set(bad.values()) == {FAILS} and len(bad) == 3


def test_dropout_plateau():
    m = 6

    def plateau(keep, p, d):
        if p.phase != "ordered" or keep == 1:
            return p.chi_1**-d / d
        lim = pc.dropout_limit(m, p.q_star, p.chi_1, B_VAR, keep)
        return lim - (lim - 1) * 0.5**d

    good = _verdicts(_phase_cube(_true_kappa, dropout=plateau), "dropout_plateau")
    assert good == {"dropout_plateau_w1.2_keep0.7": HOLDS}
    bad = _verdicts(_phase_cube(_true_kappa, dropout=lambda keep, p, d: p.chi_1**-d / d),
                    "dropout_plateau")
    assert bad == {"dropout_plateau_w1.2_keep0.7": FAILS}


# ----------------------------------------------------------------------- plane block

ORDERED = [0.5, 1.0, 1.2, 1.4, 1.6]
CHAOTIC = [2.2, 2.5, 3.0, 4.0]
CHANCE = 0.1


def _curve(depths, edge):
    return CHANCE + 0.85 / (1.0 + (depths / edge) ** 6)


def _plane_cube(edge_of, ws=ORDERED + CHAOTIC, depths=DEPTHS, delta=None, seeds=None,
                ridge=None):
    """edge_of(phase, xi) -> edge depth of the accuracy that phase's claim reads."""
    pts = _points(ws)
    d = np.asarray(depths, float)
    train = np.ones((1, len(ws), len(d), 1))
    test = np.ones((1, len(ws), len(d), 1))
    dn = np.zeros((1, len(ws), len(d)))
    for i, p in enumerate(pts):
        xi = p.xi_1 if p.phase == "ordered" else p.xi_star
        curve = _curve(d, edge_of(p.phase, xi))
        (train if p.phase == "ordered" else test)[0, i, :, 0] = curve
        dn[0, i] = delta(p, d) if delta else 0.5
    dims = ("plane_arch", "w_plane", "depth_plane")
    ds = xr.Dataset(
        {"plane_single_train_acc": ((*dims, "time_plane"), train),
         "plane_single_test_acc": ((*dims, "time_plane"), test),
         "plane_delta_norm": (dims, dn),
         "w_plane_phase": ("w_plane", [p.phase for p in pts]),
         "w_plane_xi_1": ("w_plane", [p.xi_1 for p in pts]),
         "w_plane_xi_star": ("w_plane", [p.xi_star for p in pts]),
         "w_plane_label": ("w_plane", [f"{w:g}" for w in ws])},
        coords={"plane_arch": ["fc"], "w_plane": ws, "depth_plane": np.asarray(depths),
                "time_plane": [100.0]})
    if ridge is not None:
        # the ordered bulk eigenvalues fall like l chi_1^l; the ridge is fixed
        bulk = np.array([d * p.chi_1**d for p in pts])[None]
        ds["plane_lambda_bulk"] = (dims, bulk)
        ds["plane_ridge"] = (dims, np.full(bulk.shape, ridge))
    if seeds is not None:
        # nets: each seed's edge scattered by a factor exp(seed jitter)
        rng = np.random.default_rng(0)
        for var in ("train_acc", "test_acc"):
            src = ds[f"plane_single_{var}"].isel(plane_arch=0, time_plane=0).values
            a = np.repeat(src[:, :, None], len(seeds), axis=2)
            for i, p in enumerate(pts):
                xi = p.xi_1 if p.phase == "ordered" else p.xi_star
                for j in range(len(seeds)):
                    if (var == "train_acc") == (p.phase == "ordered"):
                        a[i, :, j] = _curve(d, edge_of(p.phase, xi) * math.exp(
                            0.05 * rng.standard_normal()))
            ds[f"plane_net_final_{var}"] = (("w_plane", "depth_plane", "plane_seed"), a)
        ds = ds.assign_coords(plane_seed=seeds)
        ds.attrs["plane_nets_settings"] = json.dumps({"width": 8, "batch_size": 4, "steps": 1})
    return ds


def test_plane_edges_track_xi():
    good = _verdicts(_plane_cube(lambda ph, xi: 3.0 * xi), "plane_xi")
    assert good == {"plane_ordered_xi": HOLDS, "plane_chaotic_xi": HOLDS}
    # an edge depth that does not depend on sigma_w^2 at all
    const = _verdicts(_plane_cube(lambda ph, xi: 12.0), "plane_xi")
    assert const == {"plane_ordered_xi": FAILS, "plane_chaotic_xi": FAILS}
    # three chaotic sigma_w^2 whose xi_* differ by 1.5x on a doubling depth grid
    narrow = pc.claims(_plane_cube(lambda ph, xi: 3.0 * xi, ws=[0.5, 2.2, 2.3, 2.5],
                                   depths=[1, 2, 4, 8, 16, 32, 64]), STUDY)
    row = next(r for r in narrow if r.claim_id == "plane_chaotic_xi")
    assert row.verdict == NOT_RESOLVED and "too narrow" in row.notes
    assert "need 3" in next(r for r in narrow if r.claim_id == "plane_ordered_xi").notes


def test_plane_net_edges_track_xi():
    good = _verdicts(_plane_cube(lambda ph, xi: 3.0 * xi, seeds=[0, 1, 2]), "plane_net_xi")
    assert good == {"plane_net_ordered_xi": HOLDS, "plane_net_chaotic_xi": HOLDS}
    bad = _verdicts(_plane_cube(lambda ph, xi: 12.0, seeds=[0, 1, 2]), "plane_net_xi")
    assert bad == {"plane_net_ordered_xi": FAILS, "plane_net_chaotic_xi": FAILS}


def test_delta_rate():
    def true(p, d):
        xi = p.xi_1 if p.phase == "ordered" else p.xi_star
        return d * np.exp(-d / xi)

    good = _verdicts(_plane_cube(lambda ph, xi: 3.0 * xi, delta=true), "delta_rate")
    assert good["delta_rate_ordered_w1.6"] == HOLDS and good["delta_rate_chaotic_w2.2"] == HOLDS
    # a residual that decays at half the rate
    half = _verdicts(_plane_cube(lambda ph, xi: 3.0 * xi,
                                 delta=lambda p, d: true(p, d / 2)), "delta_rate")
    assert half["delta_rate_ordered_w1.6"] == FAILS and half["delta_rate_chaotic_w2.2"] == FAILS
    # sigma_w^2 = 0.5: Delta below rounding over the deep half of the grid
    assert good["delta_rate_ordered_w0.5"] == NOT_RESOLVED
    # O_sigma: only depths where the bulk is below the ridge count (sigma_w^2 = 1.6: the
    # bulk l chi_1^l stays above 1e-6 almost to the end of the grid)
    ridge = pc.claims(_plane_cube(lambda ph, xi: 3.0 * xi, delta=true, ridge=1e-6), STUDY)
    by_id = {r.claim_id: r for r in ridge}
    assert by_id["delta_rate_ordered_w1"].verdict == HOLDS
    assert by_id["delta_rate_ordered_w1.6"].verdict == NOT_RESOLVED
    assert "bulk below the ridge" in by_id["delta_rate_ordered_w1.6"].notes


# ----------------------------------------------------------------------- pooling

def _pool_cube(edge_p, edge_f, ws=(1.0, 1.2, 1.4, 2.2, 2.5, 3.0)):
    pts = _points(ws)
    d = DEPTHS.astype(float)
    acc = np.zeros((2, len(ws), len(d)))
    for i, p in enumerate(pts):
        acc[0, i] = _curve(d, edge_f(p.phase))
        # CNN-P's curve lower by a factor (the global-pooling offset): it moves no edge
        acc[1, i] = CHANCE + 0.6 * (_curve(d, edge_p(p.phase)) - CHANCE)
    return xr.Dataset(
        {"pool_mean_test_acc_inf": (("pool_arch", "w_pool", "depth_pool"), acc),
         "w_pool_phase": ("w_pool", [p.phase for p in pts])},
        coords={"pool_arch": ["cnn_f", "cnn_p"], "w_pool": list(ws), "depth_pool": DEPTHS})


def test_pooling():
    paper = _verdicts(_pool_cube(lambda ph: 40 if ph == "chaotic" else 8, lambda ph: 16),
                      "pooling")
    assert paper == {"pooling_chaotic": HOLDS, "pooling_ordered": HOLDS}
    reverse = _verdicts(_pool_cube(lambda ph: 8 if ph == "chaotic" else 40, lambda ph: 16),
                        "pooling")
    assert reverse == {"pooling_chaotic": FAILS, "pooling_ordered": FAILS}
    # only an accuracy offset between the architectures: the edges agree
    offset = _verdicts(_pool_cube(lambda ph: 16, lambda ph: 16), "pooling")
    assert offset == {"pooling_chaotic": NOT_RESOLVED, "pooling_ordered": NOT_RESOLVED}


# ----------------------------------------------------------------------- Fig. 2

# rho = 2^(k/3) from 1/4 to 4: the laptop grid's spacing, reaching far enough below 1 that a
# cliff can be separated outside the window on the low side too
CLIFF_RHOS = [2.0 ** (k / 3) for k in range(-6, 7)]


def _seed_curve(collapse_at):
    """(best train acc, status) by rho of one net that trains up to the rho below
    ``collapse_at`` and diverges from it on (None: trains at every rho)."""
    acc, status = [], []
    for r in CLIFF_RHOS:
        dead = collapse_at is not None and r >= collapse_at - 1e-9
        acc.append(0.1 if dead else 0.95)
        status.append("diverged" if dead else "converged")
    return acc, status


def _cliff_cube(collapse_by_seed):
    """One (depth 5, sigma_w^2 = 1) cell whose seed j collapses at ``collapse_by_seed[j]``."""
    curves = [_seed_curve(c) for c in collapse_by_seed]
    acc = np.array([a for a, _ in curves]).T[None, None]
    status = np.array([s for _, s in curves]).T[None, None]
    dims = ("cliff_depth", "w_cliff", "rho", "seed")
    return xr.Dataset(
        {"cliff_best_train_acc": (dims, acc), "cliff_status": (dims, status),
         "w_cliff_label": ("w_cliff", ["1"])},
        coords={"cliff_depth": [5], "w_cliff": [1.0], "rho": CLIFF_RHOS,
                "seed": list(range(len(collapse_by_seed)))})


def _cliff_verdict(collapse_by_seed):
    return _verdicts(_cliff_cube(collapse_by_seed), "lr_cliff")["lr_cliff_L5_w1"]


def test_lr_cliff_holds_and_fails_on_both_sides_of_the_window():
    r = CLIFF_RHOS
    # every net collapses one step past rho = 1 (bracket (1, 1.26]): the paper's prediction
    assert _cliff_verdict([r[7]] * 4) == HOLDS
    # ... or one step below it (bracket (0.79, 1]): eta_theory a factor 1.26 too large
    assert _cliff_verdict([r[6]] * 4) == HOLDS
    # every net trains up to rho = 3.17 and dies at 4: eta_theory far too small
    assert _cliff_verdict([r[12]] * 4) == FAILS
    # nets that train at every rho of the grid: the cliff lies past 4 (censored): fails
    assert _cliff_verdict([None] * 4) == FAILS
    # nets that already die at rho = 0.31: eta_theory far too large
    assert _cliff_verdict([r[1]] * 4) == FAILS


def test_lr_cliff_is_not_resolved_at_the_edge_or_when_the_seeds_straddle_it():
    r = CLIFF_RHOS
    # every net dies at rho = 2 (bracket (1.59, 2]): the grid cannot place the cliff inside
    # the window rather than on its edge
    assert _cliff_verdict([r[9]] * 4) == NOT_RESOLVED
    # two seeds die at 2, two at 2.52: the mean sits on the edge
    assert _cliff_verdict([r[9], r[9], r[10], r[10]]) == NOT_RESOLVED
    # a wide spread over the seeds, centred inside: the SE covers an edge
    assert _cliff_verdict([r[2], r[6], r[11], r[12]]) == NOT_RESOLVED
    # one seed never resolves, however clear its cliff
    assert _cliff_verdict([r[7]]) == NOT_RESOLVED
    # nets that never train anywhere on the grid
    never = _cliff_cube([r[7]] * 4)
    never["cliff_best_train_acc"][:] = 0.1
    assert _verdicts(never, "lr_cliff") == {"lr_cliff_L5_w1": NOT_RESOLVED}


def test_lr_cliff_window_setting():
    """A narrower window from the config decides the same cliffs differently; a reversed one
    is refused naming the key."""
    r = CLIFF_RHOS
    cube = _cliff_cube([r[7]] * 4)  # every net dies at 1.26: inside (1/2, 2]
    narrow = {**STUDY, "claims": {"lr_cliff": {"window": [1.5, 2.0]}}}
    assert {x.claim_id: x.verdict for x in pc.claims(cube, narrow)
            if x.kind == "lr_cliff"} == {"lr_cliff_L5_w1": FAILS}
    with pytest.raises(ValueError, match="claims.lr_cliff"):
        pc.claims(cube, {**STUDY, "claims": {"lr_cliff": {"window": [2.0, 0.5]}}})
    # the config schema takes the setting, and refuses a malformed one at load
    from depthlab.config import ConfigError, check_config, load_yaml_strict

    config = load_yaml_strict(REPO / "config" / "config.yaml")
    config["studies"]["xiao"]["claims"] = {"lr_cliff": {"window": [1.5, 2.0]}}
    check_config(config)
    config = load_yaml_strict(REPO / "config" / "config.yaml")
    config["studies"]["xiao"]["claims"] = {"lr_cliff": {"window": [1.5]}}
    with pytest.raises(ConfigError, match="lr_cliff.window"):
        check_config(config)


def test_cliff_estimate_keeps_the_grid_resolution_however_many_seeds():
    """Seeds that share a bracket do not locate the cliff inside it: the SE keeps the
    bracket's own spread (uniform in log rho, width / sqrt 12), not divided by sqrt n."""
    rhos = np.array(CLIFF_RHOS)
    step = math.log(2.0) / 3
    for n in (2, 8, 32):
        mean, se, censored = pc.cliff_estimate([(rhos[8], rhos[9])] * n, rhos)
        assert mean == pytest.approx(0.5 * (math.log(rhos[8]) + math.log(rhos[9])))
        assert se == pytest.approx(step / math.sqrt(12)) and censored == 0
    # a censored bracket is closed one grid step past the grid
    mean, _, censored = pc.cliff_estimate([(rhos[-1], math.inf)] * 2, rhos)
    assert censored == 2 and mean == pytest.approx(math.log(rhos[-1]) + step / 2)
    # the brackets a net's accuracy curve gives
    acc, status = _seed_curve(rhos[9])
    assert pc.cliff_bracket(rhos, np.array(acc), np.array(status), 0.5) == (
        pytest.approx(rhos[8]), pytest.approx(rhos[9]))
    acc, status = _seed_curve(None)
    assert pc.cliff_bracket(rhos, np.array(acc), np.array(status), 0.5) == (
        pytest.approx(rhos[-1]), math.inf)


def test_edge_and_slope_helpers():
    d = np.array([1, 2, 4, 8, 16.0])
    assert pc.edge_depth(d, np.array([0.9, 0.9, 0.2, 0.1, 0.1]), 0.5) == (
        4.0, pytest.approx(math.log(2) / math.sqrt(12)))
    assert math.isnan(pc.edge_depth(d, np.array([0.2] * 5), 0.5)[0])  # censored below
    assert math.isnan(pc.edge_depth(d, np.array([0.9] * 5), 0.5)[0])  # never falls
    slope, se, n = pc.xi_slope(np.array([1, 2, 4.0]), np.array([3, 6, 12.0]),
                               np.zeros(3))
    assert slope == pytest.approx(1.0) and se == pytest.approx(0.0, abs=1e-12) and n == 3


def test_every_kind_has_a_counter_example():
    """Runs last in this file: every kind the module can emit was produced above (where its
    holds and fails cubes are asserted)."""
    assert set(pc.KINDS) <= COVERED, sorted(set(pc.KINDS) - COVERED)


def test_fig1_masks_float64_saturation_and_names_its_data():
    """The rows cite Fig. 1: past kappa ~ KAPPA_CAP float64 rounding sets the small
    eigenvalues, so chi_1^l kappa would plunge (1e-80); those depths are not drawn, and the
    footer names the Gaussian images, not the study's data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from depthlab.studies.xiao.figures import plot_dropout, plot_kappa
    from depthlab.studies.xiao.table1 import KAPPA_CAP

    def saturating(ph, chi, d):
        return np.minimum(_true_kappa(ph, chi, d), 1e16)  # rounding: lambda_min ~ 1e-16

    cube = _phase_cube(saturating, dropout=lambda keep, p, d: np.minimum(
        p.chi_1**-d / d, 1e16), archs=("fc", "cnn_p"))
    cube.attrs.update(choices=json.dumps({"b_var": B_VAR, "critical_w_var": CRIT,
                                          "conv": "CNN padding text"}),
                      data_source="scikit-learn digits")
    fig = plot_kappa(cube, {})
    ordered = fig.axes[1]
    ys = np.concatenate([np.asarray(line.get_ydata(), float) for line in ordered.get_lines()
                         if len(line.get_ydata()) > 2])
    assert np.nanmin(ys) > 1.0 / DEPTHS.max() / 10  # chi^l kappa ~ 1/l where drawn
    footer = " ".join(t.get_text() for t in fig.texts)
    assert "Gaussian images" in footer and "digits" not in footer
    plt.close(fig)
    fig = plot_dropout(cube, {})
    ys = np.concatenate([np.asarray(line.get_ydata(), float) for line in fig.axes[0].get_lines()
                         if len(line.get_ydata()) > 2])
    assert np.nanmax(ys) < KAPPA_CAP and "padding" not in " ".join(t.get_text()
                                                                   for t in fig.texts)
    plt.close(fig)


def test_delta_rate_excludes_the_floor_of_its_computation():
    """An ordered-phase Delta that decays at the paper's rate and then sits on a flat floor
    (the real sigma_w^2 = 0.5 curve stays at 1.6297e-8 from l = 50 on): the rate is fitted
    on the decay only. Without the cut the plateau drags the rate to a third of the
    paper's and the row fails."""
    def floored(p, d):
        xi = p.xi_1 if p.phase == "ordered" else p.xi_star
        decay = d * np.exp(-d / xi)
        return np.maximum(decay, 1.6e-8) if p.phase == "ordered" else decay

    depths = [1, 2, 4, 6, 8, 10, 12, 16, 20, 25, 30, 40, 50, 60, 70, 85, 100, 120, 150]
    rows = {r.claim_id: r for r in pc.claims(
        _plane_cube(lambda ph, xi: 3.0 * xi, delta=floored, depths=depths), STUDY)}
    row = rows["delta_rate_ordered_w1"]
    assert row.verdict == HOLDS and "stops falling" in row.notes
    assert row.measured == pytest.approx(row.paper_value, rel=0.05)
    # the chaotic curves never reach the floor on this grid: every depth of the fit is kept
    assert "stops falling" not in rows["delta_rate_chaotic_w2.2"].notes
    # the cut itself: a rise before any fall is not a floor; a plateau after a fall is
    v = np.array([0.5, 0.8, 0.3, 1e-3, 1e-8, 1e-8, 1e-8])
    assert pc.before_floor(v, np.ones(7, bool)).tolist() == [True] * 4 + [False] * 3
    v = np.array([1.0, 0.1, 1e-3, 1e-5, 2e-8, 3e-8])
    assert pc.before_floor(v, np.ones(6, bool)).tolist() == [True] * 4 + [False] * 2
    falling = np.array([1.0, 0.1, 1e-3, 1e-9, 1e-20])
    assert pc.before_floor(falling, np.ones(5, bool)).all()
