"""The claims of Mori & Ueda, "Is deeper better? It depends on locality of relevant
features", checked on a study cube.

Every verdict follows the one statistics rule of :mod:`depthlab.claims` (separated means
``|effect| > k x SE``, k = the ``separation`` setting, default
:data:`depthlab.claims.SEPARATION_K`; SE over the converged seeds; symmetric margins).
Kinds (each row carries the paper's words in ``quote`` and their place in ``where``):

``depth_effect``
    one row per (figure, dataset, N, width) cell of a ``test_error_vs_n`` figure where both
    compared depths were trained: the sign of E_test(L=deep) - E_test(L=shallow); deeper is
    better (-) for k-local labels with k >= 2 (Sec. 3.2, Fig. 2), shallower is better (+) for
    k = 1 (Sec. 3.1, Fig. 1), k-global labels (Sec. 3.2) and the Ising label (Supp., Fig. S2).
    SE = the two seed SEs in quadrature.
``ntk``
    Sec. 3.3, per cell of a cross-entropy study (Supp. B makes no such claim for the
    mean-square loss: there the nets are *closer* to the NTK). gap = E_NTK(L=shallow) - the
    better net's mean, SE = that net's seed SE (the kernel is deterministic). For k-local
    labels with k >= 2 and the 3-global label the NTK "almost completely fails": gap >=
    ``min_gap`` (default 0.1), separated. For k = 1 and the 2-global label it is "comparable
    to or lower than" the nets (its performance, not its error): gap >= -``tolerance``
    (default 0.02: the NTK may not beat the better net by more than that), separated; it
    fails when the NTK is better than the nets by more than the tolerance, separated.
``depth_trend``
    Sec. 3.2, Fig. 3: per dataset of a ``test_error_vs_depth`` figure, the least-squares
    slope of E_test against L over every converged member (``linear_trend``), negative for
    the 2-local label, positive for the 2-global one; at least ``min_levels`` depths.
``ntk_depth``
    Sec. 3.3, Fig. 2(d): for the 3-global label, the NTK of depth 7 classifies where the NTK
    of depth 1 fails: E_NTK(L=1) - E_NTK(L=7) >= ``min_gap``, separated, SE = the binomial SEs
    of the two kernel errors on the dataset's ``n_test`` points, in quadrature.
``lr_dependence``
    Sec. 3.3, Fig. 4: per ``test_error_vs_lr`` figure, the lr dependence (largest minus
    smallest seed-mean test error over the learning rates, SE from the two extreme cells) is
    larger for the 2-local than for the 2-global label (Fig. 4(a), L = 1) and larger for L = 1
    than for L = 7 on the 3-global label (Fig. 4(b)).
``local_stability``
    Sec. 4.2, Fig. 5: nets trained on random labels (datasets of the ``local_stability``
    figure whose generator is ``random``): s(v) of the deep net is smaller than the shallow
    net's; the measured effect is the mean over v > 0 of s_deep(v) - s_shallow(v).

Only converged members count (training error exactly 0); diverged and capped members are
left out of every mean and SE. A cell with fewer than ``min_members`` converged members is
``not resolved at this scale`` (the row says how many were excluded and why), never dropped.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
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
    figure_for,
    linear_trend,
    mean_se,
    separated_threshold_verdict,
    separated_verdict,
    separation_note,
)
from depthlab.studies.mori_ueda.cube import figure_n, pick_lr
from depthlab.studies.mori_ueda.summary import depth_effect_table

PAPER = "Mori & Ueda (2020)"
K = SEPARATION_K
DEFAULTS = {
    "depth_effect": {"separation": K, "min_members": 2},
    "ntk": {"min_gap": 0.1, "tolerance": 0.02, "separation": K, "min_members": 2},
    "depth_trend": {"separation": K, "min_levels": 3},
    "ntk_depth": {"min_gap": 0.1, "separation": K},
    "lr_dependence": {"separation": K, "min_members": 2, "min_levels": 2},
    "local_stability": {"separation": K, "min_members": 2},
    # across a cross-entropy and a mean-square study (claims_across); settings from the
    # mean-square study's claims block
    "loss_ce_better": {"separation": K, "min_members": 2},
    "loss_mse_closer_to_ntk": {"separation": K},
}
KINDS = tuple(DEFAULTS)

# The paper's own words (verbatim, from the arXiv text) and their place, per claim flavour.
QUOTES: dict[str, tuple[str, str]] = {
    "deeper_local": ("The deeper network (L = 7) generalizes better than the shallower one "
                     "(L = 1).", "Sec. 3.2, Fig. 2(a-b)"),
    "shallower_global": ("now shallow networks (L = 1) outperform deep ones (L = 7), contrary "
                         "to the results for k-local labels", "Sec. 3.2, Fig. 2(c-d)"),
    "shallower_k1": ("a shallower network (L = 1) shows better generalization compared with a "
                     "deeper one (L = 7)", "Sec. 3.1, Fig. 1"),
    "shallower_ising": ("for larger N , the shallow network clearly outperforms the deep one",
                        "Supplementary Material C, Fig. S2"),
    "mse": ("deeper is better for local labels, whereas shallower is better for global labels",
            "Supplementary Material B, Fig. S1"),
    "ntk_fails": ("the NTK almost completely fails to classify the data, although finite "
                  "networks are successful", "Sec. 3.3, Fig. 2(a-b)"),
    "ntk_fails_global3": ("the NTK of depth L = 7 correctly classifies the data, whereas the "
                          "NTK of depth L = 1 fails", "Sec. 3.3, Fig. 2(d)"),
    "ntk_comparable": ("the generalization performance of the NTK is comparable to or lower "
                       "than that of finite networks", "Sec. 3.3, Figs. 1, 2(c)"),
    "trend": ("The test error of the 2-local label decreases with increasing L, whereas the "
              "test error of the 2-global label increases with L.", "Sec. 3.2, Fig. 3"),
    "lr_labels": ("We observe a sharp learning-rate dependence in the case of the 2-local "
                  "label in contrast to the case of the 2-global label.",
                  "Sec. 3.3, Fig. 4(a)"),
    "lr_depths": ("the learning-rate dependence for L = 1 is much stronger than that for L = 7",
                  "Sec. 3.3, Fig. 4(b)"),
    "stability": ("We observe that s(v) in the deep network is smaller than that in the "
                  "shallow one.", "Sec. 4.2, Fig. 5"),
}


def expected_ntk_fails(generator: str, k: int) -> bool | None:
    """Sec. 3.3: the NTK fails for k-local labels with k >= 2 and for the 3-global label
    (at L = 1); it is comparable to or lower than the nets for k = 1 and the 2-global label.
    None where the paper says nothing (random labels, Ising, k-global with k > 3)."""
    if generator == "k_local":
        return k >= 2
    if generator == "k_global":
        return {1: False, 2: False, 3: True}.get(k)
    return None


def _label(generator: str, k: int) -> str:
    return {"k_local": f"{k}-local", "k_global": f"{k}-global", "ising": "Ising",
            "random": "random"}.get(generator, generator)


def _depth_quote(generator: str, k: int, loss: str) -> tuple[str, str]:
    if loss == "mse":
        return QUOTES["mse"]
    if generator == "ising":
        return QUOTES["shallower_ising"]
    if k <= 1:
        return QUOTES["shallower_k1"]
    return QUOTES["deeper_local"] if generator == "k_local" else QUOTES["shallower_global"]


def _ntk_quote(generator: str, k: int, fails: bool) -> tuple[str, str]:
    if not fails:
        return QUOTES["ntk_comparable"]
    return QUOTES["ntk_fails_global3"] if generator == "k_global" else QUOTES["ntk_fails"]


def _where(where: str, figure: str) -> str:
    """The paper's place; a study figure named after a supplementary one (figS1, ...) keeps
    the quote's place, which already names it."""
    supp = re.fullmatch(r"figS(\d+)", figure)
    if supp and f"Fig. S{supp.group(1)}" not in where:
        return f"{where} (study figure {figure})"
    return where


