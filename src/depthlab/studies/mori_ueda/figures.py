"""Mori & Ueda figures, drawn from the study cube and only from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from depthlab.plotting import finish, panels  # noqa: E402
from depthlab.studies.mori_ueda.cube import figure_n, pick_lr, seed_stats  # noqa: E402
from depthlab.studies.mori_ueda.grid import fmt_lr  # noqa: E402
from depthlab.training.status import DIVERGED, MAX_EPOCHS, NOT_RUN  # noqa: E402

_LABEL_NAMES = {
    "k_local": "{k}-local",
    "k_global": "{k}-global",
    "random": "random",
    "ising": "Ising (two temperatures)",
}
_NTK_STYLES = ("--", ":", "-.")


def _ntk_style(j: int) -> dict[str, Any]:
    """Line style of the j-th kernel depth's NTK curve, the same in every plot."""
    return {"ls": _NTK_STYLES[j % 3], "color": "0.25" if j == 0 else "0.55"}


def dataset_title(cube: xr.Dataset, name: str) -> str:
    sel = cube.sel(dataset=name)
    template = _LABEL_NAMES.get(str(sel["generator"].values), name)
    return f"{template.format(k=int(sel['k'].values))} label, d = {int(sel['d'].values)}"


def _lr_text(lr: float) -> str:
    return "chosen by CV" if fmt_lr(lr) == "cv" else f"{lr:g}"


def _sources(cube: xr.Dataset, datasets) -> str:
    """Where the shown datasets' inputs come from (synthetic, or a named package)."""
    return ", ".join(dict.fromkeys(str(cube["data_source"].sel(dataset=d).values)
                                   for d in datasets))


def _some_seed_failed(status: np.ndarray) -> np.ndarray:
    """Per cell (last axis = seed): did any seed that ran miss zero training error?
    Seeds outside the cell's grid are "not_run" and count as neither."""
    return np.isin(status, [MAX_EPOCHS, DIVERGED]).any(axis=-1)


