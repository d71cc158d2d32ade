"""Lee et al.'s claims checked on the study cube (:mod:`depthlab.claims`).

Every paper row quotes the paper (``quote``) at its place (``where``); depthlab's own
consistency checks (the init spread's 1/sqrt(D) law, the net against the limit-kernel
regression) are ``origin = "project"`` rows. Training follows the paper's protocol: a
fixed epoch budget, so a deep-narrow net that ends at ``max_epochs`` is the normal outcome
and its accuracy is the evidence (a ``diverged`` net counts as not trained, accuracy 0);
``converged`` (zero training error) ends a run early. Accuracies carry the binomial SE over
the test set (:func:`depthlab.claims.binomial_se`), seed means the seed SE.

Kinds: ``trains`` (Sec. 5.2, Fig. 4.2, every deep-narrow depth of the grids, so the
depth-1000 MLP of Fig. 4.2(a) has its row at paper scale), ``baseline_fails``,
``table41_test_acc`` / ``table41_train_loss`` (Table 4.1: compared with the paper's number
only where the run is the paper's row: data, depth, C_L and epochs; otherwise not resolved
with the differences), ``init_converges`` (Thm. 3.1), ``kernel_change``,
``kernel_regression_limit`` and the project checks ``init_spread``, ``krr_agreement``.
"""

from __future__ import annotations

import dataclasses
import math
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
    mean_se,
    separated_threshold_verdict,
    separated_verdict,
    separation_note,
    threshold_verdict,
    tolerance_verdict,
)
from depthlab.studies.lee.table41 import PAPER_TABLE41, paper_row  # noqa: F401

PAPER = "Lee et al. (2022)"

Q_MLP = ("when we use the initialization defined in Section 3.1, the deep MLP was "
         "trainable")
Q_CNN = ("when we use the initialization defined in Section 4.0.1, the deep CNN was "
         "trainable")
Q_BASELINE = ("we attempt to train a 1000-layer MLP with the typical Kaiming He uniform "
              "initialization [23]. We tuned the learning rate via a grid search from 0.00001 "
              "to 1.0, but the network was untrainable")
Q_BASELINE_CNN = ("we attempt to train a 1000-layer CNN with the typical Kaiming He uniform "
                  "initialization, but the network was untrainable")
Q_TABLE41 = ("Very deep MLP and CNNs trained with MNIST. As the theory predicts, the very "
             "deep networks are trainable.")
Q_INIT = ("As L grows, initialization becomes less random, as Theorem 3.1 predicts")
Q_CHANGE = ("the kernel changes less throughout training, as Theorem 3.2 predicts")
Q_KRR = "Equivalence between deep MLP and kernel regression"

def _fig(study, plot):
    return figure_for(study, [plot])


def _of_arch(cube, arch: str):
    if "run" not in cube.dims:
        return None
    arch_of = cube.arch if "arch" in cube.coords else xr.full_like(cube.init, "mlp")
    sel = cube.where(arch_of == arch, drop=True)
    return sel if sel.sizes.get("run", 0) else None


def _n_test(cube) -> int:
    return int(cube.sizes.get("test_point", 0))


def _acc_and_se(r, n_test: int) -> tuple[np.ndarray, float, float]:
    """Per-run test accuracy (diverged = 0), their mean and its SE: the seed SE where there
    are seeds, never below the binomial SE of the pooled test predictions."""
    acc = r.test_acc_final.values.astype(float)
    acc = np.where(r.status.values.astype(str) == "diverged", 0.0, acc)
    mean, sse, n = mean_se(acc)
    bse = binomial_se(mean, n_test * max(n, 1)) if n_test else math.nan
    se = bse if not math.isfinite(sse) else max(sse, bse)
    return acc, mean, se


def _still_learning(r) -> tuple[bool, str]:
    """Whether every run's training loss fell over its run and had not flattened (the last
    recorded epoch still below the one before): training cut short, not a net that cannot
    train. The reason names the losses read from the history."""
    parts, learning = [], True
    for i in range(r.sizes["run"]):
        loss = r.train_loss.isel(run=i).values
        loss = loss[np.isfinite(loss)]
        status = str(r.status.isel(run=i).values)
        if status == "diverged" or len(loss) < 2:
            learning = False
            parts.append(f"{status}, {len(loss)} epochs recorded")
            continue
        falling = loss[-1] < loss[0] and loss[-1] < loss[-2]
        learning &= bool(falling)
        parts.append(f"train loss {loss[0]:.4g} -> {loss[-2]:.4g} -> {loss[-1]:.4g}")
    return learning, "; ".join(parts)


