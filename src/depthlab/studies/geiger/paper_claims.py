"""The claims of Geiger, Spigler, Jacot & Wyart, "Disentangling feature and lazy learning in
deep neural networks: an empirical study", checked on a study cube.

Every verdict follows the one statistics rule of :mod:`depthlab.claims` (separated means
``|effect| > k x SE``, k = the ``separation`` setting, default
:data:`depthlab.claims.SEPARATION_K`; symmetric margins; ``not resolved`` inside the noise).
Each row carries the paper's words (``quote``) and their place (``where``). Kinds:

``table1``
    App. G, Table 1: the exponent a of ||Theta - Theta0|| / ||Theta0|| and of sqrt(h)
    ||w - w0|| / ||w0|| ~ (sqrt(h) alpha)^-a in the feature regime, per observable and depth
    of the study's ``table1`` block, measured by
    :func:`depthlab.studies.geiger.table1.exponent_table` (converged runs, widths and seeds
    pooled, with its fit SE). ``holds`` when |a - paper| < tolerance x paper (relative,
    default 0.15) by more than k x SE, ``fails`` when it exceeds it by more than k x SE.
``lazy_limit``
    Sec. 3, Fig. 1(a): at the grid's largest sqrt(h) alpha (>= ``min_sqrt_h_alpha``, default
    100), the mean over seeds of |E_test(net) - E_test(frozen NTK)| (same seed) is below
    ``tolerance`` (absolute, default 0.01), separated by k x its seed SE.
``feature_vs_lazy``
    Sec. 3, Fig. 1: at the smallest sqrt(h) alpha (<= ``max_sqrt_h_alpha``, default 0.1),
    E_test(net) - E_test(frozen NTK) < 0, separated (seed SEs in quadrature).
``alpha_star``
    Sec. 5, Fig. 3(a): the crossover alpha* (where ||Theta - Theta0|| / ||Theta0|| = 1,
    log-log interpolated along alpha, per converged seed) scales as h^-1/2: the slope of
    log alpha* against log h is -1/2 rather than 0 (no h dependence) or -1
    (:func:`depthlab.claims.exponent_verdict`).
``variance_scaling``
    Sec. 4, Eq. (8), Fig. 2(a): the output variance over seeds (``ensemble_var``) at fixed
    sqrt(h) alpha (the grid's smallest: feature; largest: lazy) scales as 1/h: slope of log
    Var against log h is -1 rather than 0 or -2 (SE from the fit residuals).
``t1_scaling``
    Sec. 5, Eq. (10), Fig. 3(c): in the feature regime (sqrt(h) alpha <=
    ``max_sqrt_h_alpha``) t1 ~ alpha sqrt(h): a least-squares fit log t1 = c + a log alpha +
    b log h over the converged runs gives a = 1 (rivals 0, 2; row ``t1_scaling_alpha_*``) and
    b = 1/2 (rivals 0, 1; row ``t1_scaling_width_*``).
``ensemble_width``
    Sec. 4 (i), Fig. 2(b-c): at fixed sqrt(h) alpha the ensemble-averaged test error does not
    depend on h: |E_ens(largest h) - E_ens(smallest h)| < ``tolerance`` (default 0.02),
    separated by k x the binomial SEs (test set of ``n_test`` points) in quadrature.

The h-scaling kinds need widths spanning at least ``min_width_ratio`` (default 8: over a
factor 8 in h the rival exponents -1/2 and -1 differ by a factor sqrt(8) ~ 2.8 in alpha*);
a narrower grid is ``not resolved`` with the span and the factors the rivals predict in the
note. Only converged runs count (hinge loss reached 0); runs that diverged or hit the step
cap are left out and counted in the row; one converged seed never separates anything (no
seed SE), and the note says how many seeds the grid trained there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from depthlab.claims import (
    NOT_RESOLVED,
    SEPARATION_K,
    ClaimResult,
    binomial_se,
    claim_settings,
    combined_se,
    describe_excluded,
    evidence,
    excluded_members,
    exponent_verdict,
    figure_for,
    linear_trend,
    mean_se,
    separated_threshold_verdict,
    separated_verdict,
    separation_note,
)
from depthlab.studies.geiger.table1 import OBSERVABLES, PAPER_EXPONENTS, exponent_table
from depthlab.training.status import CONVERGED, NOT_RUN

PAPER = "Geiger, Spigler, Jacot & Wyart (2020)"
K = SEPARATION_K
DEFAULTS = {
    "table1": {"tolerance": 0.15, "min_points": 4, "separation": K},
    "lazy_limit": {"tolerance": 0.01, "min_sqrt_h_alpha": 100.0, "min_members": 2,
                   "separation": K},
    "feature_vs_lazy": {"max_sqrt_h_alpha": 0.1, "separation": K, "min_members": 2},
    "alpha_star": {"min_width_ratio": 8.0, "min_members": 2, "separation": K},
    "variance_scaling": {"min_width_ratio": 8.0, "min_levels": 3, "separation": K},
    "t1_scaling": {"min_width_ratio": 8.0, "max_sqrt_h_alpha": 0.1, "min_points": 6,
                   "separation": K},
    "ensemble_width": {"min_width_ratio": 8.0, "tolerance": 0.02, "separation": K},
}
KINDS = tuple(DEFAULTS)
_FIGS_EXPONENT = {"kernel": ("geiger_kernel_change",), "weights": ("geiger_weight_change",)}
# sqrt(h) alpha = sqrt(h) x (x / sqrt(h)) is x only up to rounding (0.1 can come back as
# 0.10000000000000002): comparisons with a bound allow that much
_REL = 1e-9
_FIGS_ERROR = ("geiger_error_vs_alpha", "geiger_error_vs_width", "geiger_error_collapse")

# The paper's own words (verbatim from the arXiv text, LaTeX as extracted) and their place.
QUOTES: dict[str, tuple[str, str]] = {
    "table1": ("In Table 1 we summarize the exponent found numerically, they are compatible "
               "the our predictions.", "App. G, Table 1"),
    "lazy_limit": ("This limiting curve coincides with the test error found if the NTK is "
                   "frozen at initialization", "Sec. 3, Fig. 1(a)"),
    "feature_vs_lazy": ("Obviously, Fig. 1 makes another key point: feature learning "
                        "outperforms lazy learning.", "Sec. 3, Fig. 1; Abstract (ii)"),
    "alpha_star": ("In particular, the cross-over  $\\alpha^* \\sim h^{-1/2}$  precisely "
                   "corresponds to the point where the change of the kernel is of the order "
                   "of the initial kernel.", "Sec. 5, Fig. 3(a); Abstract (i)"),
    "variance_scaling": ("In both regimes, the fluctuations  $\\delta f$  induced by initial "
                         "conditions on the learned function follow  $\\delta f \\sim "
                         "1/\\sqrt{h}$", "Abstract (iii); Sec. 4, Eq. (8), Fig. 2(a)"),
    "t1_scaling": ("In the feature regime there exists a time scale  $t_1 \\sim "
                   "\\alpha\\sqrt{h}$", "Abstract (iv); Sec. 5, Eq. (10), Fig. 3(c)"),
    "ensemble_width": ("In each regime, the test error of the ensemble average is essentially "
                       "independent of  $h$", "Sec. 4 (i), Fig. 2(b-c)"),
}
_FIG_OF = {"alpha_star": ("geiger_kernel_change", "geiger_error_collapse"),
           "variance_scaling": ("geiger_variance_vs_width",),
           "t1_scaling": ("geiger_times",),
           "ensemble_width": ("geiger_ensemble_vs_width", "geiger_ensemble_vs_scale")}


def claims(cube: xr.Dataset, study: Mapping[str, Any]) -> list[ClaimResult]:
    source = str(cube.attrs.get("data_source", ""))
    results = _table1(cube, study) if study.get("table1") else []
    for act in cube["activation"].values:
        for depth in cube["depth"].values:
            group = cube.sel(activation=act, depth=depth)
            if not bool((group["status"] != NOT_RUN).any()):
                continue
            if "lazy_test_err" in cube:
                for width in cube["width"].values:
                    cell = group.sel(width=width)
                    if not bool((cell["status"] != NOT_RUN).any()):
                        continue
                    results.append(_lazy_limit(cell, study))
                    results.append(_feature_vs_lazy(cell, study))
            results += _scaling_claims(group, study)
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
        criterion = (f"|a - {paper:g}| <= {s['tolerance']:g} x {paper:g}, separated by "
                     f"{s['separation']:g} x the fit SE; at least {s['min_points']} "
                     f"converged runs in sqrt(h) alpha in [{lo:g}, {hi:g}]")
        notes = [_n_points_note(int(row.n_points), s) + f", r2 {row.r2:.3f}, widths "
                 f"{row.widths}"]
        if not np.isfinite(paper):
            verdict = NOT_RESOLVED
            notes.append("the paper gives no exponent for this depth")
        elif int(row.n_points) < s["min_points"]:
            verdict = NOT_RESOLVED
            notes.append("too few converged runs in the fit range")
        else:
            dist = abs(float(row.exponent_a) - paper)
            band = s["tolerance"] * abs(paper)
            verdict = separated_threshold_verdict(dist, band, float(row.exponent_stderr),
                                                  above=False, k=s["separation"])
            notes.append(separation_note(dist - band, float(row.exponent_stderr),
                                         s["separation"], what="|a - paper| - tolerance"))
        if excluded:
            notes.append(describe_excluded(excluded))
        out.append(ClaimResult(
            claim_id=claim_id, kind="table1", paper=PAPER, where=QUOTES["table1"][1],
            quote=QUOTES["table1"][0],
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


def _seeds_note(cell: xr.Dataset, alpha: float, n: int) -> str:
    """Why a cell has too few converged seeds: how many the grid trained there."""
    ran = int((cell["status"].sel(alpha=alpha) != NOT_RUN).sum())
    if ran < 2:
        return (f"the grid trains {ran} seed(s) here: one seed has no seed SE, so this row "
                "is out of the laptop grid's reach (add seeds to decide it)")
    return f"{n} of the {ran} seeds the grid trains here converged"


def _lazy_limit(cell: xr.Dataset, study: Mapping[str, Any]) -> ClaimResult:
    name, act, depth, width = _cell_name(cell)
    claim_id = f"lazy_limit_{name}"
    s = claim_settings(study, "lazy_limit", claim_id, DEFAULTS["lazy_limit"])
    alpha = _ran_alphas(cell)[-1]
    at = cell.sel(alpha=alpha)
    x = float(np.sqrt(width) * alpha)
    excluded = excluded_members(at["status"])
    diff = np.abs(evidence(at["test_err"], at["status"]) - _lazy_errors(cell))
    mean, se, n = mean_se(diff.values)
    quote, where = QUOTES["lazy_limit"]
    statement = (f"at large sqrt(h) alpha the test error equals the frozen initial NTK's "
                 f"({act}, L = {depth}, h = {width}; largest sqrt(h) alpha of the grid "
                 f"{x:.3g})")
    criterion = (f"mean over seeds |E_test(net) - E_test(frozen NTK)| < {s['tolerance']:g}, "
                 f"separated by {s['separation']:g} x its seed SE, at sqrt(h) alpha >= "
                 f"{s['min_sqrt_h_alpha']:g}; at least {s['min_members']} converged seeds")
    notes = []
    verdict, measured, unc = NOT_RESOLVED, float("nan"), float("nan")
    if x < s["min_sqrt_h_alpha"] * (1 - _REL):
        notes.append(f"out of the laptop grid's reach: its largest sqrt(h) alpha here, "
                     f"{x:.3g}, is below min_sqrt_h_alpha = {s['min_sqrt_h_alpha']:g} "
                     "(the lazy regime is not reached)")
    elif n < s["min_members"]:
        notes.append(f"{n} seed(s) with both the net and its frozen NTK converged "
                     f"(min_members = {s['min_members']}); " + _seeds_note(cell, alpha, n))
    else:
        measured, unc = mean, se
        verdict = separated_threshold_verdict(mean, s["tolerance"], se, above=False,
                                              k=s["separation"])
        nets = evidence(at["test_err"], at["status"]).where(diff.notnull())
        notes.append(f"E_test net {float(nets.mean()):.4f}, frozen NTK "
                     f"{float(_lazy_errors(cell).where(diff.notnull()).mean()):.4f}; "
                     f"max |diff| {float(diff.max()):.4f}")
        notes.append(separation_note(mean - s["tolerance"], se, s["separation"],
                                     what="mean |diff| - tolerance"))
        if "lazy_vs_net" in at:
            rel = evidence(at["lazy_vs_net"], at["status"])
            notes.append(f"test outputs differ from the frozen-NTK prediction by "
                         f"{float(rel.max()):.2%} (relative L2, worst seed)")
    if excluded:
        notes.append(describe_excluded(excluded))
    return ClaimResult(
        claim_id=claim_id, kind="lazy_limit", paper=PAPER, where=where, quote=quote,
        statement=statement, paper_value=0.0, measured=measured, uncertainty=unc,
        uncertainty_kind="SE over seeds", criterion=criterion, verdict=verdict,
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
    feature = mean_se(evidence(at["test_err"], at["status"]).values)
    lazy = mean_se(_lazy_errors(cell).values)
    quote, where = QUOTES["feature_vs_lazy"]
    statement = (f"feature learning outperforms lazy learning: E_test at small sqrt(h) alpha "
                 f"< E_test of the frozen initial NTK ({act}, L = {depth}, h = {width}; "
                 f"smallest sqrt(h) alpha of the grid {x:.3g})")
    criterion = (f"E_feature - E_lazy < 0, separated by {s['separation']:g} x SE (seed SEs "
                 f"in quadrature), at sqrt(h) alpha <= {s['max_sqrt_h_alpha']:g}; at least "
                 f"{s['min_members']} converged seeds each")
    notes = []
    verdict, measured, unc = NOT_RESOLVED, float("nan"), float("nan")
    if x > s["max_sqrt_h_alpha"] * (1 + _REL):
        notes.append(f"out of the laptop grid's reach: its smallest sqrt(h) alpha here, "
                     f"{x:.3g}, is above max_sqrt_h_alpha = {s['max_sqrt_h_alpha']:g} "
                     "(the feature regime is not reached)")
    elif min(feature[2], lazy[2]) < s["min_members"]:
        notes.append(f"converged seeds: {feature[2]} feature, {lazy[2]} frozen NTK "
                     f"(min_members = {s['min_members']}); "
                     + _seeds_note(cell, alpha, min(feature[2], lazy[2])))
    else:
        measured, unc = feature[0] - lazy[0], combined_se(feature[1], lazy[1])
        verdict = separated_verdict(measured, unc, -1, s["separation"])
        notes.append(f"E_test feature {feature[0]:.4f} +- {feature[1]:.4f}, frozen NTK "
                     f"{lazy[0]:.4f} +- {lazy[1]:.4f} (mean +- SE)")
        notes.append(separation_note(measured, unc, s["separation"], what="diff"))
    if excluded:
        notes.append(describe_excluded(excluded))
    return ClaimResult(
        claim_id=claim_id, kind="feature_vs_lazy", paper=PAPER, where=where, quote=quote,
        statement=statement, measured=measured, uncertainty=unc,
        uncertainty_kind="SE over seeds", criterion=criterion, verdict=verdict,
        figure=_error_figure(study, act, depth),
        n_members=feature[2] + lazy[2], n_excluded=sum(excluded.values()),
        notes="; ".join(notes))


# ----------------------------------------------------------- scaling with the width h

def _span_note(widths: Sequence[int], s: Mapping[str, Any], expected: float,
               rivals: Sequence[float], what: str) -> str:
    """Empty when the widths span at least min_width_ratio; otherwise why the exponents
    cannot be told apart on them: the span and the factors each exponent predicts."""
    widths = sorted({int(w) for w in widths})
    if len(widths) < 2:
        return (f"{len(widths)} width(s) with data: an h-exponent needs several widths "
                f"spanning a factor >= min_width_ratio = {s['min_width_ratio']:g}")
    ratio = widths[-1] / widths[0]
    if ratio >= s["min_width_ratio"]:
        return ""
    factors = ", ".join(f"h^{e:g}: x{ratio ** e:.3g}" for e in (expected, *rivals))
    return (f"out of the laptop grid's reach: widths {widths} span a factor {ratio:g} < "
            f"min_width_ratio = {s['min_width_ratio']:g}; over that span {what} changes by "
            f"{factors}, too close to tell the exponents apart")


def _crossing(alphas: np.ndarray, values: np.ndarray, level: float = 1.0) -> float:
    """The alpha where ``values`` (decreasing in alpha) crosses ``level``, interpolated
    linearly in log-log between the bracketing grid points; NaN when it never crosses."""
    ok = np.isfinite(values) & (values > 0)
    a, v = np.log(alphas[ok]), np.log(values[ok])
    order = np.argsort(a)
    a, v = a[order], v[order]
    target = np.log(level)
    for i in range(len(a) - 1):
        if (v[i] - target) * (v[i + 1] - target) <= 0 and v[i] != v[i + 1]:
            frac = (target - v[i]) / (v[i + 1] - v[i])
            return float(np.exp(a[i] + frac * (a[i + 1] - a[i])))
    return float("nan")


def _group_name(group: xr.Dataset) -> tuple[str, str, int]:
    act, depth = str(group["activation"].values), int(group["depth"].values)
    return f"{act}_L{depth}", act, depth


def _scaling_row(kind: str, claim_id: str, group: xr.Dataset, study, statement, criterion,
                 measured, se, verdict, notes, n, n_excluded, paper_value=float("nan"),
                 uncertainty_kind="least-squares SE of the slope") -> ClaimResult:
    _, act, depth = _group_name(group)
    quote, where = QUOTES[kind]
    return ClaimResult(
        claim_id=claim_id, kind=kind, paper=PAPER, where=where, quote=quote,
        statement=statement, paper_value=paper_value, measured=measured, uncertainty=se,
        uncertainty_kind=uncertainty_kind, criterion=criterion, verdict=verdict,
        figure=(figure_for(study, _FIG_OF[kind], activation=act, depth=depth)
                or _error_figure(study, act, depth)),
        n_members=n, n_excluded=n_excluded, notes="; ".join(n_ for n_ in notes if n_))


def _scaling_claims(group: xr.Dataset, study: Mapping[str, Any]) -> list[ClaimResult]:
    """The h-scaling claims of one (activation, depth): only where the grid ran two widths
    or more (one width cannot address an h-exponent; a narrow span is ``not resolved`` with
    its reason). t1's alpha exponent needs one width only."""
    ran = (group["status"] != NOT_RUN).any(["alpha", "seed"])
    several = int(ran.sum()) >= 2
    out = []
    if several and "ntk_change" in group:
        out.append(_alpha_star(group, study))
    if several and "ensemble_var" in group:
        out += _variance_scaling(group, study)
    if "t1" in group:
        out += _t1_scaling(group, study, with_width=several)
    if several and "ensemble_test_err" in group:
        out += _ensemble_width(group, study)
    return out


