"""The claims mechanism (depthlab.claims) and the two studies' claims on hand-built cubes whose
answers are known: claims that hold, fail and are not resolved, diverged and capped members
left out, config overrides (per kind and per claim id) including an impossible tolerance that
turns a claim into `fails` rather than dropping it, the CSV and the scorecard."""

import importlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from depthlab import claims as dc
from depthlab.report import scorecard_html, software_summary, write_scorecard
from depthlab.studies.geiger.paper_claims import claims as geiger_claims
from depthlab.studies.mori_ueda.paper_claims import claims as mori_claims
from depthlab.studies.mori_ueda.summary import depth_effect_table

# ----------------------------------------------------------------------------- mechanism


def test_verdict_vocabulary_is_one_place():
    assert dc.VERDICTS == ("holds", "fails", "not resolved at this scale")
    assert (dc.HOLDS, dc.FAILS, dc.NOT_RESOLVED) == dc.VERDICTS
    with pytest.raises(ValueError, match="verdict 'maybe'"):
        dc.ClaimResult(claim_id="x", kind="k", paper="p", where="w", statement="s",
                       measured=1.0, uncertainty=0.0, criterion="c", verdict="maybe")


@pytest.mark.parametrize("value,margin,sign,verdict", [
    (-0.10, 0.05, -1, dc.HOLDS),          # the paper's sign, separated
    (+0.10, 0.05, -1, dc.FAILS),          # the opposite sign, separated
    (-0.04, 0.05, -1, dc.NOT_RESOLVED),   # the paper's sign, but the bars overlap
    (+0.05, 0.05, +1, dc.NOT_RESOLVED),   # touching bars are not separated
    (math.nan, 0.05, +1, dc.NOT_RESOLVED),
    (+0.2, 0.0, +1, dc.HOLDS),
])
def test_sign_verdict(value, margin, sign, verdict):
    assert dc.sign_verdict(value, margin, sign) == verdict


def test_tolerance_and_threshold_verdicts():
    assert dc.tolerance_verdict(1.30, 1.25, 0.1) == dc.HOLDS
    assert dc.tolerance_verdict(1.40, 1.25, 0.1) == dc.FAILS
    assert dc.tolerance_verdict(1.25, 1.25, 0.0) == dc.HOLDS     # exact
    assert dc.tolerance_verdict(1.2501, 1.25, 0.0) == dc.FAILS   # impossible tolerance
    assert dc.tolerance_verdict(math.nan, 1.25, 0.1) == dc.NOT_RESOLVED
    with pytest.raises(ValueError):
        dc.tolerance_verdict(1.0, 1.0, -0.1)
    assert dc.threshold_verdict(0.3, 0.1, above=True) == dc.HOLDS
    assert dc.threshold_verdict(0.05, 0.1, above=True) == dc.FAILS
    assert dc.threshold_verdict(0.05, 0.1, above=False) == dc.HOLDS
    assert dc.threshold_verdict(math.nan, 0.1, above=False) == dc.NOT_RESOLVED


def test_settings_layer_defaults_kind_and_id():
    study = {"claims": {"table1": {"tolerance": 0.5}, "table1_kernel_L5": {"tolerance": 0.0}}}
    defaults = {"tolerance": 0.15, "min_points": 4}
    assert dc.claim_settings(study, "table1", "table1_kernel_L5", defaults) == {
        "tolerance": 0.0, "min_points": 4}
    assert dc.claim_settings(study, "table1", "table1_weights_L5", defaults) == {
        "tolerance": 0.5, "min_points": 4}
    assert dc.claim_settings({}, "table1", "x", defaults) == defaults
    with pytest.raises(ValueError, match="claims.table1: unknown setting"):
        dc.claim_settings({"claims": {"table1": {"tolerence": 0.1}}}, "table1", "x", defaults)


