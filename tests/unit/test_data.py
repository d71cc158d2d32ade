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


def _tamper(path, name="train/y"):
    """Flip the stored labels in place, keeping every attribute (the content hash too)."""
    with h5py.File(path, "r+") as f:
        f[name][...] = 1 - f[name][...]


def test_tampered_dataset_is_refused_naming_the_file(tmp_path):
    spec = dict(generator="k_local", k=1, d=8, n_train=40, n_test=10, seed=9)
    path = tmp_path / "ds.h5"
    write_dataset(path, generate(spec), spec)
    _tamper(path)
    with pytest.raises(InputFileError, match=r"ds\.h5: content hash mismatch"):
        read_dataset(path, n_train=10)  # even when only a prefix is asked for
    assert not verify_content_hash(path)
    assert read_dataset(path, verify=False)["y_train"].shape == (40,)


def test_dataset_without_hash_is_refused(tmp_path):
    spec = dict(generator="k_local", k=1, d=8, n_train=40, n_test=10, seed=9)
    path = tmp_path / "ds.h5"
    write_dataset(path, generate(spec), spec)
    with h5py.File(path, "r+") as f:
        del f.attrs["content_hash"]
    with pytest.raises(InputFileError, match=r"ds\.h5: no content_hash"):
        read_dataset(path)


def test_gram_from_other_data_is_refused(tmp_path):
    from depthlab.kernels.regression import check_gram_dataset

    spec = dict(generator="k_local", k=1, d=8, n_train=40, n_test=10, seed=9)
    path = tmp_path / "ds.h5"
    write_dataset(path, generate(spec), spec)
    own = read_dataset(path)["attrs"]["content_hash"]
    gram = tmp_path / "gram.h5"
    with h5py.File(gram, "w") as f:
        f.attrs["dataset_content_hash"] = own
    check_gram_dataset(gram, own, path)  # the Gram of this very dataset: fine
    with pytest.raises(InputFileError,
                       match=r"gram\.h5: built from dataset content .*ds\.h5 holds"):
        check_gram_dataset(gram, "0" * 64, path)
    with h5py.File(gram, "w") as f:
        pass
    with pytest.raises(InputFileError, match=r"gram\.h5: no dataset_content_hash"):
        check_gram_dataset(gram, own, path)


def test_hash_check_is_cheap_on_the_largest_laptop_dataset(tmp_path):
    """config/config.yaml's largest dataset (local2: d = 200, 4000 + 5000 rows): verifying
    the hash on every read costs a small fraction of a training job's start-up."""
    import time

    spec = dict(generator="k_local", k=2, d=200, indices="first", n_train=4000, n_test=5000,
                seed=2001)
    path = tmp_path / "local2.h5"
    write_dataset(path, generate(spec), spec)

    def best(verify):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            read_dataset(path, n_train=3000, verify=verify)
            times.append(time.perf_counter() - t0)
        return min(times)

    from depthlab.data.io import _ARRAYS
    from depthlab.provenance import content_hash

    with h5py.File(path, "r") as f:
        arrays = {name: f[name][:] for name in _ARRAYS}
    t0 = time.perf_counter()
    content_hash(arrays)
    hashing = time.perf_counter() - t0
    plain, checked = best(False), best(True)
    print(f"read {plain * 1e3:.1f} ms, with hash check {checked * 1e3:.1f} ms, "
          f"SHA-256 alone {hashing * 1e3:.1f} ms")
    assert hashing < 0.25 and checked - plain < 0.25  # measured: ~10 ms of ~65 ms
