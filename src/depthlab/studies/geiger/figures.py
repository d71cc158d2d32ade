"""Figures of Geiger et al. drawn from a Geiger study cube, and only from it.

Every curve is the mean over seeds (shaded: +- std where it is a scalar per run);
trajectories are averaged after interpolation on a common log-spaced time grid.  A run
that hit the step cap or diverged is drawn (its numbers are what they are) and counted in
the note under the figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from depthlab.plotting import finish, panels  # noqa: E402
from depthlab.studies.geiger.grid import canonical_alpha  # noqa: E402
from depthlab.training.status import CONVERGED, NOT_RUN  # noqa: E402

X_LABELS = {"alpha": r"$\alpha$", "sqrt_h_alpha": r"$\sqrt{h}\,\alpha$"}


# ----------------------------------------------------------------------------- helpers


def _cell(cube: xr.Dataset, figure: Mapping[str, Any]) -> tuple[xr.Dataset, list[int]]:
    """The cube at the figure's activation and depth, and the widths it shows."""
    sub = cube.sel(activation=figure["activation"], depth=int(figure["depth"]))
    trained = [int(w) for w in sub["width"].values
               if bool((sub["status"].sel(width=w) != NOT_RUN).any())]
    widths = [int(w) for w in figure.get("widths", trained)]
    return sub, [w for w in widths if w in trained]


def _colors(n: int):
    return plt.cm.viridis(np.linspace(0.0, 0.85, max(n, 1)))


def _x_axes(figure: Mapping[str, Any]) -> list[str]:
    choice = figure.get("x", "both")
    return ["alpha", "sqrt_h_alpha"] if choice == "both" else [choice]


def _per_alpha(sub: xr.Dataset, width: int, var: str, scale=1.0):
    """(alpha, mean, std) over seeds at one width, only where some seed ran."""
    da = sub[var].sel(width=width) * scale
    ran = (sub["status"].sel(width=width) != NOT_RUN).any("seed")
    da = da.sel(alpha=ran.values)
    return (da["alpha"].values, da.mean("seed", skipna=True).values,
            da.std("seed", skipna=True, ddof=0).values)


def _band(ax, x, mean, std, color, label, ls="-", marker="o"):
    ax.plot(x, mean, ls=ls, marker=marker, ms=3.5, color=color, label=label)
    if std is not None and np.isfinite(std).any():
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, lw=0)


def _not_converged(sub: xr.Dataset, widths) -> int:
    st = sub["status"].sel(width=widths)
    return int(((st != CONVERGED) & (st != NOT_RUN)).sum())


def _note(cube: xr.Dataset, figure: Mapping[str, Any], sub: xr.Dataset, widths) -> str:
    n_seeds = int((sub["status"].sel(width=widths) != NOT_RUN).any(
        [d for d in ("width", "alpha") if d in sub["status"].dims]).sum())
    bad = _not_converged(sub, widths)
    text = (f"data: {cube.attrs['data_source']}; N = {cube.attrs['n_train']}, "
            f"{cube.attrs['n_test']} test points; {figure['activation']}, "
            f"L = {figure['depth']}; mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}")
    if bad:
        text += f"; {bad} run(s) stopped before zero training loss (drawn as measured)"
    return text


def _finish(fig, axes, figure: Mapping[str, Any], note: str):
    return finish(fig, axes, figure, note, legend="first", grid=True)


def _width_axis(ax, widths) -> None:
    """Log width axis labelled at the widths trained (a few, not decades)."""
    ax.set_xscale("log")
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("width h")


def _panels(n: int, height: float = 3.8):
    return panels(n, height=height, min_width=5.6)


def _lazy_mean(sub: xr.Dataset, width: int, var: str = "lazy_test_err") -> float:
    if var not in sub:
        return float("nan")
    value = sub[var].sel(width=width)
    return float(value.mean("seed", skipna=True)) if "seed" in value.dims else float(value)


