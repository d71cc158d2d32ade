"""One result-file format: a run record and a kernel-regression result are write_arrays
files (one reader for all), and each reads back exactly what was written."""

import h5py
import numpy as np
import pytest

from depthlab.results import (
    read_arrays,
    read_record,
    read_regression,
    write_record,
    write_regression,
)

CELL = {"activation": "relu", "depth": 5, "width": 32, "seed": 1, "alpha": 0.01}


def test_a_record_reads_back_its_scalars_arrays_and_cell(tmp_path):
    path = tmp_path / "run.h5"
    curve = np.array([0.5, 0.25, np.nan])
    write_record(path, {"test_err": 0.125, "status": "converged", "steps": 300},
                 {"test_outputs": curve, "single": [3.0]}, CELL, config_slice={"x": 1})
    got = read_record(path, required=("test_outputs",))
    assert got["test_err"] == 0.125 and got["status"] == "converged" and got["steps"] == 300.0
    assert isinstance(got["test_err"], float) and isinstance(got["status"], str)
    np.testing.assert_array_equal(got["test_outputs"], curve)
    assert got["single"].shape == (1,)  # an array of one stays an array
    assert {k: got[k] for k in CELL} == CELL
    assert "config" not in got and "scalars" not in got
    arrays, attrs = read_arrays(path)  # the one format: the generic reader reads it too
    assert arrays["test_outputs"].dtype == np.float64 and attrs["depth"] == 5


def test_a_record_refuses_a_name_used_twice(tmp_path):
    with pytest.raises(ValueError, match="both a scalar and an array"):
        write_record(tmp_path / "r.h5", {"a": 1.0}, {"a": [1.0]}, CELL, config_slice={})


def test_a_record_missing_a_required_array_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "run.h5"
    write_record(path, {"test_err": 0.1}, {}, CELL, config_slice={})
    with pytest.raises(Exception, match="run.h5"):
        read_record(path, required=("test_outputs",))


def test_a_regression_result_round_trips(tmp_path):
    path = tmp_path / "regression_N100.h5"
    cell = {"dataset": "local2", "kernel": "ntk", "kernel_depth": 3, "n_train": 100}
    write_regression(path, {"test_error": 0.25, "train_error": 0.0, "jitter_used": 1e-10,
                            "solver": "cholesky"}, cell, config_slice={"jitter": 1e-10})
    got = read_regression(path)
    assert got == {"test_error": 0.25, "train_error": 0.0, "jitter_used": 1e-10, **cell}
    with h5py.File(path) as f:
        assert '"solver": "cholesky"' in f.attrs["result"]
