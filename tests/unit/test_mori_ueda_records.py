"""Mori-Ueda run and label-stability files, written in the shared array-file format
(depthlab.results.write_arrays): typed columns with units, cell and provenance attributes,
and readers that give back plain Python rows."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from depthlab.provenance import InputFileError
from depthlab.results import write_arrays
from depthlab.studies.mori_ueda.records import (
    RUN_FIELDS,
    read_label_stability,
    read_run,
    write_label_stability,
    write_run,
)

CELL = {"dataset": "local1", "n_train": 60, "depth": 2, "width": 32}


def _results():
    return [{"seed": s, "lr": 0.0, "lr_used": 0.1 * (s + 1), "test_error": 0.25 + s / 7,
             "train_error": 0.0, "final_loss": 1e-3 / (s + 3), "epochs": 12 + s,
             "wall_time_s": 3.5, "n_params": 1234, "device": "cpu",
             "status": ["converged", "max_epochs", "diverged"][s],
             "local_stability": [0.1 * s, 0.2, 0.3]} for s in range(3)]


def test_run_file_round_trip(tmp_path):
    path = tmp_path / "run.h5"
    results = _results()
    write_run(path, results, CELL, {"training": {"lr": 0.1}}, stability_v=[0.5, 1.0, 2.0])
    with h5py.File(path, "r") as f:
        assert f["seed"].dtype == np.int64 and f["test_error"].dtype == np.float64
        assert f["epochs"].attrs["units"] == "epoch"
        assert f["local_stability"].shape == (3, 3)
        assert f.attrs["device"] == "cpu" and f.attrs["depth"] == 2
    rows = read_run(path)
    assert len(rows) == 3
    for row, res in zip(rows, results, strict=True):
        for name in (*RUN_FIELDS, "status", "device"):
            assert row[name] == res[name] and type(row[name]) is type(res[name]), name
        assert row["local_stability"] == dict(zip([0.5, 1.0, 2.0], res["local_stability"],
                                                  strict=True))
        assert {k: row[k] for k in CELL} == CELL and type(row["n_train"]) is int
        assert "torch" in row["software_versions"]
    write_run(path, results, CELL, {})  # no stability: no such column
    assert "local_stability" not in read_run(path)[0]


def test_run_file_refuses_unknown_status_and_foreign_files(tmp_path):
    bad = [dict(_results()[0], status="finished")]
    with pytest.raises(ValueError, match="unknown training status"):
        write_run(tmp_path / "bad.h5", bad, CELL, {})
    assert not (tmp_path / "bad.h5").exists()
    write_arrays(tmp_path / "other.h5", {"seed": [0]}, CELL, {})
    with pytest.raises(InputFileError, match="other.h5: missing dataset"):
        read_run(tmp_path / "other.h5")


def test_label_stability_round_trip(tmp_path):
    path = tmp_path / "labels.h5"
    attrs = {"dataset": "local1", "generator": "local", "k": 3, "d": 10}
    write_label_stability(path, np.array([0.1, 0.2]), np.array([0.9, 0.7]), attrs, {"v": 1})
    back = read_label_stability(path)
    np.testing.assert_array_equal(back["v"], [0.1, 0.2])
    np.testing.assert_array_equal(back["stability"], [0.9, 0.7])
    assert {k: back[k] for k in attrs} == attrs