def _trains(cube, study, arch: str = "mlp") -> list[ClaimResult]:
    out = []
    runs = _of_arch(cube, arch)
    dn = runs.where(runs.init == "deep_narrow", drop=True) if runs is not None else None
    if dn is None or dn.sizes.get("run", 0) == 0:
        return out
    cnn = arch == "cnn"
    n_test = _n_test(cube)
    n_train = int(cube.attrs.get("n_train", 0))
    steps_per_epoch = math.ceil(n_train / int(study["training"]["batch_size"])) if n_train else 0
    for depth in sorted({int(d) for d in dn.depth.values}, reverse=True):
        at = dn.where(dn.depth == depth, drop=True)
        for lr in sorted(set(at.lr_label.values.tolist())):
            r = at.where(at.lr_label == lr, drop=True)
            cid = f"trains_deep_narrow{'_cnn' if cnn else ''}_D{depth}_lr{lr}"
            defaults = {"threshold": 0.8, "separation": SEPARATION_K}
            if cnn:
                defaults["min_kernel_time"] = 1000.0
            s = claim_settings(study, "trains", cid, defaults)
            acc, measured, se = _acc_and_se(r, n_test)
            k = s["separation"]
            verdict = separated_threshold_verdict(measured, s["threshold"], se, above=True, k=k)
            status = r.status.values.astype(str)
            epochs = int(np.nanmax(r.epochs.values))
            notes = (f"{separation_note(measured - s['threshold'], se, k, 'acc - threshold')}"
                     f"; status {sorted(set(status.tolist()))}; lr used "
                     f"{float(r.lr_used[0]):.3g}")
            if cnn:
                kernel_time = float(np.nanmax(r.tau.values)) * steps_per_epoch * epochs
                learning, losses = _still_learning(r)
                notes += (f", tau {float(r.tau[0]):.3g} (tau x lambda_max(init) "
                          f"{float(r.tau_lambda_max[0]):.3g}, lambda_max(init) "
                          f"{float(r.lambda_max_init[0]):.3g}), kernel time tau x steps = "
                          f"{kernel_time:.3g}; {losses}; best-constant MSE "
                          f"{float(cube.best_constant_mse):.4g}")
                if verdict == FAILS and kernel_time < s["min_kernel_time"] and learning:
                    # a net still learning when its budget ran out has not shown that it
                    # cannot train: the budget, not the net, decided
                    verdict = NOT_RESOLVED
                    notes += (f"; not resolved: kernel time {kernel_time:.3g} < "
                              f"{s['min_kernel_time']:g} and the training loss was still "
                              "falling at the last epoch (the step size is capped by "
                              "lambda_max at init)")
                where, what, quote = "Sec. 5.2, Fig. 4.2(b)", "CNN", Q_CNN
            else:
                notes += f", tau*lambda_max {float(r.tau_lambda_max[0]):.3g}"
                where, what, quote = "Sec. 5.2, Fig. 4.2(a)", "MLP", Q_MLP
            out.append(ClaimResult(
                claim_id=cid, kind="trains", paper=PAPER, where=where, quote=quote,
                statement=f"a depth-{depth} deep-narrow {what} (C_L = {float(r.C_L[0]):g}, "
                          f"lr {lr}) trains with SGD",
                measured=measured, uncertainty=se,
                criterion=f"final test accuracy above {s['threshold']} by more than {k:g} SE "
                          f"after {epochs} epochs (diverged = 0; fails when below by more)"
                          + (f"; a failing CNN still learning below kernel time "
                             f"{s['min_kernel_time']:g} is not resolved" if cnn else ""),
                verdict=verdict,
                figure=_fig(study, "lee_cnn_train_curves" if cnn else "lee_train_curves"),
                n_members=len(acc), notes=notes,
                uncertainty_kind="SE: seed SE, at least the binomial SE over the test set"))
    return out


