"""Lee et al.'s figures, drawn from the study cube only (every one says its data source)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import xarray as xr

from depthlab.plotting import finish, panels

__all__ = ["PLOTS"]

_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:red"]


def _note(cube: xr.Dataset, extra: str = "") -> str:
    return (f"Data: {cube.attrs.get('data_source', '?')}; N_train = "
            f"{cube.attrs.get('n_train', '?')}. {extra}")


def _toy_note(cube: xr.Dataset) -> str:
    parts = [f"D = {int(d)}: C_L = {float(c):g}, eta = {float(lr):.3g}, "
             f"{int(s)} steps (tau = {float(t):g})"
             for d, c, lr, s, t in zip(cube.toy_depth.values, cube.toy_C_L.values,
                                       cube.toy_lr.values, cube.toy_steps.values,
                                       cube.toy_tau.values, strict=True)]
    return ("Toy: x = (cos g, sin g), f* = x1 x2, 200 points = train set, full-batch GD, "
            "float64, " + f"{cube.sizes['toy_seed']} seeds; " + "; ".join(parts) + ".")


def plot_toy_fit(cube: xr.Dataset, figure: dict[str, Any]):
    fig, (ax,) = panels(1)
    g = cube.gamma.values
    for i, d in enumerate(cube.toy_depth.values):
        for s in range(cube.sizes["toy_seed"]):
            ax.plot(g, cube.toy_pred.isel(toy_depth=i, toy_seed=s), color=_COLORS[i], lw=0.8,
                    alpha=0.7, label=f"net, D = {int(d)}" if s == 0 else None)
        ax.plot(g, cube.kgd_pred.isel(toy_depth=i), color=_COLORS[i], ls=":", lw=1.2,
                label=f"kernel GD with Theta~inf, same time (D = {int(d)})")
    ax.plot(g, cube.toy_target, color="k", lw=1.5, label="f*(x) = x1 x2")
    ax.set_xlabel("gamma")
    ax.set_ylabel("f(x(gamma)) after training")
    return finish(fig, [ax], figure, _toy_note(cube))


def plot_toy_ntk(cube: xr.Dataset, figure: dict[str, Any]):
    fig, (ax,) = panels(1)
    g = cube.gamma.values
    for i, d in enumerate(cube.toy_depth.values):
        for s in range(cube.sizes["toy_seed"]):
            first = s == 0
            ax.plot(g, cube.ntk_row_0.isel(toy_depth=i, toy_seed=s), color=_COLORS[i], lw=0.8,
                    label=f"t = 0, D = {int(d)}" if first else None)
            ax.plot(g, cube.ntk_row_T.isel(toy_depth=i, toy_seed=s), color=_COLORS[i], lw=0.8,
                    ls="--", label=f"t = T, D = {int(d)}" if first else None)
    ax.plot(g, cube.ntk_limit_row, color="k", lw=1.5, label="Theta~inf (closed form)")
    ax.set_xlabel("gamma")
    ax.set_ylabel("scaled NTK Theta~(x0, x(gamma))")  # x0 is stated in the note
    change = ", ".join(f"D = {int(d)}: {float(v):.2%}" for d, v in
                       zip(cube.toy_depth.values, cube.ntk_rel_change.median("toy_seed").values,
                           strict=True))
    return finish(fig, [ax], figure, _toy_note(cube) + " x0 = (1, 1)/sqrt 2. Median relative "
                  f"kernel change max|Theta_T - Theta_0| / max|Theta_0|: {change}.")


def _arch_note(runs: xr.Dataset, arch: str, depth: int, figure: dict[str, Any]) -> str:
    width = int(runs.width.max())
    if arch == "mlp":
        return f"MLP, D = {depth} hidden layers, width {width}"
    pool = int(runs.pool.max())
    paper = figure.get("paper_depth")
    extra = (f" (laptop depth; the paper's Fig. 4.2(b): D = {int(paper)})"
             if paper and int(paper) != depth else "")
    return (f"CNN: {pool}x{pool} average pool, D = {depth} hidden 3x3 convs{extra}, {width} "
            "channels, global average pool")


def plot_train_curves(cube: xr.Dataset, figure: dict[str, Any]):
    arch = figure.get("arch", "mlp")
    of_arch = cube.where(cube.arch == arch, drop=True)
    depth = figure.get("depth", int(of_arch.depth.max()))
    runs = of_arch.where(of_arch.depth == depth, drop=True)
    fig, (ax_l, ax_a) = panels(2)
    epoch = cube.epoch.values
    styles = {"deep_narrow": "-", "torch_default": "--", "he_uniform": ":"}
    labels = sorted(set(zip(runs.init.values.tolist(), runs.lr_label.values.tolist(),
                            strict=True)))
    for j, (init, lr) in enumerate(labels):
        sel = (runs.init == init) & (runs.lr_label == lr)
        r = runs.where(sel, drop=True)
        color = "k" if init == "deep_narrow" else plt_color(j)
        for s in range(r.sizes["run"]):
            one = r.isel(run=s)
            lab = f"{init}, lr {lr}" if s == 0 else None
            ax_l.plot(epoch, one.train_loss, ls=styles[init], color=color, lw=1, label=lab)
            acc = one.test_acc
            ok = np.isfinite(acc.values)
            ax_a.plot(epoch[ok], acc.values[ok], ls=styles[init], color=color, lw=1,
                      marker=".", ms=3, label=lab)
    ax_l.set_yscale("log")
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("train loss (MSE, one-hot)")
    ax_l.axhline(float(cube.best_constant_mse), color="0.6", lw=0.8,
                 label="best constant predictor")
    ax_a.axhline(float(cube.majority_rate), color="0.6", lw=0.8, label="majority class")
    if arch == "mlp":
        ax_a.axhline(float(cube.krr_test_acc), color="tab:red", lw=0.8,
                     label="Theta~inf kernel regression")
    ax_a.set_xlabel("epoch")
    ax_a.set_ylabel("test accuracy")
    ax_a.set_ylim(0, 1)
    status = ", ".join(f"{i} lr {lr}: {st}" for i, lr, st in
                       zip(runs.init.values, runs.lr_label.values, runs.status.values,
                           strict=True))
    dn = runs.where(runs.init == "deep_narrow", drop=True)
    taus = ""
    if dn.sizes.get("run", 0):
        taus = (f" Deep-narrow kernel time per step tau = "
                f"{', '.join(f'{float(t):.3g}' for t in dn.tau.values)}")
        try:
            batch = json.loads(cube.attrs["study_json"])["training"]["batch_size"]
            steps = math.ceil(int(cube.attrs["n_train"]) / int(batch)) * int(dn.epochs.max())
            taus += f", total kernel time tau x {steps} steps = {float(dn.tau.max()) * steps:.3g}"
        except (KeyError, TypeError, ValueError):
            pass
        taus += "."
    return finish(fig, [ax_l, ax_a], figure,
                  _note(cube, f"{_arch_note(runs, arch, depth, figure)}; "
                        f"lr 'sfF' = F x the linear-stability bound. Status: {status}.{taus}"))


def plot_cnn_train_curves(cube: xr.Dataset, figure: dict[str, Any]):
    """Fig. 4.2(b): the deep-narrow CNN vs the baselines at every lr of the grid."""
    return plot_train_curves(cube, {**figure, "arch": "cnn"})


def plt_color(j: int) -> str:
    import matplotlib.pyplot as plt

    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return cycle[j % len(cycle)]


def plot_accumulation(cube: xr.Dataset, figure: dict[str, Any]):
    depth = figure.get("depth", int(cube.toy_depth.max()))
    sel = cube.sel(toy_depth=depth)
    fig, (ax,) = panels(1)
    layers = cube.layer.values[:depth]
    for i, g in enumerate(cube.acc_gamma.values):
        ax.plot(layers, sel.acc_carrier.isel(acc_gamma=i).values[:depth], color=_COLORS[i],
                lw=1, label=f"gamma = {g:.3g}")
        ax.axhline(float(cube.acc_target[i]), color=_COLORS[i], ls=":", lw=0.8)
        ax.plot([depth + 1], [float(sel.acc_output[i])], marker="o", color=_COLORS[i])
    ax.set_xlabel("layer l")
    ax.set_ylabel("relu(f^l(x))_out - C_L  (dots: output f, dotted: f*)")
    return finish(fig, [ax], figure, _toy_note(cube) + f" Seed {int(cube.toy_seed[0])}, "
                  f"D = {depth}.")


def spread_fit(cube: xr.Dataset, pair: int = 0) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Depths, std over seeds of Theta~_0, and the log-log fit (slope, intercept)."""
    depths = cube.spread_depth.values.astype(float)
    sd = cube.theta0.isel(pair=pair).std("spread_seed", ddof=1).values
    slope, icpt = np.polyfit(np.log(depths), np.log(sd), 1)
    return depths, sd, float(slope), float(icpt)