def _exponent_verdict(slope, se, expected, rivals, s, span, n_ok, min_n, short_note):
    notes = [span]
    if span:
        return NOT_RESOLVED, notes
    if n_ok < min_n:
        return NOT_RESOLVED, [short_note]
    verdict = exponent_verdict(slope, se, expected, rivals, s["separation"])
    for r in rivals:
        mid = 0.5 * (expected + r)
        notes.append(separation_note(slope - mid, se, s["separation"],
                                     what=f"slope - midpoint to rival {r:g} ({mid:g})"))
    return verdict, notes


def _alpha_star(group: xr.Dataset, study: Mapping[str, Any]) -> ClaimResult:
    name, act, depth = _group_name(group)
    claim_id = f"alpha_star_{name}"
    s = claim_settings(study, "alpha_star", claim_id, DEFAULTS["alpha_star"])
    expected, rivals = -0.5, (0.0, -1.0)
    usable = evidence(group["ntk_change"], group["status"])
    xs, ys, per_width = [], [], {}
    for w in group["width"].values:
        cell = usable.sel(width=w)
        for seed in cell["seed"].values:
            a_star = _crossing(cell["alpha"].values, cell.sel(seed=seed).values)
            if np.isfinite(a_star):
                xs.append(np.log(float(w)))
                ys.append(np.log(a_star))
                per_width.setdefault(int(w), []).append(a_star)
    widths = sorted(w for w, v in per_width.items() if len(v) >= s["min_members"])
    slope, se, n = linear_trend(xs, ys)
    span = _span_note(widths, s, expected, rivals, "alpha*")
    verdict, notes = _exponent_verdict(
        slope, se, expected, rivals, s, span, len(widths), 2,
        f"{len(widths)} width(s) with >= {s['min_members']} seeds whose kernel change "
        "crosses 1 on the alpha grid")
    found = ", ".join(f"h={w}: {np.exp(np.mean(np.log(v))):.3g}"
                      for w, v in sorted(per_width.items()))
    notes.insert(0, f"alpha* (geometric mean over seeds) {found or 'never crossed'}")
    return _scaling_row(
        "alpha_star", claim_id, group, study,
        f"the crossover alpha* (||Theta - Theta0|| / ||Theta0|| = 1) scales as h^-1/2 "
        f"({act}, L = {depth})",
        f"slope of log alpha* vs log h (one point per converged seed and width) on the side "
        f"of -1/2 of the midpoints to the rivals 0 and -1, by {s['separation']:g} x SE; widths "
        f"spanning >= {s['min_width_ratio']:g}x",
        slope, se, verdict, notes, n, sum(excluded_members(group["status"]).values()),
        paper_value=expected)


