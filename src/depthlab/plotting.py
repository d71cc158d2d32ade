"""Figures drawn from a study cube, and only from it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from depthlab.cube import seed_stats  # noqa: E402
from depthlab.provenance import atomic_output  # noqa: E402

_LABEL_NAMES = {"k_local": "{k}-local", "k_global": "{k}-global", "random": "random labels"}
_NTK_STYLES = ("--", ":", "-.")


def dataset_title(cube: xr.Dataset, name: str) -> str:
    sel = cube.sel(dataset=name)
    template = _LABEL_NAMES.get(str(sel["generator"].values), name)
    return f"{template.format(k=int(sel['k'].values))} label, d = {int(sel['d'].values)}"


def pick_lr(cube: xr.Dataset, figure: Mapping[str, Any], dataset: str) -> float:
    """The learning rate a panel shows: the figure's `lr`, or the only one trained on
    this dataset (grids may give each label its own learning rate)."""
    if "lr" in figure:
        return float(figure["lr"])
    trained = cube["test_error"].sel(dataset=dataset).notnull()
    lrs = cube["lr"].values[trained.any([d for d in trained.dims if d != "lr"]).values]
    if len(lrs) != 1:
        raise ValueError(
            f"dataset {dataset!r} was trained at learning rates {lrs.tolist()}; "
            "set `lr` in the figure block to choose one"
        )
    return float(lrs[0])


def plot_test_error_vs_n(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Mori-Ueda Fig. 1/2 style: test error vs N per (L, H), mean +- std over seeds,
    with the analytic-NTK test error of every kernel depth in the cube as dashed lines."""
    datasets = list(figure["datasets"])
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.9), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    not_converged = 0
    lrs = {}
    for ax, name in zip(axes[0], datasets, strict=True):
        lrs[name] = pick_lr(cube, figure, name)
        sub = cube.sel(dataset=name, lr=lrs[name])
        stats = seed_stats(sub)
        archs = [
            (int(L), int(H))
            for L in sub["depth"].values
            for H in sub["width"].values
            if int(stats["count"].sel(depth=L, width=H).sum()) > 0
        ]
        for i, (L, H) in enumerate(archs):
            cell = stats.sel(depth=L, width=H)
            have = cell["count"].values > 0
            n = sub["n_train"].values[have]
            label = "linear perceptron" if L == 0 else f"L = {L}, H = {H}"
            color = colors[i % len(colors)]
            ax.errorbar(
                n, cell["mean"].values[have], yerr=cell["std"].values[have], marker="o",
                ms=4, capsize=3, color=color, label=label,
            )
            # Hollow markers flag N where some seed never reached zero training error.
            failed = np.isin(sub["status"].sel(depth=L, width=H).values,
                             ["max_epochs", "diverged"]).any(axis=-1)[have]
            not_converged += int(failed.sum())
            ax.plot(n[failed], cell["mean"].values[have][failed], "o", ms=8, mfc="white",
                    color=color, zorder=3)
        if "ntk_test_error" in cube:
            for j, kd in enumerate(cube["kernel_depth"].values):
                ntk = cube["ntk_test_error"].sel(dataset=name, kernel_depth=kd)
                ok = ntk.notnull().values
                ax.plot(
                    cube["n_train"].values[ok], ntk.values[ok], _NTK_STYLES[j % 3],
                    color="0.25" if j == 0 else "0.55", lw=1.6, label=f"NTK, L = {int(kd)}",
                )
        ax.set_xscale("log")
        trained_n = sub["n_train"].values[stats["count"].sum(["depth", "width"]).values > 0]
        ax.set_xticks(trained_n, [str(v) for v in trained_n])
        ax.minorticks_off()
        ax.set_xlabel("training samples N")
        ax.set_ylabel("test error")
        ax.set_title(f"{dataset_title(cube, name)}, lr = {lrs[name]:g}", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7, loc="best")
    n_seeds = int(cube.sizes["seed"])
    note = (
        f"SGD lr = {', '.join(f'{v:g}' for v in dict.fromkeys(lrs.values()))}, "
        f"error bars: std over {n_seeds} seeds; "
        f"data: {cube.attrs.get('data_sources', 'synthetic')}"
    )
    if not_converged:
        note += (
            f"; hollow: {not_converged} point(s) where some seed did not reach zero training "
            "error (kept in the mean)"
        )
    fig.text(0.01, 0.01, note, fontsize=7, color="0.35")
    if "title" in figure:
        fig.suptitle(figure["title"], fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def save_figure(fig: plt.Figure, *paths: str | Path) -> None:
    for path in paths:
        fmt = Path(path).suffix.lstrip(".")
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
    plt.close(fig)


PLOTS = {
    "test_error_vs_n": plot_test_error_vs_n,
}