def _baselines(cube, study, arch: str = "mlp") -> list[ClaimResult]:
    out = []
    runs = _of_arch(cube, arch)
    if runs is None:
        return out
    cnn = arch == "cnn"
    what = "CNN " if cnn else ""
    plot = "lee_cnn_train_curves" if cnn else "lee_train_curves"
    for init in ("torch_default", "he_uniform"):
        b = runs.where(runs.init == init, drop=True)
        if b.sizes.get("run", 0) == 0:
            continue
        for depth in sorted(set(b.depth.values.astype(int).tolist())):
            r = b.where(b.depth == depth, drop=True)
            cid = f"baseline_fails_{'cnn_' if cnn else ''}{init}_D{depth}"
            s = claim_settings(study, "baseline_fails", cid, {
                "chance_margin": 0.02, "constant_loss_fraction": 0.95, "min_epochs": 2})
            chance = float(cube.majority_rate) + s["chance_margin"]
            const = s["constant_loss_fraction"] * float(cube.best_constant_mse)
            acc = r.test_acc_final.values.astype(float)
            loss = r.final_loss.values.astype(float)
            epochs = r.epochs.values.astype(int)
            status = r.status.values.astype(str)
            failed = (status == "diverged") | ~np.isfinite(loss) | (acc <= chance) | (loss >= const)
            trained = [f"lr {lr}: acc {a:.3f}, loss {lo:.4g}" for lr, a, lo, f in
                       zip(r.lr_label.values, acc, loss, failed, strict=True) if not f]
            enough = bool(np.all((epochs >= s["min_epochs"]) | (status == "diverged")))
            verdict = (FAILS if trained else HOLDS) if enough else NOT_RESOLVED
            out.append(ClaimResult(
                claim_id=cid, kind="baseline_fails", paper=PAPER,
                where=f"Sec. 5.2, Fig. 4.2({'b' if cnn else 'a'})",
                quote=Q_BASELINE_CNN if cnn else Q_BASELINE,
                statement=f"the {what}{init} baseline at depth {depth} ("
                          f"{'channels' if cnn else 'width'} "
                          f"{int(r.width.max())}) is untrainable for every lr of the grid "
                          f"({', '.join(sorted(set(r.lr_label.values.tolist()), key=float))})",
                measured=float(np.nanmax(np.where(np.isfinite(acc), acc, np.nan)))
                if np.isfinite(acc).any() else math.nan,
                uncertainty=math.nan, uncertainty_kind="best test accuracy over the lr grid",
                criterion=f"every lr fails: test acc <= majority rate + {s['chance_margin']} "
                          f"= {chance:.3f}, or train loss >= {s['constant_loss_fraction']} x "
                          f"best-constant MSE = {const:.4g}, or diverged; after >= "
                          f"{s['min_epochs']} epochs",
                verdict=verdict, figure=_fig(study, plot),
                n_members=len(acc), notes=("trained: " + "; ".join(trained)) if trained else
                f"all {len(acc)} lr failed (statuses {sorted(set(status.tolist()))})"))
    return out