def _at_scale(group: xr.Dataset, var: str, x: float) -> dict[int, float]:
    """{width: value of ``var`` at sqrt(h) alpha == x} over the widths that ran there."""
    out = {}
    for w in group["width"].values:
        alphas = group["alpha"].values
        match = np.isclose(np.sqrt(float(w)) * alphas, x, rtol=1e-6)
        for a in alphas[match]:
            ran = bool((group["status"].sel(width=w, alpha=a) != NOT_RUN).any())
            v = float(group[var].sel(width=w, alpha=a))
            if ran and np.isfinite(v):
                out[int(w)] = v
    return out


def _regimes(group: xr.Dataset) -> list[tuple[str, float]]:
    """The sqrt(h) alpha values run at every width that ran: the smallest (feature) and the
    largest (lazy), if distinct."""
    ran = (group["status"] != NOT_RUN).any("seed")
    widths = [w for w in group["width"].values if bool(ran.sel(width=w).any())]
    common = None
    for w in widths:
        xs = {round(float(np.sqrt(float(w)) * a), 9)
              for a in group["alpha"].values[ran.sel(width=w).values]}
        common = xs if common is None else common & xs
    if not common:
        return []
    xs = sorted(common)
    return [("feature", xs[0])] + ([("lazy", xs[-1])] if len(xs) > 1 else [])


