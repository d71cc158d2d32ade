"""The claims of Mori & Ueda, "Is deeper better? It depends on locality of relevant
features", checked on a study cube.

Two kinds, one row per (figure, dataset, N, width) cell where both compared depths were
trained (the cells of :func:`depthlab.summary.depth_effect_table`, i.e. of summary.csv):

``depth_effect``
    the sign of E_test(L=deep) - E_test(L=shallow): deeper is better (-) for k-local labels
    with k >= 2 (Sec. 3.2, Figs. 2-3), shallower is better (+) for k = 1 (Sec. 3.1, Fig. 1),
    k-global labels (Sec. 3.2) and the Ising label (Supp., Fig. S2). ``holds`` with the
    paper's sign and separated error bars (|effect| > separation x (std_shallow +
    std_deep), summary.csv's ``separated`` at the default separation 1), ``fails`` with the
    opposite sign separated, ``not resolved at this scale`` when the bars overlap.
``ntk``
    Sec. 3.3: the NTK (of depth L = shallow) fails where finite nets succeed for k-local
    labels with k >= 2 and the 3-global label (gap E_NTK - E_best net >= min_gap, summary.csv's
    ``ntk_fails`` at the default 0.1), and is comparable to or better than the nets for k = 1
    and the 2-global label (gap < min_gap).

Only converged members count (training error exactly 0); diverged and capped members are
left out of every mean and std. A cell with fewer than ``min_members`` converged members at
either depth is ``not resolved at this scale`` (the row says how many were excluded and why),
never dropped: a run that could not train the nets tells nothing about the paper's claim.
When every member converged, the measured values are summary.csv's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from depthlab.claims import (
    NOT_RESOLVED,
    ClaimResult,
    claim_settings,
    describe_excluded,
    evidence,
    excluded_members,
    sign_verdict,
    threshold_verdict,
)
from depthlab.studies.mori_ueda.cube import pick_lr
from depthlab.studies.mori_ueda.summary import depth_effect_table

PAPER = "Mori & Ueda (2020)"
DEFAULTS = {
    "depth_effect": {"separation": 1.0, "min_members": 2},
    "ntk": {"min_gap": 0.1, "min_members": 2},
}
KINDS = tuple(DEFAULTS)


def expected_ntk_fails(generator: str, k: int) -> bool | None:
    """Sec. 3.3: the NTK fails for k-local labels with k >= 2 and for the 3-global label
    (at L = 1); it is comparable to the nets for k = 1 and the 2-global label. None where the
    paper says nothing (random labels, Ising, k-global with k > 3)."""
    if generator == "k_local":
        return k >= 2
    if generator == "k_global":
        return {1: False, 2: False, 3: True}.get(k)
    return None


def _label(generator: str, k: int) -> str:
    return {"k_local": f"{k}-local", "k_global": f"{k}-global", "ising": "Ising",
            "random": "random"}.get(generator, generator)


def _where(generator: str, k: int, figure: str = "") -> str:
    """The paper's section for a label; supplementary figures (a study figure named figS1,
    figS2, as in the paper) are cited as such."""
    supp = re.fullmatch(r"figS(\d+)", figure)
    if supp:
        return f"Supplementary Material, Fig. S{supp.group(1)}"
    if generator == "ising":
        return "Supplementary Material, Fig. S2"
    if k <= 1:
        return "Sec. 3.1, Fig. 1"
    return "Sec. 3.2, Figs. 2-3"


def _seed_stats(values: xr.DataArray) -> dict[str, float]:
    """Mean, std (ddof 0, as summary.csv) and count over seeds of the members present."""
    v = values.values[np.isfinite(values.values)]
    if not len(v):
        return {"mean": float("nan"), "std": float("nan"), "count": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "count": int(len(v))}


def claims(cube: xr.Dataset, study: Mapping[str, Any]) -> list[ClaimResult]:
    """Every depth-effect and NTK claim the study's test_error_vs_n figures can address."""
    depths = {"shallow": 1, "deep": 7, **(study.get("summary") or {})}
    shallow, deep = int(depths["shallow"]), int(depths["deep"])
    figures = study.get("figures") or {}
    # the cells summary.csv has a row for (every member counted there, whatever its status)
    table = depth_effect_table(cube, figures, shallow=shallow, deep=deep)
    usable = evidence(cube["test_error"], cube["status"])

    results: list[ClaimResult] = []
    for _, row in table.iterrows():
        generator, k = str(row["label"]), int(row["k"])
        figure = figures[row["figure"]]
        sel = {"dataset": row["dataset"], "lr": pick_lr(cube, figure, row["dataset"]),
               "n_train": row["n_train"], "width": row["width"]}
        excluded = excluded_members(cube["status"].sel(**sel, depth=[shallow, deep]))
        stats = {d: _seed_stats(usable.sel(**sel, depth=d)) for d in (shallow, deep)}
        cell = (f"{_label(generator, k)} label ({row['dataset']}, d = {int(row['d'])}), "
                f"N = {int(row['n_train'])}, H = {int(row['width'])}, lr = {row['lr']}")
        base = {"paper": PAPER, "where": _where(generator, k, row["figure"]),
                "figure": row["figure"],
                "n_excluded": sum(excluded.values()),
                "n_members": sum(st["count"] for st in stats.values()),
                "data_source": str(cube["data_source"].sel(dataset=row["dataset"]).values)}
        suffix = f"{row['figure']}_{row['dataset']}_N{int(row['n_train'])}_H{int(row['width'])}"

        expected = row["expected_sign"]
        if expected is not None and not pd.isna(expected):
            expected = int(expected)
            claim_id = f"depth_effect_{suffix}"
            s = claim_settings(study, "depth_effect", claim_id, DEFAULTS["depth_effect"])
            statement = (f"{'deeper' if expected < 0 else 'shallower'} is better: "
                         f"E_test(L={deep}) {'<' if expected < 0 else '>'} "
                         f"E_test(L={shallow}) for the {cell}")
            criterion = (f"sign {'-' if expected < 0 else '+'} with |effect| > "
                         f"{s['separation']:g} x (std L={shallow} + std L={deep}); at least "
                         f"{s['min_members']} converged members per depth")
            results.append(_depth_claim(claim_id, statement, criterion, stats,
                                        (shallow, deep), expected, s, excluded, base))

        fails = expected_ntk_fails(generator, k)
        ntk = row.get("ntk_test_error", float("nan"))
        if fails is not None and ntk is not None and np.isfinite(ntk):
            claim_id = f"ntk_{suffix}"
            s = claim_settings(study, "ntk", claim_id, DEFAULTS["ntk"])
            if fails:
                statement = (f"the NTK (L = {shallow}) fails where the nets succeed, for the "
                             f"{cell}")
                criterion = f"E_NTK - E_test(better net) >= {s['min_gap']:g}"
            else:
                statement = (f"the NTK (L = {shallow}) is comparable to or better than the "
                             f"nets, for the {cell}")
                criterion = f"E_NTK - E_test(better net) < {s['min_gap']:g}"
            criterion += f"; at least {s['min_members']} converged members per depth"
            results.append(_ntk_claim(claim_id, statement, criterion, stats, float(ntk),
                                      fails, s, excluded, base))
    return results