def plot_spread(cube: xr.Dataset, figure: dict[str, Any]):
    fig, (ax,) = panels(1)
    for p in range(cube.sizes["pair"]):
        depths, sd, slope, _ = spread_fit(cube, p)
        ax.loglog(depths, sd, marker="o", color=_COLORS[p],
                  label=f"std over seeds, ({cube.pair.values[p]}); fit slope {slope:.3f}")
    depths, sd, _, _ = spread_fit(cube, 0)
    c = np.exp(np.mean(np.log(sd) + 0.5 * np.log(depths)))
    ax.loglog(depths, c / np.sqrt(depths), color="k", ls="--", label="c / sqrt(D)")
    ax.set_xlabel("depth D (hidden layers)")
    ax.set_ylabel("std of Theta~_0(x, x') at init")
    return finish(fig, [ax], figure, _note(
        cube, f"Toy inputs (x0 = (1,1)/sqrt 2, x(gamma_1)); {cube.sizes['spread_seed']} seeds "
        f"per depth, C_L = {float(cube.spread_C_L):g}; Theta~_0 from the exact finite-depth "
        "formula of the sampled weights (equal to the empirical NTK, tests)."))


PLOTS = {
    "lee_toy_fit": plot_toy_fit,
    "lee_toy_ntk": plot_toy_ntk,
    "lee_train_curves": plot_train_curves,
    "lee_cnn_train_curves": plot_cnn_train_curves,
    "lee_accumulation": plot_accumulation,
    "lee_spread": plot_spread,
}
