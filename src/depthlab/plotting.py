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

from depthlab.provenance import atomic_output  # noqa: E402

__all__ = ["finish", "panels", "save_figure"]


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
    fig.tight_layout(rect=(0, (0.02 + 0.13 * len(lines)) / height_in, 1, 1))
    return fig


def save_figure(fig: plt.Figure, *paths: str | Path) -> None:
    for path in paths:
        fmt = Path(path).suffix.lstrip(".")
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
    plt.close(fig)