def _variance_scaling(group: xr.Dataset, study) -> list[ClaimResult]:
    name, act, depth = _group_name(group)
    expected, rivals = -1.0, (0.0, -2.0)
    out = []
    for regime, x in _regimes(group):
        claim_id = f"variance_scaling_{name}_{regime}"
        s = claim_settings(study, "variance_scaling", claim_id, DEFAULTS["variance_scaling"])
        var = {w: v for w, v in _at_scale(group, "ensemble_var", x).items() if v > 0}
        slope, se, n = linear_trend(np.log(list(var)), np.log(list(var.values())))
        span = _span_note(list(var), s, expected, rivals, "Var f")
        verdict, notes = _exponent_verdict(
            slope, se, expected, rivals, s, span, len(var), s["min_levels"],
            f"{len(var)} width(s) with an output variance (min_levels = {s['min_levels']}: "
            "the slope's SE comes from the fit residuals)")
        notes.insert(0, "Var f " + ", ".join(f"h={w}: {v:.3g}" for w, v in var.items())
                     + " (over every seed of the cell, as eq. (7))")
        out.append(_scaling_row(
            "variance_scaling", claim_id, group, study,
            f"the output variance over initializations scales as 1/h ({regime} regime, "
            f"sqrt(h) alpha = {x:g}; {act}, L = {depth})",
            f"slope of log Var f vs log h on the side of -1 of the midpoints to the rivals 0 "
            f"and -2, by {s['separation']:g} x SE; at least {s['min_levels']} widths spanning "
            f">= {s['min_width_ratio']:g}x",
            slope, se, verdict, notes, n, 0, paper_value=expected))
    return out