def _n_test(cube: xr.Dataset, dataset: str) -> int | None:
    """The dataset's test-set size, from the config the cube was built from (its provenance
    attribute); None when the cube does not record it."""
    try:
        spec = json.loads(cube.attrs.get("config", "{}"))["datasets"][dataset]
        return int(spec["n_test"])
    except (KeyError, TypeError, ValueError):
        return None


def _loss(study: Mapping[str, Any]) -> str:
    return str((study.get("training") or {}).get("loss", "cross_entropy"))


def _source(cube: xr.Dataset, dataset: str) -> str:
    if "data_source" in cube.coords or "data_source" in cube:
        return str(cube["data_source"].sel(dataset=dataset).values)
    return ""


def claims(cube: xr.Dataset, study: Mapping[str, Any]) -> list[ClaimResult]:
    """Every claim the study's figures can address (see the module docstring)."""
    depths = {"shallow": 1, "deep": 7, **(study.get("summary") or {})}
    shallow, deep = int(depths["shallow"]), int(depths["deep"])
    figures = study.get("figures") or {}
    results = _per_cell(cube, study, figures, shallow, deep)
    results += _depth_trends(cube, study, figures)
    results += _ntk_depth(cube, study, shallow, deep)
    results += _lr_dependence(cube, study, figures)
    results += _local_stability(cube, study, figures, shallow, deep)
    return results


