"""Nichani et al.'s claims, checked on the study cube (depthlab.claims).

``cntk_u_shape``                 the CNTK's test loss / accuracy is U-shaped in depth: the best
                                 depth lies strictly inside the grid and beats both ends by a
                                 margin (kernels are deterministic: no seeds).
``fully_conv_past_interpolation`` trained Fully-Conv nets lose test accuracy past the
                                 interpolation depth d_int (every seed at 100 % train acc):
                                 mean test acc at d_int minus at the deepest depth, separated
                                 by ``separation`` standard errors.
``toy_accuracy``                 the linear toy: 100 % test accuracy for shallow nets, about
                                 50 % (the min-norm solution's) for deep ones.
``min_norm_solution``            the toy's minimum-norm predictor has norm sqrt 2 and output 0
                                 on every test image.
``operator_norm``                the toy operator's norm falls with depth toward sqrt 2.
``stable_rank_falls``            the autoencoders' stable rank falls with depth.
``resnet_loss_rises``            ResNets of width >= 32 (Table 1 depths): the final-epoch test
                                 loss at the deepest depth exceeds the best shallower depth's
                                 by ``separation`` standard errors (diverged nets excluded;
                                 epoch-capped ones count, as the recipe trains fixed epochs).
``resnet_w8_loss_falls``         width-8 ResNets: test loss falls with depth (Fig. 14).

Only converged runs are evidence (interpolating nets; linear nets below ``loss_tol``).
"""

from __future__ import annotations

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
    tolerance_verdict,
)

PAPER = "Nichani et al. (2021)"


