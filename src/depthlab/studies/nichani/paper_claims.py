"""Nichani et al.'s claims, checked on the study cube (depthlab.claims).

Every paper row quotes the paper (``quote``) at its place (``where``); the toy generator's
minimum-norm identity is a project sanity check (``origin = "project"``). Margins are
symmetric (the statistics rule of :mod:`depthlab.claims`): seed SE over converged members,
binomial SE over the test set for kernel accuracies.

``cntk_u_shape``                 the CNTK's test loss / accuracy is U-shaped in depth: the best
                                 interior depth beats both ends (holds) or an end beats every
                                 interior depth (fails), by ``min_rel_gap`` (loss; kernels are
                                 deterministic) or by ``separation`` binomial SEs (accuracy).
``fully_conv_past_interpolation`` trained Fully-Conv nets lose test accuracy past the
                                 interpolation depth d_int.
``fully_conv_approaches_fc``     the deep Fully-Conv net's test accuracy approaches the FC
                                 baseline's (Figs. 2-3): distance to the FC net at the best
                                 depth minus at the deepest.
``toy_accuracy``                 the linear toy: 100 % test accuracy for shallow nets, about
                                 50 % (the min-norm solution's) for deep ones, both sides
                                 decided by the SE (seed SE, at least the binomial SE).
``min_norm_solution``            project sanity check: the toy's minimum-norm predictor has
                                 norm sqrt 2 and output 0 on every test image.
``operator_norm``                the toy operator's norm falls with depth toward sqrt 2.
``stable_rank_falls``            the autoencoders' stable rank falls with depth.
``resnet_loss_rises``            ResNets of width >= 32 (Figs. 1b, 5a, 16): the deepest depth's
                                 final test loss exceeds the best shallower depth's (>= 2
                                 seeds per depth), or with one seed the loss trend over the
                                 deeper half of the depths is positive, beyond ``separation``
                                 SE.
``resnet_w8_loss_falls``         width-8 ResNets: test loss falls with depth (Fig. 14).
``resnet_width_helps``           ResNet-18 / -34: test error falls with width (Fig. 1a).
``resnet_stage3_worse``          blocks added to stage 3 raise the test loss faster than
                                 blocks added to stage 1 (Fig. 15; slopes over blocks).
``resnet_kernel_size``           test loss rises with the kernel size (Fig. 17).

Only converged runs are evidence (interpolating nets; linear nets below ``loss_tol``).
:func:`critical_depth_vs_classes` is the verdict of the cross-study claim "the critical
depth grows with the number of classes" for a scorecard-level rule.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from depthlab.claims import (
    FAILS,
    HOLDS,
    NOT_RESOLVED,
    PROJECT_CHECK,
    SEPARATION_K,
    ClaimResult,
    binomial_se,
    claim_settings,
    combined_se,
    figure_for,
    linear_trend,
    mean_se,
    separated_threshold_verdict,
    separated_verdict,
    separation_note,
)

PAPER = "Nichani et al. (2021)"
# App. C, table of experiments: the ResNets of Figs. 1 and 5 train on 2500 CIFAR-10 images
# per class; Fig. 16 repeats width 32 on 500 per class
PAPER_RESNET_PER_CLASS = 2500


Q_U = ("We observe that test error is monotonically decreasing up to a critical depth, "
       "after which it is monotonically increasing.")
Q_FULLY_CONV = ("When training to classify between 2 and 5 classes, the test accuracy "
                "continues to decrease even when increasing depth past the interpolation "
                "threshold")
Q_APPROACH = ("As depth increases, the performance of the Fully-Conv Net approaches that of a "
              "wide fully connected network")
Q_TOY_SHALLOW = ("a linear fully convolutional network with 5 layers and 32 filters per layer "
                 "is able")
Q_TOY_DEEP = ("the average test accuracy across 5 random seeds is approximately 50% for "
              "networks of depth 20 or larger")
Q_NORM = ("increasing depth in linear neural networks with layer constraints (e.g. "
          "convolutional networks or Toeplitz networks) leads to a decrease in the Frobenius "
          "norm and stable rank of the resulting linear operator")
Q_RESNET = ("In the width 64 and 32 models, test loss increases beyond a critical depth")
Q_RESNET_500 = "We observe that test loss increases as depth increases"
Q_W8 = "We see that test loss decreases as model depth increases"
Q_WIDTH = ("As explained by double descent, increasing width in ResNets trained on CIFAR10 "
           "results in a decrease in test error.")
Q_STAGE = ("We observe that the model where the third stage blocks are increased performs "
           "worse.")
Q_KERNEL = "We observe that test loss increases as kernel size increases."
Q_CLASSES = ("the value of this critical depth appears to increase as the number of training "
             "classes increases")


def u_shape_verdict(values: np.ndarray, se: np.ndarray | None, *, lower_is_better: bool,
                    min_rel_gap: float = 0.0, k: float = SEPARATION_K
                    ) -> tuple[str, int, tuple[float, float], str]:
    """A U in depth, symmetric: (verdict, index of the best interior depth, its margins over
    the two ends, note). ``holds`` when the best interior value beats both ends, ``fails``
    when the better end beats every interior value, by the same distance either way:
    ``k`` x the SE of the difference (``se`` per depth, quadrature) or, for deterministic
    values (``se`` None), a relative gap ``min_rel_gap``; ``not resolved`` otherwise or with
    fewer than 3 depths."""
    v = np.asarray(values, float)
    if len(v) < 3:
        return NOT_RESOLVED, -1, (math.nan, math.nan), f"{len(v)} depths cannot make a U"
    sign = -1.0 if lower_is_better else 1.0
    score = sign * v                     # higher is better
    inner = 1 + int(np.argmax(score[1:-1]))
    end = 0 if score[0] >= score[-1] else len(v) - 1
    if se is None:
        # relative gaps of the loss: end / interior - 1 (loss), interior - end (accuracy)
        def gap(a: int, b: int) -> float:
            return (v[b] / v[a] - 1.0) if lower_is_better else (v[a] - v[b])
        need = [min_rel_gap] * 3
    else:
        def gap(a: int, b: int) -> float:
            return score[a] - score[b]
        need = [k * combined_se(se[inner], se[0]), k * combined_se(se[inner], se[-1]),
                k * combined_se(se[inner], se[end])]
    margins = (gap(inner, 0), gap(inner, len(v) - 1))
    if margins[0] > need[0] and margins[1] > need[1]:
        verdict = HOLDS
    elif gap(end, inner) > need[2]:
        verdict = FAILS
    else:
        verdict = NOT_RESOLVED
    note = (f"margins of the best interior depth over the ends {margins[0]:.4g}, "
            f"{margins[1]:.4g}; of the better end over it {gap(end, inner):.4g}; needed "
            f"{', '.join(f'{x:.4g}' for x in need)}")
    return verdict, inner, margins, note


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
                               {"min_rel_gap": 0.02, "separation": SEPARATION_K})
            v = (r.k_test_loss if what == "loss" else r.k_test_acc).values[ok]
            if what == "loss":
                verdict, i, _, note = u_shape_verdict(v, None, lower_is_better=True,
                                                      min_rel_gap=s["min_rel_gap"])
                crit = (f"holds: the best interior depth's loss x (1 + {s['min_rel_gap']}) "
                        "is below both ends; fails: the better end's is below every interior "
                        "depth's by the same factor (deterministic kernel)")
            else:
                se = np.array([binomial_se(a, n_test) for a in v])
                verdict, i, _, note = u_shape_verdict(v, se, lower_is_better=False,
                                                      k=s["separation"])
                crit = (f"holds: the best interior depth's accuracy beats both ends by more "
                        f"than {s['separation']:g} x the binomial SE of the difference "
                        f"({n_test} test images); fails: the better end beats it by as much")
            out.append(ClaimResult(
                claim_id=cid, kind="cntk_u_shape", paper=PAPER, where="Sec. 3.3, Fig. 6, 18",
                quote=Q_U,
                statement=f"the {name} test {'loss' if what == 'loss' else 'accuracy'} is "
                          "U-shaped in depth (best at an intermediate depth)",
                measured=float(depths[i]) if i >= 0 else math.nan, uncertainty=math.nan,
                uncertainty_kind="deterministic (best depth)" if what == "loss" else
                "best depth; accuracies with binomial SE", criterion=crit, verdict=verdict,
                figure=fig, n_members=1,
                notes=f"{what} by depth: " + ", ".join(
                    f"{int(d)}: {x:.4g}" for d, x in zip(depths, v, strict=True))
                + f"; {note}; {int(r.k_n_train)} train / {n_test} test images"))
    return out


def _fully_conv(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    if "fc_test_acc" not in cube:
        return []
    from depthlab.studies.nichani.critical import interpolation_depth

    cid = "fully_conv_past_interpolation"
    s = claim_settings(study, cid, cid, {"separation": SEPARATION_K})
    depths = cube.depth.values
    d_int = interpolation_depth(cube.fc_train_acc.values, depths)
    conv = cube.fc_status.values == "converged"
    acc = np.where(conv, cube.fc_test_acc.values, np.nan)
    fig = figure_for(study, ["nichani_fully_conv"], metric="accuracy")
    means = np.array([np.nanmean(a) if np.isfinite(a).any() else np.nan for a in acc])
    table = ", ".join(f"d={int(d)}: {m:.3f} ({int(c)}/{conv.shape[1]} interp.)"
                      for d, m, c in zip(depths, means, conv.sum(1), strict=True))
    base = dict(claim_id=cid, kind=cid, paper=PAPER, where="Sec. 3.1, Fig. 2-4",
                quote=Q_FULLY_CONV,
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


def _approaches_fc(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    """Figs. 2-3: as depth grows the Fully-Conv net's test accuracy approaches the wide FC
    net's. Effect: |acc(best depth) - acc(FC)| - |acc(deepest) - acc(FC)| (seed means of
    converged runs), positive beyond ``separation`` SE (quadrature of the three seed SEs);
    negative beyond it (the deepest net further from the FC net) fails."""
    if "fc_test_acc" not in cube or "mlp_test_acc" not in cube:
        return []
    cid = "fully_conv_approaches_fc"
    s = claim_settings(study, cid, cid, {"separation": SEPARATION_K})
    k = s["separation"]
    depths = cube.depth.values
    acc = np.where(cube.fc_status.values == "converged", cube.fc_test_acc.values, np.nan)
    mlp = np.where(cube.mlp_status.values == "converged", cube.mlp_test_acc.values, np.nan)
    stats = [mean_se(a) for a in acc]
    means = np.array([m for m, _, _ in stats])
    m_fc, se_fc, n_fc = mean_se(mlp)
    base = dict(claim_id=cid, kind=cid, paper=PAPER, where="Sec. 3.1, Figs. 2-3",
                quote=Q_APPROACH, figure=figure_for(study, ["nichani_fully_conv"],
                                                   metric="accuracy"),
                statement="as depth grows, the Fully-Conv net's test accuracy approaches that "
                          "of the wide fully connected network",
                uncertainty_kind="SE: seed SEs in quadrature")
    table = ", ".join(f"d={int(d)}: {m:.3f}" for d, m in zip(depths, means, strict=True))
    shallower = means[:-1]
    if len(depths) < 2 or not np.isfinite(shallower).any() or not math.isfinite(m_fc):
        return [ClaimResult(**base, measured=math.nan, uncertainty=math.nan,
                            criterion="needs converged runs at two depths and of the FC net",
                            verdict=NOT_RESOLVED, notes=f"test acc {table}; FC {m_fc:.3f}")]
    j = int(np.nanargmax(shallower))
    effect = abs(means[j] - m_fc) - abs(means[-1] - m_fc)
    se = combined_se(stats[j][1], stats[-1][1], se_fc)
    return [ClaimResult(
        **base, measured=float(effect), uncertainty=se,
        criterion=f"|acc(d = {int(depths[j])}, the best shallower) - acc(FC)| - |acc(d = "
                  f"{int(depths[-1])}) - acc(FC)| > {k:g} SE (fails below -{k:g} SE)",
        verdict=separated_verdict(effect, se, 1, k),
        n_members=stats[j][2] + stats[-1][2] + n_fc,
        notes=f"{separation_note(effect, se, k, 'approach')}; test acc (converged seeds) "
              f"{table}; FC net {m_fc:.3f} ({n_fc} seeds)")]


def _falls(r: xr.Dataset, var: str, study, kind: str, cid: str, statement: str, where: str,
           figure: str, target: float) -> ClaimResult:
    """Shallowest vs deepest depth with converged members: holds when every deepest seed is
    below every shallowest seed (times ``separation``), fails when the median rises."""
    s = claim_settings(study, kind, cid, {"separation": SEPARATION_K})
    k = s["separation"]
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
        return ClaimResult(claim_id=cid, kind=kind, paper=PAPER, where=where, quote=Q_NORM,
                           statement=statement, measured=math.nan, uncertainty=math.nan,
                           criterion="needs two depths with converged runs",
                           verdict=NOT_RESOLVED, figure=figure, notes=notes)
    lo_m, lo_se, n_lo = mean_se(v[have[0]])
    hi_m, hi_se, n_hi = mean_se(v[have[-1]])
    diff, se = lo_m - hi_m, combined_se(lo_se, hi_se)
    return ClaimResult(
        claim_id=cid, kind=kind, paper=PAPER, where=where, statement=statement, quote=Q_NORM,
        measured=float(diff), uncertainty=se,
        uncertainty_kind="SE of the difference of seed means",
        criterion=f"mean over seeds at d = {int(depths[have[0]])} minus at d = "
                  f"{int(depths[have[-1]])} positive beyond {k:g} SE (falls toward the "
                  f"min-norm value {target:.4g}); negative beyond it fails",
        verdict=separated_verdict(diff, se, 1, k), figure=figure, n_members=n_lo + n_hi,
        notes=f"{separation_note(diff, se, k, 'fall')}; {notes}")


# conv_ae's: its dataset's (depthlab.data.sources.data_source of the task's filled block)
LINEAR_SOURCES = {"toy": "synthetic 6x6 RGB pixel toy (generated exactly)",
                  "toeplitz_ae": "seeded Gaussian vectors"}


def _linear_source(study: dict[str, Any], name: str, kind: str) -> str:
    if kind != "conv_ae":
        return LINEAR_SOURCES[kind]
    from depthlab.data.sources import data_source

    task = next(t for t in study.get("linear") or [] if t["name"] == name)
    return data_source(task)


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
            c.data_source = _linear_source(study, str(name), kind)
    return out


def _toy_n_test(study: dict[str, Any], name: str) -> int:
    """The toy's test-set size: its config entry's ``n_test``, else the generator's
    default."""
    from depthlab.studies.nichani.data import pixel_toy

    spec = next((t for t in study.get("linear") or [] if t.get("name") == name), {})
    return int(spec.get("n_test", inspect.signature(pixel_toy).parameters["n_test"].default))


def _toy(r: xr.Dataset, name: str, study, fig: str) -> list[ClaimResult]:
    out = []
    norm = float(r.lin_min_norm_norm)
    zero = float(r.lin_min_norm_max_abs_test_output)
    s = claim_settings(study, "min_norm_solution", f"min_norm_solution_{name}",
                       {"tolerance": 1e-9})
    ok = abs(norm - math.sqrt(2)) <= s["tolerance"] and zero <= s["tolerance"]
    out.append(ClaimResult(
        claim_id=f"min_norm_solution_{name}", kind="min_norm_solution", paper=PAPER,
        origin=PROJECT_CHECK, where="project sanity check of the toy generator (Sec. 4)",
        statement="sanity check of the toy generator, not a paper claim: its minimum-norm "
                  "solution w* = X^+ y has norm sqrt 2 and output 0 on every test image (an "
                  "identity of a correct generator)",
        measured=norm, uncertainty=math.nan, uncertainty_kind="exact", paper_value=math.sqrt(2),
        criterion=f"| ||w*|| - sqrt 2 | and max |f*(x_test)| <= {s['tolerance']}",
        verdict=HOLDS if ok else FAILS, figure=fig, n_members=1,
        notes=f"max |f*(x_test)| = {zero:.3g}"))
    s = claim_settings(study, "toy_accuracy", f"toy_accuracy_{name}",
                       {"shallow_max_depth": 5, "deep_min_depth": 20, "tolerance": 0.05,
                        "shallow_tolerance": 0.01, "separation": SEPARATION_K})
    k = s["separation"]
    n_test = _toy_n_test(study, name)
    conv = r.lin_status.values == "converged"
    depths = r.lin_depth.values
    acc = np.where(conv, r.lin_test_acc.values, np.nan)
    min_norm_acc = float(r.lin_min_norm_test_acc) if "lin_min_norm_test_acc" in r else math.nan
    for part, rows, target in (("shallow", depths <= s["shallow_max_depth"], 1.0),
                               ("deep", depths >= s["deep_min_depth"], 0.5)):
        m, sse, n = mean_se(acc[rows])
        bse = binomial_se(m, n_test * max(n, 1))
        se = bse if not math.isfinite(sse) else max(sse, bse)
        if part == "shallow":
            # "consistently 100 %": above 1 - shallow_tolerance by k SE; below it fails
            tol = s["shallow_tolerance"]
            verdict = separated_threshold_verdict(m, 1.0 - tol, se, above=True, k=k)
            crit = f"mean test acc above {1 - tol:g} by more than {k:g} SE (below it: fails)"
            note = separation_note(m - (1.0 - tol), se, k, "acc - threshold")
            quote, stmt = Q_TOY_SHALLOW, ("shallow linear conv nets classify the toy "
                                          "perfectly (100 % test accuracy)")
        else:
            # "approximately 50 %": |acc - 0.5| below the tolerance by k SE, above it fails
            tol = s["tolerance"]
            dist = abs(m - target)
            verdict = separated_threshold_verdict(dist, tol, se, above=False, k=k)
            crit = (f"|mean test acc - 0.5| below {tol:g} by more than {k:g} SE (above it "
                    "by as much: fails, e.g. a net below chance)")
            note = separation_note(dist - tol, se, k, "|acc - 0.5| - tolerance")
            quote, stmt = Q_TOY_DEEP, ("deep linear conv nets interpolate the toy but test "
                                       "at about 50 %, as the minimum-norm solution")
        if n < 2:
            verdict = NOT_RESOLVED
            note = f"{n} converged runs at these depths (need 2)"
        sel = depths[rows]
        out.append(ClaimResult(
            claim_id=f"toy_accuracy_{part}_{name}", kind="toy_accuracy", paper=PAPER,
            where="Sec. 4, Fig. 7(b)", quote=quote, statement=stmt,
            measured=m, uncertainty=se, paper_value=target,
            criterion=f"{crit}; converged runs at depths "
                      f"{', '.join(str(int(d)) for d in sel) or 'none'}",
            uncertainty_kind="seed SE, at least the binomial SE over the test images",
            verdict=verdict, figure=fig, n_members=n,
            n_excluded=int(np.isin(r.lin_status.values[rows], ["max_steps", "diverged"]).sum()),
            notes=f"{note}; min-norm solution's test acc {min_norm_acc:.3g}; test acc per "
                  "depth (converged mean): " + ", ".join(
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


def _rises(depths: np.ndarray, loss: np.ndarray, k: float
           ) -> tuple[str, float, float, int, str]:
    """The deepest depth against the best shallower one (>= 2 seeds at every depth: the
    difference of seed means), or with fewer seeds the trend of the loss over the deeper half
    of the depths (a slope per depth, its SE from the fit): (verdict, effect, SE, members,
    criterion)."""
    n = np.isfinite(loss).sum(1) if loss.size else np.array([], int)
    if len(depths) < 3:
        return NOT_RESOLVED, math.nan, math.nan, int(n.sum()), "needs >= 3 depths"
    means = np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in loss])
    if (n >= 2).all():
        j = int(np.nanargmin(means[:-1]))
        a, b = loss[j][np.isfinite(loss[j])], loss[-1][np.isfinite(loss[-1])]
        m_a, se_a, _ = mean_se(a)
        m_b, se_b, _ = mean_se(b)
        diff, se = m_b - m_a, combined_se(se_a, se_b)
        return (separated_verdict(diff, se, 1, k), diff, se, len(a) + len(b),
                f"test loss(d = {int(depths[-1])}) - test loss(d = {int(depths[j])}, the best "
                f"shallower) > {k:g} SE (fails below -{k:g} SE)")
    deep = depths >= np.median(depths)
    x = np.repeat(depths[deep][:, None], loss.shape[1], axis=1)
    slope, se, m = linear_trend(x, loss[deep])
    if m < 3:
        return NOT_RESOLVED, slope, se, m, "needs >= 3 finite points in the deeper half"
    return (separated_verdict(slope, se, 1, k), slope, se, m,
            f"slope of the test loss over depths {', '.join(str(int(d)) for d in depths[deep])}"
            f" (the deeper half; one seed: no seed SE) > {k:g} SE (fails below -{k:g} SE)")


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
        s = claim_settings(study, "resnet_loss_rises", cid, {"separation": SEPARATION_K})
        depths, loss = resnet_depth_curve(cube, study, w)
        n = np.isfinite(loss).sum(1) if loss.size else np.array([], int)
        means = np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in loss])
        table = ", ".join(f"d={int(d)}: {m:.4f} ({int(c)} seeds)"
                          for d, m, c in zip(depths, means, n, strict=True))
        verdict, effect, se, members, crit = _rises(depths, loss, s["separation"])
        # the paper's Figs. 1b / 5 train on 2500 images per class (App. C); Fig. 16 on fewer
        per_class = (study.get("data") or {}).get("n_train_per_class")
        few = per_class is not None and int(per_class) < PAPER_RESNET_PER_CLASS
        out.append(ClaimResult(
            claim_id=cid, kind="resnet_loss_rises", paper=PAPER,
            where="App. D.4, Fig. 16" if few else "Sec. 3.2, Fig. 1b, 5",
            quote=Q_RESNET_500 if few else Q_RESNET, figure=_resnet_figure(study, w),
            statement=f"ResNets of width {w}: test loss rises beyond a critical depth "
                      "(deepest depth worse than the best shallower one)",
            uncertainty_kind="SE of the difference of seed means (or of the slope)",
            measured=effect, uncertainty=se, criterion=crit, verdict=verdict,
            n_members=members,
            notes=f"{separation_note(effect, se, s['separation'])}; final-epoch test loss "
                  f"(converged or epoch-capped seeds) {table}"))
    out += _resnet_width(cube, study)
    out += _resnet_stages(cube, study)
    out += _resnet_kernel(cube, study)
    return out


def _rn_values(cube: xr.Dataset, var: str, blocks: str, width: int, kernel: int
               ) -> np.ndarray:
    """``var`` over seeds of one ResNet cell (diverged and unrun nets NaN; an absent cell
    all NaN)."""
    if blocks not in cube.rn_blocks.values or width not in cube.rn_width.values or \
            kernel not in cube.rn_kernel.values:
        return np.full(cube.sizes["rn_seed"], np.nan)
    r = cube.sel(rn_blocks=blocks, rn_width=width, rn_kernel=kernel)
    ok = np.isin(r.rn_status.values, ("converged", "max_epochs"))
    return np.where(ok, r[var].values, np.nan)


def _trend_row(x: Sequence[float], values: np.ndarray, *, cid: str, kind: str, sign: int,
               study: dict[str, Any], **fields: Any) -> ClaimResult:
    """A claim that ``values`` (x, seed) trend with ``x`` in direction ``sign``: the slope
    over every finite member, by the statistics rule."""
    s = claim_settings(study, kind, cid, {"separation": SEPARATION_K})
    k = s["separation"]
    xs = np.repeat(np.asarray(x, float)[:, None], values.shape[1], axis=1)
    slope, se, n = linear_trend(xs, values)
    means = [np.nanmean(v) if np.isfinite(v).any() else np.nan for v in values]
    return ClaimResult(
        claim_id=cid, kind=kind, paper=PAPER, measured=slope, uncertainty=se,
        uncertainty_kind="SE of the least-squares slope over all members",
        verdict=separated_verdict(slope, se, sign, k), n_members=n,
        notes=f"{separation_note(slope, se, k, 'slope')}; mean by x: " + ", ".join(
            f"{x_:g}: {m:.4g}" for x_, m in zip(x, means, strict=True)),
        criterion=f"slope {'>' if sign > 0 else '<'} 0 beyond {k:g} SE (the opposite sign "
                  "beyond it fails)", **fields)


def _rn_fig(study: dict[str, Any], **named: Any) -> str:
    """The first ResNet figure that names every setting of ``named`` with that value (a
    list-valued setting: contains it)."""
    for name, f in (study.get("figures") or {}).items():
        if f.get("plot") != "nichani_resnet":
            continue
        if all(k in f and (v in f[k] if isinstance(f[k], list) else f[k] == v)
               for k, v in named.items()):
            return name
    return ""


def _resnet_width(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    """Fig. 1(a): ResNet-18 and -34 test error falls with width (against log2 width)."""
    from depthlab.studies.nichani.grid import TABLE1

    out = []
    widths = [int(w) for w in cube.rn_width.values]
    for depth in (18, 34):
        b = "-".join(map(str, TABLE1.get(depth, ())))
        if b not in cube.rn_blocks.values or len(widths) < 2:
            continue
        err = np.array([1.0 - _rn_values(cube, "rn_test_acc_final", b, w, 3) for w in widths])
        if np.isfinite(err).any(axis=1).sum() < 2:
            continue
        out.append(_trend_row(
            np.log2(widths), err, cid=f"resnet_width_helps_d{depth}", kind="resnet_width_helps",
            sign=-1, study=study, where="Sec. 1, Fig. 1a", quote=Q_WIDTH,
            figure=_rn_fig(study, x="width"),
            statement=f"ResNet-{depth}: final test error falls with width "
                      f"({', '.join(map(str, widths))}; slope per doubling)"))
    return out


def _stage_grid(study: dict[str, Any], name: str) -> list[str]:
    g = next((g for g in study["resnets"]["grids"] if g.get("name") == name), None)
    return ["-".join(map(str, b)) for b in (g or {}).get("blocks") or []]


def _resnet_stages(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    """Fig. 15: test loss grows faster with blocks added to stage 3 than to stage 1: the
    difference of the two slopes (loss per added block, width 32) by the statistics rule."""
    s1, s3 = _stage_grid(study, "stage1"), _stage_grid(study, "stage3")
    if not s1 or not s3 or 32 not in cube.rn_width.values:
        return []
    cid = "resnet_stage3_worse"
    s = claim_settings(study, cid, cid, {"separation": SEPARATION_K})
    k = s["separation"]
    fits = []
    for blocks, stage in ((s1, 0), (s3, 2)):
        loss = np.array([_rn_values(cube, "rn_test_loss_final", b, 32, 3) for b in blocks])
        added = np.array([int(b.split("-")[stage]) for b in blocks], float)
        fits.append(linear_trend(np.repeat(added[:, None], loss.shape[1], 1), loss))
    diff = fits[1][0] - fits[0][0]
    se = combined_se(fits[0][1], fits[1][1])
    return [ClaimResult(
        claim_id=cid, kind=cid, paper=PAPER, where="App. D.3, Fig. 15", quote=Q_STAGE,
        figure=_rn_fig(study, grids="stage3"),
        statement="blocks added to stage 3 raise the width-32 ResNet's test loss more than "
                  "blocks added to stage 1",
        measured=diff, uncertainty=se, uncertainty_kind="SE of the difference of two slopes",
        criterion=f"slope(stage 3) - slope(stage 1) of the final test loss per added block > "
                  f"{k:g} SE (fails below -{k:g} SE)",
        verdict=separated_verdict(diff, se, 1, k), n_members=fits[0][2] + fits[1][2],
        notes=f"{separation_note(diff, se, k, 'slope difference')}; slopes stage 1 "
              f"{fits[0][0]:.4g} +- {fits[0][1]:.2g}, stage 3 {fits[1][0]:.4g} +- "
              f"{fits[1][1]:.2g}")]


def _resnet_kernel(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    """Fig. 17: ResNet-10 and -18 (width 32): test loss rises with the kernel size."""
    out = []
    blocks = _stage_grid(study, "kernel")
    ks = [int(k) for k in cube.rn_kernel.values]
    if not blocks or len(ks) < 2 or 32 not in cube.rn_width.values:
        return out
    for b in blocks:
        loss = np.array([_rn_values(cube, "rn_test_loss_final", b, 32, k) for k in ks])
        if np.isfinite(loss).any(axis=1).sum() < 2:
            continue
        depth = 2 + 2 * sum(int(n) for n in b.split("-"))
        out.append(_trend_row(
            ks, loss, cid=f"resnet_kernel_size_d{depth}", kind="resnet_kernel_size", sign=1,
            study=study, where="App. D.5, Fig. 17", quote=Q_KERNEL,
            figure=_rn_fig(study, x="kernel_size"),
            statement=f"ResNet-{depth} (width 32): final test loss rises with the kernel size "
                      f"({', '.join(map(str, ks))})"))
    return out


def _resnet_figure(study: dict[str, Any], width: int) -> str:
    """The first loss-vs-depth ResNet figure that shows ``width`` alone, else any that
    shows it (a figure naming no widths shows them all)."""
    figs = [(n, f) for n, f in (study.get("figures") or {}).items()
            if f["plot"] == "nichani_resnet" and f["x"] == "depth"
            and "test_loss" in f["metrics"]]
    for n, f in figs:
        if f.get("widths") == [width]:
            return n
    return next((n for n, f in figs if width in (f.get("widths") or [width])), "")


def _resnet_w8(cube: xr.Dataset, study: dict[str, Any]) -> ClaimResult:
    """Fig. 14: width-8 ResNets are not over-parameterized enough: test loss falls with
    depth (shallowest minus deepest, separated)."""
    cid = "resnet_w8_loss_falls"
    s = claim_settings(study, "resnet_w8_loss_falls", cid, {"separation": SEPARATION_K})
    depths, loss = resnet_depth_curve(cube, study, 8)
    base = dict(claim_id=cid, kind="resnet_w8_loss_falls", paper=PAPER,
                where="App. D.2, Fig. 14 caption", quote=Q_W8,
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
    return [*_cntk(cube, study), *_fully_conv(cube, study), *_approaches_fc(cube, study),
            *_linear(cube, study), *_resnets(cube, study)]


# every kind this module can emit (the counter-example tests cover each)
KINDS = ("cntk_u_shape", "fully_conv_past_interpolation", "fully_conv_approaches_fc",
         "toy_accuracy", "min_norm_solution", "operator_norm", "stable_rank_falls",
         "resnet_loss_rises", "resnet_w8_loss_falls", "resnet_width_helps",
         "resnet_stage3_worse", "resnet_kernel_size")


# ------------------------------------------------------------ across studies

def critical_depth_vs_classes(points: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sec. 3.1's cross-study claim, "the value of this critical depth appears to increase as
    the number of training classes increases", from several studies' critical depths.

    ``points``: one mapping per study (panel) with ``n_classes``, ``d_star`` and its interval
    ``lo``, ``hi`` (the critical-depth table's d_star_acc, d_star_acc_lo, d_star_acc_hi; a
    deterministic kernel has lo = hi = d_star). Sorted by the number of classes, each
    adjacent pair is *separated up* when the larger class count's interval lies wholly above
    the smaller's (lo > hi), *separated down* when wholly below. ``holds`` when every
    adjacent pair is separated up, ``fails`` when any is separated down (the claim is a
    monotone increase: one resolved decrease refutes it), ``not resolved at this scale``
    otherwise (overlapping intervals, fewer than two class counts, a missing d*).
    Returns verdict, measured (number of pairs separated up), pairs and notes."""
    pts = sorted((p for p in points), key=lambda p: int(p["n_classes"]))
    counts = [int(p["n_classes"]) for p in pts]
    if len(set(counts)) != len(counts):
        raise ValueError(f"critical_depth_vs_classes: class counts repeat: {counts}")
    text = "; ".join(f"{c} classes: d* {p['d_star']:g} [{p['lo']:g}, {p['hi']:g}]"
                     for c, p in zip(counts, pts, strict=True))
    if len(pts) < 2 or not all(math.isfinite(float(p[k])) for p in pts
                               for k in ("d_star", "lo", "hi")):
        return {"verdict": NOT_RESOLVED, "measured": math.nan, "pairs": [],
                "quote": Q_CLASSES, "where": "Sec. 3.1, Figs. 2-3",
                "notes": f"needs two or more class counts with a critical depth; {text}"}
    pairs = []
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        up = float(b["lo"]) > float(a["hi"])
        down = float(b["hi"]) < float(a["lo"])
        pairs.append("up" if up else ("down" if down else "overlap"))
    verdict = (FAILS if "down" in pairs else HOLDS if all(p == "up" for p in pairs)
               else NOT_RESOLVED)
    return {"verdict": verdict, "measured": float(pairs.count("up")), "pairs": pairs,
            "quote": Q_CLASSES, "where": "Sec. 3.1, Figs. 2-3",
            "notes": f"adjacent pairs {pairs}; {text}"}


