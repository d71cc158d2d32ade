"""Gram files (blocked HDF5) and NTK kernel regression."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from depthlab.kernels import he_relu_spec, kernel_diag, kernel_matrices
from depthlab.kernels.gram import GRAM_DATASETS, compute_gram_file, read_gram, read_test_diag
from depthlab.kernels.regression import (
    kernel_regression_fit,
    ntk_test_error,
    one_hot,
    predict,
    predict_streamed,
)
from depthlab.provenance import InputFileError, content_hash, provenance_attrs

SPEC = he_relu_spec(0.1)


def spins(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(n, d))


@pytest.fixture(scope="module")
def gram_file(tmp_path_factory):
    x_train = np.random.default_rng(0).normal(size=(150, 12))
    x_test = np.random.default_rng(1).normal(size=(70, 12))
    x_test[3] = x_train[5]  # a test point duplicated in the train set
    path = tmp_path_factory.mktemp("gram") / "g.h5"
    attrs = provenance_attrs({"kernel": SPEC, "dataset": "toy"}, seed=7)
    compute_gram_file(path, x_train, x_test, SPEC, 3, block_size=64, attrs=attrs, tile=16)
    return path, x_train, x_test


def test_gram_file_equals_in_memory(gram_file):
    path, x_train, x_test = gram_file
    tt = kernel_matrices(SPEC, 3, x_train)
    te = kernel_matrices(SPEC, 3, x_test, x_train)
    diag = kernel_diag(SPEC, 3, x_test)
    with h5py.File(path, "r") as f:
        assert set(GRAM_DATASETS) <= set(f)
        for i, kind in enumerate(("nngp", "ntk")):
            k_tt = f[f"{kind}_train_train"][...]
            np.testing.assert_allclose(k_tt, tt[i], rtol=1e-13)
            np.testing.assert_array_equal(k_tt, k_tt.T)
            np.testing.assert_array_equal(np.diag(k_tt), kernel_diag(SPEC, 3, x_train)[i])
            np.testing.assert_allclose(f[f"{kind}_test_train"][...], te[i], rtol=1e-13)
            np.testing.assert_array_equal(f[f"{kind}_test_diag"][...], diag[i])
            assert f[f"{kind}_train_train"].dtype == np.float64
            assert f[f"{kind}_train_train"].chunks is not None
        # the duplicated test point sees its twin exactly like a self pair
        np.testing.assert_allclose(f["ntk_test_train"][3, 5], diag[1][3], rtol=1e-13)
        assert json.loads(f.attrs["spec"])["w_var"] == 2.0
        assert f.attrs["depth"] == 3
        assert f.attrs["content_hash"] == content_hash({"x_train": x_train, "x_test": x_test})
        assert f.attrs["seed"] == 7 and "config_hash" in f.attrs


def test_block_size_does_not_change_the_file(gram_file, tmp_path):
    path, x_train, x_test = gram_file
    other = compute_gram_file(tmp_path / "big.h5", x_train, x_test, SPEC, 3, block_size=4096)
    with h5py.File(path, "r") as a, h5py.File(other, "r") as b:
        for name in GRAM_DATASETS:
            np.testing.assert_allclose(a[name][...], b[name][...], rtol=1e-13)


def test_read_gram_slicing(gram_file):
    path, _, _ = gram_file
    with h5py.File(path, "r") as f:
        full_tt = f["ntk_train_train"][...]
        full_te = f["ntk_test_train"][...]
    k_tt, blocks = read_gram(path, "ntk", n_train=50, block_size=32)
    np.testing.assert_array_equal(k_tt, full_tt[:50, :50])
    parts = list(blocks)
    assert [p.shape for p in parts] == [(32, 50), (32, 50), (6, 50)]
    np.testing.assert_array_equal(np.concatenate(parts), full_te[:, :50])
    np.testing.assert_array_equal(blocks.read(), full_te[:, :50])
    assert len(list(blocks)) == len(blocks) == 3  # re-iterable
    k_all, all_blocks = read_gram(path, "nngp")
    assert k_all.shape == (150, 150) and all_blocks.shape == (70, 150)
    assert read_test_diag(path).shape == (70,)
    with pytest.raises(ValueError, match="holds 150"):
        read_gram(path, n_train=151)


def test_truncated_or_missing_file_raises_naming_it(gram_file, tmp_path):
    path, _, _ = gram_file
    data = path.read_bytes()
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="truncated.h5"):
        k_tt, blocks = read_gram(bad)
        list(blocks)
    with pytest.raises(InputFileError, match="absent.h5"):
        read_gram(tmp_path / "absent.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(InputFileError, match="other.h5"):
        read_gram(tmp_path / "other.h5")


def test_failed_write_leaves_no_file(tmp_path):
    x = np.zeros((4, 3))
    with pytest.raises(ValueError):
        compute_gram_file(tmp_path / "g.h5", x, np.zeros((2, 5)), SPEC, 1)
    assert not list(tmp_path.iterdir())


def test_fit_interpolates_and_streaming_is_exact():
    x = spins(300, 20, seed=2)
    y = one_hot((x[:, 0] * x[:, 1] > 0).astype(int), 2)
    x_test = spins(257, 20, seed=3)
    k, k_te = kernel_matrices(SPEC, 5, x)[1], kernel_matrices(SPEC, 5, x_test, x)[1]
    fit = kernel_regression_fit(k, y)
    assert fit.jitter_used == 1e-10
    np.testing.assert_allclose(predict(k, fit.alpha), y, atol=1e-6)
    k_copy = k.copy()
    np.testing.assert_array_equal(
        kernel_regression_fit(k_copy, y, overwrite_k=True).alpha, fit.alpha
    )
    in_memory = predict(k_te, fit.alpha, block_size=64)
    streamed = predict_streamed((k_te[i : i + 64] for i in range(0, 257, 64)), fit.alpha)
    assert np.array_equal(in_memory, streamed)
    np.testing.assert_allclose(in_memory, k_te @ fit.alpha, rtol=1e-10, atol=1e-12)


def test_jitter_escalates_and_is_recorded():
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(60, 60)))
    eig = np.linspace(1.0, 2.0, 60)
    eig[0] = -3e-9 * eig.mean()  # numerically indefinite by a few 1e-9 relative
    k = (q * eig) @ q.T
    k = 0.5 * (k + k.T)
    y = rng.normal(size=(60, 2))
    fit = kernel_regression_fit(k, y, jitter=1e-10)
    assert fit.jitter_used == pytest.approx(1e-8)
    # in place: failed attempts are undone, so the result is the same
    for work in (k.copy(), np.asfortranarray(k)):
        fit2 = kernel_regression_fit(work, y, jitter=1e-10, overwrite_k=True)
        assert fit2.jitter_used == fit.jitter_used
        np.testing.assert_allclose(fit2.alpha, fit.alpha, rtol=1e-12)
    with pytest.raises(np.linalg.LinAlgError):
        kernel_regression_fit(k - 2 * np.eye(60), y)  # genuinely indefinite


def test_ntk_test_error_on_one_local_task(tmp_path):
    # 1-local label (Mori & Ueda): the class is the sign of a single spin
    d = 30
    x_train, x_test = spins(300, d, seed=5), spins(200, d, seed=6)
    y_train, y_test = (x_train[:, 0] > 0).astype(int), (x_test[:, 0] > 0).astype(int)
    path = compute_gram_file(tmp_path / "g.h5", x_train, x_test, SPEC, 3, block_size=128)
    small = ntk_test_error(path, 40, y_train, y_test, 2, block_size=64)
    big = ntk_test_error(path, 300, y_train, y_test, 2, block_size=64)
    assert big["train_error"] == 0.0 and small["train_error"] == 0.0
    assert big["test_error"] < 0.1 < 0.5
    assert big["test_error"] <= small["test_error"]
    assert big["n_train"] == 300 and big["jitter_used"] == 1e-10
    # streamed file predictions equal the in-memory computation on the same prefix
    k_tt, blocks = read_gram(path, n_train=300, block_size=64)
    fit = kernel_regression_fit(k_tt, one_hot(y_train, 2))
    assert np.array_equal(
        predict_streamed(blocks, fit.alpha), predict(blocks.read(), fit.alpha, 64)
    )
    nngp = ntk_test_error(path, 300, y_train, y_test, 2, kind="nngp")
    assert nngp["test_error"] < 0.5