def _table41(cube, study) -> list[ClaimResult]:
    """Table 4.1's numbers: a run is compared with the paper's test accuracy (within
    ``tolerance``, by the statistics rule on the binomial SE) and training loss (within a
    factor ``loss_factor``) only when it is the paper's run: MNIST, the same depth, C_L and
    epochs. Any other run (the laptop's stand-in) is not resolved, its note listing the
    differences read from the run."""
    out = []
    source = str(cube.attrs.get("data_source", ""))
    n_test = _n_test(cube)
    for i, spec in enumerate(study.get("table41") or []):
        paper = paper_row(spec["paper_test_acc"])
        arch = str(spec.get("arch") or (study["grids"][spec["grid"]].get("arch", "mlp")
                                         if spec.get("grid") is not None else "mlp")).upper()
        tag = f"{arch.lower()}_{paper['task'].replace('-', '') if paper else i}"
        base = dict(paper=PAPER, where="Sec. 5.2, Table 4.1", quote=Q_TABLE41,
                    figure=_fig(study, "lee_cnn_train_curves" if arch == "CNN"
                                else "lee_train_curves"))
        runs = None
        if spec.get("grid") is not None and "run" in cube.dims:
            sel = (cube.grid == spec["grid"]) & (cube.init == "deep_narrow")
            runs = cube.where(sel, drop=True) if bool(sel.any()) else None
        ref = (f"the paper's run: {paper['data']}, depth {paper['depth']}, C_L "
               f"{paper['C_L']:g}, {paper['epochs']} epochs" if paper else
               "no Table 4.1 row has this test accuracy")
        if runs is None or paper is None:
            why = spec.get("note") or "its grid is not run by this config"
            for what, value in (("test_acc", spec["paper_test_acc"]),
                                ("train_loss", spec["paper_train_loss"])):
                out.append(ClaimResult(
                    claim_id=f"table41_{what}_{tag}", kind=f"table41_{what}", **base,
                    statement=f"Table 4.1 ({spec['task']}): {what.replace('_', ' ')} "
                              f"{value:g}",
                    measured=math.nan, uncertainty=math.nan, paper_value=float(value),
                    criterion="compared only on the paper's run", verdict=NOT_RESOLVED,
                    notes=f"not run here: {why}; {ref}"))
            continue
        depth, c_l = int(runs.depth.max()), float(runs.C_L.max())
        epochs = int(np.nanmax(runs.epochs.values))
        differs = [f"{name} {got} vs {want}" for name, got, want in (
            ("data", "MNIST" if source.startswith("MNIST") else source, paper["data"]),
            ("depth", depth, paper["depth"]), ("C_L", f"{c_l:g}", f"{paper['C_L']:g}"),
            ("epochs", epochs, paper["epochs"])) if str(got) != str(want)]
        acc, mean, se = _acc_and_se(runs, n_test)
        loss = float(np.nanmean(runs.final_loss.values))
        s = claim_settings(study, "table41_test_acc", f"table41_test_acc_{tag}",
                           {"tolerance": 0.01, "separation": SEPARATION_K})
        k = s["separation"]
        dist = abs(mean - float(spec["paper_test_acc"]))
        if differs:
            v_acc = NOT_RESOLVED
            n_acc = f"not the paper's run ({'; '.join(differs)})"
        else:
            v_acc = separated_threshold_verdict(dist, s["tolerance"], se, above=False, k=k)
            n_acc = separation_note(dist - s["tolerance"], se, k, "|acc - paper| - tolerance")
        out.append(ClaimResult(
            claim_id=f"table41_test_acc_{tag}", kind="table41_test_acc", **base,
            statement=f"Table 4.1 ({spec['task']}): the deep-narrow {arch} reaches the "
                      f"paper's test accuracy {float(spec['paper_test_acc']):g}",
            measured=mean, uncertainty=se, paper_value=float(spec["paper_test_acc"]),
            criterion=f"|test acc - paper| below {s['tolerance']:g} by more than {k:g} SE "
                      "(binomial SE over the test set); only on the paper's run",
            verdict=v_acc, n_members=len(acc), notes=f"{n_acc}; {ref}",
            uncertainty_kind="binomial SE over the test set"))
        s = claim_settings(study, "table41_train_loss", f"table41_train_loss_{tag}",
                           {"loss_factor": 2.0})
        target = float(spec["paper_train_loss"])
        ratio = loss / target if target > 0 else math.nan
        v_loss = NOT_RESOLVED if differs else tolerance_verdict(
            math.log(ratio) if ratio > 0 else math.nan, 0.0, math.log(s["loss_factor"]))
        out.append(ClaimResult(
            claim_id=f"table41_train_loss_{tag}", kind="table41_train_loss", **base,
            statement=f"Table 4.1 ({spec['task']}): the deep-narrow {arch}'s final training "
                      f"loss is the paper's {target:g}",
            measured=loss, uncertainty=math.nan, paper_value=target,
            criterion=f"final training loss within a factor {s['loss_factor']:g} of the "
                      "paper's; only on the paper's run",
            verdict=v_loss, n_members=len(acc),
            notes=(f"not the paper's run ({'; '.join(differs)}); " if differs else "") + ref,
            uncertainty_kind="none (one run per seed, loss ratio)"))
    return out


