"""Figure markers that encode run status (Mori-Ueda Fig. 4): hollow = some seed of the
cell failed to reach zero training error, x = every seed that ran diverged. Multi-panel
test-error-vs-N figures (Fig. 2): every panel says what its curves are, and one (L, H) has
one colour in every panel."""

import matplotlib.colors as mcolors
import numpy as np
import xarray as xr

from depthlab.studies.mori_ueda.figures import plot_test_error_vs_lr, plot_test_error_vs_n


def _lr_cube(status: list[list[str]]) -> xr.Dataset:
    """One dataset, L = 1, three learning rates x three seeds; NaN error where not run."""
    status_arr = np.array(status, dtype=object)
    te = np.where(np.isin(status_arr, ["converged", "max_epochs"]), 0.3, np.nan)
    dims = ("dataset", "n_train", "depth", "width", "lr", "seed")
    cube = xr.Dataset(
        {"test_error": (dims, te[None, None, None, None].astype(float)),
         "status": (dims, status_arr[None, None, None, None].astype(str))},
        coords={"dataset": ["local2"], "n_train": [100], "depth": [1], "width": [50],
                "lr": [0.1, 0.3, 1.0], "seed": [0, 1, 2], "kernel_depth": [1]},
    )
    return cube.assign_coords(generator=("dataset", ["k_local"]), k=("dataset", [2]),
                              d=("dataset", [10]), data_source=("dataset", ["synthetic"]))


def _markers(fig):
    ax = fig.axes[0]
    hollow = [x for ln in ax.lines if ln.get_markerfacecolor() == "white"
              for x in ln.get_xdata()]
    crosses = [x for ln in ax.lines if ln.get_marker() == "x" for x in ln.get_xdata()]
    return sorted(hollow), sorted(crosses)


def test_not_run_seeds_are_neither_failures_nor_divergences():
    # seed 2 is outside this cell's grid: the cells are clean, nothing hollow, no x
    status = [["converged", "converged", "not_run"]] * 3
    fig = plot_test_error_vs_lr(_lr_cube(status), {"datasets": ["local2"], "n_train": 100})
    assert _markers(fig) == ([], [])


def test_failed_and_diverged_cells_are_marked():
    status = [["converged", "max_epochs", "not_run"],   # one seed stuck: hollow
              ["converged", "converged", "converged"],  # clean
              ["diverged", "diverged", "not_run"]]      # every seed that ran diverged: x
    fig = plot_test_error_vs_lr(_lr_cube(status), {"datasets": ["local2"], "n_train": 100})
    assert _markers(fig) == ([0.1], [1.0])


def _two_panel_cube() -> xr.Dataset:
    """local2 trained at H = 200 only, global2 at H = 100 and 200 (as in the laptop Fig. 2)."""
    dims = ("dataset", "n_train", "depth", "width", "lr", "seed")
    te = np.full((2, 2, 2, 2, 1, 2), 0.3)
    te[0, :, :, 0] = np.nan  # local2, H = 100: not trained
    status = np.where(np.isnan(te), "not_run", "converged")
    ntk = np.array([[np.nan, 0.45], [0.2, 0.15]])  # local2: NTK at one N only (as Fig. S1)
    ntk = np.stack([ntk, ntk + 0.01], axis=-1)  # kernel depths 1 and 7
    cube = xr.Dataset(
        {"test_error": (dims, te), "status": (dims, status),
         "ntk_test_error": (("dataset", "n_train", "kernel_depth"), ntk)},
        coords={"dataset": ["local2", "global2"], "n_train": [500, 1000], "depth": [1, 7],
                "width": [100, 200], "lr": [0.5], "seed": [0, 1], "kernel_depth": [1, 7]},
    )
    return cube.assign_coords(generator=("dataset", ["k_local", "k_global"]),
                              k=("dataset", [2, 2]), d=("dataset", [200, 20]),
                              data_source=("dataset", ["synthetic", "synthetic"]))


def test_every_panel_has_its_own_legend_and_colours_match_across_panels():
    fig = plot_test_error_vs_n(_two_panel_cube(), {"datasets": ["local2", "global2"]})
    colour_of = {}
    shown = []
    for ax in fig.axes:
        legend = ax.get_legend()
        assert legend is not None, "a panel without a legend"
        labels = [t.get_text() for t in legend.get_texts()]
        shown.append(sorted(labels))
        for container in ax.containers:  # one errorbar per (L, H)
            line = container.lines[0]
            colour = mcolors.to_hex(line.get_color())
            assert colour_of.setdefault(container.get_label(), colour) == colour
    ntk = ["NTK, L = 1", "NTK, L = 7"]
    assert shown == [sorted(ntk + ["L = 1, H = 200", "L = 7, H = 200"]),
                     sorted(ntk + ["L = 1, H = 100", "L = 1, H = 200", "L = 7, H = 100",
                                   "L = 7, H = 200"])]
    assert len(set(colour_of.values())) == 4


def test_ntk_known_at_a_single_n_is_still_drawn():
    fig = plot_test_error_vs_n(_two_panel_cube(), {"datasets": ["local2", "global2"]})
    for ax, n_points in zip(fig.axes, (1, 2), strict=True):
        lines = [ln for ln in ax.lines if ln.get_label().startswith("NTK")]
        assert len(lines) == 2
        for line in lines:
            assert len(line.get_xdata()) == n_points
            # one point draws nothing as a line: it needs a marker
            assert n_points > 1 or line.get_marker() not in (None, "None", "", " ")
