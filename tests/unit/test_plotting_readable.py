"""Figures stay readable: no legend over data, no tick labels running into each other
(depthlab.plotting.make_readable, applied by save_figure to every figure rule's output)."""

from __future__ import annotations

import numpy as np

from depthlab.plotting import (
    finish,
    legend_overlaps,
    make_readable,
    overlapping_tick_labels,
    panels,
    save_figure,
)


def _crowded(ax, n_lines=6):
    """Lines that fill the whole panel: every place inside it hides some data."""
    x = np.linspace(0, 1, 60)
    for i in range(n_lines):
        ax.plot(x, (i / n_lines + x * 7) % 1.0, "o", ms=2, label=f"a long curve label {i}")


def test_detector_sees_a_legend_over_data_and_a_clear_one():
    fig, (ax,) = panels(1)
    ax.plot([0, 1], [0, 1], "o-", label="diagonal")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, 1.0))  # away from (0, 0) and (1, 1)
    fig.canvas.draw()
    assert legend_overlaps(ax) == 0
    ax.plot(np.full(20, 0.1), np.linspace(0.6, 1.0, 20), "x", label="under the legend")
    ax.legend(loc="upper left")
    fig.canvas.draw()
    assert legend_overlaps(ax) > 0


def test_legend_over_data_moves_off_the_data_and_off_the_next_panel(tmp_path):
    fig, axes = panels(2)
    for ax in axes:
        _crowded(ax)
    finish(fig, axes, {"title": "crowded"}, "note")
    fig.canvas.draw()
    assert legend_overlaps(axes[0]) > 0  # matplotlib's "best" cannot avoid the data
    assert make_readable(fig) == []
    for ax in axes:
        assert legend_overlaps(ax) == 0
    left_legend = axes[0].get_legend().get_window_extent()
    assert not left_legend.overlaps(axes[1].get_window_extent())
    assert save_figure(fig, tmp_path / "f.png") == []
    assert (tmp_path / "f.png").stat().st_size > 5000


def test_a_readable_figure_is_left_as_it_is():
    fig, (ax,) = panels(1)
    ax.plot([0, 1], [0, 0.1], "o-", label="low line")
    finish(fig, [ax], {}, "note")
    fig.canvas.draw()
    before = ax.get_legend().get_window_extent().bounds
    assert make_readable(fig) == []
    assert ax.get_legend().get_window_extent().bounds == before


def test_overlapping_tick_labels_are_rotated_apart():
    fig, (ax,) = panels(1, min_width=2.0)
    fig.set_size_inches(2.0, 2.5)
    ax.plot(range(12), range(12))
    ax.set_xticks(range(12), [f"label{i:03d}" for i in range(12)])
    fig.canvas.draw()
    assert overlapping_tick_labels(ax)
    make_readable(fig)
    assert all(t.get_rotation() == 45 for t in ax.get_xticklabels())


def test_crowded_minor_log_labels_are_dropped():
    fig, (ax,) = panels(1)
    fig.set_size_inches(2.5, 2.5)
    ax.set_xscale("log")
    ax.plot([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0], range(7), "o-")
    fig.canvas.draw()
    assert overlapping_tick_labels(ax)  # 3x10^-1, 4x10^-1, ... run into each other
    assert make_readable(fig) == []