def _per_cell(cube, study, figures, shallow, deep) -> list[ClaimResult]:
    # the cells summary.csv has a row for (every member counted there, whatever its status)
    table = depth_effect_table(cube, figures, shallow=shallow, deep=deep)
    usable = evidence(cube["test_error"], cube["status"])
    loss = _loss(study)
    results: list[ClaimResult] = []
    for _, row in table.iterrows():
        generator, k = str(row["label"]), int(row["k"])
        figure = figures[row["figure"]]
        sel = {"dataset": row["dataset"], "lr": pick_lr(cube, figure, row["dataset"]),
               "n_train": row["n_train"], "width": row["width"]}
        excluded = excluded_members(cube["status"].sel(**sel, depth=[shallow, deep]))
        stats = {d: mean_se(usable.sel(**sel, depth=d).values) for d in (shallow, deep)}
        drawn = row["dataset"] in study.get("data_draws", [])
        # a drawn dataset gives both depths of one seed the same draw: the effect is the
        # mean of the per-seed differences, so the draws' noise that both arms share cancels
        paired = _paired_difference(usable.sel(**sel, depth=shallow),
                                    usable.sel(**sel, depth=deep)) if drawn else None
        cell = (f"{_label(generator, k)} label ({row['dataset']}, d = {int(row['d'])}), "
                f"N = {int(row['n_train'])}, H = {int(row['width'])}, lr = {row['lr']}")
        base = {"paper": PAPER, "figure": row["figure"],
                "n_excluded": sum(excluded.values()),
                "n_members": sum(st[2] for st in stats.values()),
                "data_source": _source(cube, row["dataset"])}
        suffix = f"{row['figure']}_{row['dataset']}_N{int(row['n_train'])}_H{int(row['width'])}"

        expected = row["expected_sign"]
        if expected is not None and not pd.isna(expected):
            expected = int(expected)
            quote, where = _depth_quote(generator, k, loss)
            claim_id = f"depth_effect_{suffix}"
            s = claim_settings(study, "depth_effect", claim_id, DEFAULTS["depth_effect"])
            statement = (f"{'deeper' if expected < 0 else 'shallower'} is better: "
                         f"E_test(L={deep}) {'<' if expected < 0 else '>'} "
                         f"E_test(L={shallow}) for the {cell}")
            se_kind = ("SE of the per-seed differences: both depths of a seed share its "
                       "draw" if drawn else "seed SEs in quadrature")
            criterion = (f"E(L={deep}) - E(L={shallow}) {'<' if expected < 0 else '>'} 0 with "
                         f"|effect| > {s['separation']:g} x SE ({se_kind}); at "
                         f"least {s['min_members']} converged members per depth")
            results.append(_with_note(_depth_claim(
                claim_id, statement, criterion, stats, (shallow, deep), expected, s, excluded,
                {**base, "quote": quote, "where": _where(where, row["figure"])}, paired),
                DRAWN_NOTE if drawn else ""))

        fails = expected_ntk_fails(generator, k)
        ntk = row.get("ntk_test_error", float("nan"))
        # Supp. B: under the mean-square loss the nets are closer to the NTK; the paper makes
        # no NTK claim for that loss, so its cells get no NTK row.
        if loss != "mse" and fails is not None and ntk is not None and np.isfinite(ntk):
            claim_id = f"ntk_{suffix}"
            s = claim_settings(study, "ntk", claim_id, DEFAULTS["ntk"])
            quote, where = _ntk_quote(generator, k, fails)
            if fails:
                statement = (f"the NTK (L = {shallow}) fails where the nets succeed, for the "
                             f"{cell}")
                criterion = (f"gap = E_NTK - E_test(better net) >= {s['min_gap']:g}, "
                             f"separated by {s['separation']:g} x SE")
            else:
                statement = (f"the NTK (L = {shallow}) performs comparably to or worse than "
                             f"the nets, for the {cell}")
                criterion = (f"gap = E_NTK - E_test(better net) >= -{s['tolerance']:g} "
                             f"(comparable within {s['tolerance']:g} or worse), separated by "
                             f"{s['separation']:g} x SE")
            criterion += f"; at least {s['min_members']} converged members per depth"
            results.append(_with_note(_ntk_claim(
                claim_id, statement, criterion, stats, float(ntk),
                _n_test(cube, row["dataset"]), fails, s, excluded,
                {**base, "quote": quote, "where": where}),
                f"{DRAWN_NOTE}; {NTK_DRAW_NOTE}" if drawn else ""))
    return results


# Where a study redraws a dataset's training set per seed (data_draws), the seed SE holds the
# draw's noise too; the NTK regresses on the dataset's own draw only, so its draw noise is
# not in the gap's SE (a Gram per draw would measure it, at a Gram's cost per seed).
DRAWN_NOTE = ("each seed trains and is tested on its own draw of the dataset (data_draws): "
              "the SE holds the draws' noise and the inits'")
NTK_DRAW_NOTE = ("E_NTK is one draw's (the dataset's own); its spread over draws is not "
                 "measured")


def _with_note(result: ClaimResult, note: str) -> ClaimResult:
    if note:
        result.notes = f"{result.notes}; {note}" if result.notes else note
    return result


