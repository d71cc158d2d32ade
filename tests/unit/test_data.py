"""Label generators against eq. (1)-(3) of Mori & Ueda, written out as plain loops."""

import h5py
import numpy as np
import pytest

from depthlab.data import generate, read_dataset, write_dataset
from depthlab.data.io import verify_content_hash
from depthlab.data.synthetic import k_global_feature, k_global_labels, k_local_labels
from depthlab.provenance import InputFileError


def _local_label_loop(x, idx):
    prod = 1.0
    for i in idx:
        prod *= x[i]
    return 0 if prod >= 0 else 1


def _global_feature_loop(x, idx):
    d = len(x)
    total = 0.0
    for j in range(d):  # eq. (2) with 1-based j -> 0-based, x_{d+i} = x_i
        prod = 1.0
        for i in idx:
            prod *= x[(j + i) % d]
        total += prod
    return total


@pytest.mark.parametrize("k,d", [(1, 5), (2, 7), (3, 11), (4, 4)])
def test_k_local_matches_eq1(k, d):
    rng = np.random.default_rng(k * 100 + d)
    x = rng.standard_normal((300, d))
    idx = np.sort(rng.choice(d, size=k, replace=False))
    expected = [_local_label_loop(row, idx) for row in x]
    np.testing.assert_array_equal(k_local_labels(x, idx), expected)


@pytest.mark.parametrize("k,d", [(1, 5), (2, 7), (3, 11), (2, 2)])
def test_k_global_matches_eq2_eq3_with_periodic_wrap(k, d):
    rng = np.random.default_rng(k * 1000 + d)
    x = rng.standard_normal((200, d))
    idx = np.sort(rng.choice(d, size=k, replace=False))
    feature = np.array([_global_feature_loop(row, idx) for row in x])
    np.testing.assert_allclose(k_global_feature(x, idx), feature, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(k_global_labels(x, idx), np.where(feature >= 0, 0, 1))


def test_hand_computed_example():
    # d = 3, k = 2, indices (1, 2) in the paper's 1-based notation.
    x = np.array([[1.0, -2.0, 3.0]])
    idx = np.array([0, 1])
    assert k_local_labels(x, idx)[0] == 1  # 1 * -2 < 0 -> class 2 (index 1)
    # M = x1 x2 + x2 x3 + x3 x1 = -2 - 6 + 3 = -5
    assert k_global_feature(x, idx)[0] == pytest.approx(-5.0)
    assert k_global_labels(x, idx)[0] == 1


def test_generate_is_deterministic_and_nested():
    spec = dict(generator="k_local", k=2, d=10, n_train=50, n_test=20, seed=3)
    a, b = generate(spec), generate(spec)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(a[key], b[key])
    other = generate({**spec, "seed": 4})
    assert not np.array_equal(a["x_train"], other["x_train"])
    # Labels must be those of the stored float32 inputs.
    np.testing.assert_array_equal(a["y_train"], k_local_labels(a["x_train"].astype(float), [0, 1]))


def test_random_indices_use_seed_and_labels_balanced():
    spec = dict(generator="k_global", k=2, d=30, n_train=4000, n_test=10, seed=5, indices="random")
    data = generate(spec)
    assert data["meta"]["indices"] == generate(spec)["meta"]["indices"]
    assert 0.45 < data["y_train"].mean() < 0.55


def test_random_labels_ignore_inputs():
    data = generate(dict(generator="random", d=4, n_train=2000, n_test=10, seed=1, n_classes=3))
    assert set(np.unique(data["y_train"])) == {0, 1, 2}


def test_hdf5_roundtrip_records_provenance(tmp_path):
    spec = dict(generator="k_global", k=2, d=8, n_train=40, n_test=10, seed=9)
    path = tmp_path / "ds.h5"
    write_dataset(path, generate(spec), spec)
    data = read_dataset(path, n_train=25)
    assert data["x_train"].shape == (25, 8)
    assert data["config"] == spec
    assert data["attrs"]["seed"] == 9 and data["attrs"]["generator"] == "k_global"
    assert "torch" in data["attrs"]["software_versions"]
    assert verify_content_hash(path)
    with h5py.File(path, "r") as f:
        assert f["train/x"].compression == "gzip"


def test_truncated_file_error_names_file(tmp_path):
    spec = dict(generator="k_local", k=1, d=8, n_train=400, n_test=10, seed=9)
    path = tmp_path / "ds.h5"
    write_dataset(path, generate(spec), spec)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputFileError, match="ds.h5"):
        read_dataset(path)
