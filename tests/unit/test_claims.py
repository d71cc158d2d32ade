"""The claims mechanism (depthlab.claims): the one statistics rule and its helpers (seed and
binomial standard errors, separated verdicts with symmetric margins, trends, exponents),
settings, the CSV, and the scorecard that keeps the papers' claims apart from the project's
own checks. Each study's claims are tested on hand-built cubes in test_claims_<study>.py."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from depthlab import claims as dc
from depthlab.report import scorecard_frame, scorecard_html, software_summary, write_scorecard

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


# ----------------------------------------------------------------------------- the rule


def test_seed_se_is_the_standard_error_over_finite_members():
    assert dc.seed_se([1.0, 2.0, 3.0]) == pytest.approx(1.0 / math.sqrt(3))
    assert dc.seed_se([1.0, 2.0, 3.0, math.nan]) == pytest.approx(1.0 / math.sqrt(3))
    assert math.isnan(dc.seed_se([0.3]))          # one seed: no spread to measure
    assert math.isnan(dc.seed_se([]))
    assert dc.mean_se([0.1, 0.3, math.nan]) == pytest.approx((0.2, 0.1, 2))
    assert dc.mean_se([math.nan])[2] == 0


def test_binomial_se():
    assert dc.binomial_se(0.2, 400) == pytest.approx(0.02)
    # a perfect score still has an error bar (p clipped to 1/(2n))
    assert dc.binomial_se(0.0, 100) == pytest.approx(math.sqrt(0.005 * 0.995 / 100))
    assert dc.binomial_se(1.0, 100) == pytest.approx(dc.binomial_se(0.0, 100))
    assert math.isnan(dc.binomial_se(0.2, 0)) and math.isnan(dc.binomial_se(math.nan, 10))
    assert math.isnan(dc.binomial_se(0.2, None))
    assert dc.combined_se(0.03, 0.04) == pytest.approx(0.05)
    assert math.isnan(dc.combined_se(0.03, math.nan))


@pytest.mark.parametrize("diff,se,sign,k,verdict", [
    (-0.10, 0.04, -1, 2.0, dc.HOLDS),          # the paper's sign, 2.5 SE away
    (+0.10, 0.04, -1, 2.0, dc.FAILS),          # the same distance on the other side: fails
    (-0.07, 0.04, -1, 2.0, dc.NOT_RESOLVED),   # inside 2 SE
    (+0.07, 0.04, -1, 2.0, dc.NOT_RESOLVED),   # symmetric: inside on the fails side too
    (-0.08, 0.04, -1, 2.0, dc.NOT_RESOLVED),   # on the margin is not separated
    (-0.10, math.nan, -1, 2.0, dc.NOT_RESOLVED),  # no SE (one seed): never separated
    (math.nan, 0.01, +1, 2.0, dc.NOT_RESOLVED),
    (+0.001, math.nan, +1, 0.0, dc.HOLDS),     # k = 0: the noise margin is off
    (-0.001, 0.5, +1, 0.0, dc.FAILS),
])
def test_separated_verdict_margins_are_symmetric(diff, se, sign, k, verdict):
    assert dc.separated_verdict(diff, se, sign, k) == verdict


def test_separated_verdict_default_k_and_bad_arguments():
    assert dc.SEPARATION_K == 2.0
    assert dc.separated_verdict(0.21, 0.1, +1) == dc.HOLDS
    assert dc.separated_verdict(0.19, 0.1, +1) == dc.NOT_RESOLVED
    with pytest.raises(ValueError):
        dc.separated_verdict(0.2, 0.1, 0)
    with pytest.raises(ValueError):
        dc.separated_verdict(0.2, math.nan, 2)
    with pytest.raises(ValueError):
        dc.separated_verdict(0.2, 0.1, 1, k=-1)


def test_separated_threshold_verdict():
    # "gap >= 0.1": holds above 0.1 + 2 SE, fails below 0.1 - 2 SE
    assert dc.separated_threshold_verdict(0.25, 0.1, 0.05, above=True) == dc.HOLDS
    assert dc.separated_threshold_verdict(-0.05, 0.1, 0.05, above=True) == dc.FAILS
    assert dc.separated_threshold_verdict(0.15, 0.1, 0.05, above=True) == dc.NOT_RESOLVED
    # "|change| <= 0.02"
    assert dc.separated_threshold_verdict(0.0, 0.02, 0.005, above=False) == dc.HOLDS
    assert dc.separated_threshold_verdict(0.05, 0.02, 0.005, above=False) == dc.FAILS


def test_linear_trend_slope_and_standard_error():
    x = [1, 1, 2, 2, 3, 3]
    y = [1.0, 1.2, 2.0, 2.2, 3.0, 3.2]
    slope, se, n = dc.linear_trend(x, y)
    assert slope == pytest.approx(1.0) and n == 6
    resid = np.array(y) - (0.1 + np.array(x, float))
    sxx = ((np.array(x) - 2.0) ** 2).sum()
    assert se == pytest.approx(math.sqrt((resid ** 2).sum() / 4 / sxx))
    assert dc.linear_trend([1, 2, 3], [1.0, 2.0, 3.0])[1] == pytest.approx(0.0)
    # two points: a slope but no SE; one distinct x: neither
    s2, se2, _ = dc.linear_trend([1, 2], [1.0, 3.0])
    assert s2 == pytest.approx(2.0) and math.isnan(se2)
    assert all(math.isnan(v) for v in dc.linear_trend([2, 2, 2], [1.0, 2.0, 3.0])[:2])
    assert dc.linear_trend([1, 2, math.nan, 4], [1.0, 2.0, 3.0, math.nan])[2] == 2
    with pytest.raises(ValueError):
        dc.linear_trend([1, 2], [1.0])


@pytest.mark.parametrize("slope,se,verdict", [
    (-0.52, 0.05, dc.HOLDS),        # -1/2, far from both midpoints (-0.25, -0.75)
    (-0.98, 0.05, dc.FAILS),        # the 1/h rival
    (0.02, 0.05, dc.FAILS),         # the h-independent rival
    (-0.70, 0.05, dc.NOT_RESOLVED),  # within 2 SE of the midpoint to -1
    (-0.5, 0.2, dc.NOT_RESOLVED),   # noise straddles both midpoints
    (-0.5, math.nan, dc.NOT_RESOLVED),
])
def test_exponent_verdict_against_rivals(slope, se, verdict):
    assert dc.exponent_verdict(slope, se, -0.5, (0.0, -1.0)) == verdict


def test_exponent_verdict_single_rival_and_errors():
    assert dc.exponent_verdict(-0.55, 0.05, -0.5, -1.0) == dc.HOLDS
    assert dc.exponent_verdict(-0.2, 0.05, -0.5, -1.0) == dc.HOLDS  # on the paper's side
    with pytest.raises(ValueError):
        dc.exponent_verdict(-0.5, 0.1, -0.5, -0.5)


def test_separation_note_gives_the_numbers():
    assert dc.separation_note(-0.3, 0.1) == "effect -0.3 vs 2 x SE 0.1 = 0.2: separated"
    assert "inside the noise" in dc.separation_note(0.1, 0.1, 2, what="slope")
    assert "cannot be measured" in dc.separation_note(0.1, math.nan)


def test_origin_is_paper_or_project():
    assert dc.ORIGINS == (dc.PAPER_CLAIM, dc.PROJECT_CHECK) == ("paper", "project")
    assert _result().origin == dc.PAPER_CLAIM
    with pytest.raises(ValueError, match="origin 'mine'"):
        _result(origin="mine")


# ----------------------------------------------------------------------------- scorecard


def _study_rows(prefix, *, project=0):
    rows = [_result(f"{prefix}_a", dc.HOLDS, quote="Deeper is better.", where="Sec. 3.2",
                    figure="fig2", data_source="synthetic, not MNIST"),
            _result(f"{prefix}_b", dc.FAILS, quote="Shallower is better.", where="Fig. 1"),
            _result(f"{prefix}_c", dc.NOT_RESOLVED, quote="The NTK fails.", where="Sec. 3.3")]
    # project checks interleaved with the paper's claims in a study's own CSV
    for i in range(project):
        rows.insert(1, _result(f"{prefix}_own{i}", dc.HOLDS, origin=dc.PROJECT_CHECK,
                               where="", statement="net agrees with its kernel"))
    return rows


def test_scorecard_keeps_project_checks_apart_and_quotes_the_papers(tmp_path):
    paths = {}
    for study, results in (("tiny", _study_rows("t")),
                           ("lee", _study_rows("l", project=2))):
        paths[study] = tmp_path / study / "claims.csv"
        dc.write_claims(results, paths[study], study=study, scale="laptop",
                        config_slice={}, cube_attrs={})
    frame = write_scorecard(paths, csv_path=tmp_path / "claims.csv",
                            html_path=tmp_path / "claims.html",
                            fragment_path=tmp_path / "claims_fragment.html",
                            figures={"tiny/fig2": "results/tiny/figures/fig2.png"},
                            kinds={"tiny": "mori_ueda", "lee": "lee"})
    # the CSV: every paper claim (study order, each study's own order), then project checks
    assert frame["claim_id"].tolist() == ["t_a", "t_b", "t_c", "l_a", "l_b", "l_c",
                                          "l_own1", "l_own0"]
    assert frame["origin"].tolist() == ["paper"] * 6 + ["project"] * 2
    assert pd.read_csv(tmp_path / "claims.csv")["claim_id"].tolist() == frame[
        "claim_id"].tolist()
    page = (tmp_path / "claims.html").read_text()
    fragment = (tmp_path / "claims_fragment.html").read_text()
    assert page.startswith("<!doctype html>") and "<html" not in fragment
    for text in (page, fragment):
        # one row per claim, in the CSV's order
        ids = re.findall(r'<tr class="claim"[^>]*data-claim="([^"]+)"', text)
        assert ids == frame["claim_id"].tolist()
        for verdict in dc.VERDICTS:
            assert f'data-verdict="{verdict}"' in text
        # two tables, each counted on its own: 2 holds of 6 paper claims, 2 of 2 checks
        paper_totals = re.search(r'class="small totals" data-origin="paper">(.*?)</p>', text)
        assert re.search(r"holds</span> 2,.*fails</span> 2,.*at this scale</span> 2 of 6",
                         paper_totals.group(1))
        project_totals = re.search(r'data-origin="project">Project checks(.*?)</p>', text)
        assert re.search(r"holds</span> 2,.*fails</span> 0,.*scale</span> 0 of 2",
                         project_totals.group(1))
        paper_table, project_table = re.findall(r'<table class="claims".*?</table>', text,
                                                re.S)
        assert 'data-origin="paper"' in paper_table and "the paper's words" in paper_table
        assert "&ldquo;Deeper is better.&rdquo;" in paper_table and "Sec. 3.2" in paper_table
        assert "own0" not in paper_table and "t_a" not in project_table
        assert project_table.count('data-origin="project"') == 3  # the table and 2 rows
        # the per-study table: paper verdicts per study and its project checks apart
        lee = re.search(r'<tr data-study="lee">(.*?)</tr>', text).group(1)
        assert re.findall(r'<td class="num">(\d+)</td>', lee) == ["1", "1", "1", "2"]
        assert "not MNIST" in text and "mori_ueda" in text
    # the landing-page fragment links figures into the report app, the page does not
    assert "app.showResultInfo" in fragment and "app.showResultInfo" not in page
    assert "numpy" in software_summary(frame)["claims"]
    assert "No claims" in scorecard_html(frame.iloc[:0])


def test_scorecard_without_project_checks_has_one_table(tmp_path):
    path = tmp_path / "tiny" / "claims.csv"
    dc.write_claims(_study_rows("t"), path, study="tiny", scale="laptop", config_slice={})
    frame = scorecard_frame({"tiny": path})
    text = scorecard_html(frame)
    assert text.count('<table class="claims"') == 1 and "Project checks" not in text