def _too_few(counts: Mapping[Any, int], s: Mapping[str, Any], excluded: Mapping[str, int],
             what: str = "L") -> str:
    short = {d: n for d, n in counts.items() if n < s["min_members"]}
    if not short:
        return ""
    listed = ", ".join(f"{what} = {d}: {n}" for d, n in short.items())
    why = describe_excluded(excluded) or "no other member was trained"
    return (f"too few converged members to tell ({listed}; min_members = "
            f"{s['min_members']}); {why}")


def _unresolved(claim_id, kind, statement, criterion, notes, base) -> ClaimResult:
    return ClaimResult(claim_id=claim_id, kind=kind, statement=statement,
                       measured=float("nan"), uncertainty=float("nan"), criterion=criterion,
                       verdict=NOT_RESOLVED, notes=notes, uncertainty_kind="SE over seeds",
                       **base)


def _fmt(st) -> str:
    return f"{st[0]:.4f} +- {st[1]:.4f} (n = {st[2]})"


def _depth_claim(claim_id, statement, criterion, stats, depths, expected, s, excluded,
                 base, paired=None) -> ClaimResult:
    """`paired`: (mean, SE, n) of the per-seed differences deep - shallow, where the two
    depths of a seed share its data draw; else the two arms are independent."""
    short = _too_few({d: st[2] for d, st in stats.items()}, s, excluded)
    if not short and paired is not None and paired[2] < s["min_members"]:
        short = (f"too few seeds with both depths converged to pair them by draw "
                 f"({paired[2]}; min_members = {s['min_members']}); "
                 f"{describe_excluded(excluded) or 'no other member was trained'}")
    if short:
        return _unresolved(claim_id, "depth_effect", statement, criterion, short, base)
    lo, hi = stats[depths[0]], stats[depths[1]]
    if paired is None:
        effect, se = hi[0] - lo[0], combined_se(lo[1], hi[1])
        se_kind = "SE over seeds"
    else:
        effect, se = paired[0], paired[1]
        se_kind = "SE over seeds of the per-seed difference (paired by data draw)"
    verdict = separated_verdict(effect, se, expected, s["separation"])
    notes = [f"E_test L={depths[0]}: {_fmt(lo)}, L={depths[1]}: {_fmt(hi)} (mean +- SE)"]
    if paired is not None:
        notes.append(f"per-seed difference L={depths[1]} - L={depths[0]}: {_fmt(paired)}")
    notes.append(separation_note(effect, se, s["separation"]))
    if excluded:
        notes.append(describe_excluded(excluded))
    return ClaimResult(claim_id=claim_id, kind="depth_effect", statement=statement,
                       measured=effect, uncertainty=se, uncertainty_kind=se_kind,
                       criterion=criterion, verdict=verdict, notes="; ".join(notes), **base)


def _paired_difference(shallow: xr.DataArray, deep: xr.DataArray) -> tuple[float, float, int]:
    """(mean, seed SE, n) of deep - shallow over the seeds where both count as evidence."""
    return mean_se((deep - shallow).values)


def _ntk_claim(claim_id, statement, criterion, stats, ntk, n_test, expected_fails, s,
               excluded, base) -> ClaimResult:
    short = _too_few({d: st[2] for d, st in stats.items()}, s, excluded)
    if short:
        return _unresolved(claim_id, "ntk", statement, criterion, short, base)
    best = min(stats.values(), key=lambda st: st[0])
    gap = ntk - best[0]
    threshold = s["min_gap"] if expected_fails else -s["tolerance"]
    # The NTK predictor is one deterministic function of the training set, so it has no
    # seed spread, but its error is still an estimate over n_test points: its binomial SE
    # (as in the NTK-depth rows) joins the nets' seed SE. Without it the gap's SE was the
    # nets' alone, and a new draw of the data (another seed offset) moved E_NTK by several
    # of those SEs, flipping `ntk_fig2_global2_N500_H200` from fails to holds.
    ntk_se = binomial_se(ntk, n_test) if n_test else math.nan
    se = combined_se(best[1], ntk_se)
    verdict = separated_threshold_verdict(gap, threshold, se, above=True, k=s["separation"])
    notes = [f"E_NTK {ntk:.4f} +- {ntk_se:.4f} (binomial over {n_test} test points), better "
             f"net {_fmt(best)}; SE of the gap = both in quadrature",
             separation_note(gap - threshold, se, s["separation"],
                             what=f"gap - ({threshold:g})")]
    if not n_test:
        notes.append("the cube does not record the test-set size: no binomial SE")
    if excluded:
        notes.append(describe_excluded(excluded))
    return ClaimResult(claim_id=claim_id, kind="ntk", statement=statement, measured=gap,
                       uncertainty=se,
                       uncertainty_kind="net seed SE and NTK binomial SE in quadrature",
                       criterion=criterion, verdict=verdict, notes="; ".join(notes), **base)


# ------------------------------------------------------------------ Fig. 3: trend with L

