"""Geiger et al. claims are falsifiable by construction: for every claim kind, a hand-built
cube where the paper's statement is true gives `holds`, one where it is false gives `fails`,
and one inside the noise (or on widths spanning too little) gives `not resolved` with the
reason computed from the cube. Diverged and capped runs never count; every quote is the
paper's own words."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from depthlab import claims as dc
from depthlab.studies.geiger import paper_claims as gc

SEEDS = [0, 1, 2]
X = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 1e4]  # sqrt(h) alpha of the grid
WIDE = [8, 16, 32, 64, 128]      # a 16x span: exponents can be told apart
NARROW = [32, 64]                # the laptop grid's 2x span
N_TEST = 4000  # binomial SE of a 0.07 error ~ 0.004
# multiplicative seed scatter (a few %) so that every fit has a finite SE
NOISE = np.array([0.97, 1.0, 1.03])


def geiger_cube(widths=WIDE, *, a_kernel=1.25, a_weights=0.35, h_star=0.5, t1_h=0.5,
                var_h=-1.0, ens=None, feature_err=(0.08, 0.09, 0.085),
                lazy_err=(0.12, 0.13, 0.125), lazy_net_err=None, status=None, seeds=SEEDS,
                xs=X) -> xr.Dataset:
    """Power laws on a sparse alpha axis (each width its own alphas, as sqrt(h) alpha grids
    give). The kernel change is (alpha h^h_star)^-a_kernel, so it crosses 1 at alpha* =
    h^-h_star; t1 = alpha h^t1_h; the output variance C h^var_h; the ensemble error
    ``ens(width)`` (default: the same at every width)."""
    alphas = sorted({x / np.sqrt(w) for x in xs for w in widths})
    shape = (1, 1, len(widths), len(alphas), len(seeds))
    noise = NOISE[: len(seeds)]
    arrays = {k: np.full(shape, np.nan) for k in ("ntk_change", "w_change", "test_err", "t1")}
    st = np.full(shape, "not_run", dtype=object)
    ens_err = np.full(shape[:-1], np.nan)
    ens_var = np.full(shape[:-1], np.nan)
    lazy_net_err = lazy_err if lazy_net_err is None else lazy_net_err
    for i, w in enumerate(widths):
        for x in xs:
            alpha = x / np.sqrt(w)
            j = alphas.index(alpha)
            arrays["ntk_change"][0, 0, i, j] = (alpha * w ** h_star) ** -a_kernel * noise
            arrays["w_change"][0, 0, i, j] = x ** -a_weights / np.sqrt(w) * noise
            arrays["test_err"][0, 0, i, j] = np.array(
                lazy_net_err if x > 100 else feature_err)[: len(seeds)]
            arrays["t1"][0, 0, i, j] = alpha * w ** t1_h * noise
            st[0, 0, i, j] = "converged"
            ens_err[0, 0, i, j] = ens(w) if ens else 0.07
            ens_var[0, 0, i, j] = 3.0 * w ** var_h * NOISE[(i + j) % 3]
    if status:
        for (w, x, seed), s in status.items():
            st[0, 0, widths.index(w), alphas.index(x / np.sqrt(w)), seed] = s
    dims = ("activation", "depth", "width", "alpha", "seed")
    lazy = np.broadcast_to(np.array(lazy_err)[: len(seeds)],
                           (1, 1, len(widths), len(seeds))).copy()
    lazy_dims = ("activation", "depth", "width", "seed")
    cube = xr.Dataset(
        {**{k: (dims, v) for k, v in arrays.items()}, "status": (dims, st.astype(str)),
         "ensemble_test_err": (dims[:-1], ens_err), "ensemble_var": (dims[:-1], ens_var),
         "lazy_test_err": (lazy_dims, lazy),
         "lazy_status": (lazy_dims, np.full(lazy.shape, "converged"))},
        coords={"activation": ["softplus"], "depth": [2], "width": list(widths),
                "alpha": alphas, "seed": list(seeds)})
    cube = cube.assign_coords(sqrt_h_alpha=np.sqrt(cube["width"]) * cube["alpha"])
    cube.attrs.update(data_source="scikit-learn digits (8x8, bundled), not MNIST",
                      n_test=N_TEST)
    return cube


STUDY = {"kind": "geiger", "table1": {"depths": [2], "fit_range": [5e-4, 0.2]},
         "figures": {"fig1c": {"plot": "geiger_error_vs_alpha", "activation": "softplus",
                               "depth": 2},
                     "fig3a": {"plot": "geiger_kernel_change", "activation": "softplus",
                               "depth": 2},
                     "fig3c": {"plot": "geiger_times", "activation": "softplus", "depth": 2}}}


def by_id(cube, study=STUDY):
    return {r.claim_id: r for r in gc.claims(cube, study)}


# ---------------------------------------------------------------- table1


@pytest.mark.parametrize("a_kernel,verdict", [
    (1.25, dc.HOLDS),     # the paper's L = 2 exponent
    (0.60, dc.FAILS),     # far outside the 15 % band
    (1.25 * 1.15, dc.NOT_RESOLVED),  # on the band's edge: inside the fit noise
])
def test_table1(a_kernel, verdict):
    cube = geiger_cube(a_kernel=a_kernel, h_star=0.5)
    r = by_id(cube)["table1_kernel_L2"]
    assert r.verdict == verdict and r.paper_value == 1.25
    assert r.measured == pytest.approx(a_kernel, rel=0.05) and r.uncertainty > 0
    assert r.quote.startswith("In Table 1") and r.where == "App. G, Table 1"


def test_table1_impossible_tolerance_fails_not_vanishes():
    study = {**STUDY, "claims": {"table1_kernel_L2": {"tolerance": 0.0, "separation": 0.0}}}
    r = by_id(geiger_cube(a_kernel=1.26), study)["table1_kernel_L2"]
    assert r.verdict == dc.FAILS and "<= 0 x 1.25" in r.criterion


# ---------------------------------------------------------------- lazy_limit


@pytest.mark.parametrize("net,verdict", [
    ((0.12, 0.13, 0.125), dc.HOLDS),      # the net is its frozen NTK at large sqrt(h) alpha
    ((0.15, 0.16, 0.155), dc.FAILS),      # 0.03 away: the lazy limit is not reached
    ((0.13, 0.135, 0.145), dc.NOT_RESOLVED),  # mean |diff| 0.0133 vs 0.01, SE ~ 0.004
])
def test_lazy_limit(net, verdict):
    r = by_id(geiger_cube(NARROW, lazy_net_err=net))["lazy_limit_softplus_L2_h32"]
    assert r.verdict == verdict and r.n_members == 3
    assert r.measured == pytest.approx(np.mean(np.abs(np.subtract(net, (0.12, 0.13, 0.125)))))
    assert "frozen at initialization" in r.quote and r.figure == "fig1c"


def test_lazy_limit_out_of_the_grids_reach():
    # a grid stopping at sqrt(h) alpha = 1, and a grid with one seed: labelled, not typed in
    short = by_id(geiger_cube(NARROW, xs=[0.001, 0.01, 0.1, 1.0]))["lazy_limit_softplus_L2_h32"]
    assert short.verdict == dc.NOT_RESOLVED
    assert "out of the laptop grid's reach" in short.notes and "here, 1, is below" in short.notes
    one = by_id(geiger_cube(NARROW, seeds=[0]))["lazy_limit_softplus_L2_h32"]
    assert one.verdict == dc.NOT_RESOLVED and "the grid trains 1 seed(s) here" in one.notes


# ---------------------------------------------------------------- feature_vs_lazy


@pytest.mark.parametrize("feature,verdict", [
    ((0.08, 0.09, 0.085), dc.HOLDS),
    ((0.20, 0.21, 0.22), dc.FAILS),           # lazy better, separated
    ((0.11, 0.14, 0.12), dc.NOT_RESOLVED),    # overlapping
])
def test_feature_vs_lazy(feature, verdict):
    r = by_id(geiger_cube(NARROW, feature_err=feature))["feature_vs_lazy_softplus_L2_h32"]
    assert r.verdict == verdict
    assert r.measured == pytest.approx(np.mean(feature) - 0.125)
    assert "feature learning outperforms lazy learning" in r.quote


def test_diverged_and_capped_runs_never_count():
    status = {(32, 1e4, 2): "diverged", (32, 0.001, 0): "max_steps",
              (32, 0.001, 1): "max_steps"}
    cube = geiger_cube(NARROW, status=status)
    cube["test_err"].loc[dict(width=32, alpha=1e4 / np.sqrt(32), seed=2)] = 0.5
    got = by_id(cube)
    lazy = got["lazy_limit_softplus_L2_h32"]
    assert lazy.verdict == dc.HOLDS and lazy.n_members == 2 and "1 diverged" in lazy.notes
    feat = got["feature_vs_lazy_softplus_L2_h32"]
    assert feat.verdict == dc.NOT_RESOLVED and "2 max_steps" in feat.notes
    assert "1 of the 3 seeds the grid trains here converged" in feat.notes


# ---------------------------------------------------------------- alpha_star


@pytest.mark.parametrize("h_star,verdict", [
    (0.5, dc.HOLDS),    # alpha* ~ h^-1/2
    (1.0, dc.FAILS),    # alpha* ~ 1/h
    (0.0, dc.FAILS),    # alpha* independent of h
    (0.75, dc.NOT_RESOLVED),  # on the midpoint between the paper and the 1/h rival
])
def test_alpha_star(h_star, verdict):
    r = by_id(geiger_cube(h_star=h_star))["alpha_star_softplus_L2"]
    assert r.verdict == verdict and r.measured == pytest.approx(-h_star, abs=0.02)
    assert "alpha^* \\sim h^{-1/2}" in r.quote and r.figure == "fig3a"


def test_alpha_star_on_a_2x_width_span_is_out_of_reach():
    r = by_id(geiger_cube(NARROW, h_star=1.0))["alpha_star_softplus_L2"]
    assert r.verdict == dc.NOT_RESOLVED
    assert "span a factor 2 < min_width_ratio = 8" in r.notes
    assert f"h^-0.5: x{2 ** -0.5:.3g}" in r.notes and "h^-1: x0.5" in r.notes


# ---------------------------------------------------------------- variance_scaling


@pytest.mark.parametrize("var_h,verdict", [
    (-1.0, dc.HOLDS), (0.0, dc.FAILS), (-2.0, dc.FAILS), (-1.5, dc.NOT_RESOLVED)])
def test_variance_scaling(var_h, verdict):
    got = by_id(geiger_cube(var_h=var_h))
    for regime in ("feature", "lazy"):
        r = got[f"variance_scaling_softplus_L2_{regime}"]
        assert r.verdict == verdict and r.measured == pytest.approx(var_h, abs=0.05)
        assert "delta f \\sim 1/\\sqrt{h}" in r.quote


def test_variance_scaling_on_two_widths_is_not_resolved():
    r = by_id(geiger_cube(NARROW))["variance_scaling_softplus_L2_feature"]
    assert r.verdict == dc.NOT_RESOLVED and "span a factor 2" in r.notes


# ---------------------------------------------------------------- t1_scaling


@pytest.mark.parametrize("t1_h,verdicts", [
    (0.5, (dc.HOLDS, dc.HOLDS)),     # t1 ~ alpha sqrt(h)
    (0.0, (dc.HOLDS, dc.FAILS)),     # t1 ~ alpha: no width dependence
    (1.0, (dc.HOLDS, dc.FAILS)),     # t1 ~ alpha h
    (0.25, (dc.HOLDS, dc.NOT_RESOLVED)),
])
def test_t1_scaling(t1_h, verdicts):
    got = by_id(geiger_cube(t1_h=t1_h))
    a, b = got["t1_scaling_alpha_softplus_L2"], got["t1_scaling_width_softplus_L2"]
    assert (a.verdict, b.verdict) == verdicts
    assert a.measured == pytest.approx(1.0, abs=0.02)
    assert b.measured == pytest.approx(t1_h, abs=0.02) and b.figure == "fig3c"
    assert "t_1 \\sim \\alpha\\sqrt{h}" in b.quote


def test_t1_alpha_exponent_fails_when_t1_ignores_alpha():
    cube = geiger_cube()
    cube["t1"] = cube["t1"] / cube["alpha"]  # t1 ~ h^1/2 only
    assert by_id(cube)["t1_scaling_alpha_softplus_L2"].verdict == dc.FAILS


def test_t1_width_exponent_on_two_widths_is_out_of_reach():
    got = by_id(geiger_cube(NARROW))
    assert got["t1_scaling_alpha_softplus_L2"].verdict == dc.HOLDS
    r = got["t1_scaling_width_softplus_L2"]
    assert r.verdict == dc.NOT_RESOLVED and "span a factor 2" in r.notes


# ---------------------------------------------------------------- ensemble_width


@pytest.mark.parametrize("ens,verdict", [
    (lambda w: 0.07, dc.HOLDS),                       # independent of h
    (lambda w: 0.07 + 0.12 * (8 / w), dc.FAILS),      # drops by 0.11 from h = 8 to 128
    (lambda w: 0.07 + 0.02 * (w == 128), dc.NOT_RESOLVED),  # a change of the tolerance
])
def test_ensemble_width(ens, verdict):
    got = by_id(geiger_cube(ens=ens))
    for regime in ("feature", "lazy"):
        r = got[f"ensemble_width_softplus_L2_{regime}"]
        assert r.verdict == verdict
        assert r.uncertainty == pytest.approx(math.hypot(
            dc.binomial_se(ens(8), N_TEST), dc.binomial_se(ens(128), N_TEST)))
        assert "essentially independent of" in r.quote


def test_ensemble_width_on_two_widths_is_out_of_reach():
    r = by_id(geiger_cube(NARROW))["ensemble_width_softplus_L2_feature"]
    assert r.verdict == dc.NOT_RESOLVED and "span a factor 2 < min_width_ratio = 8" in r.notes


# ---------------------------------------------------------------- guards

COUNTER_EXAMPLES = {
    "table1": test_table1, "lazy_limit": test_lazy_limit,
    "feature_vs_lazy": test_feature_vs_lazy, "alpha_star": test_alpha_star,
    "variance_scaling": test_variance_scaling, "t1_scaling": test_t1_scaling,
    "ensemble_width": test_ensemble_width,
}


def test_every_kind_has_its_counter_example_test():
    assert set(COUNTER_EXAMPLES) == set(gc.KINDS) == set(gc.DEFAULTS)
    assert {r.kind for r in gc.claims(geiger_cube(), STUDY)} == set(gc.KINDS)
    for kind, test in COUNTER_EXAMPLES.items():
        marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
        verdicts = {v for m in marks for case in m.args[1] for v in np.ravel([case[-1]])}
        assert {dc.HOLDS, dc.FAILS, dc.NOT_RESOLVED} <= verdicts, kind


def test_every_setting_is_allowed_by_the_config_schema():
    allowed = set(dc.CLAIMS_SCHEMA["additionalProperties"]["properties"])
    for kind, defaults in gc.DEFAULTS.items():
        assert set(defaults) <= allowed, kind


def test_every_row_quotes_the_paper():
    for r in gc.claims(geiger_cube(), STUDY):
        assert r.quote and r.where and r.origin == dc.PAPER_CLAIM, r.claim_id


PAPER_TEXT = Path("/work/shared/papers/feature-vs-lazy-geiger.txt")


@pytest.mark.skipif(not PAPER_TEXT.exists(), reason="the paper's text is not on this machine")
def test_quotes_are_verbatim():
    text = re.sub(r"\s+", " ", PAPER_TEXT.read_text())
    for key, (quote, _where) in gc.QUOTES.items():
        assert re.sub(r"\s+", " ", quote) in text, key


def test_one_width_gets_no_h_scaling_rows_but_keeps_t1s_alpha_exponent():
    got = by_id(geiger_cube([32]))
    kinds = {r.kind for r in got.values()}
    assert not kinds & {"alpha_star", "variance_scaling", "ensemble_width"}
    assert "t1_scaling_width_softplus_L2" not in got
    alpha = got["t1_scaling_alpha_softplus_L2"]
    assert alpha.verdict == dc.HOLDS and alpha.measured == pytest.approx(1.0, abs=0.02)