def test_evidence_and_excluded_members():
    status = xr.DataArray(["converged", "diverged", "max_epochs", "not_run", "converged"],
                          dims="seed")
    values = xr.DataArray([0.1, 0.9, 0.5, np.nan, 0.2], dims="seed")
    kept = dc.evidence(values, status)
    np.testing.assert_array_equal(kept.notnull().values, [True, False, False, False, True])
    assert dc.excluded_members(status) == {"diverged": 1, "max_epochs": 1}
    assert "1 diverged" in dc.describe_excluded(dc.excluded_members(status))


def _result(claim_id="a", verdict=dc.HOLDS, **kw):
    base = {"kind": "k", "paper": "P", "where": "Fig. 1", "statement": "s", "measured": 0.5,
            "uncertainty": 0.1, "criterion": "c"}
    return dc.ClaimResult(claim_id=claim_id, verdict=verdict, **{**base, **kw})


def test_write_claims_is_atomic_with_provenance(tmp_path):
    path = tmp_path / "study" / "claims.csv"
    frame = dc.write_claims([_result("a"), _result("b", dc.FAILS, paper_value=1.0)], path,
                            study="s1", scale="laptop", config_slice={"x": 1},
                            cube_attrs={"data_source": "digits, not MNIST",
                                        "training_software_versions": '["{}"]'})
    assert sorted(p.name for p in path.parent.iterdir()) == ["claims.csv"]  # no temp left
    back = dc.read_claims(path)
    assert list(back.columns) == list(dc.COLUMNS)
    assert back["claim_id"].tolist() == ["a", "b"] and back["verdict"].tolist() == [
        "holds", "fails"]
    assert set(back["study"]) == {"s1"} and set(back["scale"]) == {"laptop"}
    assert set(back["data_source"]) == {"digits, not MNIST"}
    assert back["config_hash"].str.len().min() == 16
    assert "numpy" in json.loads(back["software_versions"][0])
    assert math.isnan(back["paper_value"][0]) and back["paper_value"][1] == 1.0
    assert dc.verdict_counts(frame) == {"holds": 1, "fails": 1,
                                        "not resolved at this scale": 0}
    with pytest.raises(ValueError, match="appears twice"):
        dc.claims_frame([_result("a"), _result("a")])


def test_check_claim_keys():
    results = [_result("table1_kernel_L5", kind="table1")]
    dc.check_claim_keys({"claims": {"table1": {}, "table1_kernel_L5": {}}}, results)
    with pytest.raises(ValueError, match="table1_kernel_L7"):
        dc.check_claim_keys({"claims": {"table1_kernel_L7": {"tolerance": 0}}}, results)


# ----------------------------------------------------------------------------- Mori & Ueda

DATASETS = {  # name: (generator, k, d)
    "local2": ("k_local", 2, 20),     # deeper better: holds; NTK fails: holds
    "global2": ("k_global", 2, 10),   # shallower better, but deep wins: fails
    "local1": ("k_local", 1, 10),     # shallower better, bars overlap: not resolved
    "noisy2": ("k_local", 2, 20),     # a diverged deep member would flip the sign
    "dead2": ("k_local", 2, 20),      # all but one deep member capped: not resolved
}
SHALLOW = [0.30, 0.32, 0.31, 0.33]
ERRORS = {  # dataset: (L=1 errors over seeds, L=7 errors, L=7 statuses)
    "local2": (SHALLOW, [0.20, 0.21, 0.22, 0.19], None),
    "global2": (SHALLOW, [0.10, 0.11, 0.12, 0.09], None),
    "local1": ([0.10, 0.14, 0.12, 0.12], [0.11, 0.15, 0.13, 0.13], None),
    "noisy2": (SHALLOW, [0.20, 0.21, 0.22, 0.95], ["converged"] * 3 + ["diverged"]),
    "dead2": (SHALLOW, [0.20, 0.5, 0.5, 0.5], ["converged"] + ["max_epochs"] * 3),
}
NTK = {"local2": 0.48, "global2": 0.12, "local1": 0.13, "noisy2": 0.47, "dead2": 0.47}