def _depth_trends(cube, study, figures) -> list[ClaimResult]:
    out = []
    usable = evidence(cube["test_error"], cube["status"])
    for fig_name, figure in figures.items():
        if figure.get("plot") != "test_error_vs_depth":
            continue
        width = int(figure["width"])
        for ds in figure["datasets"]:
            generator, k = (str(cube["generator"].sel(dataset=ds).values),
                            int(cube["k"].sel(dataset=ds).values))
            if k < 2 or generator not in ("k_local", "k_global"):
                continue  # Fig. 3 shows the 2-local and 2-global labels only
            expected = -1 if generator == "k_local" else +1
            n = figure_n(figure, ds)
            lr = pick_lr(cube, figure, ds)
            cell = usable.sel(dataset=ds, n_train=n, width=width, lr=lr)
            status = cube["status"].sel(dataset=ds, n_train=n, width=width, lr=lr)
            excluded = excluded_members(status)
            x = np.broadcast_to(cell["depth"].values[:, None], cell.transpose(
                "depth", "seed").shape)
            y = cell.transpose("depth", "seed").values
            ok = np.isfinite(y)
            levels = sorted({int(v) for v in x[ok]})
            claim_id = f"depth_trend_{fig_name}_{ds}"
            s = claim_settings(study, "depth_trend", claim_id, DEFAULTS["depth_trend"])
            slope, se, npts = linear_trend(x, y)
            quote, where = QUOTES["trend"]
            statement = (f"the test error of the {_label(generator, k)} label "
                         f"{'decreases' if expected < 0 else 'increases'} with the depth L "
                         f"({ds}, N = {n}, H = {width}, L = {levels})")
            criterion = (f"least-squares slope dE_test/dL {'<' if expected < 0 else '>'} 0 "
                         f"over every converged member, |slope| > {s['separation']:g} x its "
                         f"SE; at least {s['min_levels']} depths")
            means = ", ".join(f"L={d}: {float(np.nanmean(y[x == d])):.4f}" for d in levels)
            notes = [f"mean E_test {means}" if levels else "no converged member"]
            if len(levels) < s["min_levels"]:
                verdict = NOT_RESOLVED
                notes.append(f"{len(levels)} depth(s) with converged members (min_levels = "
                             f"{s['min_levels']})")
            else:
                verdict = separated_verdict(slope, se, expected, s["separation"])
                notes.append(separation_note(slope, se, s["separation"], what="slope"))
            if excluded:
                notes.append(describe_excluded(excluded))
            out.append(ClaimResult(
                claim_id=claim_id, kind="depth_trend", paper=PAPER, where=where, quote=quote,
                statement=statement, measured=slope, uncertainty=se,
                uncertainty_kind="least-squares SE of the slope (members pooled)",
                criterion=criterion, verdict=verdict, figure=fig_name, n_members=npts,
                n_excluded=sum(excluded.values()), notes="; ".join(notes),
                data_source=_source(cube, ds)))
    return out


# ------------------------------------------------------- Sec. 3.3: the 3-global NTK depths

def _ntk_depth(cube, study, shallow, deep) -> list[ClaimResult]:
    if "ntk_test_error" not in cube:
        return []
    kd = [int(v) for v in cube["kernel_depth"].values]
    if shallow not in kd or deep not in kd:
        return []
    out = []
    for ds in cube["dataset"].values:
        ds = str(ds)
        if (str(cube["generator"].sel(dataset=ds).values), int(cube["k"].sel(dataset=ds))
                ) != ("k_global", 3):
            continue
        for n in cube["n_train"].values:
            e_lo = float(cube["ntk_test_error"].sel(dataset=ds, n_train=n, kernel_depth=shallow))
            e_hi = float(cube["ntk_test_error"].sel(dataset=ds, n_train=n, kernel_depth=deep))
            if not (np.isfinite(e_lo) and np.isfinite(e_hi)):
                continue
            claim_id = f"ntk_depth_{ds}_N{int(n)}"
            s = claim_settings(study, "ntk_depth", claim_id, DEFAULTS["ntk_depth"])
            n_test = _n_test(cube, ds)
            se = combined_se(binomial_se(e_lo, n_test), binomial_se(e_hi, n_test))
            gap = e_lo - e_hi
            quote, where = QUOTES["ntk_fails_global3"]
            verdict = separated_threshold_verdict(gap, s["min_gap"], se, above=True,
                                                  k=s["separation"])
            notes = [f"E_NTK L={shallow}: {e_lo:.4f}, L={deep}: {e_hi:.4f} on "
                     f"{n_test if n_test else 'an unknown number of'} test points",
                     separation_note(gap - s["min_gap"], se, s["separation"],
                                     what=f"gap - {s['min_gap']:g}")]
            if n_test is None:
                notes.append("the cube does not record the test-set size: no binomial SE")
            out.append(ClaimResult(
                claim_id=claim_id, kind="ntk_depth", paper=PAPER, where=where, quote=quote,
                statement=(f"the NTK of depth {deep} classifies the 3-global label ({ds}, "
                           f"N = {int(n)}) where the NTK of depth {shallow} fails"),
                measured=gap, uncertainty=se,
                uncertainty_kind="binomial SE over the test set",
                criterion=(f"E_NTK(L={shallow}) - E_NTK(L={deep}) >= {s['min_gap']:g}, "
                           f"separated by {s['separation']:g} x SE"),
                verdict=verdict,
                figure=figure_for(study, ("test_error_vs_n", "test_error_vs_lr"),
                                  datasets=ds),
                n_members=0, notes="; ".join(notes), data_source=_source(cube, ds)))
    return out


