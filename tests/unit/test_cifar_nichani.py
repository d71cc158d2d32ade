"""CIFAR-10 binary batches, numpy-array pickles through the restricted unpickler, class
subsets and downsampling (depthlab.data.cifar), on files this test writes."""

from __future__ import annotations

import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthlab.data.cifar import (
    class_subset,
    downsample,
    read_cifar10,
    restricted_loads,
)

NAMES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _write_binary(root, n=4):
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, name in enumerate(NAMES):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = np.array([(3 * i + j) % 10 for j in range(n)], np.uint8)
        np.concatenate([labels[:, None], data], axis=1).tofile(root / f"{name}.bin")
        out[name] = (data, labels)
    return out


def test_binary_batches_in_either_directory(tmp_path):
    written = _write_binary(tmp_path / "cifar-10-batches-bin")
    for where in (tmp_path, tmp_path / "cifar-10-batches-bin"):
        out = read_cifar10(where, fmt="binary")
        assert out["x_train"].shape == (20, 3, 32, 32) and out["x_train"].dtype == np.uint8
        # record = label byte, then R, G, B planes of 32 x 32 row-major pixels
        np.testing.assert_array_equal(out["x_train"][4, 2],
                                      written["data_batch_2"][0][0, 2048:].reshape(32, 32))
        assert out["y_test"].tolist() == written["test_batch"][1].tolist()


def test_binary_truncated_record_is_an_error(tmp_path):
    _write_binary(tmp_path)
    path = tmp_path / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="3073"):
        read_cifar10(tmp_path, fmt="binary")


def test_restricted_unpickler_reads_arrays_and_refuses_code():
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for protocol in (2, 4, 5):
        back = restricted_loads(pickle.dumps({b"data": arr, b"labels": [1, 2, 3]},
                                             protocol=protocol))
        np.testing.assert_array_equal(back[b"data"], arr)
    for evil in (subprocess.call, pickle.loads, getattr):
        with pytest.raises(pickle.UnpicklingError, match="refused global"):
            restricted_loads(pickle.dumps(evil, protocol=2))


def test_class_subset_is_per_class_seeded_and_relabelled():
    y = np.repeat(np.arange(10), 7)
    x = np.arange(70)[:, None]
    xs, ys = class_subset(x, y, [5, 2], 3, seed=4)
    assert ys.tolist() == [0, 0, 0, 1, 1, 1]
    assert set(y[xs[:3, 0]]) == {5} and set(y[xs[3:, 0]]) == {2}
    again, _ = class_subset(x, y, [5, 2], 3, seed=4)
    other, _ = class_subset(x, y, [5, 2], 3, seed=5)
    np.testing.assert_array_equal(xs, again)
    assert not np.array_equal(xs, other)
    with pytest.raises(ValueError, match="8 rows asked"):
        class_subset(x, y, [1], 8, seed=0)


def test_downsample_is_area_interpolation():
    x = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32)).astype(np.uint8)
    ref = F.interpolate(torch.as_tensor(x, dtype=torch.float64), size=(16, 16), mode="area")
    np.testing.assert_allclose(downsample(x, 16), ref.numpy(), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="whole blocks"):
        downsample(x, 12)


def test_yang_normalisation_and_cifar_autoencoder_images(tmp_path):
    """Yang's fixed constants for the ResNet data; Fig. 8's conv AE on CIFAR-10 images
    (a seeded choice of training images / 255, downsampled): the image_sample dataset, its
    CIFAR batches make_dataset inputs, read by the linear job from the dataset's arrays."""
    from depthlab.data import generate
    from depthlab.data.sources import data_source, dataset_sources
    from depthlab.studies.nichani.data import (
        YANG_MEAN,
        YANG_STD,
        ae_images,
        classification_data,
    )
    from depthlab.studies.nichani.runs import linear_inputs

    written = _write_binary(tmp_path, n=10)
    spec = {"source": "cifar10", "cifar_dir": str(tmp_path), "cifar_format": "binary",
            "classes": list(range(10)), "n_train_per_class": 5, "n_test_per_class": 1,
            "seed": 0, "image_size": 32, "normalize": "yang"}
    d = classification_data(spec)
    raw = read_cifar10(tmp_path, "binary")
    first = raw["x_train"][raw["y_train"] == 0]
    hit = [np.allclose(d["x_train"][0], (f / 255.0 - np.reshape(YANG_MEAN, (3, 1, 1)))
                       / np.reshape(YANG_STD, (3, 1, 1))) for f in first]
    assert any(hit)
    x = ae_images("cifar10", 3, seed=2, cifar_dir=str(tmp_path), cifar_format="binary",
                  size=16)
    assert x.shape == (3, 3, 16, 16) and 0 <= x.min() and x.max() <= 1
    pool = downsample(raw["x_train"], 16) / 255.0
    assert all(any(np.array_equal(img, p) for p in pool) for img in x)
    ds = {"generator": "image_sample", "source": "cifar10", "cifar_dir": str(tmp_path),
          "cifar_format": "binary", "n_images": 2, "seed": 1, "image_size": 8}
    made = generate(ds)
    assert made["x_train"].shape == (2, 3, 8, 8) and made["x_test"].shape == (0, 3, 8, 8)
    # the seed's first draw is the permutation the images are chosen by
    pick = raw["x_train"][np.random.default_rng(1).permutation(len(raw["x_train"]))[:2]]
    np.testing.assert_array_equal(made["x_train"], downsample(pick, 8) / 255.0)
    # the batches are the make_dataset job's inputs (their SHA-256 recorded in the file)
    srcs = dataset_sources(ds)
    assert srcs and {Path(f).stem for f in srcs} <= set(written)
    assert data_source(ds) == "CIFAR-10 (local files)"
    task = {"name": "ae", "task": "conv_ae", "dataset": "ae", **ds}
    back = linear_inputs(task, made["x_train"])
    assert back["x_train"] is back["y_train"] and back["x_train"].shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="reads its images from its dataset file"):
        linear_inputs(task)
    assert written  # the batches this test wrote are the ones read