def _too_few(stats: Mapping[int, Mapping[str, float]], s: Mapping[str, Any],
             excluded: Mapping[str, int]) -> str:
    short = {d: st["count"] for d, st in stats.items() if st["count"] < s["min_members"]}
    if not short:
        return ""
    what = ", ".join(f"L = {d}: {n}" for d, n in short.items())
    why = describe_excluded(excluded) or "no other member was trained"
    return (f"too few converged members to tell ({what}; min_members = "
            f"{s['min_members']}); {why}")


def _unresolved(claim_id, kind, statement, criterion, notes, base) -> ClaimResult:
    return ClaimResult(claim_id=claim_id, kind=kind, statement=statement,
                       measured=float("nan"), uncertainty=float("nan"), criterion=criterion,
                       verdict=NOT_RESOLVED, notes=notes, **base)


def _depth_claim(claim_id, statement, criterion, stats, depths, expected, s, excluded,
                 base) -> ClaimResult:
    short = _too_few(stats, s, excluded)
    if short:
        return _unresolved(claim_id, "depth_effect", statement, criterion, short, base)
    lo, hi = stats[depths[0]], stats[depths[1]]
    effect = hi["mean"] - lo["mean"]
    margin = s["separation"] * (lo["std"] + hi["std"])
    verdict = sign_verdict(effect, margin, expected)
    notes = [f"E_test L={depths[0]}: {lo['mean']:.4f} +- {lo['std']:.4f}, L={depths[1]}: "
             f"{hi['mean']:.4f} +- {hi['std']:.4f}; uncertainty = hypot of the two stds"]
    if verdict == NOT_RESOLVED:
        notes.append(f"error bars overlap: |effect| {abs(effect):.4f} <= {margin:.4f}")
    if excluded:
        notes.append(describe_excluded(excluded))
    return ClaimResult(claim_id=claim_id, kind="depth_effect", statement=statement,
                       measured=effect, uncertainty=float(np.hypot(lo["std"], hi["std"])),
                       criterion=criterion, verdict=verdict, notes="; ".join(notes), **base)


def _ntk_claim(claim_id, statement, criterion, stats, ntk, expected_fails, s, excluded,
               base) -> ClaimResult:
    short = _too_few(stats, s, excluded)
    if short:
        base = {**base, "where": "Sec. 3.3, Figs. 1-2"}
        return _unresolved(claim_id, "ntk", statement, criterion, short, base)
    best = min(stats.values(), key=lambda st: st["mean"])
    gap = ntk - best["mean"]
    verdict = threshold_verdict(gap, s["min_gap"], above=bool(expected_fails))
    notes = [f"E_NTK {ntk:.4f}, better net {best['mean']:.4f}; uncertainty = the better "
             "net's seed std (the NTK is deterministic)"]
    if excluded:
        notes.append(describe_excluded(excluded))
    base = {**base, "where": "Sec. 3.3, Figs. 1-2"}
    return ClaimResult(claim_id=claim_id, kind="ntk", statement=statement, measured=gap,
                       uncertainty=best["std"], criterion=criterion, verdict=verdict,
                       notes="; ".join(notes), **base)


__all__ = ["DEFAULTS", "KINDS", "PAPER", "claims", "expected_ntk_fails"]