def _mori_cube() -> xr.Dataset:
    names = list(DATASETS)
    shape = (len(names), 1, 2, 1, 1, 4)  # dataset, n_train, depth, width, lr, seed
    err = np.full(shape, np.nan)
    status = np.full(shape, "converged", dtype=object)
    for i, ds in enumerate(names):
        lo, hi, hi_status = ERRORS[ds]
        err[i, 0, 0, 0, 0] = lo
        err[i, 0, 1, 0, 0] = hi
        if hi_status:
            status[i, 0, 1, 0, 0] = hi_status
    dims = ("dataset", "n_train", "depth", "width", "lr", "seed")
    cube = xr.Dataset(
        {"test_error": (dims, err), "status": (dims, status.astype(str)),
         "ntk_test_error": (("dataset", "n_train", "kernel_depth"),
                            np.array([[[NTK[d]]] for d in names]))},
        coords={"dataset": names, "n_train": [1000], "depth": [1, 7], "width": [100],
                "lr": [0.1], "seed": [0, 1, 2, 3], "kernel_depth": [1]})
    return cube.assign_coords(
        generator=("dataset", [DATASETS[d][0] for d in names]),
        k=("dataset", [DATASETS[d][1] for d in names]),
        d=("dataset", [DATASETS[d][2] for d in names]),
        data_source=("dataset", ["synthetic Gaussian inputs"] * len(names)))


MORI_STUDY = {"kind": "mori_ueda",
              "figures": {"fig2": {"plot": "test_error_vs_n", "datasets": list(DATASETS),
                                   "lr": 0.1}}}


def _by_id(results):
    return {r.claim_id: r for r in results}


def test_mori_claims_hold_fail_and_not_resolved():
    got = _by_id(mori_claims(_mori_cube(), MORI_STUDY))
    assert got["depth_effect_fig2_local2_N1000_H100"].verdict == dc.HOLDS
    assert got["depth_effect_fig2_global2_N1000_H100"].verdict == dc.FAILS
    local1 = got["depth_effect_fig2_local1_N1000_H100"]
    assert local1.verdict == dc.NOT_RESOLVED and "overlap" in local1.notes
    r = got["depth_effect_fig2_local2_N1000_H100"]
    assert r.measured == pytest.approx(0.205 - 0.315)
    assert r.uncertainty == pytest.approx(np.hypot(np.std(SHALLOW), np.std(ERRORS["local2"][1])))
    assert (r.n_members, r.n_excluded, r.figure) == (8, 0, "fig2")
    assert r.where.startswith("Sec. 3.2") and r.paper.startswith("Mori")
    # Sec. 3.3: the NTK fails on 2-local labels, is comparable on 2-global and 1-local ones
    assert got["ntk_fig2_local2_N1000_H100"].verdict == dc.HOLDS
    assert got["ntk_fig2_local2_N1000_H100"].measured == pytest.approx(0.48 - 0.205)
    assert got["ntk_fig2_global2_N1000_H100"].verdict == dc.HOLDS
    assert got["ntk_fig2_local1_N1000_H100"].verdict == dc.HOLDS
    assert all(r.verdict in dc.VERDICTS for r in got.values())


def test_mori_diverged_and_capped_members_never_count():
    got = _by_id(mori_claims(_mori_cube(), MORI_STUDY))
    noisy = got["depth_effect_fig2_noisy2_N1000_H100"]
    # counted, the diverged member (0.95) would make deep worse (+0.07, bars overlapping)
    assert noisy.verdict == dc.HOLDS and noisy.measured == pytest.approx(0.21 - 0.315)
    assert (noisy.n_members, noisy.n_excluded) == (7, 1) and "1 diverged" in noisy.notes
    dead = got["depth_effect_fig2_dead2_N1000_H100"]
    assert dead.verdict == dc.NOT_RESOLVED and math.isnan(dead.measured)
    assert dead.n_excluded == 3 and "3 max_epochs" in dead.notes and "L = 7: 1" in dead.notes
    assert got["ntk_fig2_dead2_N1000_H100"].verdict == dc.NOT_RESOLVED


