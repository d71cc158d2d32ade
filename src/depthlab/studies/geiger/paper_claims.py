"""The claims of Geiger, Spigler, Jacot & Wyart, "Disentangling feature and lazy learning in
deep neural networks: an empirical study", checked on a study cube.

Three kinds:

``table1``
    Table 1 (App. G): the exponent a of ||Theta - Theta0|| / ||Theta0|| and of sqrt(h)
    ||w - w0|| / ||w0|| ~ (sqrt(h) alpha)^-a in the feature regime, one claim per observable
    and depth of the study's ``table1`` block (ids ``table1_kernel_L5``,
    ``table1_weights_L2``, ...), measured by :func:`depthlab.geiger_cube.exponent_table`
    (table1.csv: converged runs, widths and seeds pooled). ``holds`` when |a - paper| <=
    tolerance x paper (relative, default 0.15), ``fails`` otherwise, ``not resolved`` with
    fewer than ``min_points`` fit points.
``lazy_limit``
    Sec. 3, Fig. 1(a): as alpha grows the test error converges to that of the NTK frozen at
    initialization. Per (activation, depth, width): at the grid's largest sqrt(h) alpha, the
    mean over seeds of |E_test(net) - E_test(frozen NTK)| (same seed, same initialization)
    <= tolerance (absolute test error, default 0.01). ``not resolved`` if that sqrt(h) alpha
    is below ``min_sqrt_h_alpha`` (default 100: the paper sees the limit for alpha >~ 10^2).
``feature_vs_lazy``
    Abstract (ii), Sec. 3, Fig. 1: feature learning outperforms lazy learning. Per
    (activation, depth, width): mean test error at the smallest sqrt(h) alpha (it must be <=
    ``max_sqrt_h_alpha``, default 0.1) minus the frozen NTK's; ``holds`` when negative with
    separated error bars (|diff| > separation x (std feature + std lazy)), ``fails`` when
    positive and separated, ``not resolved`` otherwise (the paper: the gap "becomes hardly
    detectable" for FC nets at large h).

Only converged runs count (hinge loss reached 0); runs that diverged or hit the step cap are
left out and counted in the row, and a cell with fewer than ``min_members`` converged seeds
is ``not resolved at this scale``. The frozen-NTK twin of a seed counts only if its own
dynamics converged too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from depthlab.claims import (
    NOT_RESOLVED,
    ClaimResult,
    claim_settings,
    describe_excluded,
    evidence,
    excluded_members,
    figure_for,
    sign_verdict,
    tolerance_verdict,
)
from depthlab.studies.geiger.table1 import OBSERVABLES, PAPER_EXPONENTS, exponent_table
from depthlab.training.status import CONVERGED, NOT_RUN

PAPER = "Geiger, Spigler, Jacot & Wyart (2020)"
DEFAULTS = {
    "table1": {"tolerance": 0.15, "min_points": 4},
    "lazy_limit": {"tolerance": 0.01, "min_sqrt_h_alpha": 100.0, "min_members": 1},
    "feature_vs_lazy": {"max_sqrt_h_alpha": 0.1, "separation": 1.0, "min_members": 2},
}
KINDS = tuple(DEFAULTS)
_FIGS_EXPONENT = {"kernel": ("geiger_kernel_change",), "weights": ("geiger_weight_change",)}
_FIGS_ERROR = ("geiger_error_vs_alpha", "geiger_error_vs_width", "geiger_error_collapse")


def claims(cube: xr.Dataset, study: Mapping[str, Any]) -> list[ClaimResult]:
    source = str(cube.attrs.get("data_source", ""))
    results = _table1(cube, study) if study.get("table1") else []
    if "lazy_test_err" in cube:
        for act in cube["activation"].values:
            for depth in cube["depth"].values:
                for width in cube["width"].values:
                    cell = cube.sel(activation=act, depth=depth, width=width)
                    if not bool((cell["status"] != NOT_RUN).any()):
                        continue
                    results.append(_lazy_limit(cell, study))
                    results.append(_feature_vs_lazy(cell, study))
    for r in results:
        r.data_source = r.data_source or source
    return results


def _n_points_note(n: int, s: Mapping[str, Any]) -> str:
    return f"{n} fit points (min_points = {s['min_points']})"


def _table1(cube: xr.Dataset, study: Mapping[str, Any]) -> list[ClaimResult]:
    spec = dict(study["table1"])
    table = exponent_table(cube, spec)
    act = spec.get("activation", "softplus")
    lo, hi = spec["fit_range"]
    out = []
    key_of = {label: key for key, (label, *_rest) in OBSERVABLES.items()}
    for row in table.itertuples():
        key, label, depth = key_of[row.observable], row.observable, int(row.depth)
        claim_id = f"table1_{key}_L{depth}"
        s = claim_settings(study, "table1", claim_id, DEFAULTS["table1"])
        paper = PAPER_EXPONENTS.get((key, depth), float("nan"))
        sub = cube.sel(activation=act, depth=depth)
        in_range = ((sub["sqrt_h_alpha"] >= lo) & (sub["sqrt_h_alpha"] <= hi)
                    ).broadcast_like(sub["status"])
        excluded = excluded_members(sub["status"].where(in_range, NOT_RUN))
        statement = (f"{label} ~ (sqrt(h) alpha)^-a for sqrt(h) alpha << 1 with a = "
                     f"{paper:g} ({act}, L = {depth}; prediction "
                     f"{row.prediction:.3g})")
        criterion = (f"|a - {paper:g}| <= {s['tolerance']:g} x {paper:g}; at least "
                     f"{s['min_points']} converged runs in sqrt(h) alpha in "
                     f"[{lo:g}, {hi:g}]")
        notes = [_n_points_note(int(row.n_points), s) + f", r2 {row.r2:.3f}, widths "
                 f"{row.widths}"]
        if not np.isfinite(paper):
            verdict = NOT_RESOLVED
            notes.append("the paper gives no exponent for this depth")
        elif int(row.n_points) < s["min_points"]:
            verdict = NOT_RESOLVED
            notes.append("too few converged runs in the fit range")
        else:
            verdict = tolerance_verdict(float(row.exponent_a), paper,
                                        s["tolerance"] * abs(paper))
        if excluded:
            notes.append(describe_excluded(excluded))
        out.append(ClaimResult(
            claim_id=claim_id, kind="table1", paper=PAPER, where="Table 1 (App. G)",
            statement=statement, paper_value=paper, measured=float(row.exponent_a),
            uncertainty=float(row.exponent_stderr),
            uncertainty_kind="fit standard error (seeds and widths pooled)",
            criterion=criterion, verdict=verdict,
            figure=figure_for(study, _FIGS_EXPONENT[key], activation=act, depth=depth),
            n_members=int(row.n_points), n_excluded=sum(excluded.values()),
            notes="; ".join(notes)))
    return out


def _error_figure(study: Mapping[str, Any], act: str, depth: int) -> str:
    """A test-error figure of this activation and depth, else any figure of them."""
    return (figure_for(study, _FIGS_ERROR, activation=act, depth=depth)
            or figure_for(study, None, activation=act, depth=depth))


def _cell_name(cell: xr.Dataset) -> tuple[str, str, int, int]:
    act, depth, width = (str(cell["activation"].values), int(cell["depth"].values),
                         int(cell["width"].values))
    return f"{act}_L{depth}_h{width}", act, depth, width


def _ran_alphas(cell: xr.Dataset) -> np.ndarray:
    """The alphas of this (activation, depth, width) that some seed ran, sorted by sqrt(h)
    alpha (ascending)."""
    ran = (cell["status"] != NOT_RUN).any("seed")
    alphas = cell["alpha"].values[ran.values]
    return alphas[np.argsort(np.sqrt(float(cell["width"])) * alphas)]


def _lazy_errors(cell: xr.Dataset) -> xr.DataArray:
    """The frozen-NTK test error per seed, counting only seeds whose frozen dynamics
    converged."""
    lazy = cell["lazy_test_err"]
    if "lazy_status" in cell:
        lazy = lazy.where(cell["lazy_status"] == CONVERGED)
    return lazy


def _lazy_limit(cell: xr.Dataset, study: Mapping[str, Any]) -> ClaimResult:
    name, act, depth, width = _cell_name(cell)
    claim_id = f"lazy_limit_{name}"
    s = claim_settings(study, "lazy_limit", claim_id, DEFAULTS["lazy_limit"])
    alpha = _ran_alphas(cell)[-1]
    at = cell.sel(alpha=alpha)
    x = float(np.sqrt(width) * alpha)
    excluded = excluded_members(at["status"])
    diff = np.abs(evidence(at["test_err"], at["status"]) - _lazy_errors(cell))
    n = int(diff.notnull().sum())
    statement = (f"at large sqrt(h) alpha the test error equals the frozen initial NTK's "
                 f"({act}, L = {depth}, h = {width}; largest sqrt(h) alpha of the grid "
                 f"{x:.3g})")
    criterion = (f"mean over seeds |E_test(net) - E_test(frozen NTK)| <= {s['tolerance']:g} "
                 f"at sqrt(h) alpha >= {s['min_sqrt_h_alpha']:g}; at least "
                 f"{s['min_members']} converged seed(s)")
    notes = []
    if x < s["min_sqrt_h_alpha"]:
        verdict, measured, unc = NOT_RESOLVED, float("nan"), float("nan")
        notes.append(f"the grid's largest sqrt(h) alpha {x:.3g} is below "
                     f"{s['min_sqrt_h_alpha']:g}: the lazy regime is not reached")
    elif n < s["min_members"]:
        verdict, measured, unc = NOT_RESOLVED, float("nan"), float("nan")
        notes.append(f"{n} seed(s) with both the net and its frozen NTK converged "
                     f"(min_members = {s['min_members']})")
    else:
        measured = float(diff.mean())
        unc = float(diff.std(ddof=0)) if n > 1 else float("nan")  # one seed: no spread
        verdict = tolerance_verdict(measured, 0.0, s["tolerance"])
        nets = evidence(at["test_err"], at["status"]).where(diff.notnull())
        notes.append(f"E_test net {float(nets.mean()):.4f}, frozen NTK "
                     f"{float(_lazy_errors(cell).where(diff.notnull()).mean()):.4f}; "
                     f"max |diff| {float(diff.max()):.4f}")
        if "lazy_vs_net" in at:
            rel = evidence(at["lazy_vs_net"], at["status"])
            notes.append(f"test outputs differ from the frozen-NTK prediction by "
                         f"{float(rel.max()):.2%} (relative L2, worst seed)")
    if excluded:
        notes.append(describe_excluded(excluded))
    return ClaimResult(
        claim_id=claim_id, kind="lazy_limit", paper=PAPER, where="Sec. 3, Fig. 1(a)",
        statement=statement, paper_value=0.0, measured=measured, uncertainty=unc,
        uncertainty_kind="std over seeds", criterion=criterion, verdict=verdict,
        figure=_error_figure(study, act, depth),
        n_members=n, n_excluded=sum(excluded.values()), notes="; ".join(notes))


def _feature_vs_lazy(cell: xr.Dataset, study: Mapping[str, Any]) -> ClaimResult:
    name, act, depth, width = _cell_name(cell)
    claim_id = f"feature_vs_lazy_{name}"
    s = claim_settings(study, "feature_vs_lazy", claim_id, DEFAULTS["feature_vs_lazy"])
    alpha = _ran_alphas(cell)[0]
    at = cell.sel(alpha=alpha)
    x = float(np.sqrt(width) * alpha)
    excluded = excluded_members(at["status"])
    feature = evidence(at["test_err"], at["status"])
    lazy = _lazy_errors(cell)
    nf, nl = int(feature.notnull().sum()), int(lazy.notnull().sum())
    statement = (f"feature learning outperforms lazy learning: E_test at small sqrt(h) alpha "
                 f"< E_test of the frozen initial NTK ({act}, L = {depth}, h = {width}; "
                 f"smallest sqrt(h) alpha of the grid {x:.3g})")
    criterion = (f"E_feature - E_lazy < 0 with |diff| > {s['separation']:g} x (std feature + "
                 f"std lazy), at sqrt(h) alpha <= {s['max_sqrt_h_alpha']:g}; at least "
                 f"{s['min_members']} converged seeds each")
    notes = []
    measured = unc = float("nan")
    if x > s["max_sqrt_h_alpha"]:
        verdict = NOT_RESOLVED
        notes.append(f"the grid's smallest sqrt(h) alpha {x:.3g} is above "
                     f"{s['max_sqrt_h_alpha']:g}: the feature regime is not reached")
    elif min(nf, nl) < s["min_members"]:
        verdict = NOT_RESOLVED
        notes.append(f"converged seeds: {nf} feature, {nl} frozen NTK (min_members = "
                     f"{s['min_members']})")
    else:
        ef, el = float(feature.mean()), float(lazy.mean())
        sf, sl = float(feature.std(ddof=0)), float(lazy.std(ddof=0))
        measured, unc = ef - el, float(np.hypot(sf, sl))
        margin = s["separation"] * (sf + sl)
        verdict = sign_verdict(measured, margin, -1)
        notes.append(f"E_test feature {ef:.4f} +- {sf:.4f}, frozen NTK {el:.4f} +- {sl:.4f}; "
                     "uncertainty = hypot of the two stds")
        if verdict == NOT_RESOLVED:
            notes.append(f"error bars overlap: |diff| {abs(measured):.4f} <= {margin:.4f}")
    if excluded:
        notes.append(describe_excluded(excluded))
    return ClaimResult(
        claim_id=claim_id, kind="feature_vs_lazy", paper=PAPER,
        where="Abstract (ii), Sec. 3, Fig. 1", statement=statement, measured=measured,
        uncertainty=unc, criterion=criterion, verdict=verdict,
        figure=_error_figure(study, act, depth),
        n_members=nf + nl, n_excluded=sum(excluded.values()), notes="; ".join(notes))


__all__ = ["DEFAULTS", "KINDS", "PAPER", "claims"]
