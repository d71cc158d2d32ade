"""The Nichani kernel job (CNTK / FC NTK depth sweep + ridgeless regression) against a
direct solve, its targets and row selection, and the digits task's split."""

import numpy as np
import pytest

from depthlab.kernels.conv import kernel_matrices as conv_kernel
from depthlab.kernels.layers import kernel_matrices as fc_kernel
from depthlab.studies.nichani.data import classification_data
from depthlab.studies.nichani.runs import kernel_job, rows_per_class, targets

SPEC = {"source": "digits", "classes": [1, 7, 4], "n_train_per_class": 6,
        "n_test_per_class": 5, "seed": 2}
KCFG = {"filter_size": 3, "padding": "zero", "targets": "centered", "dtype": "float64",
        "device": "cpu", "train_per_class": None, "test_per_class": None}


@pytest.fixture(scope="module")
def data():
    return classification_data(SPEC)


def test_digits_split(data):
    assert data["x_train"].shape == (18, 1, 8, 8) and data["x_test"].shape == (15, 1, 8, 8)
    assert np.bincount(data["y_train"]).tolist() == [6, 6, 6]
    flat = lambda x: {r.tobytes() for r in x.reshape(len(x), -1)}  # noqa: E731
    assert not flat(data["x_train"]) & flat(data["x_test"])  # disjoint images
    again = classification_data(SPEC)
    np.testing.assert_array_equal(again["x_train"], data["x_train"])


def test_targets_and_rows_per_class():
    y = np.array([0, 2, 1, 2, 0, 2])
    t = targets(y, 3, "centered")
    np.testing.assert_allclose(t.sum(1), 0, atol=1e-15)
    assert targets(y, 3, "arora")[1].tolist() == [-0.1, -0.1, 0.9]
    assert rows_per_class(y, 1).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="class 1 has 1"):
        rows_per_class(y, 2)


def _direct(k_tt, k_st, data, k=3):
    y = targets(data["y_train"], k, "centered")
    f = k_st @ np.linalg.solve(k_tt, y)
    yt = targets(data["y_test"], k, "centered")
    return np.mean(np.sum((f - yt) ** 2, 1)), np.mean(f.argmax(1) == data["y_test"])


def test_fc_ntk_job_is_the_direct_ridgeless_solve(data):
    res = kernel_job(data, {"name": "fc_ntk", "readout": "fc", "fix": False, "depths": [1, 3]},
                     KCFG, jitter=0.0)
    spec = {"activation": "relu", "w_var": 2.0, "b_var": 0.0, "first_w_var": 1.0,
            "first_b_var": 0.0}
    xtr, xte = data["x_train"].reshape(18, -1), data["x_test"].reshape(15, -1)
    for i, d in enumerate([1, 3]):
        k_tt = fc_kernel(spec, d, xtr)[1]
        k_st = fc_kernel(spec, d, xte, xtr)[1]
        loss, acc = _direct(k_tt, k_st, data)
        assert res["test_loss"][i] == pytest.approx(loss, rel=1e-8)
        assert res["test_acc"][i] == acc and res["train_acc"][i] == 1.0
    assert res["jitter_used"].tolist() == [0.0, 0.0]


def test_cntk_job_is_the_direct_ridgeless_solve(data):
    variant = {"name": "cntk_gap_fix", "readout": "gap", "fix": True, "depths": [2, 3],
               "test_per_class": 2}
    res = kernel_job(data, variant, KCFG, jitter=0.0)
    keep = rows_per_class(data["y_test"], 2)
    sub = {**data, "x_test": data["x_test"][keep], "y_test": data["y_test"][keep]}
    spec = {"architecture": "conv", "activation": "relu", "w_var": 2.0, "b_var": 0.0,
            "first_w_var": 1.0, "image_shape": [1, 8, 8], "padding": "zero", "readout": "gap",
            "fix_first": True, "fix_last": True}
    k_tt = conv_kernel(spec, data["x_train"], depth=3)[1]
    k_st = conv_kernel(spec, sub["x_test"], data["x_train"], depth=3)[1]
    loss, acc = _direct(k_tt, k_st, sub)
    assert res["n_test"] == 6
    assert res["test_loss"][1] == pytest.approx(loss, rel=1e-8) and res["test_acc"][1] == acc