def test_mori_verdicts_match_the_summary_table_when_all_members_converged():
    cube = _mori_cube()
    table = depth_effect_table(cube, MORI_STUDY["figures"])
    got = _by_id(mori_claims(cube, MORI_STUDY))
    for row in table.itertuples():
        if row.dataset in ("noisy2", "dead2"):
            continue
        r = got[f"depth_effect_fig2_{row.dataset}_N1000_H100"]
        assert r.measured == pytest.approx(row.depth_effect)
        assert r.uncertainty == pytest.approx(row.depth_effect_std)
        expected = (dc.NOT_RESOLVED if not row.separated
                    else dc.HOLDS if row.sign_as_paper else dc.FAILS)
        assert r.verdict == expected
        ntk = got[f"ntk_fig2_{row.dataset}_N1000_H100"]
        assert ntk.measured == pytest.approx(row.ntk_gap)


def test_mori_config_overrides_make_claims_fail_not_vanish():
    study = {**MORI_STUDY, "claims": {"ntk": {"min_gap": 1.0},
                                      "depth_effect_fig2_local2_N1000_H100": {
                                          "separation": 100.0}}}
    base = _by_id(mori_claims(_mori_cube(), MORI_STUDY))
    got = _by_id(mori_claims(_mori_cube(), study))
    assert set(got) == set(base)  # no row disappears
    assert got["ntk_fig2_local2_N1000_H100"].verdict == dc.FAILS          # gap 0.275 < 1.0
    assert got["ntk_fig2_global2_N1000_H100"].verdict == dc.HOLDS         # 0.02 < 1.0
    assert got["depth_effect_fig2_local2_N1000_H100"].verdict == dc.NOT_RESOLVED
    assert got["depth_effect_fig2_global2_N1000_H100"].verdict == dc.FAILS  # untouched
    assert "100 x" in got["depth_effect_fig2_local2_N1000_H100"].criterion


# ----------------------------------------------------------------------------- Geiger

WIDTHS = [8, 32]
X = [0.001, 0.01, 0.1, 1e4]  # sqrt(h) alpha of the grid


def _geiger_cube(a_kernel=1.25, a_weights=0.35, feature_err=(0.08, 0.09, 0.085),
                 lazy_err=(0.12, 0.13, 0.125), lazy_net_err=None, status=None):
    """Power laws ntk_change = x^-a, sqrt(h) w_change = x^-b on a sparse alpha axis (each
    width its own alphas, as sqrt(h) alpha grids give), 3 seeds; test errors per seed."""
    alphas = sorted({x / np.sqrt(w) for x in X for w in WIDTHS})
    seeds = [0, 1, 2]
    shape = (1, 1, len(WIDTHS), len(alphas), len(seeds))
    ntk = np.full(shape, np.nan)
    wch = np.full(shape, np.nan)
    err = np.full(shape, np.nan)
    st = np.full(shape, "not_run", dtype=object)
    lazy_net_err = lazy_err if lazy_net_err is None else lazy_net_err
    for i, w in enumerate(WIDTHS):
        for x in X:
            j = alphas.index(x / np.sqrt(w))
            ntk[0, 0, i, j] = x ** -a_kernel
            wch[0, 0, i, j] = x ** -a_weights / np.sqrt(w)
            err[0, 0, i, j] = lazy_net_err if x > 100 else feature_err
            st[0, 0, i, j] = "converged"
    if status:
        for (w, x, seed), s in status.items():
            st[0, 0, WIDTHS.index(w), alphas.index(x / np.sqrt(w)), seed] = s
    dims = ("activation", "depth", "width", "alpha", "seed")
    lazy = np.broadcast_to(np.array(lazy_err), (1, 1, len(WIDTHS), 3)).copy()
    cube = xr.Dataset(
        {"ntk_change": (dims, ntk), "w_change": (dims, wch), "test_err": (dims, err),
         "status": (dims, st.astype(str)),
         "lazy_test_err": (("activation", "depth", "width", "seed"), lazy),
         "lazy_status": (("activation", "depth", "width", "seed"),
                         np.full(lazy.shape, "converged"))},
        coords={"activation": ["softplus"], "depth": [2], "width": WIDTHS, "alpha": alphas,
                "seed": seeds})
    cube = cube.assign_coords(sqrt_h_alpha=np.sqrt(cube["width"]) * cube["alpha"])
    cube.attrs["data_source"] = "scikit-learn digits (8x8, bundled), not MNIST"
    return cube


