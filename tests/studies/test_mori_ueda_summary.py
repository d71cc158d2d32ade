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
