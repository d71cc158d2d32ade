"""Xiao et al.'s figures, drawn from the study cube only (footers state every open choice)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from depthlab.plotting import finish, panels
from depthlab.studies.xiao.paper_claims import CLIFF_WINDOW
from depthlab.studies.xiao.table1 import KAPPA_CAP

ARCH_STYLE = {"fc": "-", "cnn_f": "--", "cnn_p": ":"}


def _note(cube: xr.Dataset, extra: str = "", *, data: str | None = None,
          conv: bool = True) -> str:
    """The footer: ``data`` names the inputs where they are not the study's data set (Fig. 1
    uses Gaussian images); ``conv`` only for figures that show CNNs."""
    ch = json.loads(cube.attrs.get("choices", "{}"))
    conv_text = f" {ch.get('conv', '')}." if conv else ""
    return (f"{extra} Data: {data or cube.attrs.get('data_source', '')}. erf, sigma_b^2 = "
            f"{ch.get('b_var')}, critical sigma_w^2 = {ch.get('critical_w_var', 0):.4f}."
            f"{conv_text} {ch.get('kappa', '')}. {ch.get('eta_theory', '')}.")


# Fig. 1 draws Gaussian images (the cube's phase block), not the study's data set
FIG1_DATA = ("Gaussian images (synthetic): m images of 3 x k x k, each pixel's channel "
             "vector at mean square 1")


def _unsaturated(kappa: np.ndarray) -> np.ndarray:
    """kappa with the depths where float64 saturates masked (NaN): beyond KAPPA_CAP the
    smallest eigenvalues are rounding, so chi_1^l kappa plunges (to 1e-80 past l ~ 150 in
    the ordered phase) for no reason of the theory."""
    k = np.asarray(kappa, dtype=float).copy()
    k[~(k < KAPPA_CAP)] = np.nan
    return k


def _phase_w(cube, phase):
    return [w for w in cube.w_phase.values
            if str(cube.w_phase_phase.sel(w_phase=w).values) == phase]


def plot_kappa(cube: xr.Dataset, figure: Mapping[str, Any]):
    """Fig. 1 (a)-(d): kappa vs depth per phase (solid kappa, dashed lambda_max/lambda_min)."""
    fig, axes = panels(4)
    depth = cube.depth_phase.values
    for ax, phase in zip(axes[:3], ("chaotic", "ordered", "critical"), strict=True):
        for w in _phase_w(cube, phase):
            chi = float(cube.w_phase_chi_1.sel(w_phase=w))
            for size in cube["size"].values:
                for arch in cube.arch.values:
                    if phase == "critical" and arch == "cnn_p":
                        continue
                    k = _unsaturated(
                        cube.phase_kappa.sel(size=size, arch=arch, w_phase=w).values)
                    y = k * chi**depth if phase == "ordered" else k
                    ax.loglog(depth, y, ARCH_STYLE[arch], label=f"{arch} {size}")
                    if phase == "critical":
                        m = int(cube.size_m.sel(size=size))
                        ax.axhline((m + 2) / 2, color="0.5", lw=0.6)
        ax.set_title({"chaotic": "(a) chaotic: kappa -> 1",
                      "ordered": "(b) ordered: chi_1^l kappa ~ 1/l",
                      "critical": "(c) critical FC/CNN-F: (m+2)/2"}[phase], fontsize=9)
        ax.set_xlabel("depth l")
    ax = axes[3]
    for w in _phase_w(cube, "critical"):
        for size in cube["size"].values:
            k = cube.phase_kappa.sel(size=size, arch="cnn_p", w_phase=w).values
            km = cube.phase_kappa_min.sel(size=size, arch="cnn_p", w_phase=w).values
            ax.loglog(depth, k, "-", label=f"cnn_p {size}")
            ax.loglog(depth, km, "--", lw=0.7)
            m, kk = int(cube.size_m.sel(size=size)), int(cube.size_k.sel(size=size))
            ax.axhline((m * kk * kk + 2) / 2, color="0.5", lw=0.6)
    ax.set_title("(d) critical CNN-P: (md+2)/2", fontsize=9)
    ax.set_xlabel("depth l")
    axes[0].set_ylabel("kappa")
    return finish(fig, axes, figure, _note(
        cube, f"Grey lines: predicted limits. Depths where kappa >= {KAPPA_CAP:g} (float64 "
        "rounding sets the smallest eigenvalues) are not drawn.", data=FIG1_DATA), grid=True)


def plot_rates(cube: xr.Dataset, figure: Mapping[str, Any]):
    """Fig. 1 (e): |kappa - kappa_inf| at criticality, CNN-P (solid) vs CNN-F (dashed)."""
    fig, axes = panels(1)
    ax = axes[0]
    depth = cube.depth_phase.values
    for w in _phase_w(cube, "critical"):
        for size in cube["size"].values:
            m, k = int(cube.size_m.sel(size=size)), int(cube.size_k.sel(size=size))
            for arch, d in (("cnn_f", 1), ("cnn_p", k * k)):
                if arch not in cube.arch.values:
                    continue
                kap = cube.phase_kappa.sel(size=size, arch=arch, w_phase=w).values
                ax.loglog(depth, np.abs(kap - (m * d + 2) / 2), ARCH_STYLE[arch],
                          label=f"{arch} {size}")
    ax.loglog(depth, 10.0 / depth, color="0.5", lw=0.6, label="~ 1/l")
    ax.set_xlabel("depth l")
    ax.set_ylabel("|kappa - kappa_inf|")
    return finish(fig, axes, figure, _note(cube, "Critical line.", data=FIG1_DATA), grid=True)


def plot_dropout(cube: xr.Dataset, figure: Mapping[str, Any]):
    """Fig. 1 (f): ordered FC kappa with dropout (keep rho) and eq. 85's plateaus."""
    fig, axes = panels(1)
    ax = axes[0]
    depth = cube.depth_phase.values
    m = int(cube.attrs["dropout_m"])
    b = float(json.loads(cube.attrs["choices"])["b_var"])
    for w in _phase_w(cube, "ordered"):
        q = float(cube.w_phase_q_star.sel(w_phase=w))
        chi = float(cube.w_phase_chi_1.sel(w_phase=w))
        p = q / (1 - chi)
        for keep in cube.keep.values:
            line, = ax.loglog(depth, _unsaturated(
                cube.kappa_dropout.sel(keep=keep, w_phase=w).values),
                              label=f"rho = {keep:g}, sigma_w^2 = {w:.3g}")
            if keep < 1:
                ax.axhline(m * p / ((1 / keep - 1) * (p - b)) + 1, color=line.get_color(),
                           ls="--", lw=0.6)
    ax.set_xlabel("depth l")
    ax.set_ylabel("kappa")
    return finish(fig, axes, figure, _note(
        cube, f"FC, m = {m}; dashed: eq. 85; depths where kappa >= {KAPPA_CAP:g} not drawn.",
        data=FIG1_DATA, conv=False), grid=True)