GEIGER_STUDY = {"kind": "geiger", "table1": {"depths": [2], "fit_range": [5e-4, 0.2]},
                "figures": {"fig1c": {"plot": "geiger_error_vs_alpha", "activation": "softplus",
                                      "depth": 2},
                            "fig3a": {"plot": "geiger_kernel_change",
                                      "activation": "softplus", "depth": 2}}}


def test_geiger_table1_within_tolerance_and_impossible_tolerance():
    cube = _geiger_cube(a_kernel=1.25, a_weights=0.60)
    got = _by_id(geiger_claims(cube, GEIGER_STUDY))
    kernel, weights = got["table1_kernel_L2"], got["table1_weights_L2"]
    assert kernel.verdict == dc.HOLDS and kernel.measured == pytest.approx(1.25)
    assert kernel.paper_value == 1.25 and kernel.figure == "fig3a"
    assert kernel.n_members == 2 * 3 * 3  # 2 widths x 3 sqrt(h) alpha in range x 3 seeds
    assert weights.verdict == dc.FAILS and weights.measured == pytest.approx(0.60)
    assert "not MNIST" in kernel.data_source
    # the example: a tolerance made impossible turns `holds` into `fails`
    study = {**GEIGER_STUDY, "claims": {"table1_kernel_L2": {"tolerance": 0.0}}}
    cube = _geiger_cube(a_kernel=1.26)
    assert _by_id(geiger_claims(cube, GEIGER_STUDY))["table1_kernel_L2"].verdict == dc.HOLDS
    impossible = _by_id(geiger_claims(cube, study))["table1_kernel_L2"]
    assert impossible.verdict == dc.FAILS and "<= 0 x 1.25" in impossible.criterion


def test_geiger_lazy_limit_and_feature_vs_lazy():
    got = _by_id(geiger_claims(_geiger_cube(), GEIGER_STUDY))
    for w in WIDTHS:
        lazy = got[f"lazy_limit_softplus_L2_h{w}"]
        assert lazy.verdict == dc.HOLDS and lazy.measured == 0.0 and lazy.n_members == 3
        assert lazy.figure == "fig1c"
        feat = got[f"feature_vs_lazy_softplus_L2_h{w}"]
        assert feat.verdict == dc.HOLDS and feat.measured == pytest.approx(0.085 - 0.125)
    # the net no longer matches its frozen NTK at the largest sqrt(h) alpha: fails
    off = _by_id(geiger_claims(_geiger_cube(lazy_net_err=(0.15, 0.16, 0.155)), GEIGER_STUDY))
    assert off["lazy_limit_softplus_L2_h8"].verdict == dc.FAILS
    assert off["lazy_limit_softplus_L2_h8"].measured == pytest.approx(0.03)
    # lazy better than feature, separated: fails; overlapping: not resolved
    worse = _by_id(geiger_claims(_geiger_cube(feature_err=(0.2, 0.21, 0.22)), GEIGER_STUDY))
    assert worse["feature_vs_lazy_softplus_L2_h8"].verdict == dc.FAILS
    close = _by_id(geiger_claims(_geiger_cube(feature_err=(0.11, 0.14, 0.12)), GEIGER_STUDY))
    assert close["feature_vs_lazy_softplus_L2_h8"].verdict == dc.NOT_RESOLVED
    # a grid that does not reach the lazy regime cannot test the lazy limit
    study = {**GEIGER_STUDY, "claims": {"lazy_limit": {"min_sqrt_h_alpha": 1e5}}}
    far = _by_id(geiger_claims(_geiger_cube(), study))["lazy_limit_softplus_L2_h8"]
    assert far.verdict == dc.NOT_RESOLVED and "not reached" in far.notes


