"""The CIFAR-10 python-pickle reader on batches this test writes, and its restricted
unpickler against a malicious pickle."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from depthlab.data.cifar import CifarNotFoundError, read_cifar10, restricted_loads

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
UnsafePickleError = pickle.UnpicklingError


def _write_batches(root, n=3, protocol=2):
    rng = np.random.default_rng(0)
    written = {}
    for i, name in enumerate((*TRAIN_BATCHES, TEST_BATCH)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(n)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{name}_{j}.png".encode() for j in range(n)]}
        (root / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        written[name] = (data, labels)
    return written


@pytest.mark.parametrize("protocol", [2, 4])
def test_reads_python_batches(tmp_path, protocol):
    written = _write_batches(tmp_path, protocol=protocol)
    out = read_cifar10(tmp_path, fmt="python")
    assert out["x_train"].shape == (15, 3, 32, 32) and out["x_train"].dtype == np.uint8
    assert out["x_test"].shape == (3, 3, 32, 32)
    # training rows in batch order, channel-first reshape of the stored rows
    np.testing.assert_array_equal(out["x_train"][3:6].reshape(3, -1),
                                  written["data_batch_2"][0])
    np.testing.assert_array_equal(out["x_train"][0, 1], written["data_batch_1"][0][0, 1024:2048]
                                  .reshape(32, 32))
    assert out["y_train"].tolist() == [lab for n in TRAIN_BATCHES for lab in written[n][1]]
    assert out["y_test"].tolist() == written[TEST_BATCH][1]


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_malicious_pickle_is_refused(tmp_path):
    _write_batches(tmp_path)
    marker = tmp_path / "pwned"
    (tmp_path / "data_batch_3").write_bytes(
        pickle.dumps({b"data": _Evil(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(UnsafePickleError, match="refused global"):
        read_cifar10(tmp_path)
    assert not marker.exists()
    # and a plain call of a builtin callable through a global is refused too
    with pytest.raises(UnsafePickleError):
        restricted_loads(pickle.dumps(eval, protocol=2))


def test_missing_files_and_formats(tmp_path):
    with pytest.raises(CifarNotFoundError, match="nothing is downloaded"):
        read_cifar10(tmp_path)
    _write_batches(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(CifarNotFoundError, match="data_batch_4"):
        read_cifar10(tmp_path)
    with pytest.raises(ValueError, match="fmt"):
        read_cifar10(tmp_path, fmt="png")


def test_python_and_binary_agree(tmp_path):
    """The same images written in both standard formats read back identically."""
    py, binary = tmp_path / "cifar-10-batches-py", tmp_path / "cifar-10-batches-bin"
    py.mkdir()
    binary.mkdir()
    written = _write_batches(py)
    for name, (data, labels) in written.items():
        rec = np.concatenate([np.asarray(labels, np.uint8)[:, None], data], axis=1)
        rec.tofile(binary / f"{name}.bin")
    a, b = read_cifar10(tmp_path, fmt="python"), read_cifar10(tmp_path, fmt="binary")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_bad_contents(tmp_path):
    _write_batches(tmp_path)
    (tmp_path / TEST_BATCH).write_bytes(pickle.dumps(
        {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2))
    with pytest.raises(ValueError, match="3072"):
        read_cifar10(tmp_path)


@pytest.mark.parametrize("batch, match", [
    # int64 pixels of 300 would be cast to 44 by a uint8 conversion
    ({b"data": np.full((2, 3072), 300, np.int64), b"labels": [0, 1]},
     r"test_batch: pixel values 300..300 outside 0..255"),
    ({b"data": np.full((2, 3072), -1, np.int16), b"labels": [0, 1]},
     r"test_batch: pixel values -1..-1 outside 0..255"),
    ({b"data": np.full((2, 3072), 0.5), b"labels": [0, 1]},
     r"test_batch: pixels are float64, expected uint8"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
     r"test_batch: label 10 at row 1; labels must be 0..9"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [-1, 0]},
     r"test_batch: label -1 at row 0"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0.0, 3.5]},
     r"test_batch: labels are float64, expected integers"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]},
     r"test_batch: 3 labels for 2 images"),
])
def test_values_outside_the_declared_type_name_the_file(tmp_path, batch, match):
    """Pixels outside uint8 0..255, labels outside 0..9 or not integers are refused with the
    file named (issue 25), in place of a silent cast."""
    _write_batches(tmp_path)
    (tmp_path / TEST_BATCH).write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=match):
        read_cifar10(tmp_path)


def test_integer_pixels_in_range_are_accepted(tmp_path):
    written = _write_batches(tmp_path)
    data, labels = written[TEST_BATCH]
    (tmp_path / TEST_BATCH).write_bytes(pickle.dumps(
        {b"data": data.astype(np.int64), b"labels": labels}, protocol=2))
    out = read_cifar10(tmp_path)
    assert out["x_test"].dtype == np.uint8
    np.testing.assert_array_equal(out["x_test"].reshape(len(data), -1), data)


def test_binary_batch_label_out_of_range_names_the_file(tmp_path):
    rng = np.random.default_rng(0)
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        rec = rng.integers(0, 256, size=(2, 3073), dtype=np.uint8)
        rec[:, 0] = 9
        if name == "data_batch_3":
            rec[1, 0] = 12
        (tmp_path / f"{name}.bin").write_bytes(rec.tobytes())
    with pytest.raises(ValueError, match=r"data_batch_3.bin: label 12 at row 1"):
        read_cifar10(tmp_path, fmt="binary")