def _fit2(x1: np.ndarray, x2: np.ndarray, y: np.ndarray):
    """Least squares y = c + b1 x1 + b2 x2: (b1, se1, b2, se2); SEs NaN without residual
    degrees of freedom or with collinear regressors."""
    design = np.column_stack([np.ones_like(x1), x1, x2])
    n = len(y)
    if n <= 3 or np.linalg.matrix_rank(design) < 3:
        return (float("nan"),) * 4
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    cov = np.linalg.inv(design.T @ design) * float(resid @ resid) / (n - 3)
    return (float(coef[1]), float(np.sqrt(cov[1, 1])), float(coef[2]),
            float(np.sqrt(cov[2, 2])))


def _t1_scaling(group: xr.Dataset, study, with_width: bool = True) -> list[ClaimResult]:
    name, act, depth = _group_name(group)
    s = claim_settings(study, "t1_scaling", f"t1_scaling_alpha_{name}",
                       DEFAULTS["t1_scaling"])
    t1 = evidence(group["t1"], group["status"])
    feature = (group["sqrt_h_alpha"] <= s["max_sqrt_h_alpha"] * (1 + _REL)
               ).broadcast_like(t1)
    t1 = t1.where(feature)
    la, lh, ly = [], [], []
    for w in t1["width"].values:
        for a in t1["alpha"].values:
            for v in t1.sel(width=w, alpha=a).values:
                if np.isfinite(v) and v > 0:
                    la.append(np.log(float(a)))
                    lh.append(np.log(float(w)))
                    ly.append(np.log(float(v)))
    la, lh, ly = np.array(la), np.array(lh), np.array(ly)
    widths = sorted({int(round(np.exp(v))) for v in lh})
    if len(widths) >= 2:
        b_alpha, se_alpha, b_h, se_h = _fit2(la, lh, ly)
    else:  # one width: the alpha exponent alone
        b_alpha, se_alpha, _ = linear_trend(la, ly)
        b_h = se_h = float("nan")
    n = len(ly)
    out = []
    arms = [("alpha", b_alpha, se_alpha, 1.0, (0.0, 2.0))]
    if with_width:
        arms.append(("width", b_h, se_h, 0.5, (0.0, 1.0)))
    for which, coef, se, expected, rivals in arms:
        claim_id = f"t1_scaling_{which}_{name}"
        s = claim_settings(study, "t1_scaling", claim_id, DEFAULTS["t1_scaling"])
        span = _span_note(widths, s, expected, rivals, "t1") if which == "width" else ""
        verdict, notes = _exponent_verdict(
            coef, se, expected, rivals, s, span, n, s["min_points"],
            f"{n} converged runs with a t1 at sqrt(h) alpha <= {s['max_sqrt_h_alpha']:g} "
            f"(min_points = {s['min_points']})")
        if n >= s["min_points"] and not np.isfinite(se):
            notes.append("the fit has no residual degrees of freedom or alpha and h are "
                         "collinear on this grid")
        notes.insert(0, f"fit log t1 = c + a log alpha + b log h over {n} runs, widths "
                        f"{widths}: a = {b_alpha:.3g} +- {se_alpha:.2g}, b = {b_h:.3g} +- "
                        f"{se_h:.2g}")
        out.append(_scaling_row(
            "t1_scaling", claim_id, group, study,
            f"in the feature regime t1 ~ alpha sqrt(h): the {which} exponent of t1 is "
            f"{expected:g} ({act}, L = {depth})",
            f"the fitted {which} exponent on the side of {expected:g} of the midpoints to the "
            f"rivals {rivals[0]:g} and {rivals[1]:g}, by {s['separation']:g} x SE; at least "
            f"{s['min_points']} converged runs at sqrt(h) alpha <= {s['max_sqrt_h_alpha']:g}"
            + (f"; widths spanning >= {s['min_width_ratio']:g}x" if which == "width" else ""),
            coef, se, verdict, notes, n, 0, paper_value=expected,
            uncertainty_kind="least-squares SE of the coefficient"))
    return out