def test_geiger_diverged_and_capped_runs_never_count():
    # seed 2 diverged at the largest sqrt(h) alpha with a wild error, and two feature-regime
    # seeds hit the step cap: the lazy claim holds on the two good seeds, the feature claim
    # is not resolved (one converged seed)
    status = {(8, 1e4, 2): "diverged", (8, 0.001, 0): "max_steps", (8, 0.001, 1): "max_steps"}
    cube = _geiger_cube(status=status)
    cube["test_err"].loc[dict(width=8, alpha=1e4 / np.sqrt(8), seed=2)] = 0.5
    got = _by_id(geiger_claims(cube, GEIGER_STUDY))
    lazy = got["lazy_limit_softplus_L2_h8"]
    assert lazy.verdict == dc.HOLDS and lazy.n_members == 2 and lazy.n_excluded == 1
    assert "1 diverged" in lazy.notes
    feat = got["feature_vs_lazy_softplus_L2_h8"]
    assert feat.verdict == dc.NOT_RESOLVED and feat.n_excluded == 2
    assert "2 max_steps" in feat.notes
    # Table 1 fits converged runs only: 2 capped runs in the fit range are counted out
    kernel = got["table1_kernel_L2"]
    assert kernel.n_members == 2 * 3 * 3 - 2 and kernel.n_excluded == 2
    assert kernel.verdict == dc.HOLDS


# ----------------------------------------------------------------------------- scorecard


def test_scorecard_joins_studies_and_renders_every_row(tmp_path):
    paths = {}
    for study, results in (("tiny", mori_claims(_mori_cube(), MORI_STUDY)),
                           ("geiger_fc", geiger_claims(_geiger_cube(), GEIGER_STUDY))):
        paths[study] = tmp_path / study / "claims.csv"
        dc.write_claims(results, paths[study], study=study, scale="laptop",
                        config_slice={}, cube_attrs={})
    frame = write_scorecard(paths, csv_path=tmp_path / "claims.csv",
                            html_path=tmp_path / "claims.html",
                            fragment_path=tmp_path / "claims_fragment.html",
                            figures={"tiny/fig2": "results/tiny/figures/fig2.png"},
                            kinds={"tiny": "mori_ueda", "geiger_fc": "geiger"})
    n = len(frame)
    assert list(dict.fromkeys(frame["study"])) == ["tiny", "geiger_fc"]
    assert pd.read_csv(tmp_path / "claims.csv")["claim_id"].tolist() == frame[
        "claim_id"].tolist()
    page = (tmp_path / "claims.html").read_text()
    fragment = (tmp_path / "claims_fragment.html").read_text()
    assert page.startswith("<!doctype html>") and "<html" not in fragment
    for text in (page, fragment):
        assert text.count('<tr class="claim"') == n
        for verdict in dc.VERDICTS:
            assert f'data-verdict="{verdict}"' in text
        assert "not MNIST" in text and "mori_ueda" in text
    # the landing-page fragment links figures into the report app, the page does not
    assert "app.showResultInfo" in fragment and "app.showResultInfo" not in page
    assert "numpy" in software_summary(frame)["claims"]
    empty = scorecard_html(frame.iloc[:0])
    assert "No claims" in empty


def test_schema_snippet_allows_every_setting_of_every_claim_kind():
    # the modules (a plug-in's `claims` attribute is the function)
    mc = importlib.import_module("depthlab.studies.mori_ueda.paper_claims")
    gc = importlib.import_module("depthlab.studies.geiger.paper_claims")
    allowed = set(dc.CLAIMS_SCHEMA["additionalProperties"]["properties"])
    for module in (mc, gc):
        for kind, defaults in module.DEFAULTS.items():
            assert set(defaults) <= allowed, (module.__name__, kind)