# --------------------------------------------------------------- Fig. 4: lr dependence

def _lr_range(cube, usable, ds, n, depth, width):
    """The (mean, SE, n) of the test error per fixed learning rate trained for one (dataset,
    N, depth, width), and the members excluded there."""
    cell = usable.sel(dataset=ds, n_train=n, depth=depth, width=width)
    status = cube["status"].sel(dataset=ds, n_train=n, depth=depth, width=width)
    # fixed learning rates only (the cv sentinel is not a point of the lr axis)
    stats = {float(lr): mean_se(cell.sel(lr=lr).values) for lr in cell["lr"].values
             if float(lr) > 0}
    ran = {lr: st for lr, st in stats.items() if st[2] > 0}
    return ran, excluded_members(status.sel(lr=status["lr"] > 0))


def _lr_dependence(cube, study, figures) -> list[ClaimResult]:
    out = []
    usable = evidence(cube["test_error"], cube["status"])
    for fig_name, figure in figures.items():
        if figure.get("plot") != "test_error_vs_lr":
            continue
        datasets = list(figure["datasets"])
        depths = [int(d) for d in figure.get("depths", [1])]
        width = int((figure.get("widths") or [cube["width"].values[0]])[0])
        # Fig. 4(a): two labels at one depth; Fig. 4(b): one label at two depths
        if len(datasets) == 2 and len(depths) == 1:
            kinds = [str(cube["generator"].sel(dataset=d).values) for d in datasets]
            if sorted(kinds) != ["k_global", "k_local"]:
                continue
            strong = datasets[kinds.index("k_local")]
            weak = datasets[kinds.index("k_global")]
            arms = [(strong, depths[0]), (weak, depths[0])]
            quote, where = QUOTES["lr_labels"]
            what = f"{strong} (2-local) than for {weak} (2-global) at L = {depths[0]}"
        elif len(datasets) == 1 and len(depths) == 2:
            arms = [(datasets[0], min(depths)), (datasets[0], max(depths))]
            quote, where = QUOTES["lr_depths"]
            what = f"L = {min(depths)} than for L = {max(depths)} on {datasets[0]}"
        else:
            continue
        claim_id = f"lr_dependence_{fig_name}"
        s = claim_settings(study, "lr_dependence", claim_id, DEFAULTS["lr_dependence"])
        ranges, notes, excluded, n_members = [], [], {}, 0
        short, goods = [], []
        for ds, depth in arms:
            stats, exc = _lr_range(cube, usable, ds, figure_n(figure, ds), depth, width)
            for key, v in exc.items():
                excluded[key] = excluded.get(key, 0) + v
            goods.append({lr: st for lr, st in stats.items() if st[2] >= s["min_members"]})
            n_members += sum(st[2] for st in stats.values())
        # Both ranges over the same learning rates (those where both arms have enough
        # converged members): a range over a wider span is larger by construction, and which
        # lrs keep enough members changes with the draw (a diverged lr = 1 cut one arm's span
        # to 0.3 while the other's ran to 3).
        common = sorted(set(goods[0]) & set(goods[1]))
        if len(common) < s["min_levels"]:
            short.append(f"{len(common)} learning rate(s) where both arms have >= "
                         f"{s['min_members']} converged members ("
                         + "; ".join(f"{ds} L={depth}: {sorted(g)}"
                                     for (ds, depth), g in zip(arms, goods, strict=True))
                         + ")")
        for (ds, depth), good in zip(arms, goods, strict=True):
            if short:
                break
            at = [good[lr] for lr in common]
            hi = max(at, key=lambda st: st[0])
            lo = min(at, key=lambda st: st[0])
            ranges.append((hi[0] - lo[0], combined_se(hi[1], lo[1])))
            notes.append(f"{ds} L={depth}: E_test over lr " + ", ".join(
                f"{lr:g}: {good[lr][0]:.3f}" for lr in common))
        statement = f"the test error depends more strongly on the learning rate for {what}"
        criterion = (f"range over lr of the seed-mean E_test (max - min), over the lrs both "
                     f"arms trained: first arm - second arm > 0, separated by "
                     f"{s['separation']:g} x SE; at least {s['min_levels']} such lrs with "
                     f"{s['min_members']} converged members each in both arms")
        if short:
            verdict, measured, se = NOT_RESOLVED, float("nan"), float("nan")
            notes.append("too few learning rates: " + "; ".join(short))
        else:
            measured = ranges[0][0] - ranges[1][0]
            se = combined_se(ranges[0][1], ranges[1][1])
            verdict = separated_verdict(measured, se, +1, s["separation"])
            notes.append(separation_note(measured, se, s["separation"],
                                         what="difference of ranges"))
        if excluded:
            notes.append(describe_excluded(dict(sorted(excluded.items()))))
        out.append(ClaimResult(
            claim_id=claim_id, kind="lr_dependence", paper=PAPER, where=where, quote=quote,
            statement=statement, measured=measured, uncertainty=se,
            uncertainty_kind="SE over seeds", criterion=criterion, verdict=verdict,
            figure=fig_name, n_members=n_members, n_excluded=sum(excluded.values()),
            notes="; ".join(notes), data_source=_source(cube, arms[0][0])))
    return out


