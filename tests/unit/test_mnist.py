"""MNIST IDX reader, mnist_parity / digits_parity generators and their train-only PCA whitening.

The IDX files are written here (tiny, random "images"), both raw and gzip-compressed; no real
MNIST is needed or downloaded.  Tolerances: inputs are stored as float32, so whitened training
components have mean 0 and variance 1 to ~1e-6.
"""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from depthlab.data import generate, read_dataset, write_dataset
from depthlab.data.mnist import (
    MNIST_FILES,
    MnistNotFoundError,
    fit_pca_whitening,
    load_mnist,
    parity_labels,
    read_idx,
)


def write_idx(path, arr: np.ndarray, compress: bool = False) -> None:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f8"): 0x0E}
    arr = np.asarray(arr)
    if arr.dtype == np.int32:
        arr = arr.astype(">i4")
    if arr.dtype == np.float64:
        arr = arr.astype(">f8")
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.tobytes()
    if compress:
        data = gzip.compress(data)
    path.write_bytes(data)


def make_mnist_dir(root, n_train=60, n_test=30, compress=False, seed=0):
    """A fake MNIST: random 28x28 uint8 images; test images are brighter than train ones so a
    PCA refitted on the test set would give visibly different test inputs."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 200, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(55, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, arr in arrays.items():
        name = MNIST_FILES[key] + (".gz" if compress else "")
        write_idx(root / name, arr, compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_roundtrip(tmp_path, compress):
    rng = np.random.default_rng(1)
    cases = {
        "u8": rng.integers(0, 256, (5, 4, 3), dtype=np.uint8),
        "i32": rng.integers(-1000, 1000, (7,), dtype=np.int32),
        "f64": rng.normal(size=(2, 3)),
    }
    for name, arr in cases.items():
        path = tmp_path / f"{name}.idx"
        write_idx(path, arr, compress)
        back = read_idx(path)
        np.testing.assert_array_equal(back, arr)
        assert back.dtype.isnative


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    good = tmp_path / "trunc"
    write_idx(good, np.zeros((4, 5), np.uint8))
    good.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(good)


def _idx_header(type_byte: int, shape) -> bytes:
    return bytes([0, 0, type_byte, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


@pytest.mark.parametrize("case, match", [
    # labels written as int32 (type byte 0x0C): a valid IDX file, not MNIST's declared type
    ("int32_labels", r"t10k-labels-idx1-ubyte: IDX type is int32.*0x08"),
    # type byte says int32 but the data are one byte per label: sizes disagree
    ("type_byte_lies", r"t10k-labels-idx1-ubyte: IDX header says shape \(30,\)"),
    ("label_10", r"t10k-labels-idx1-ubyte: label 10 at row 3; MNIST labels are 0..9"),
    ("images_2d", r"train-images-idx3-ubyte: IDX shape \(60, 784\)"),
    ("count_mismatch", r"train-images-idx3-ubyte: 59 images but .*train-labels-idx1-ubyte "
                       r"has 60 labels"),
    ("zero_dims", r"t10k-labels-idx1-ubyte: IDX header declares 0 dimensions"),
    ("truncated_gz", r"t10k-labels-idx1-ubyte.gz: unreadable"),
])
def test_load_mnist_refuses_values_outside_the_declared_type(tmp_path, case, match):
    """Files whose header or values disagree with MNIST's declared types are refused, naming
    the file (issue 25: they were read anyway)."""
    root = tmp_path / "m"
    arrays = make_mnist_dir(root, compress=(case == "truncated_gz"))
    labels = root / MNIST_FILES["test_labels"]
    images = root / MNIST_FILES["train_images"]
    if case == "int32_labels":
        write_idx(labels, arrays["test_labels"].astype(np.int32))
    elif case == "type_byte_lies":
        labels.write_bytes(_idx_header(0x0C, (30,)) + arrays["test_labels"].tobytes())
    elif case == "label_10":
        y = arrays["test_labels"].copy()
        y[3] = 10
        write_idx(labels, y)
    elif case == "images_2d":
        write_idx(images, arrays["train_images"].reshape(60, 784))
    elif case == "count_mismatch":
        write_idx(images, arrays["train_images"][:59])
    elif case == "zero_dims":
        labels.write_bytes(bytes([0, 0, 8, 0]))
    elif case == "truncated_gz":
        gz = root / (MNIST_FILES["test_labels"] + ".gz")
        gz.write_bytes(gz.read_bytes()[:-10])
    with pytest.raises(ValueError, match=match):
        load_mnist(root)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_raw_and_gz(tmp_path, compress):
    arrays = make_mnist_dir(tmp_path / "m", compress=compress)
    data = load_mnist(tmp_path / "m")
    np.testing.assert_array_equal(data["x_train"], arrays["train_images"])
    np.testing.assert_array_equal(data["y_test"], arrays["test_labels"])


def test_missing_mnist_names_path_and_key(tmp_path):
    where = tmp_path / "nowhere"
    with pytest.raises(MnistNotFoundError) as err:
        load_mnist(where)
    assert str(where) in str(err.value) and "mnist_dir" in str(err.value)
    # a directory with only some of the files names what is missing
    make_mnist_dir(tmp_path / "part")
    (tmp_path / "part" / MNIST_FILES["test_labels"]).unlink()
    params = {"generator": "mnist_parity", "mnist_dir": str(tmp_path / "part"), "n_train": 10,
              "n_test": 5, "pca_components": 3, "seed": 0}
    with pytest.raises(MnistNotFoundError, match="t10k-labels-idx1-ubyte") as err:
        generate(params)
    assert "mnist_dir" in str(err.value)
    with pytest.raises(MnistNotFoundError, match="mnist_dir"):
        generate({**params, "mnist_dir": None})


def test_mnist_parity_pca_fitted_on_train_only(tmp_path):
    arrays = make_mnist_dir(tmp_path / "m", n_train=80, n_test=40)
    params = {"generator": "mnist_parity", "mnist_dir": str(tmp_path / "m"), "n_train": 50,
              "n_test": 30, "pca_components": 10, "seed": 3}
    data = generate(params)
    xtr, xte = data["x_train"].astype(np.float64), data["x_test"].astype(np.float64)
    assert xtr.shape == (50, 10) and xte.shape == (30, 10) and data["x_train"].dtype == np.float32
    np.testing.assert_allclose(xtr.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(xtr.var(0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.cov(xtr.T, bias=True), np.eye(10), atol=1e-5)  # whitened

    # rebuild the rows the generator chose (same seeded permutations) and redo the map
    rng = np.random.default_rng(3)
    itr = rng.permutation(80)[:50]
    ite = rng.permutation(40)[:30]
    raw_tr = arrays["train_images"][itr].reshape(50, -1) / 255.0
    raw_te = arrays["test_images"][ite].reshape(30, -1) / 255.0
    np.testing.assert_array_equal(data["y_train"], arrays["train_labels"][itr] % 2)
    np.testing.assert_array_equal(data["y_test"], arrays["test_labels"][ite] % 2)
    # independent PCA: eigenvectors of the training covariance (signs are a convention)
    mean = raw_tr.mean(0)
    evals, evecs = np.linalg.eigh(np.cov(raw_tr.T, bias=True))
    top = evecs[:, ::-1][:, :10]
    ref_te = (raw_te - mean) @ top / np.sqrt(evals[::-1][:10])
    signs = np.sign(np.sum(ref_te * xte, axis=0))
    np.testing.assert_allclose(xte, ref_te * signs, rtol=1e-4, atol=1e-4)
    # the test set went through the *train* statistics: it is not centred / whitened itself
    assert np.abs(xte.mean(0)).max() > 0.5
    meta = data["meta"]
    assert meta["source"].startswith("MNIST (IDX files at ") and str(tmp_path) in meta["source"]
    assert meta["pca_components"] == 10 and len(meta["explained_variance_ratio"]) == 10


def test_mnist_parity_raw_pixels_deterministic_and_storable(tmp_path):
    arrays = make_mnist_dir(tmp_path / "m", compress=True)
    params = {"generator": "mnist_parity", "mnist_dir": str(tmp_path / "m"), "n_train": 20,
              "n_test": 10, "pca_components": None, "seed": 0}
    a, b = generate(params), generate(params)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["x_train"].shape == (20, 784) and a["meta"]["image_shape"] == [28, 28]
    assert a["x_train"].min() >= 0.0 and a["x_train"].max() <= 1.0
    rng = np.random.default_rng(0)
    itr = rng.permutation(60)[:20]
    np.testing.assert_allclose(
        a["x_train"], arrays["train_images"][itr].reshape(20, -1) / 255.0, rtol=1e-7
    )
    write_dataset(tmp_path / "ds.h5", a, params)  # meta must be storable as attrs
    back = read_dataset(tmp_path / "ds.h5")
    np.testing.assert_array_equal(back["x_test"], a["x_test"])
    assert "MNIST" in back["attrs"]["generator_meta"]


def test_digits_parity_labels_split_and_pca():
    from sklearn.datasets import load_digits

    digits = load_digits()
    raw = generate({"generator": "digits_parity", "n_train": 300, "n_test": 200,
                    "pca_components": None, "seed": 5})
    assert raw["x_train"].shape == (300, 64) and raw["meta"]["image_shape"] == [8, 8]
    assert raw["meta"]["source"] == "scikit-learn digits (8x8, bundled)"
    perm = np.random.default_rng(5).permutation(1797)
    np.testing.assert_allclose(raw["x_train"], digits.data[perm[:300]] / 16.0, rtol=1e-7)
    np.testing.assert_allclose(raw["x_test"], digits.data[perm[300:500]] / 16.0, rtol=1e-7)
    np.testing.assert_array_equal(raw["y_train"], digits.target[perm[:300]] % 2)
    np.testing.assert_array_equal(raw["y_test"], digits.target[perm[300:500]] % 2)
    assert set(np.unique(raw["y_train"])) == {0, 1}
    assert not set(perm[:300]) & set(perm[300:500])  # disjoint split

    pca = generate({"generator": "digits_parity", "n_train": 300, "n_test": 200,
                    "pca_components": 10, "seed": 5})
    np.testing.assert_array_equal(pca["y_test"], raw["y_test"])
    xtr = pca["x_train"].astype(np.float64)
    np.testing.assert_allclose(xtr.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(xtr.std(0), 1.0, rtol=1e-5)
    # same map as fit_pca_whitening on the raw training pixels, applied to the test pixels
    fit = fit_pca_whitening(raw["x_train"].astype(np.float64), 10)
    ref = (raw["x_test"] - fit["mean"]) @ fit["components"].T / fit["scale"]
    np.testing.assert_allclose(pca["x_test"], ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="1797"):
        generate({"generator": "digits_parity", "n_train": 1500, "n_test": 298, "seed": 0})


def test_parity_labels_and_pca_guards():
    np.testing.assert_array_equal(parity_labels(np.arange(10)), [0, 1] * 5)
    with pytest.raises(ValueError, match="pca_components"):
        fit_pca_whitening(np.random.default_rng(0).normal(size=(5, 8)), 5)


def test_config_d_must_match_the_inputs():
    block = {"generator": "digits_parity", "n_train": 50, "n_test": 20, "seed": 0}
    assert generate({**block, "d": 10, "pca_components": 10})["x_train"].shape == (50, 10)
    assert generate({**block, "d": 64, "pca_components": None})["x_test"].shape == (20, 64)
    with pytest.raises(ValueError, match="d = 784 but"):
        generate({**block, "d": 784, "pca_components": 10})