def _cntk(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    if "kernel" not in cube.dims:
        return []
    out = []
    fig = figure_for(study, ["nichani_cntk"])
    for name in cube.kernel.values:
        if str(name) == "fc_ntk":
            continue
        r = cube.sel(kernel=name)
        n_test = int(r.k_n_test)
        ok = np.isfinite(r.k_test_loss.values)
        depths = cube.kernel_depth.values[ok]
        for what in ("loss", "acc"):
            cid = f"cntk_u_shape_{what}_{name}"
            s = claim_settings(study, "cntk_u_shape", cid,
                               {"min_rel_gap": 0.02, "min_test_points": 2})
            v = (r.k_test_loss if what == "loss" else r.k_test_acc).values[ok]
            i = int(np.argmin(v) if what == "loss" else np.argmax(v))
            if what == "loss":
                gaps = (v[0] / v[i] - 1, v[-1] / v[i] - 1)
                need = s["min_rel_gap"]
                crit = (f"argmin depth strictly inside [{int(depths[0])}, {int(depths[-1])}] and "
                        f"both end losses >= (1 + {need}) x the minimum")
            else:
                gaps = (v[i] - v[0], v[i] - v[-1])
                need = s["min_test_points"] / n_test
                crit = (f"argmax depth (smallest of ties) strictly inside [{int(depths[0])}, "
                        f"{int(depths[-1])}] and beating both ends by >= "
                        f"{s['min_test_points']} test points ({need:.3f})")
            inside = 0 < i < len(v) - 1
            if len(v) < 3:
                verdict = NOT_RESOLVED
            elif not inside:
                verdict = FAILS
            else:
                verdict = HOLDS if min(gaps) >= need else NOT_RESOLVED
            out.append(ClaimResult(
                claim_id=cid, kind="cntk_u_shape", paper=PAPER, where="Sec. 3.3, Fig. 6, 18",
                statement=f"the {name} test {'loss' if what == 'loss' else 'accuracy'} is "
                          "U-shaped in depth (best at an intermediate depth)",
                measured=float(depths[i]), uncertainty=math.nan,
                uncertainty_kind="deterministic (best depth)", criterion=crit, verdict=verdict,
                figure=fig, n_members=1,
                notes=f"{what} by depth: " + ", ".join(
                    f"{int(d)}: {x:.4g}" for d, x in zip(depths, v, strict=True))
                + f"; margins over the ends {gaps[0]:.4g}, {gaps[1]:.4g}; "
                f"{int(r.k_n_train)} train / {n_test} test images"))
    return out


def _fully_conv(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    if "fc_test_acc" not in cube:
        return []
    from depthlab.studies.nichani.critical import interpolation_depth

    cid = "fully_conv_past_interpolation"
    s = claim_settings(study, cid, cid, {"separation": 2.0})
    depths = cube.depth.values
    d_int = interpolation_depth(cube.fc_train_acc.values, depths)
    conv = cube.fc_status.values == "converged"
    acc = np.where(conv, cube.fc_test_acc.values, np.nan)
    fig = figure_for(study, ["nichani_fully_conv"], metric="accuracy")
    means = np.array([np.nanmean(a) if np.isfinite(a).any() else np.nan for a in acc])
    table = ", ".join(f"d={int(d)}: {m:.3f} ({int(c)}/{conv.shape[1]} interp.)"
                      for d, m, c in zip(depths, means, conv.sum(1), strict=True))
    base = dict(claim_id=cid, kind=cid, paper=PAPER, where="Sec. 3.1, Fig. 2-4",
                statement="past the interpolation depth, deeper Fully-Conv nets have lower "
                          "test accuracy (paper's rule: model at best train accuracy)",
                uncertainty_kind="standard error of the difference of seed means",
                figure=fig)
    if not np.isfinite(d_int) or d_int >= depths[-1]:
        return [ClaimResult(**base, measured=math.nan, uncertainty=math.nan,
                            criterion="needs an interpolation depth below the deepest depth",
                            verdict=NOT_RESOLVED, n_members=int(conv.sum()),
                            notes=f"d_int = {d_int}; test acc (converged seeds) {table}")]
    a = acc[list(depths).index(d_int)]
    b = acc[-1]
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return [ClaimResult(**base, measured=math.nan, uncertainty=math.nan,
                            criterion="needs >= 2 interpolating seeds at d_int and the deepest",
                            verdict=NOT_RESOLVED, n_members=len(a) + len(b), notes=table)]
    diff = float(a.mean() - b.mean())
    se = float(math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    margin = s["separation"] * se
    verdict = HOLDS if diff > margin else (FAILS if diff < -margin else NOT_RESOLVED)
    final = np.nanmean(cube.fc_test_acc_final.values, 1)
    return [ClaimResult(
        **base, measured=diff, uncertainty=se,
        criterion=f"test acc(d_int = {int(d_int)}) - test acc(d = {int(depths[-1])}) > "
                  f"{s['separation']} x SE",
        verdict=verdict, n_members=len(a) + len(b),
        n_excluded=int((~conv[-1]).sum()),
        notes=f"test acc (converged seeds) {table}; final-epoch rule: " + ", ".join(
            f"d={int(d)}: {m:.3f}" for d, m in zip(depths, final, strict=True)))]


def _falls(r: xr.Dataset, var: str, study, kind: str, cid: str, statement: str, where: str,
           figure: str, target: float) -> ClaimResult:
    """Shallowest vs deepest depth with converged members: holds when every deepest seed is
    below every shallowest seed (times ``separation``), fails when the median rises."""
    s = claim_settings(study, kind, cid, {"separation": 1.0})
    conv = r.lin_status.values == "converged"
    v = np.where(conv, r[var].values, np.nan)
    have = np.flatnonzero(conv.any(1))
    depths = r.lin_depth.values
    med = np.nanmedian(v[have], 1) if len(have) else np.array([])
    notes = "median (converged) " + ", ".join(
        f"d={int(depths[i])}: {m:.4g}" for i, m in zip(have, med, strict=True)) + \
        f"; min-norm value {target:.4g}; not converged: " \
        f"{int(np.isin(r.lin_status.values, ['max_steps', 'diverged']).sum())}"
    if len(have) < 2:
        return ClaimResult(claim_id=cid, kind=kind, paper=PAPER, where=where,
                           statement=statement, measured=math.nan, uncertainty=math.nan,
                           criterion="needs two depths with converged runs",
                           verdict=NOT_RESOLVED, figure=figure, notes=notes)
    lo, hi = v[have[0]], v[have[-1]]
    lo, hi = lo[np.isfinite(lo)], hi[np.isfinite(hi)]
    separated = hi.max() * s["separation"] < lo.min()
    verdict = HOLDS if separated else (FAILS if np.median(hi) > np.median(lo) else NOT_RESOLVED)
    return ClaimResult(
        claim_id=cid, kind=kind, paper=PAPER, where=where, statement=statement,
        measured=float(np.median(hi)), uncertainty=float(np.ptp(hi)),
        uncertainty_kind="range over seeds at the deepest depth",
        paper_value=target,
        criterion=f"max over seeds at d = {int(depths[have[-1]])} x {s['separation']} < min "
                  f"over seeds at d = {int(depths[have[0]])} (falls toward the min-norm "
                  f"value {target:.4g})",
        verdict=verdict, figure=figure, n_members=len(lo) + len(hi), notes=notes)


LINEAR_SOURCES = {"toy": "synthetic 6x6 RGB pixel toy (generated exactly)",
                  "toeplitz_ae": "seeded Gaussian vectors",
                  "conv_ae": "scikit-learn digits images (8x8) instead of CIFAR-10"}


def _linear(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    if "task" not in cube.dims:
        return []
    out = []
    for name in cube.task.values:
        r = cube.sel(task=name)
        r = r.isel(lin_depth=np.flatnonzero(np.any(r.lin_status.values != "not_run", axis=1)))
        kind = str(r.lin_kind.values)
        start = len(out)
        if kind == "toy":
            fig = figure_for(study, ["nichani_linear_toy"], task=str(name))
            out += _toy(r, str(name), study, fig)
            out.append(_falls(r, "lin_op_norm", study, "operator_norm",
                              f"operator_norm_falls_{name}",
                              "the norm of the toy's linear operator falls with depth toward "
                              "the minimum-norm sqrt 2", "Sec. 4, Fig. 7(c)", fig,
                              float(r.lin_min_norm_norm)))
        else:
            fig = figure_for(study, ["nichani_autoencoder"], task=str(name))
            out.append(_falls(r, "lin_stable_rank", study, "stable_rank_falls",
                              f"stable_rank_falls_{name}",
                              f"the stable rank of the linear {kind} operator falls with depth "
                              "toward the min-norm projector's", "Sec. 4, Fig. 8", fig,
                              float(r.lin_min_norm_stable_rank)))
        for c in out[start:]:
            c.data_source = LINEAR_SOURCES[kind]
    return out


def _toy(r: xr.Dataset, name: str, study, fig: str) -> list[ClaimResult]:
    out = []
    norm = float(r.lin_min_norm_norm)
    zero = float(r.lin_min_norm_max_abs_test_output)
    s = claim_settings(study, "min_norm_solution", f"min_norm_solution_{name}",
                       {"tolerance": 1e-9})
    ok = abs(norm - math.sqrt(2)) <= s["tolerance"] and zero <= s["tolerance"]
    out.append(ClaimResult(
        claim_id=f"min_norm_solution_{name}", kind="min_norm_solution", paper=PAPER,
        where="Sec. 4, Fig. 7", statement="the toy's minimum-norm solution w* = X^+ y has "
        "norm sqrt 2 and output 0 on every test image (50 % by the balanced test set)",
        measured=norm, uncertainty=math.nan, uncertainty_kind="exact", paper_value=math.sqrt(2),
        criterion=f"| ||w*|| - sqrt 2 | and max |f*(x_test)| <= {s['tolerance']}",
        verdict=HOLDS if ok else FAILS, figure=fig, n_members=1,
        notes=f"max |f*(x_test)| = {zero:.3g}"))
    s = claim_settings(study, "toy_accuracy", f"toy_accuracy_{name}",
                       {"shallow_max_depth": 3, "deep_min_depth": 20, "tolerance": 0.15})
    conv = r.lin_status.values == "converged"
    depths = r.lin_depth.values
    acc = np.where(conv, r.lin_test_acc.values, np.nan)
    for part, rows, target in (("shallow", depths <= s["shallow_max_depth"], 1.0),
                               ("deep", depths >= s["deep_min_depth"], 0.5)):
        v = acc[rows]
        v = v[np.isfinite(v)]
        m = float(v.mean()) if len(v) else math.nan
        tol = 0.0 if part == "shallow" else s["tolerance"]
        verdict = NOT_RESOLVED if len(v) < 2 else tolerance_verdict(m, target, tol)
        sel = depths[rows]
        out.append(ClaimResult(
            claim_id=f"toy_accuracy_{part}_{name}", kind="toy_accuracy", paper=PAPER,
            where="Sec. 4, Fig. 7(b)",
            statement=("shallow linear conv nets classify the toy perfectly (100 % test)"
                       if part == "shallow" else "deep linear conv nets interpolate the toy "
                       "but test at about 50 %, as the minimum-norm solution"),
            measured=m, uncertainty=float(v.std()) if len(v) > 1 else math.nan,
            paper_value=target,
            criterion=f"mean test acc of converged runs at depths "
                      f"{', '.join(str(int(d)) for d in sel) or 'none'} within {tol} of "
                      f"{target}",
            verdict=verdict, figure=fig, n_members=len(v),
            n_excluded=int(np.isin(r.lin_status.values[rows], ["max_steps", "diverged"]).sum()),
            notes="test acc per depth (converged mean): " + ", ".join(
                f"{int(d)}: {np.nanmean(a):.3f}" if np.isfinite(a).any() else f"{int(d)}: -"
                for d, a in zip(depths, acc, strict=True))))
    return out


def resnet_depth_curve(cube: xr.Dataset, study: dict[str, Any], width: int,
                       kernel: int = 3, var: str = "rn_test_loss_final",
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(depths, ``var`` (depth, seed), by default the final test loss) of the Table 1 grids'
    nets at one width and kernel size; diverged and unrun nets are NaN."""
    from depthlab.studies.nichani.grid import TABLE1

    depths = sorted({int(d) for g in study["resnets"]["grids"] if g.get("depths")
                     and width in g["widths"] and kernel in g["kernel_sizes"]
                     for d in g["depths"]})
    rows = []
    for d in depths:
        b = "-".join(map(str, TABLE1[d]))
        if b not in cube.rn_blocks.values or width not in cube.rn_width.values or \
                kernel not in cube.rn_kernel.values:
            rows.append(np.full(cube.sizes["rn_seed"], np.nan))
            continue
        r = cube.sel(rn_blocks=b, rn_width=width, rn_kernel=kernel)
        ok = np.isin(r.rn_status.values, ("converged", "max_epochs"))
        rows.append(np.where(ok, r[var].values, np.nan))
    return np.array(depths), np.array(rows).reshape(len(depths), -1)


def _resnets(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    if "rn_test_loss_final" not in cube or not study.get("resnets"):
        return []
    out = []
    widths = sorted({int(w) for g in study["resnets"]["grids"] if g.get("depths")
                     for w in g["widths"]})
    for w in widths:
        if w == 8:
            out.append(_resnet_w8(cube, study))
        if w < 32:  # the paper claims the rise for widths 64 and 32 (16: flat, 8: falls)
            continue
        cid = f"resnet_loss_rises_w{w}"
        s = claim_settings(study, "resnet_loss_rises", cid, {"separation": 2.0})
        depths, loss = resnet_depth_curve(cube, study, w)
        n = np.isfinite(loss).sum(1) if loss.size else np.array([], int)
        means = np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in loss])
        table = ", ".join(f"d={int(d)}: {m:.4f} ({int(c)} seeds)"
                          for d, m, c in zip(depths, means, n, strict=True))
        base = dict(claim_id=cid, kind="resnet_loss_rises", paper=PAPER,
                    where="Sec. 3.2, Fig. 1b, 5", figure=_resnet_figure(study, w),
                    statement=f"ResNets of width {w}: test loss rises beyond a critical depth "
                              "(deepest depth worse than the best shallower one)",
                    uncertainty_kind="standard error of the difference of seed means")
        if len(depths) < 3 or (n < 2).any():
            out.append(ClaimResult(**base, measured=math.nan, uncertainty=math.nan,
                                   criterion="needs >= 3 depths with >= 2 seeds each (not "
                                             "diverged)",
                                   verdict=NOT_RESOLVED, n_members=int(n.sum()), notes=table))
            continue
        j = int(np.nanargmin(means[:-1]))
        a, b = loss[j][np.isfinite(loss[j])], loss[-1][np.isfinite(loss[-1])]
        diff = float(b.mean() - a.mean())
        se = float(math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
        margin = s["separation"] * se
        verdict = HOLDS if diff > margin else (FAILS if diff < -margin else NOT_RESOLVED)
        out.append(ClaimResult(
            **base, measured=diff, uncertainty=se,
            criterion=f"test loss(d = {int(depths[-1])}) - test loss(d = {int(depths[j])}, the "
                      f"best shallower) > {s['separation']} x SE",
            verdict=verdict, n_members=len(a) + len(b),
            notes=f"final-epoch test loss (converged or epoch-capped seeds) {table}"))
    return out


def _resnet_figure(study: dict[str, Any], width: int) -> str:
    """The first loss-vs-depth ResNet figure that shows ``width`` alone, else any that
    shows it (a figure naming no widths shows them all)."""
    figs = [(n, f) for n, f in (study.get("figures") or {}).items()
            if f["plot"] == "nichani_resnet" and f.get("x", "depth") == "depth"
            and "test_loss" in (f.get("metrics") or ["test_loss"])]
    for n, f in figs:
        if f.get("widths") == [width]:
            return n
    return next((n for n, f in figs if width in (f.get("widths") or [width])), "")


def _resnet_w8(cube: xr.Dataset, study: dict[str, Any]) -> ClaimResult:
    """Fig. 14: width-8 ResNets are not over-parameterized enough: test loss falls with
    depth (shallowest minus deepest, separated)."""
    cid = "resnet_w8_loss_falls"
    s = claim_settings(study, "resnet_w8_loss_falls", cid, {"separation": 2.0})
    depths, loss = resnet_depth_curve(cube, study, 8)
    base = dict(claim_id=cid, kind="resnet_w8_loss_falls", paper=PAPER,
                where="App. D.2, Fig. 14",
                figure=_resnet_figure(study, 8),
                statement="ResNets of width 8 (not over-parameterized enough): test loss falls "
                          "with depth",
                uncertainty_kind="standard error of the difference of seed means")
    a = loss[0][np.isfinite(loss[0])] if len(depths) else np.array([])
    b = loss[-1][np.isfinite(loss[-1])] if len(depths) else np.array([])
    if len(depths) < 2 or len(a) < 2 or len(b) < 2:
        return ClaimResult(**base, measured=math.nan, uncertainty=math.nan,
                           criterion="needs >= 2 depths with >= 2 seeds at both ends",
                           verdict=NOT_RESOLVED, n_members=len(a) + len(b))
    diff = float(a.mean() - b.mean())
    se = float(math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    margin = s["separation"] * se
    verdict = HOLDS if diff > margin else (FAILS if diff < -margin else NOT_RESOLVED)
    return ClaimResult(**base, measured=diff, uncertainty=se, verdict=verdict,
                       criterion=f"test loss(d = {int(depths[0])}) - test loss(d = "
                                 f"{int(depths[-1])}) > {s['separation']} x SE",
                       n_members=len(a) + len(b))


def claims(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    return [*_cntk(cube, study), *_fully_conv(cube, study), *_linear(cube, study),
            *_resnets(cube, study)]