def _spread(cube, study) -> list[ClaimResult]:
    if "spread_depth" not in cube.dims:
        return []
    from depthlab.studies.lee.figures import spread_fit

    out = []
    depths, sd, slope, _ = spread_fit(cube, 0)
    s = claim_settings(study, "init_spread", "init_spread_slope", {"tolerance": 0.15})
    out.append(ClaimResult(
        claim_id="init_spread_slope", kind="init_spread", paper=PAPER,
        origin=PROJECT_CHECK, where="project check (consistency of the Thm. 3.1 sampler)",
        statement="project check, not a paper claim: the scaled NTK at init is an average of "
                  "D layer terms, so its std over seeds falls like 1/sqrt(D) (the central "
                  "limit theorem); a sampler that breaks it is wrong",
        measured=slope, uncertainty=math.nan, uncertainty_kind="log-log fit slope",
        paper_value=-0.5,
        criterion=f"|slope + 0.5| <= {s['tolerance']} over D = "
                  f"{', '.join(str(int(d)) for d in depths)}",
        verdict=tolerance_verdict(slope, -0.5, s["tolerance"]), figure=_fig(study, "lee_spread"),
        n_members=int(cube.sizes["spread_seed"]) * len(depths),
        notes="std: " + ", ".join(f"D={int(d)}: {v:.4g}" for d, v in zip(depths, sd,
                                                                         strict=True))))
    # Thm. 3.1: Theta~_0 -> Theta~inf in probability. Per seed, the rms relative distance
    # to the limit over the pairs; shallowest minus deepest depth by the statistics rule.
    err = np.sqrt((((cube.theta0 - cube.theta_inf) / cube.theta_inf) ** 2).mean("pair"))
    depths = cube.spread_depth.values
    cid = "init_converges_to_limit"
    s = claim_settings(study, "init_converges", cid, {"separation": SEPARATION_K})
    k = s["separation"]
    lo_m, lo_se, n_lo = mean_se(err.isel(spread_depth=0).values)
    hi_m, hi_se, n_hi = mean_se(err.isel(spread_depth=-1).values)
    diff, se = lo_m - hi_m, combined_se(lo_se, hi_se)
    out.append(ClaimResult(
        claim_id=cid, kind="init_converges", paper=PAPER, where="Thm. 3.1, Fig. 4.1(b)",
        quote=Q_INIT,
        statement="the scaled NTK at init converges to the deterministic Theta~inf as the "
                  "depth grows (its distance to the limit falls)",
        measured=diff, uncertainty=se,
        criterion=f"mean over seeds of rms_pairs |Theta~_0 / Theta~inf - 1| at D = "
                  f"{int(depths[0])} minus at D = {int(depths[-1])}, positive beyond {k:g} SE",
        verdict=separated_verdict(diff, se, 1, k), figure=_fig(study, "lee_spread"),
        n_members=n_lo + n_hi, uncertainty_kind="SE of the difference of seed means",
        notes=separation_note(diff, se, k, "fall") + "; mean distance " + ", ".join(
            f"D={int(d)}: {float(v):.4g}" for d, v in zip(depths, err.mean("spread_seed").values,
                                                          strict=True))))
    return out


def _decreasing(values: np.ndarray, depths, what: str, study, kind: str, cid: str,
                plot: str, statement: str, where: str, quote: str) -> ClaimResult:
    """values (depth, seed): the shallowest depth's seed mean minus the deepest's, decided by
    the statistics rule (holds: falls beyond k SE; fails: rises beyond k SE)."""
    s = claim_settings(study, kind, cid, {"separation": SEPARATION_K})
    k = s["separation"]
    lo_m, lo_se, n_lo = mean_se(values[0])
    hi_m, hi_se, n_hi = mean_se(values[-1])
    diff, se = lo_m - hi_m, combined_se(lo_se, hi_se)
    verdict = separated_verdict(diff, se, 1, k) if len(depths) >= 2 else NOT_RESOLVED
    med = np.nanmean(values, axis=1)
    return ClaimResult(
        claim_id=cid, kind=kind, paper=PAPER, where=where, statement=statement, quote=quote,
        measured=diff, uncertainty=se, uncertainty_kind="SE of the difference of seed means",
        criterion=f"{what}: mean at D = {int(depths[0])} minus at D = {int(depths[-1])}, "
                  f"positive beyond {k:g} SE (negative beyond it fails)",
        verdict=verdict, figure=_fig(study, plot), n_members=n_lo + n_hi,
        notes=separation_note(diff, se, k, "fall") + "; mean " + ", ".join(
            f"D={int(d)}: {m:.3g}" for d, m in zip(depths, med, strict=True)))