def plot_lr_cliff(cube: xr.Dataset, figure: Mapping[str, Any]):
    """Fig. 2: best train (solid) / test (dashed) accuracy vs rho, one panel per depth."""
    depths = cube.cliff_depth.values
    fig, axes = panels(len(depths) + 1)
    cmap = plt.get_cmap("coolwarm")
    ws = cube.w_cliff.values
    for ax, depth in zip(axes, depths, strict=False):
        for i, w in enumerate(ws):
            c = cmap(i / max(len(ws) - 1, 1))
            sel = cube.sel(cliff_depth=depth, w_cliff=w)
            ax.semilogx(cube.rho, sel.cliff_best_train_acc.mean("seed"), "-o", ms=3, color=c,
                        label=f"sigma_w^2 = {w:.3g}")
            ax.semilogx(cube.rho, sel.cliff_best_test_acc.mean("seed"), "--", color=c)
        ax.axvline(1.0, color="k", lw=0.6)
        for edge in CLIFF_WINDOW:  # the lr_cliff claims' window: a factor 2 about rho = 1
            ax.axvline(edge, color="k", lw=0.6, ls=":")
        ax.set_title(f"depth {depth}", fontsize=9)
        ax.set_xlabel("rho = eta / eta_theory")
    axes[0].set_ylabel("best accuracy")
    ax = axes[-1]
    for i, w in enumerate(ws):
        ax.semilogy(depths, cube.cliff_eta_theory.sel(w_cliff=w), "-o",
                    color=cmap(i / max(len(ws) - 1, 1)), label=f"{w:.3g}")
    ax.set_xlabel("depth l")
    ax.set_ylabel("eta_theory = 2n/lambda_max")
    ax.set_title("(2b) eta_theory vs depth", fontsize=9)
    s = json.loads(cube.attrs["cliff_settings"])
    note = (f"Finite erf nets, NTK parameterisation, width {s['width']}, n = {s['n_train']}, "
            f"full-batch GD {s['steps']} steps, seeds {s['seeds']} (mean); diverged runs "
            f"plotted at their best accuracy before divergence; dotted: the claims' window "
            f"rho in ({CLIFF_WINDOW[0]:g}, {CLIFF_WINDOW[1]:g}].")
    return finish(fig, axes, figure, _note(cube, note, conv=False), legend="first", grid=True)


