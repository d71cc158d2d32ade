"""The summary table's arithmetic and sign logic, on a hand-made cube."""

import numpy as np
import xarray as xr

from depthlab.studies.mori_ueda.summary import depth_effect_table, expected_sign


def _cube():
    errors = np.array([[0.30, 0.32], [0.10, 0.12]])  # depth x seed for one dataset
    te = np.stack([errors, errors[::-1]])  # local2: deep better; global2: shallow better
    cube = xr.Dataset(
        {
            "test_error": (("dataset", "n_train", "depth", "width", "lr", "seed"),
                           te[:, None, :, None, None, :]),
            "ntk_test_error": (("dataset", "n_train", "kernel_depth"),
                               np.array([[[0.5, 0.5]], [[0.12, 0.2]]])),
        },
        coords={"dataset": ["local2", "global2"], "n_train": [100], "depth": [1, 7],
                "width": [50], "lr": [0.1], "seed": [0, 1], "kernel_depth": [1, 7]},
    )
    return cube.assign_coords(generator=("dataset", ["k_local", "k_global"]),
                              k=("dataset", [2, 2]), d=("dataset", [10, 10]))


def test_depth_effect_signs_and_std():
    table = depth_effect_table(
        _cube(), {"fig2": {"plot": "test_error_vs_n", "datasets": ["local2", "global2"]}}
    ).set_index("dataset")
    assert np.isclose(table.loc["local2", "depth_effect"], 0.11 - 0.31)
    assert np.isclose(table.loc["local2", "depth_effect_std"], np.hypot(0.01, 0.01))
    assert table.loc["local2", "separated"] and table.loc["local2", "sign_as_paper"]
    assert table.loc["global2", "sign_as_paper"] and table.loc["global2", "depth_effect"] > 0
    assert table.loc["local2", "ntk_fails"] and not table.loc["global2", "ntk_fails"]


def test_expected_signs_follow_the_paper():
    assert expected_sign("k_local", 2) == -1 and expected_sign("k_local", 1) == +1
    assert expected_sign("k_global", 3) == +1 and expected_sign("random", 0) is None


def _with_status(status, errors=None):
    """_cube() with a status per (dataset, depth, seed) and optionally other errors."""
    cube = _cube()
    shape = cube["test_error"].shape
    cube["status"] = (cube["test_error"].dims, np.broadcast_to(
        np.asarray(status, dtype=object)[:, None, :, None, None, :], shape).astype(str))
    if errors is not None:
        cube["test_error"] = (cube["test_error"].dims,
                              np.asarray(errors, dtype=float)[:, None, :, None, None, :])
    return cube


FIG2 = {"fig2": {"plot": "test_error_vs_n", "datasets": ["local2", "global2"]}}


def test_all_converged_rows_say_so_and_keep_their_verdicts():
    ok = [["converged", "converged"]] * 2
    plain = depth_effect_table(_cube(), FIG2)
    table = depth_effect_table(_with_status([ok, ok]), FIG2)
    assert list(table.columns)[-1] == "status"
    assert (table["status"] == "converged").all()
    assert table.drop(columns="status").equals(plain.drop(columns="status"))


def test_diverged_members_give_no_verdict():
    """The issue's case: deep nets that diverged still have a test error; the row must say
    so and must not claim agreement with the paper."""
    ok = ["converged", "converged"]
    diverged = [ok, ["diverged", "diverged"]]  # local2: both deep nets diverged
    table = depth_effect_table(_with_status([diverged, [ok, ok]]), FIG2).set_index("dataset")
    row = table.loc["local2"]
    assert np.isclose(row["depth_effect"], 0.11 - 0.31)  # the number is still reported
    assert row["status"] == "diverged L=7: 2/2"
    assert row["sign_as_paper"] is None and row["separated"] is None
    assert table.loc["global2", "status"] == "converged"
    assert table.loc["global2", "sign_as_paper"]


def test_member_without_error_is_announced():
    """A member that ran but has NaN error drops out of n_seeds: the status says so."""
    ok = ["converged", "converged"]
    errors = [[[0.30, 0.32], [0.10, np.nan]], [[0.10, 0.12], [0.30, 0.32]]]
    table = depth_effect_table(_with_status([[ok, ok], [ok, ok]], errors),
                               FIG2).set_index("dataset")
    assert table.loc["local2", "n_seeds"] == 1
    assert table.loc["local2", "status"] == "no_error L=7: 1/2"
    assert table.loc["local2", "sign_as_paper"] is None


def test_capped_members_are_marked_but_kept():
    ok = ["converged", "converged"]
    capped = [["max_epochs", "converged"], ok]
    table = depth_effect_table(_with_status([capped, [ok, ok]]), FIG2).set_index("dataset")
    assert table.loc["local2", "status"] == "max_epochs L=1: 1/2"
    assert table.loc["local2", "sign_as_paper"]


def test_cell_whose_members_all_failed_is_a_row():
    ok = ["converged", "converged"]
    errors = [[[0.30, 0.32], [np.nan, np.nan]], [[0.10, 0.12], [0.30, 0.32]]]
    table = depth_effect_table(_with_status([[ok, ["diverged", "diverged"]], [ok, ok]],
                                            errors), FIG2).set_index("dataset")
    row = table.loc["local2"]
    assert row["n_seeds"] == 0 and np.isnan(row["depth_effect"])
    assert row["status"] == "diverged L=7: 2/2; no_error L=7: 2/2"
    assert row["sign_as_paper"] is None