# ------------------------------------------------------------- Fig. 5: local stability

def _local_stability(cube, study, figures, shallow, deep) -> list[ClaimResult]:
    if "local_stability" not in cube:
        return []
    out = []
    for fig_name, figure in figures.items():
        if figure.get("plot") != "local_stability":
            continue
        width = int((figure.get("widths") or [cube["width"].values[0]])[0])
        for ds in figure["datasets"]:
            if str(cube["generator"].sel(dataset=ds).values) != "random":
                continue  # Sec. 4.2 states it for nets trained on random labels only
            n = figure_n(figure, ds)
            lr = pick_lr(cube, figure, ds)
            sel = {"dataset": ds, "n_train": n, "width": width, "lr": lr}
            stab = cube["local_stability"].sel(**sel)
            stab = stab.sel(v=stab["v"] > 0).mean("v", skipna=False)
            usable = evidence(stab, cube["status"].sel(**sel))
            stats = {d: mean_se(usable.sel(depth=d).values) for d in (shallow, deep)}
            excluded = excluded_members(cube["status"].sel(**sel, depth=[shallow, deep]))
            claim_id = f"local_stability_{fig_name}_{ds}"
            s = claim_settings(study, "local_stability", claim_id,
                               DEFAULTS["local_stability"])
            quote, where = QUOTES["stability"]
            statement = (f"nets trained on random labels ({ds}, N = {n}, H = {width}): the "
                         f"local stability s(v) of L = {deep} is below that of L = {shallow}")
            criterion = (f"mean over v > 0 of s(v), L={deep} - L={shallow} < 0, separated by "
                         f"{s['separation']:g} x SE; at least {s['min_members']} converged "
                         "members per depth")
            base = {"paper": PAPER, "where": where, "quote": quote, "figure": fig_name,
                    "n_members": sum(st[2] for st in stats.values()),
                    "n_excluded": sum(excluded.values()), "data_source": _source(cube, ds)}
            short = _too_few({d: st[2] for d, st in stats.items()}, s, excluded)
            if short:
                out.append(_unresolved(claim_id, "local_stability", statement, criterion,
                                       short, base))
                continue
            effect = stats[deep][0] - stats[shallow][0]
            se = combined_se(stats[deep][1], stats[shallow][1])
            verdict = separated_verdict(effect, se, -1, s["separation"])
            notes = [f"mean s(v>0) L={shallow}: {_fmt(stats[shallow])}, L={deep}: "
                     f"{_fmt(stats[deep])}", separation_note(effect, se, s["separation"])]
            if excluded:
                notes.append(describe_excluded(excluded))
            out.append(ClaimResult(
                claim_id=claim_id, kind="local_stability", statement=statement,
                measured=effect, uncertainty=se, uncertainty_kind="SE over seeds",
                criterion=criterion, verdict=verdict, notes="; ".join(notes), **base))
    return out


__all__ = ["DEFAULTS", "KINDS", "PAPER", "QUOTES", "claims", "expected_ntk_fails"]


# ------------------------------------------------------------------ across studies: the loss

Q_CE_BETTER = ("Overall, the cross-entropy loss yields better generalization than the mean-"
               "square loss.")
Q_MSE_NTK = ("for the 2-local and 3-local labels, results for the mean-square loss tend to be "
             "closer to those in the NTK")
WHERE_LOSS = "Supplementary Material B, Fig. S1 vs Figs. 2-3"


def _cell_stats(cube: xr.Dataset, min_members: int) -> dict[tuple, tuple[float, float, int]]:
    """(dataset, n_train, depth, width, lr) -> (mean, seed SE, n) of the test error over the
    converged seeds, for every cell with at least ``min_members`` of them."""
    usable = evidence(cube["test_error"], cube["status"])
    out = {}
    for ds in cube.dataset.values:
        for n in cube.n_train.values:
            for d in cube.depth.values:
                for w in cube.width.values:
                    for lr in cube.lr.values:
                        st = mean_se(usable.sel(dataset=ds, n_train=n, depth=d, width=w,
                                                lr=lr).values)
                        if st[2] >= min_members:
                            out[(str(ds), int(n), int(d), int(w), float(lr))] = st
    return out