def _plane_panel(fig, ax, cube, z, title, c):
    ws, ds = cube.w_plane.values, cube.depth_plane.values
    im = ax.pcolormesh(ws, ds, z, shading="nearest", cmap="viridis")
    fig.colorbar(im, ax=ax)
    xi1, xis = cube.w_plane_xi_1.values, cube.w_plane_xi_star.values
    ordered = cube.w_plane_phase.values == "ordered"
    chaotic = cube.w_plane_phase.values == "chaotic"
    ax.plot(ws[ordered], c * xi1[ordered], "w--", label=f"{c:g} xi_1")
    ax.plot(ws[chaotic], c * xis[chaotic], "r--", label=f"{c:g} xi_*")
    ax.set_ylim(ds.min(), ds.max())
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("depth l")
    ax.set_title(title, fontsize=9)


def plot_plane(cube: xr.Dataset, figure: Mapping[str, Any]):
    """Fig. 3 top: train / test accuracy over (sigma_w^2, depth): SGD-trained nets where the
    cube has them (plane_nets), and the kernel predictors (always)."""
    nets = "plane_net_final_train_acc" in cube and bool(
        np.isfinite(cube.plane_net_final_train_acc.values).any())
    fig, axes = panels(4 if nets else 2)
    t = cube.time_plane.values[-1]
    s = json.loads(cube.attrs["plane_settings"])
    c = float(s.get("multiple", 6.0))
    kernel_axes = axes[2:] if nets else axes
    if nets:
        n = json.loads(cube.attrs["plane_nets_settings"])
        for ax, var, what in ((axes[0], "plane_net_final_train_acc", "train"),
                              (axes[1], "plane_net_final_test_acc", "test")):
            z = cube[var].mean("plane_seed").values.T
            _plane_panel(fig, ax, cube, z, f"SGD nets: final {what} accuracy", c)
        devices = sorted({str(d) for d in cube.plane_net_device.values.ravel() if str(d)})
        head = (f"Left pair: SGD-trained finite erf nets, width {n['width']}, n_train = "
                f"{n['n_train']}, n_test = {n['n_test']}, batch {n['batch_size']}, eta = "
                f"{n['rho']:g} eta_theory (2b/lambda_max of the first b training points), "
                f"{n['steps']} steps, accuracy at the end, mean over seeds {n['seeds']}; "
                f"blank cells not trained; device {', '.join(devices)}. Right pair: kernel "
                "predictors (infinite-width single net, f0 ~ GP, "
                f"{s.get('draws')} draws), n_train = {s['n_train']}, n_test = {s['n_test']}.")
    else:
        head = (f"Kernel predictors only (infinite-width single net, f0 ~ GP, {s.get('draws')} "
                "draws) instead of SGD-trained nets (this config has no plane_nets; the paper "
                f"config trains them); n_train = {s['n_train']}, n_test = {s['n_test']}.")
    for ax, var, what in ((kernel_axes[0], "plane_single_train_acc", "train"),
                          (kernel_axes[1], "plane_single_test_acc", "test")):
        z = cube[var].sel(plane_arch="fc", time_plane=t).values.T
        _plane_panel(fig, ax, cube, z, f"kernel: {what} accuracy, t = {t:g} steps at "
                                       "eta_theory", c)
    return finish(fig, axes, figure, _note(cube, head, conv=False), legend="first")


def plot_pooling(cube: xr.Dataset, figure: Mapping[str, Any]):
    """Fig. 3 bottom: CNN-P, CNN-F test accuracy and their difference (mean predictor)."""
    fig, axes = panels(3)
    ws, ds = cube.w_pool.values, cube.depth_pool.values
    acc = cube.pool_mean_test_acc_inf
    p, f = acc.sel(pool_arch="cnn_p").values.T, acc.sel(pool_arch="cnn_f").values.T
    for ax, z, title, cmap in ((axes[0], p, "CNN-P", "viridis"), (axes[1], f, "CNN-F", "viridis"),
                               (axes[2], p - f, "CNN-P minus CNN-F", "RdBu")):
        kw = {}
        if cmap == "RdBu":
            v = np.nanmax(np.abs(z)) or 1.0
            kw = {"vmin": -v, "vmax": v}
        im = ax.pcolormesh(ws, ds, z, shading="nearest", cmap=cmap, **kw)
        fig.colorbar(im, ax=ax)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("sigma_w^2")
        ax.set_ylabel("depth l")
    s = json.loads(cube.attrs["pool_settings"])
    note = (f"NTK mean predictor at t = inf, ridge {s.get('ridge')} x tr/n; images pooled by "
            f"{s.get('image_pool')}; n_train = {s['n_train']}, n_test = {s['n_test']}.")
    return finish(fig, axes, figure, _note(cube, note), legend="first")


PLOTS = {
    "xiao_kappa": plot_kappa,
    "xiao_rates": plot_rates,
    "xiao_dropout": plot_dropout,
    "xiao_lr_cliff": plot_lr_cliff,
    "xiao_plane": plot_plane,
    "xiao_pooling": plot_pooling,
}