def _mean_curve(ts, ys, n_grid: int = 80):
    """Average of curves y_i(t_i) on a common log grid spanning them (positive t only)."""
    curves = []
    for t, y in zip(ts, ys, strict=True):
        keep = np.isfinite(t) & np.isfinite(y) & (t > 0)
        if keep.sum() >= 2:
            curves.append((t[keep], y[keep]))
    if not curves:
        return np.zeros(0), np.zeros(0)
    lo = max(c[0][0] for c in curves)
    hi = min(c[0][-1] for c in curves)
    if not hi > lo:
        lo, hi = min(c[0][0] for c in curves), max(c[0][-1] for c in curves)
    grid = np.geomspace(lo, hi, n_grid)
    values = [np.interp(np.log(grid), np.log(t), y, left=np.nan, right=np.nan)
              for t, y in curves]
    return grid, np.nanmean(np.stack(values), axis=0)


def _trajectories(sub: xr.Dataset, width: int, alpha: float, var: str):
    runs = sub.sel(width=width, alpha=alpha)
    ok = (runs["status"] != NOT_RUN).values
    ts = [runs["traj_t"].values[i] for i in np.flatnonzero(ok)]
    ys = [runs[var].values[i] for i in np.flatnonzero(ok)]
    t1 = runs["t1"].values[ok]
    return ts, ys, t1


def _trained(sub: xr.Dataset, width: int, alpha: float) -> bool:
    """Whether any seed ran at (width, alpha)."""
    return alpha in sub["alpha"].values and bool(
        (sub["status"].sel(width=width, alpha=alpha) != NOT_RUN).any())


def _alphas_at(sub: xr.Dataset, width: int, sqrt_h_alpha: float) -> float | None:
    alpha = canonical_alpha(sqrt_h_alpha / np.sqrt(width))
    return alpha if _trained(sub, width, alpha) else None


def _fixed_scale_curves(sub: xr.Dataset, widths, figure: Mapping[str, Any]):
    """[(label, [(width, alpha), ...])] for each fixed sqrt(h) alpha and each fixed alpha."""
    curves = []
    for v in figure.get("alpha_sqrt_h", []):
        curves.append((rf"$\sqrt{{h}}\alpha$ = {v:g}",
                       [(w, a) for w in widths if (a := _alphas_at(sub, w, v)) is not None]))
    for v in figure.get("alpha", []):
        alpha = canonical_alpha(v)
        curves.append((rf"$\alpha$ = {v:g}",
                       [(w, alpha) for w in widths if _trained(sub, w, alpha)]))
    return curves


# ----------------------------------------------------------------------------- Fig. 1