def _class_group(study: dict[str, Any]) -> tuple | None:
    """What must match for two studies' critical depths to differ only by the number of
    classes: the data source and image size, and the Fully-Conv nets' width and depths.
    None for a study without Fully-Conv nets (no critical depth of trained nets)."""
    fc = study.get("fully_conv")
    if not fc:
        return None
    data = study["data"]
    return (str(data["source"]), data.get("image_size"), int(fc["width"]),
            tuple(int(d) for d in fc["depths"]))


def claims_across(cubes: dict[str, xr.Dataset], studies: dict[str, dict[str, Any]]
                  ) -> list[ClaimResult]:
    """The claims no single study can check: Sec. 3.1's "critical depth grows with the number
    of classes", one row per group of studies that differ only in their classes
    (:func:`_class_group`) and cover two or more class counts. Each study's critical depth
    of the trained Fully-Conv nets and its bootstrap interval come from
    :func:`depthlab.studies.nichani.critical.critical_table` (the table its
    ``critical_depths.csv`` holds); :func:`critical_depth_vs_classes` gives the verdict."""
    from depthlab.studies.nichani.critical import critical_table

    groups: dict[tuple, list[str]] = {}
    for name, study in studies.items():
        key = _class_group(study)
        if key is not None:
            groups.setdefault(key, []).append(name)
    out = []
    for key, names in groups.items():
        counts = {len(studies[n]["data"]["classes"]) for n in names}
        if len(counts) < 2:
            continue
        points, members = [], 0
        for n in sorted(names, key=lambda n: len(studies[n]["data"]["classes"])):
            table = critical_table(cubes[n], studies[n])
            row = table[table["panel"].str.startswith("fully_conv")]
            if row.empty:
                continue
            r = row.iloc[0]
            points.append({"n_classes": len(studies[n]["data"]["classes"]),
                           "d_star": float(r["d_star_acc"]),
                           "lo": float(r["d_star_acc_lo"]), "hi": float(r["d_star_acc_hi"])})
            members += int(r["n_seeds"]) * len(key[3])
        # one study per class count: two studies with the same classes in one group would
        # be a repeated measurement, which this rule does not pool
        seen: dict[int, dict[str, Any]] = {}
        for p in points:
            seen.setdefault(p["n_classes"], p)
        res = critical_depth_vs_classes(list(seen.values()))
        cid = f"critical_depth_vs_classes_{key[0]}_w{key[2]}"  # one row per group
        out.append(ClaimResult(
            claim_id=cid, kind="critical_depth_vs_classes", paper=PAPER,
            where=res["where"], quote=res["quote"],
            statement=("the Fully-Conv nets' critical depth grows with the number of "
                       f"classes ({key[0]}, width {key[2]}, studies "
                       f"{', '.join(sorted(names))})"),
            measured=res["measured"], uncertainty=math.nan,
            uncertainty_kind="bootstrap interval of each critical depth over seeds",
            criterion=("sorted by class count, every adjacent pair's critical-depth "
                       "intervals separated upward (measured: pairs separated up); one "
                       "separated downward fails"),
            verdict=res["verdict"], n_members=members, notes=res["notes"],
            data_source=str(cubes[names[0]].attrs.get("data_source", ""))))
    return out