def _toy(cube, study) -> list[ClaimResult]:
    if "toy_depth" not in cube.dims:
        return []
    depths = cube.toy_depth.values
    change = cube.ntk_rel_change.values
    diff = cube.toy_pred - cube.kgd_pred
    rms = np.sqrt((diff**2).mean("gamma")).values
    return [
        _decreasing(change, depths, "max|Theta~_T - Theta~_0| / max|Theta~_0|", study,
                    "kernel_change", "kernel_change_falls_with_depth", "lee_toy_ntk",
                    "the scaled NTK changes less during training as depth grows (toy, "
                    "C_L = D^2/2000)", "Thm. 3.2, Fig. 4.1(b)", Q_CHANGE),
        _decreasing(rms, depths, "rms over the points of f_net(T) - f_kernelGD(T) with "
                    "Theta~inf", study, "kernel_regression_limit",
                    "net_approaches_limit_kernel_dynamics", "lee_toy_fit",
                    "the trained net's predictions approach those of the Theta~inf kernel "
                    "dynamics as depth grows (toy, same kernel time)", "Thm. 3.3, Fig. 4.1(a)",
                    Q_KRR),
    ]


def _krr(cube, study) -> list[ClaimResult]:
    mlp = _of_arch(cube, "mlp")  # Theta~inf is the MLP's limit kernel
    if mlp is None:
        return []
    dn = mlp.where(mlp.init == "deep_narrow", drop=True)
    if dn.sizes.get("run", 0) == 0:
        return []
    depth = int(dn.depth.max())
    r = dn.where(dn.depth == depth, drop=True)
    best = int(np.nanargmax(r.test_acc_final.values))
    agree = float(np.mean(r.test_pred.values[best] == cube.krr_test_pred.values))
    cid = f"krr_agreement_D{depth}"
    s = claim_settings(study, "krr_agreement", cid, {"threshold": 0.95})
    return [ClaimResult(
        claim_id=cid, kind="krr_agreement", paper=PAPER, origin=PROJECT_CHECK,
        where="project check (Thm. 3.3 is about t -> infinity, not a finite budget)",
        statement=f"project check, not a paper claim: the trained depth-{depth} deep-narrow "
                  "net predicts the classes of the Theta~inf kernel regression",
        measured=agree, uncertainty=math.nan, uncertainty_kind="fraction of test points",
        criterion=f"agreement of predicted classes >= {s['threshold']}",
        verdict=threshold_verdict(agree, s["threshold"], above=True),
        figure=_fig(study, "lee_train_curves"), n_members=1,
        notes=f"net test acc {float(r.test_acc_final[best]):.4f} after "
              f"{int(r.epochs[best])} epochs (lr {r.lr_label.values[best]}); kernel regression "
              f"test acc {float(cube.krr_test_acc):.4f}; a finite training time is not the "
              "t -> infinity limit")]


def claims(cube: xr.Dataset, study: dict[str, Any]) -> list[ClaimResult]:
    cnn_trains = _trains(cube, study, "cnn")
    cnn_base = _baselines(cube, study, "cnn")
    if cnn_trains and not any(c.verdict == HOLDS for c in cnn_trains):
        # the paper's contrast needs the deep-narrow CNN to train in the same budget
        cnn_base = [dataclasses.replace(c, notes=c.notes + "; the deep-narrow CNN does not "
                                        "train in this budget either, so the contrast of "
                                        "Fig. 4.2(b) is not shown here") for c in cnn_base]
    return [*_trains(cube, study), *_baselines(cube, study), *cnn_trains, *cnn_base,
            *_table41(cube, study), *_spread(cube, study), *_toy(cube, study),
            *_krr(cube, study)]


# every kind this module can emit (the counter-example tests cover each)
KINDS = ("trains", "baseline_fails", "table41_test_acc", "table41_train_loss",
         "init_converges", "init_spread", "kernel_change", "kernel_regression_limit",
         "krr_agreement")