def _ntk_error(cube: xr.Dataset, dataset: str, n_train: int, depth: int) -> float:
    if "ntk_test_error" not in cube or depth not in cube.kernel_depth.values:
        return math.nan
    return float(cube["ntk_test_error"].sel(dataset=dataset, n_train=n_train,
                                            kernel_depth=depth))


def claims_across(cubes: Mapping[str, xr.Dataset], studies: Mapping[str, Mapping[str, Any]]
                  ) -> list[ClaimResult]:
    """Supplementary Material B compares the two losses on the same cells: for each pair of a
    cross-entropy study and a mean-square study, the cells both trained (same dataset, N,
    depth, width and learning rate, at least ``min_members`` converged seeds each) give

    * ``loss_ce_better``: the mean over matched cells of E_test(MSE) - E_test(CE), positive
      beyond k SE (the cells' seed SEs in quadrature) holds, negative beyond it fails;
    * ``loss_mse_closer_to_ntk`` (local labels only, where an NTK of the same depth was
      computed): the mean over matched cells of |E_CE - E_NTK| - |E_MSE - E_NTK|, positive
      beyond k SE holds (the NTK error enters both sides, so only the seed SEs count).

    A pair with no matched cell gets no row: its grids do not address the comparison."""
    out: list[ClaimResult] = []
    ce = {n: s for n, s in studies.items() if _loss(s) != "mse"}
    mse = {n: s for n, s in studies.items() if _loss(s) == "mse"}
    for ce_name, ce_study in sorted(ce.items()):
        for mse_name, mse_study in sorted(mse.items()):
            out += _loss_pair(cubes[ce_name], ce_name, ce_study, cubes[mse_name], mse_name,
                              mse_study)
    return out


def _loss_pair(ce_cube, ce_name, ce_study, mse_cube, mse_name, mse_study) -> list[ClaimResult]:
    pair = f"{ce_name} vs {mse_name}"
    s = claim_settings(mse_study, "loss_ce_better", "loss_ce_better",
                       DEFAULTS["loss_ce_better"])
    a = _cell_stats(ce_cube, s["min_members"])
    b = _cell_stats(mse_cube, s["min_members"])
    cells = sorted(set(a) & set(b))
    if not cells:
        return []

    def row(kind, cid, statement, criterion, quote, diffs, ses, n_members, extra=""):
        k = claim_settings(mse_study, kind, cid, DEFAULTS[kind])["separation"]
        diff = float(np.mean(diffs))
        se = float(math.sqrt(sum(x * x for x in ses)) / len(ses))
        notes = (f"{len(diffs)} matched cell{'' if len(diffs) == 1 else 's'}; "
                 + separation_note(diff, se, k)
                 + (f"; {extra}" if extra else ""))
        return ClaimResult(
            claim_id=cid, kind=kind, paper=PAPER, where=WHERE_LOSS, quote=quote,
            statement=statement, measured=diff, uncertainty=se,
            uncertainty_kind="seed SEs of the matched cells in quadrature, over their number",
            criterion=criterion, verdict=separated_verdict(diff, se, 1, k), n_members=n_members,
            notes=notes, data_source=_source(ce_cube, cells[0][0]))

    def cell_text(c):
        return f"{c[0]} N={c[1]} L={c[2]} H={c[3]}"

    rows = [row(
        "loss_ce_better", "loss_ce_better",
        f"cross-entropy generalizes better than the mean-square loss ({pair})",
        "mean over matched cells of E_test(MSE) - E_test(CE) > k x SE (k = separation)",
        Q_CE_BETTER, [b[c][0] - a[c][0] for c in cells],
        [combined_se(a[c][1], b[c][1]) for c in cells],
        sum(a[c][2] + b[c][2] for c in cells),
        "cells: " + ", ".join(f"{cell_text(c)}: CE {a[c][0]:.4f}, MSE {b[c][0]:.4f}"
                              for c in cells))]
    local = []
    for c in cells:
        label = str(ce_cube["generator"].sel(dataset=c[0]).values)
        ntk = _ntk_error(ce_cube, c[0], c[1], c[2])
        if label == "k_local" and np.isfinite(ntk):
            local.append((c, ntk))
    if local:
        rows.append(row(
            "loss_mse_closer_to_ntk", "loss_mse_closer_to_ntk",
            f"local labels: the mean-square loss's nets are closer to the NTK ({pair})",
            "mean over matched local cells of |E_CE - E_NTK| - |E_MSE - E_NTK| > k x SE "
            "(k = separation)",
            Q_MSE_NTK,
            [abs(a[c][0] - ntk) - abs(b[c][0] - ntk) for c, ntk in local],
            [combined_se(a[c][1], b[c][1]) for c, _ in local],
            sum(a[c][2] + b[c][2] for c, _ in local),
            "cells: " + ", ".join(f"{cell_text(c)}: CE {a[c][0]:.4f}, MSE {b[c][0]:.4f}, "
                                  f"NTK {ntk:.4f}" for c, ntk in local)))
    return rows