def plot_test_error_vs_n(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Mori-Ueda Fig. 1/2 style: test error vs N per (L, H), mean +- std over seeds,
    with the analytic-NTK test error of every kernel depth in the cube as dashed lines."""
    datasets = list(figure["datasets"])
    fig, axes = panels(len(datasets))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color_of: dict[tuple[int, int], str] = {}  # one colour per (L, H) across all panels
    not_converged = 0
    lrs = {}
    for ax, name in zip(axes, datasets, strict=True):
        lrs[name] = pick_lr(cube, figure, name)
        sub = cube.sel(dataset=name, lr=lrs[name])
        stats = seed_stats(sub)
        archs = [
            (int(L), int(H))
            for L in figure.get("depths", sub["depth"].values.tolist())
            for H in figure.get("widths", sub["width"].values.tolist())
            if int(stats["count"].sel(depth=L, width=H).sum()) > 0
        ]
        for L, H in archs:
            cell = stats.sel(depth=L, width=H)
            have = cell["count"].values > 0
            n = sub["n_train"].values[have]
            label = "linear perceptron" if L == 0 else f"L = {L}, H = {H}"
            color = color_of.setdefault((L, H), colors[len(color_of) % len(colors)])
            ax.errorbar(
                n, cell["mean"].values[have], yerr=cell["std"].values[have], marker="o",
                ms=4, capsize=3, color=color, label=label,
            )
            # Hollow markers flag N where some seed never reached zero training error.
            failed = _some_seed_failed(sub["status"].sel(depth=L, width=H).values)[have]
            not_converged += int(failed.sum())
            ax.plot(n[failed], cell["mean"].values[have][failed], "o", ms=8, mfc="white",
                    color=color, zorder=3)
        if "ntk_test_error" in cube:
            for j, kd in enumerate(cube["kernel_depth"].values):
                ntk = cube["ntk_test_error"].sel(dataset=name, kernel_depth=kd)
                ok = ntk.notnull().values
                # A line through one point is invisible: mark a lone N with a level tick.
                lone = {"marker": "_", "ms": 28, "mew": 1.6} if ok.sum() == 1 else {}
                ax.plot(
                    cube["n_train"].values[ok], ntk.values[ok], **_ntk_style(j), lw=1.6,
                    label=f"NTK, L = {int(kd)}", **lone,
                )
        ax.set_xscale("log")
        trained_n = sub["n_train"].values[stats["count"].sum(["depth", "width"]).values > 0]
        ax.set_xticks(trained_n, [str(v) for v in trained_n])
        ax.minorticks_off()
        ax.set_xlabel("training samples N")
        ax.set_ylabel("test error")
        ax.set_title(f"{dataset_title(cube, name)}, lr = {_lr_text(lrs[name])}", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3, which="both")
    note = (
        f"SGD lr = {', '.join(_lr_text(v) for v in dict.fromkeys(lrs.values()))}, "
        f"error bars: {_spread(cube, figure['datasets'])}; "
        f"data: {_sources(cube, figure['datasets'])}"
    )
    if not_converged:
        note += (
            f"; hollow: {not_converged} point(s) where some seed did not reach zero training "
            "error (kept in the mean)"
        )
    return finish(fig, axes, figure, note)  # a legend per panel: panels show different (L, H)


def _spread(cube: xr.Dataset, datasets) -> str:
    """What the error bars are: the std over seeds, and whether each seed had its own draw
    of the data (then the bars hold the draws' spread too)."""
    text = f"std over {int(cube.sizes['seed'])} seeds"
    if "drawn_per_seed" not in cube.coords:
        return text
    drawn = [bool(cube["drawn_per_seed"].sel(dataset=ds)) for ds in datasets]
    if all(drawn):
        return f"{text}, each on its own draw of the data"
    if any(drawn):
        names = ", ".join(ds for ds, d in zip(datasets, drawn, strict=True) if d)
        return f"{text} (on {names}: each seed its own draw of the data)"
    return text


def _ntk_level(ax, cube: xr.Dataset, dataset: str, n_train: int) -> None:
    """Horizontal NTK lines at one N, for plots whose x axis is not N."""
    if "ntk_test_error" not in cube:
        return
    for j, kd in enumerate(cube["kernel_depth"].values):
        value = cube["ntk_test_error"].sel(dataset=dataset, n_train=n_train, kernel_depth=kd)
        if np.isfinite(value):
            ax.axhline(float(value), **_ntk_style(j), lw=1.4, label=f"NTK, L = {int(kd)}")


def plot_test_error_vs_depth(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Mori-Ueda Fig. 3: test error against depth L at fixed N and width."""
    fig, axes = panels(len(figure["datasets"]))
    for ax, name in zip(axes, figure["datasets"], strict=True):
        lr = pick_lr(cube, figure, name)
        n_train = figure_n(figure, name)
        sub = cube.sel(dataset=name, lr=lr, n_train=n_train, width=int(figure["width"]))
        stats = seed_stats(sub)
        have = stats["count"].values > 0
        ax.errorbar(sub["depth"].values[have], stats["mean"].values[have],
                    yerr=stats["std"].values[have], marker="o", ms=4, capsize=3,
                    label=f"H = {int(figure['width'])}")
        ax.set_xlabel("depth L")
        ax.set_ylabel("test error")
        ax.set_xticks(sub["depth"].values[have])
        ax.set_title(f"{dataset_title(cube, name)}, N = {n_train}, lr = {_lr_text(lr)}",
                     fontsize=10)
        ax.grid(alpha=0.3)
        _ntk_level(ax, cube, name, n_train)
    return finish(fig, axes, figure, f"error bars: {_spread(cube, figure['datasets'])}; "
                   f"data: {_sources(cube, figure['datasets'])}")


def plot_test_error_vs_lr(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Mori-Ueda Fig. 4: test error against a fixed SGD learning rate, per (dataset, L, H),
    with the NTK test error dotted. Points whose runs did not all reach zero training error
    are hollow; learning rates where every seed diverged are marked with an x at the top."""
    fig, axes = panels(1)
    ax = axes[0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lrs = cube["lr"].values[cube["lr"].values > 0]
    i = 0
    for name in figure["datasets"]:
        n_train = figure_n(figure, name)
        for depth in figure.get("depths", cube["depth"].values.tolist()):
            for width in figure.get("widths", cube["width"].values.tolist()):
                sub = cube.sel(dataset=name, n_train=n_train, depth=depth, width=width, lr=lrs)
                stats = seed_stats(sub)
                if int(stats["count"].sum()) == 0:
                    continue
                color = colors[i % len(colors)]
                i += 1
                status = sub["status"].values
                ran = status != NOT_RUN
                ok = ~_some_seed_failed(status)
                diverged = ((status == DIVERGED) | ~ran).all(axis=-1) & ran.any(axis=-1)
                trained = (stats["count"].values > 0) & ~diverged
                label = f"{dataset_title(cube, name).split(',')[0]}, L = {depth}, H = {width}"
                ax.errorbar(lrs[trained], stats["mean"].values[trained],
                            yerr=stats["std"].values[trained], marker="o", ms=4, capsize=3,
                            color=color, label=label)
                bad = trained & ~ok
                ax.plot(lrs[bad], stats["mean"].values[bad], "o", ms=8, mfc="white",
                        color=color, zorder=3)
                ax.plot(lrs[diverged], np.full(diverged.sum(), 0.5), "x", ms=8, color=color)
                if "ntk_test_error" in cube and depth in cube["kernel_depth"].values:
                    ntk = cube["ntk_test_error"].sel(dataset=name, n_train=n_train,
                                                     kernel_depth=depth)
                    if np.isfinite(ntk):
                        ax.axhline(float(ntk), ls=":", color=color, lw=1.4)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("test error")
    shown = sorted({figure_n(figure, name) for name in figure["datasets"]})
    ax.set_title(f"N = {', '.join(map(str, shown))}; dotted: NTK of the same depth", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    return finish(fig, axes, figure,
                   "hollow: some seed never reached zero training error; "
                   "x: all seeds diverged")


def plot_local_stability(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Mori-Ueda Fig. 5: local stability s(v) of trained nets and of label rules."""
    fig, axes = panels(1)
    ax = axes[0]
    for name in figure["datasets"]:
        n_train = figure_n(figure, name)
        lr = pick_lr(cube, figure, name)
        sub = cube["local_stability"].sel(dataset=name, n_train=n_train, lr=lr)
        for depth in figure.get("depths", sub["depth"].values.tolist()):
            for width in figure.get("widths", sub["width"].values.tolist()):
                cell = sub.sel(depth=depth, width=width)
                if not cell.notnull().any():
                    continue
                mean = cell.mean("seed", skipna=True)
                std = cell.std("seed", skipna=True, ddof=0)
                ax.errorbar(cell["v"].values, mean.values, yerr=std.values, marker="o", ms=3,
                            capsize=2,
                            label=f"net L = {depth}, H = {width} ({dataset_title(cube, name)})")
    if "label_stability" in cube:
        for j, label in enumerate(cube["label_dataset"].values):
            curve = cube["label_stability"].sel(label_dataset=label)
            kind = _LABEL_NAMES.get(str(curve["label_generator"].values), str(label))
            text = f"{kind.format(k=int(curve['label_k']))} label rule, d = {int(curve['label_d'])}"
            ax.plot(curve["v"].values, curve.values, _NTK_STYLES[j % 3], color="0.3", label=text)
    ax.set_xlabel("perturbation strength v")
    ax.set_ylabel("local stability s(v)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    shown = sorted({figure_n(figure, name) for name in figure["datasets"]})
    return finish(fig, axes, figure, f"nets trained on N = {', '.join(map(str, shown))} "
                   f"(labels as given); error bars: {_spread(cube, figure['datasets'])}")


PLOTS = {
    "test_error_vs_n": plot_test_error_vs_n,
    "test_error_vs_depth": plot_test_error_vs_depth,
    "test_error_vs_lr": plot_test_error_vs_lr,
    "local_stability": plot_local_stability,
}