def plot_error_vs_width(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 1(a): test error against h at fixed alpha, and the frozen-NTK error (black)."""
    sub, widths = _cell(cube, figure)
    fig, (ax,) = _panels(1, 4.2)
    alphas = [canonical_alpha(a) for a in figure["alpha"]]
    for color, alpha in zip(_colors(len(alphas)), alphas, strict=True):
        pts = [(w, *[v[list(x).index(alpha)] for v in (m, s)])
               for w in widths for x, m, s in [_per_alpha(sub, w, "test_err")] if alpha in x]
        if pts:
            w, m, s = map(np.array, zip(*pts, strict=True))
            _band(ax, w, m, s, color, rf"$\alpha$ = {alpha:g}")
    lazy = [_lazy_mean(sub, w) for w in widths]
    ax.plot(widths, lazy, color="k", lw=2, label="frozen NTK at init (lazy limit)")
    _width_axis(ax, widths)
    ax.set(ylabel="test error")
    return _finish(fig, [ax], figure, _note(cube, figure, sub, widths))


def plot_error_vs_alpha(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 1(c): test error against alpha per width; dashed: that width's frozen NTK."""
    sub, widths = _cell(cube, figure)
    fig, axes = _panels(len(_x_axes(figure)))
    for ax, xname in zip(axes, _x_axes(figure), strict=True):
        for color, w in zip(_colors(len(widths)), widths, strict=True):
            a, m, s = _per_alpha(sub, w, "test_err")
            x = a * (np.sqrt(w) if xname == "sqrt_h_alpha" else 1.0)
            _band(ax, x, m, s, color, f"h = {w}")
            ax.axhline(_lazy_mean(sub, w), color=color, ls="--", lw=1)
        ax.set(xscale="log", xlabel=X_LABELS[xname], ylabel="test error")
    axes[0].plot([], [], "k--", lw=1, label="frozen NTK (same h)")
    return _finish(fig, axes, figure, _note(cube, figure, sub, widths))


def plot_error_collapse(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 1(d): test error rescaled to [0, 1] per width against sqrt(h) alpha."""
    sub, widths = _cell(cube, figure)
    fig, (ax,) = _panels(1, 4.2)
    for color, w in zip(_colors(len(widths)), widths, strict=True):
        a, m, _ = _per_alpha(sub, w, "test_err")
        span = np.nanmax(m) - np.nanmin(m)
        scaled = (m - np.nanmin(m)) / span if span > 0 else np.zeros_like(m)
        ax.plot(a * np.sqrt(w), scaled, "o-", ms=3.5, color=color, label=f"h = {w}")
    ax.set(xscale="log", xlabel=X_LABELS["sqrt_h_alpha"],
           ylabel="(test error - min) / (max - min)")
    return _finish(fig, [ax], figure, _note(cube, figure, sub, widths))


# ----------------------------------------------------------------------------- Fig. 2


def plot_variance_vs_width(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 2(a): Var F over seeds (eq. 7-8) against h at fixed sqrt(h) alpha; eq. (8)
    predicts Var F ~ 1/h in both regimes."""
    sub, widths = _cell(cube, figure)
    fig, (ax,) = _panels(1, 4.2)
    values = figure["alpha_sqrt_h"]
    for color, v in zip(_colors(len(values)), values, strict=True):
        pts = [(w, float(sub["ensemble_var"].sel(width=w, alpha=a)))
               for w in widths if (a := _alphas_at(sub, w, v)) is not None]
        if pts:
            w, var = map(np.array, zip(*pts, strict=True))
            ax.plot(w, var, "o-", color=color, label=rf"$\sqrt{{h}}\alpha$ = {v:g}")
            ax.plot(w, var[0] * w[0] / w, ":", color=color, lw=1)
    ax.plot([], [], "k:", lw=1, label=r"$\propto 1/h$")
    _width_axis(ax, widths)
    ax.set(yscale="log", ylabel=r"Var $\alpha(f - f_0)$ over seeds")
    return _finish(fig, [ax], figure, _note(cube, figure, sub, widths))


def plot_ensemble_vs_scale(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 2(b): single-net (solid) and ensemble-averaged (dashed) test error against
    sqrt(h) alpha per width."""
    sub, widths = _cell(cube, figure)
    fig, (ax,) = _panels(1, 4.2)
    for color, w in zip(_colors(len(widths)), widths, strict=True):
        a, m, s = _per_alpha(sub, w, "test_err")
        _band(ax, a * np.sqrt(w), m, s, color, f"h = {w}")
        ens = sub["ensemble_test_err"].sel(width=w, alpha=a).values
        ax.plot(a * np.sqrt(w), ens, "s--", ms=3, color=color)
    ax.plot([], [], "ks--", ms=3, label="ensemble average")
    ax.set(xscale="log", xlabel=X_LABELS["sqrt_h_alpha"], ylabel="test error")
    return _finish(fig, [ax], figure, _note(cube, figure, sub, widths))


def plot_ensemble_vs_width(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 2(c) / (d): test error and ensemble test error against h at fixed sqrt(h) alpha
    (``alpha_sqrt_h``) or fixed alpha (``alpha``); black: the frozen-NTK ensemble."""
    sub, widths = _cell(cube, figure)
    fig, (ax,) = _panels(1, 4.2)
    curves = _fixed_scale_curves(sub, widths, figure)
    for color, (label, pts) in zip(_colors(len(curves)), curves, strict=True):
        if not pts:
            continue
        w = np.array([p[0] for p in pts])
        runs = [sub["test_err"].sel(width=ww, alpha=a) for ww, a in pts]
        m = np.array([float(r.mean(skipna=True)) for r in runs])
        s = np.array([float(r.std(skipna=True)) for r in runs])
        _band(ax, w, m, s, color, label)
        ens = [float(sub["ensemble_test_err"].sel(width=ww, alpha=a)) for ww, a in pts]
        ax.plot(w, ens, "s--", ms=3, color=color)
    if "lazy_ensemble_test_err" in sub:
        ax.plot(widths, [float(sub["lazy_ensemble_test_err"].sel(width=w)) for w in widths],
                "k--", lw=1.5, label="frozen NTK, ensemble")
    ax.plot([], [], "ks--", ms=3, label="ensemble average")
    _width_axis(ax, widths)
    ax.set(ylabel="test error")
    return _finish(fig, [ax], figure, _note(cube, figure, sub, widths))


# ----------------------------------------------------------------------------- Fig. 3, 6, 9


def _scalar_vs_scale(cube, figure, var: str, ylabel: str, weights_scaled: bool = False):
    sub, widths = _cell(cube, figure)
    fig, axes = _panels(len(_x_axes(figure)))
    for ax, xname in zip(axes, _x_axes(figure), strict=True):
        for color, w in zip(_colors(len(widths)), widths, strict=True):
            scale = np.sqrt(w) if weights_scaled else 1.0
            a, m, s = _per_alpha(sub, w, var, scale)
            x = a * (np.sqrt(w) if xname == "sqrt_h_alpha" else 1.0)
            ax.plot(x, m, "o-", ms=3.5, color=color, label=f"h = {w}")
        ax.set(xscale="log", yscale="log", xlabel=X_LABELS[xname], ylabel=ylabel)
    return fig, axes, sub, widths


def plot_kernel_change(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 3(a) / Fig. 9: ||Theta(w) - Theta(w0)|| / ||Theta(w0)|| against alpha and
    sqrt(h) alpha (dotted: slope -1, the lazy-regime prediction)."""
    fig, axes, sub, widths = _scalar_vs_scale(
        cube, figure, "ntk_change", r"$\|\Theta - \Theta_0\| / \|\Theta_0\|$")
    for ax in axes:
        line = ax.get_lines()[-1] if ax.get_lines() else None
        if line is not None and len(line.get_xdata()):
            x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
            ax.plot(x, y[-1] * x[-1] / x, "k:", lw=1)
    axes[0].plot([], [], "k:", lw=1, label="slope -1")
    return _finish(fig, axes, figure, _note(cube, figure, sub, widths))


def plot_weight_change(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 6: sqrt(h) ||w - w0|| / ||w0|| against alpha and sqrt(h) alpha."""
    fig, axes, sub, widths = _scalar_vs_scale(
        cube, figure, "w_change", r"$\sqrt{h}\,\|w - w_0\| / \|w_0\|$", weights_scaled=True)
    return _finish(fig, axes, figure, _note(cube, figure, sub, widths))


def plot_times(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 3(c): t1 (alpha^2 L = 1/2, solid) and t2 (L = 0, dashed)."""
    sub, widths = _cell(cube, figure)
    fig, axes = _panels(len(_x_axes(figure)))
    for ax, xname in zip(axes, _x_axes(figure), strict=True):
        for color, w in zip(_colors(len(widths)), widths, strict=True):
            for var, ls, marker in (("t1", "-", "o"), ("t2", "--", "s")):
                a, m, _ = _per_alpha(sub, w, var)
                x = a * (np.sqrt(w) if xname == "sqrt_h_alpha" else 1.0)
                ax.plot(x, m, ls=ls, marker=marker, ms=3, color=color,
                        label=f"h = {w}" if var == "t1" else None)
        ax.set(xscale="log", yscale="log", xlabel=X_LABELS[xname], ylabel="time")
    axes[0].plot([], [], "k-", label="$t_1$")
    axes[0].plot([], [], "k--", label="$t_2$")
    return _finish(fig, axes, figure, _note(cube, figure, sub, widths))


def plot_loss_curves(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 3(b): alpha^2 L against t and against t / (sqrt(h) alpha), coloured by
    sqrt(h) alpha, line style by width."""
    sub, widths = _cell(cube, figure)
    fig, axes = _panels(2)
    cells = [(w, float(a)) for w in widths for a in _per_alpha(sub, w, "test_err")[0]]
    scales = [np.sqrt(w) * a for w, a in cells]
    norm = LogNorm(min(scales), max(scales))
    styles = ["-", "--", ":", "-."]
    for (w, a), s in zip(cells, scales, strict=True):
        ts, ys, _ = _trajectories(sub, w, a, "traj_aloss")
        t, y = _mean_curve(ts, ys)
        color = plt.cm.plasma(norm(s) * 0.9)
        ls = styles[widths.index(w) % len(styles)]
        axes[0].plot(t, y, ls=ls, color=color, lw=1)
        axes[1].plot(t / s, y, ls=ls, color=color, lw=1)
    for i, w in enumerate(widths):
        axes[0].plot([], [], ls=styles[i % len(styles)], color="0.3", label=f"h = {w}")
    for ax, xlabel in zip(axes, ["t", r"$t / (\sqrt{h}\alpha)$"], strict=True):
        ax.set(xscale="log", xlabel=xlabel, ylabel=r"$\alpha^2 \mathcal{L}$", ylim=(0, 1.05))
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="plasma"), ax=axes[1],
                 label=r"$\sqrt{h}\alpha$")
    return _finish(fig, axes, figure, _note(cube, figure, sub, widths))


# ----------------------------------------------------------------------------- Fig. 7


def plot_output_norms(cube: xr.Dataset, figure: Mapping[str, Any]) -> plt.Figure:
    """Fig. 7: (a) ||f_t - f_0|| against t/t1 at fixed h, several alpha; (b) sqrt(h)
    ||f_t||, (c) ||f_t - f_0||, (d) alpha ||f_t - f_0||, at fixed sqrt(h) alpha, several h."""
    sub, widths = _cell(cube, figure)
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.9))
    axes = list(axes)
    width = int(figure.get("width", widths[0]))
    alphas = _per_alpha(sub, width, "test_err")[0]
    for color, a in zip(_colors(len(alphas)), alphas, strict=True):
        ts, ys, t1 = _trajectories(sub, width, float(a), "traj_df_test")
        t, y = _mean_curve([t / t1_ for t, t1_ in zip(ts, t1, strict=True)], ys)
        axes[0].plot(t, y, color=color, label=rf"$\alpha$ = {a:.3g}")
    axes[0].set(title=f"(a) h = {width}", ylabel=r"$\|f(w_t) - f(w_0)\|$")
    v = figure["alpha_sqrt_h"][0]
    panels = [("traj_f_test", lambda w, a: np.sqrt(w), r"$\sqrt{h}\,\|f(w_t)\|$"),
              ("traj_df_test", lambda w, a: 1.0, r"$\|f(w_t) - f(w_0)\|$"),
              ("traj_df_test", lambda w, a: a, r"$\alpha\,\|f(w_t) - f(w_0)\|$")]
    for ax, (var, factor, ylabel), tag in zip(axes[1:], panels, "bcd", strict=True):
        for color, w in zip(_colors(len(widths)), widths, strict=True):
            a = _alphas_at(sub, w, v)
            if a is None:
                continue
            ts, ys, t1 = _trajectories(sub, w, a, var)
            t, y = _mean_curve([t / t1_ for t, t1_ in zip(ts, t1, strict=True)], ys)
            ax.plot(t, y * factor(w, a), color=color, label=f"h = {w}")
        ax.set(title=rf"({tag}) $\sqrt{{h}}\alpha$ = {v:g}", ylabel=ylabel)
        ax.legend(fontsize=7)
    for ax in axes:
        ax.set(xscale="log", yscale="log", xlabel="$t / t_1$")
    return _finish(fig, axes, figure, _note(cube, figure, sub, widths))


PLOTS = {
    "geiger_error_vs_width": plot_error_vs_width,
    "geiger_error_vs_alpha": plot_error_vs_alpha,
    "geiger_error_collapse": plot_error_collapse,
    "geiger_variance_vs_width": plot_variance_vs_width,
    "geiger_ensemble_vs_scale": plot_ensemble_vs_scale,
    "geiger_ensemble_vs_width": plot_ensemble_vs_width,
    "geiger_kernel_change": plot_kernel_change,
    "geiger_loss_curves": plot_loss_curves,
    "geiger_times": plot_times,
    "geiger_weight_change": plot_weight_change,
    "geiger_output_norms": plot_output_norms,
}
