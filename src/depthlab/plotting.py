"""Figure plumbing shared by every study's figures (each study draws its own panels).

Figures are drawn from a study cube only; these helpers lay out panels, put the data
note (data source, N, seeds, failed runs) under the figure, and write PDF and PNG
atomically.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from depthlab.provenance import atomic_output  # noqa: E402

__all__ = ["finish", "legend_overlaps", "make_readable", "overlapping_tick_labels", "panels",
           "save_figure"]


def panels(n: int, height: float = 3.9, min_width: float = 0.0):
    """A row of ``n`` panels, 4.6 inches each (at least ``min_width`` in all)."""
    fig, axes = plt.subplots(1, n, figsize=(max(4.6 * n, min_width), height), squeeze=False)
    return fig, list(axes[0])


def finish(fig: plt.Figure, axes: Sequence, figure: Mapping[str, Any], note: str, *,
           legend: str = "every", grid: bool = False) -> plt.Figure:
    """Legends (on ``every`` panel or the ``first``), an optional light grid, the data note
    wrapped under the figure, the figure's ``title``, and a tight layout around them."""
    for ax in axes:
        if grid:
            ax.grid(alpha=0.3, which="both", lw=0.4)
    for ax in (axes if legend == "every" else axes[:1]):
        if ax.get_legend_handles_labels()[0]:  # a panel without labelled lines gets none
            ax.legend(fontsize=7, loc="best")
    width_in, height_in = fig.get_size_inches()
    lines = textwrap.wrap(note, width=int(width_in * 17))
    fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, color="0.35", va="bottom")
    if "title" in figure:
        fig.suptitle(figure["title"], fontsize=11)
    rect = (0, (0.02 + 0.13 * len(lines)) / height_in, 1, 1)
    fig.tight_layout(rect=rect)
    fig.depthlab_layout_rect = rect  # make_readable lays out again with the same margins
    return fig


def _data_points(ax) -> np.ndarray:
    """Display coordinates of every plotted data point of ``ax`` (line vertices, scatter and
    error-bar markers); shaded bands are not data points."""
    pts = []
    for line in ax.get_lines():
        xy = np.asarray(line.get_xydata(), dtype=float)
        if len(xy):
            pts.append(ax.transData.transform(xy))
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if offsets.ndim == 2 and len(offsets) and not isinstance(coll, PolyCollection):
            pts.append(coll.get_offset_transform().transform(offsets))
        if isinstance(coll, LineCollection):  # error bars
            for seg in coll.get_segments():
                if len(seg):
                    pts.append(ax.transData.transform(np.asarray(seg, dtype=float)))
    if not pts:
        return np.zeros((0, 2))
    out = np.concatenate(pts)
    return out[np.all(np.isfinite(out), axis=1)]


def legend_overlaps(ax) -> int:
    """How many of ``ax``'s data points lie under its legend (0: none, or no legend)."""
    legend = ax.get_legend()
    if legend is None:
        return 0
    fig = ax.figure
    box = legend.get_window_extent(fig.canvas.get_renderer())
    pts = _data_points(ax)
    inside = ((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0)
              & (pts[:, 1] <= box.y1))
    return int(inside.sum())


def _overlapping(labels, renderer) -> list[tuple[str, str]]:
    shown = [t for t in labels if t.get_visible() and t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in shown]
    return [(shown[i].get_text(), shown[i + 1].get_text()) for i in range(len(shown) - 1)
            if boxes[i].overlaps(boxes[i + 1])]


def overlapping_tick_labels(ax) -> list[tuple[str, str]]:
    """Pairs of neighbouring tick labels of ``ax`` whose boxes overlap (either axis)."""
    renderer = ax.figure.canvas.get_renderer()
    return (_overlapping(ax.get_xticklabels(), renderer)
            + _overlapping(ax.get_xticklabels(minor=True), renderer)
            + _overlapping(ax.get_yticklabels(), renderer))


_LEGEND_PLACES = ("upper right", "upper left", "lower left", "lower right", "center right",
                  "center left", "upper center", "lower center", "center")


def make_readable(fig: plt.Figure) -> list[str]:
    """A legend that hides data moves to the first standard place inside its panel where it
    hides none, else outside the panel to its right (the layout is redone so neighbouring
    panels move aside); x tick labels that run into each other are rotated. Returns what
    could not be fixed (empty: readable)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    relayout = False
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None and legend_overlaps(ax):
            handles, labels = ax.get_legend_handles_labels()
            size = legend.get_texts()[0].get_fontsize() if legend.get_texts() else 7
            for place in _LEGEND_PLACES:
                ax.legend(handles, labels, fontsize=size, loc=place)
                if not legend_overlaps(ax):
                    break
            else:
                ax.legend(handles, labels, fontsize=size, loc="upper left",
                          bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
                relayout = True
        if _overlapping(ax.get_xticklabels(minor=True), renderer):
            # crowded minor labels of a log axis (3x10^-1, 4x10^-1, ...): the majors suffice
            ax.xaxis.set_minor_formatter(NullFormatter())
            relayout = True
        if _overlapping(ax.get_xticklabels(), renderer):
            for t in ax.get_xticklabels():
                t.set_rotation(45)
                t.set_horizontalalignment("right")
            relayout = True
    if relayout:
        fig.tight_layout(rect=getattr(fig, "depthlab_layout_rect", (0, 0, 1, 1)))
    fig.canvas.draw()
    problems = []
    for i, ax in enumerate(fig.axes):
        if legend_overlaps(ax):
            problems.append(f"panel {i}: the legend hides {legend_overlaps(ax)} data points")
        if overlapping_tick_labels(ax):
            problems.append(f"panel {i}: tick labels overlap {overlapping_tick_labels(ax)}")
    return problems


def save_figure(fig: plt.Figure, *paths: str | Path) -> list[str]:
    """Write ``fig`` to every path (format from the suffix) atomically, after
    :func:`make_readable`; returns the readability problems that remain."""
    problems = make_readable(fig)
    for path in paths:
        fmt = Path(path).suffix.lstrip(".")
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
    plt.close(fig)
    return problems