def _ensemble_width(group: xr.Dataset, study) -> list[ClaimResult]:
    name, act, depth = _group_name(group)
    n_test = group.attrs.get("n_test")
    out = []
    for regime, x in _regimes(group):
        claim_id = f"ensemble_width_{name}_{regime}"
        s = claim_settings(study, "ensemble_width", claim_id, DEFAULTS["ensemble_width"])
        ens = _at_scale(group, "ensemble_test_err", x)
        single = _at_scale(group.assign(mean_err=evidence(
            group["test_err"], group["status"]).mean("seed")), "mean_err", x)
        widths = sorted(ens)
        notes = ["ensemble E_test " + ", ".join(f"h={w}: {ens[w]:.4f}" for w in widths)
                 + "; single nets (mean) " + ", ".join(f"h={w}: {v:.4f}"
                                                         for w, v in sorted(single.items()))]
        measured = se = float("nan")
        verdict = NOT_RESOLVED
        ratio_needed = s["min_width_ratio"]
        if len(widths) < 2 or widths[-1] / widths[0] < ratio_needed:
            notes.append(f"out of the laptop grid's reach: widths {widths} span a factor "
                         f"{(widths[-1] / widths[0]) if len(widths) > 1 else 1:g} < "
                         f"min_width_ratio = {ratio_needed:g}")
        elif not n_test:
            notes.append("the cube does not record n_test: no binomial SE")
        else:
            lo, hi = ens[widths[0]], ens[widths[-1]]
            measured = hi - lo
            se = combined_se(binomial_se(lo, n_test), binomial_se(hi, n_test))
            verdict = separated_threshold_verdict(abs(measured), s["tolerance"], se,
                                                  above=False, k=s["separation"])
            notes.append(separation_note(abs(measured) - s["tolerance"], se, s["separation"],
                                         what="|change| - tolerance"))
        out.append(_scaling_row(
            "ensemble_width", claim_id, group, study,
            f"the ensemble-averaged test error does not depend on h ({regime} regime, "
            f"sqrt(h) alpha = {x:g}; {act}, L = {depth})",
            f"|E_ens(largest h) - E_ens(smallest h)| < {s['tolerance']:g}, separated by "
            f"{s['separation']:g} x SE (binomial, n_test test points); widths spanning >= "
            f"{ratio_needed:g}x",
            measured, se, verdict, notes, len(widths), 0,
            uncertainty_kind="binomial SE over the test set"))
    return out


__all__ = ["DEFAULTS", "KINDS", "PAPER", "QUOTES", "claims"]
