"""Xiao et al.'s claims checked on the study cube (:mod:`depthlab.claims`).

Kernel quantities are deterministic (no seeds): their uncertainty is the stated asymptotic
tolerance.  The finite nets of Fig. 2 count when they trained: a ``diverged`` net is the
evidence of the cliff, not a missing value.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import xarray as xr

from depthlab.claims import (
    FAILS,
    HOLDS,
    NOT_RESOLVED,
    ClaimResult,
    claim_settings,
    figure_for,
    threshold_verdict,
    tolerance_verdict,
)
from depthlab.studies.xiao.table1 import table1

PAPER = "Xiao et al. (2020)"


def _fig(study, plot):
    return figure_for(study, [plot])


def _phase_claims(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    out = []
    frame = table1(cube)
    for row in frame.itertuples():
        tag = f"{row.arch}_m{row.m}k{row.k}"
        if row.quantity == "kappa - 1":
            cid = f"chaotic_kappa_{tag}"
            s = claim_settings(study, "chaotic_kappa", cid, {"tolerance": 1e-3})
            out.append(ClaimResult(
                claim_id=cid, kind="chaotic_kappa", paper=PAPER, where="Table 1, Fig. 1(a)",
                statement=f"chaotic phase (sigma_w^2 = {row.w_var:.4g}): kappa -> 1 "
                          f"({row.arch}, m = {row.m}, k = {row.k})",
                measured=row.measured, uncertainty=math.nan, paper_value=0.0,
                criterion=f"kappa - 1 <= {s['tolerance']:g} at depth {row.depth}",
                verdict=threshold_verdict(row.measured, s["tolerance"], above=False),
                uncertainty_kind="none (deterministic kernel)", figure=_fig(study, "xiao_kappa"),
                data_source="Gaussian images (synthetic)"))
        elif row.quantity == "kappa":
            cid = f"critical_kappa_{tag}"
            s = claim_settings(study, "critical_kappa", cid, {"log_factor": 3.0})
            tol = s["log_factor"] * math.log(row.depth) / row.depth * row.prediction
            out.append(ClaimResult(
                claim_id=cid, kind="critical_kappa", paper=PAPER, where="Table 1, Fig. 1(c, d)",
                statement=f"critical line: kappa -> {'(md+2)/2' if row.d > 1 else '(m+2)/2'} "
                          f"= {row.prediction:g} ({row.arch}, m = {row.m}, k = {row.k})",
                measured=row.measured, uncertainty=tol, paper_value=row.prediction,
                criterion=f"|kappa - limit| <= {s['log_factor']:g} ln(l)/l x limit at "
                          f"l = {row.depth} (O(log l / l) approach)",
                verdict=tolerance_verdict(row.measured, row.prediction, tol),
                uncertainty_kind="asymptotic tolerance", figure=_fig(study, "xiao_kappa"),
                data_source="Gaussian images (synthetic)"))
        elif row.quantity.startswith("d log"):
            cid = f"ordered_rate_{tag}"
            s = claim_settings(study, "ordered_rate", cid, {"tolerance": 0.1})
            out.append(ClaimResult(
                claim_id=cid, kind="ordered_rate", paper=PAPER, where="Table 1, Fig. 1(b)",
                statement=f"ordered phase (sigma_w^2 = {row.w_var:.4g}): kappa grows like "
                          f"chi_1^-l / l ({row.arch}, m = {row.m}, k = {row.k})",
                measured=row.measured, uncertainty=math.nan, paper_value=row.prediction,
                criterion=f"fitted rate of log(kappa l) within {s['tolerance']:.0%} of "
                          f"-ln chi_1 = {row.prediction:.4g}",
                verdict=tolerance_verdict(row.measured, row.prediction,
                                          s["tolerance"] * abs(row.prediction)),
                uncertainty_kind="none (deterministic kernel)", notes=row.note,
                figure=_fig(study, "xiao_kappa"), data_source="Gaussian images (synthetic)"))
    return out


def _cliff_claims(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    out = []
    src = str(cube.attrs.get("data_source", ""))
    rhos = cube.rho.values
    for depth in cube.cliff_depth.values:
        for w in cube.w_cliff.values:
            sel = cube.sel(cliff_depth=depth, w_cliff=w)
            label = str(sel.w_cliff_label.values)
            cid = f"lr_cliff_L{depth}_w{label}"
            s = claim_settings(study, "lr_cliff", cid, {"trained": 0.5, "drop": 0.5})
            acc = sel.cliff_best_train_acc.mean("seed").values
            status = sel.cliff_status.values
            failed = (status == "diverged").any(axis=-1) | (acc < s["drop"] * np.nanmax(acc))
            at1 = acc[np.argmin(np.abs(np.log(rhos)))]
            first = rhos[np.argmax(failed)] if failed.any() else math.inf
            if not at1 >= s["trained"]:
                verdict, note = NOT_RESOLVED, f"the net at rho ~ 1 did not train (best {at1:.2f})"
            elif 1.0 < first <= 2.0:
                verdict, note = HOLDS, ""
            else:
                verdict, note = FAILS, ""
            out.append(ClaimResult(
                claim_id=cid, kind="lr_cliff", paper=PAPER, where="Fig. 2",
                statement=f"finite FC net (depth {depth}, sigma_w^2 = {w:.4g}): trainability "
                          "collapses between rho = 1 and 2 (eta = rho eta_theory)",
                measured=float(first), uncertainty=math.nan, paper_value=1.0,
                criterion=f"smallest rho that diverged or reached < {s['drop']:g} x the best "
                          "training accuracy lies in (1, 2]",
                verdict=verdict, uncertainty_kind="rho grid spacing",
                figure=_fig(study, "xiao_lr_cliff"), n_members=int(status.size),
                notes=(note + f" best train acc by rho {np.round(acc, 2).tolist()}; "
                       f"status {sorted(set(status.ravel().tolist()))}").strip(),
                data_source=src))
    return out


def _edge(depths: np.ndarray, acc: np.ndarray, level: float) -> float:
    """First depth where acc falls below level (nan if never); untrained (nan) cells skipped."""
    ok = np.isfinite(acc)
    depths, acc = depths[ok], acc[ok]
    below = np.nonzero(acc < level)[0]
    return float(depths[below[0]]) if below.size else math.nan


def _plane_claims(cube: xr.Dataset, study: dict[str, Any], nets: bool = False
                  ) -> list[ClaimResult]:
    """The edges of the trainable (ordered) / generalizing (chaotic) region against xi_1 /
    xi_*: from the kernel predictors, or (``nets``) from the SGD-trained nets."""
    out = []
    src = str(cube.attrs.get("data_source", ""))
    depths = cube.depth_plane.values.astype(float)
    t_last = cube.time_plane.values[-1]
    prefix = "plane_net" if nets else "plane"
    for phase, metric, scale, what in (
            ("ordered", "train_acc", "w_plane_xi_1", "training accuracy"),
            ("chaotic", "test_acc", "w_plane_xi_star", "test accuracy")):
        ws = [w for w in cube.w_plane.values
              if str(cube.w_plane_phase.sel(w_plane=w).values) == phase]
        ratios = []
        for w in ws:
            if nets:
                acc = cube[f"plane_net_final_{metric}"].sel(w_plane=w).mean("plane_seed").values
            else:
                acc = cube[f"plane_single_{metric}"].sel(plane_arch="fc", w_plane=w,
                                                         time_plane=t_last).values
            if not np.isfinite(acc).any():
                continue
            level = 0.1 + 0.5 * (np.nanmax(acc) - 0.1)
            edge = _edge(depths, acc, level)
            ratios.append(edge / float(cube[scale].sel(w_plane=w)))
        cid = f"{prefix}_{phase}_xi"
        s = claim_settings(study, "plane_xi", cid, {"spread": 3.0})
        finite = [r for r in ratios if math.isfinite(r)]
        if len(finite) < 2:
            verdict, measured = NOT_RESOLVED, math.nan
            note = (f"fewer than two {phase} sigma_w^2 with an edge inside the depth grid; ")
        else:
            measured = max(finite) / min(finite)
            verdict = threshold_verdict(measured, s["spread"], above=False)
            note = ""
        if nets:
            n = json.loads(cube.attrs["plane_nets_settings"])
            source = (f"SGD-trained nets (width {n['width']}, batch {n['batch_size']}, "
                      f"{n['steps']} steps, final accuracy, mean over seeds)")
            edges_at = "at the end of training"
            who = "trained nets'"
        else:
            source = "kernel predictors (infinite width), not SGD-trained nets"
            edges_at = f"at t = {t_last:g} steps"
            who = "single network's"
        out.append(ClaimResult(
            claim_id=cid, kind="plane_net_xi" if nets else "plane_xi", paper=PAPER,
            where="Fig. 3 top",
            statement=f"{phase} phase: the depth where the {who} {what} falls halfway to "
                      "chance scales with "
                      f"{'xi_1' if phase == 'ordered' else 'xi_*'} (one multiple C across "
                      "sigma_w^2)",
            measured=measured, uncertainty=math.nan,
            criterion=f"max/min of (edge depth / xi) over the {phase} sigma_w^2 <= "
                      f"{s['spread']:g} (edges {edges_at})",
            verdict=verdict, uncertainty_kind="depth grid spacing",
            figure=_fig(study, "xiao_plane"),
            notes=f"{note}edge/xi per sigma_w^2: {np.round(ratios, 2).tolist()}; {source}",
            data_source=src))
    return out


def _pool_claims(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    out = []
    if not {"cnn_f", "cnn_p"} <= set(cube.pool_arch.values.tolist()):
        return out
    src = str(cube.attrs.get("data_source", ""))
    diff = (cube.pool_mean_test_acc_inf.sel(pool_arch="cnn_p")
            - cube.pool_mean_test_acc_inf.sel(pool_arch="cnn_f"))
    for phase, sign in (("chaotic", 1), ("ordered", -1)):
        ws = [w for w in cube.w_pool.values
              if str(cube.w_pool_phase.sel(w_pool=w).values) == phase]
        cid = f"pooling_{phase}"
        s = claim_settings(study, "pooling", cid, {"margin": 0.01})
        if not ws:
            continue
        vals = diff.sel(w_pool=ws).values.ravel()
        measured = float(np.nanmean(vals))
        sd = float(np.nanstd(vals) / math.sqrt(max(np.isfinite(vals).sum(), 1)))
        margin = max(s["margin"], 2 * sd)
        if abs(measured) <= margin:
            verdict = NOT_RESOLVED
        else:
            verdict = HOLDS if np.sign(measured) == sign else FAILS
        out.append(ClaimResult(
            claim_id=cid, kind="pooling", paper=PAPER, where="Fig. 3 bottom, Table 1",
            statement=f"pooling {'helps' if sign > 0 else 'hurts'} in the {phase} phase: "
                      "CNN-P minus CNN-F test accuracy (NTK mean predictor, t = inf)",
            measured=measured, uncertainty=sd,
            criterion=f"mean over the {phase} (sigma_w^2, depth) cells has sign "
                      f"{'+' if sign > 0 else '-'} and |mean| > max({s['margin']:g}, 2 sem)",
            verdict=verdict, uncertainty_kind="standard error over (sigma_w^2, depth) cells",
            figure=_fig(study, "xiao_pooling"), n_members=int(np.isfinite(vals).sum()),
            data_source=src))
    return out


def claims(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    out: list[ClaimResult] = []
    if "phase_kappa" in cube:
        out += _phase_claims(cube, study)
    if "cliff_status" in cube:
        out += _cliff_claims(cube, study)
    if "plane_single_train_acc" in cube:
        out += _plane_claims(cube, study)
    if "plane_net_final_train_acc" in cube:
        out += _plane_claims(cube, study, nets=True)
    if "pool_mean_test_acc_inf" in cube:
        out += _pool_claims(cube, study)
    return out
