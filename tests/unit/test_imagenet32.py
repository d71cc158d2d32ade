"""The ImageNet32 reader (depthlab.data.imagenet32) on pickled batches this test writes in
the standard layout (train_data_batch_1..10, val_data; dicts of 'data' uint8 (N, 3072) and
1-based 'labels'): both folder layouts, class subsets, the Nichani data path (1-based
classes relabelled, 16x16), a malicious pickle refused without running, bad files, the
config check of ``imagenet32_dir``."""

from __future__ import annotations

import copy
import os
import pickle

import numpy as np
import pytest
import yaml
from conftest import REPO

from depthlab import config as dlc
from depthlab.data.imagenet32 import (
    IMAGENET32_TRAIN,
    ImageNet32NotFoundError,
    find_imagenet32_files,
    read_imagenet32,
    read_imagenet32_batch,
)
from depthlab.studies.nichani.data import classification_data

N = 30  # images per batch; labels cycle through 1..6


def _write(root, nested=False, protocol=4):
    rng = np.random.default_rng(0)
    train_dir = root / "Imagenet32_train" if nested else root
    val_dir = root / "Imagenet32_val" if nested else root
    train_dir.mkdir(parents=True, exist_ok=True)
    val_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, name in enumerate((*IMAGENET32_TRAIN, "val_data")):
        data = rng.integers(0, 256, size=(N, 3072), dtype=np.uint8)
        labels = [1 + (i + j) % 6 for j in range(N)]
        batch = {"data": data, "labels": labels, "mean": data.mean(0)}
        where = val_dir if name == "val_data" else train_dir
        (where / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        written[name] = (data, labels)
    return written


@pytest.mark.parametrize("nested", [False, True])
def test_reads_all_batches_in_either_layout(tmp_path, nested):
    written = _write(tmp_path, nested)
    out = read_imagenet32(tmp_path)
    assert out["x_train"].shape == (10 * N, 3, 32, 32) and out["x_train"].dtype == np.uint8
    assert out["x_test"].shape == (N, 3, 32, 32)
    # rows in batch order; R, G, B planes of 32 x 32 row-major, as CIFAR
    np.testing.assert_array_equal(out["x_train"][N:2 * N].reshape(N, -1),
                                  written["train_data_batch_2"][0])
    np.testing.assert_array_equal(out["x_test"][3, 1],
                                  written["val_data"][0][3, 1024:2048].reshape(32, 32))
    assert out["y_test"].tolist() == written["val_data"][1]  # 1-based, as stored
    assert out["y_train"].min() == 1


def test_class_subset_while_reading(tmp_path):
    written = _write(tmp_path)
    out = read_imagenet32(tmp_path, classes=[2, 5])
    assert set(out["y_train"].tolist()) == {2, 5} and set(out["y_test"].tolist()) == {2, 5}
    data, labels = written["val_data"]
    rows = [j for j, lab in enumerate(labels) if lab in (2, 5)]
    np.testing.assert_array_equal(out["x_test"].reshape(len(rows), -1), data[rows])


def test_nichani_data_path(tmp_path):
    _write(tmp_path)
    spec = {"source": "imagenet32", "imagenet32_dir": str(tmp_path), "classes": [3, 1],
            "n_train_per_class": 20, "n_test_per_class": 4, "seed": 0, "image_size": 16,
            "normalize": "train_stats"}
    d = classification_data(spec)
    assert d["x_train"].shape == (40, 3, 16, 16) and d["x_test"].shape == (8, 3, 16, 16)
    assert d["y_train"].tolist() == [0] * 20 + [1] * 20  # label 3 -> 0, label 1 -> 1
    assert d["n_classes"] == 2 and "ImageNet32" in d["source"]
    np.testing.assert_allclose(d["x_train"].mean(axis=(0, 2, 3)), 0, atol=1e-12)


def test_malicious_pickle_is_refused_and_not_run(tmp_path):
    _write(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "train_data_batch_3").write_bytes(
        pickle.dumps({"data": Evil(), "labels": [1]}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        read_imagenet32(tmp_path)
    assert not marker.exists()
    # an object of any other class (here numpy's own loader) is refused too
    (tmp_path / "val_data").write_bytes(pickle.dumps(np.load, protocol=4))
    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        read_imagenet32_batch(tmp_path / "val_data")


def test_missing_and_bad_files(tmp_path):
    _write(tmp_path)
    (tmp_path / "train_data_batch_7").unlink()
    with pytest.raises(ImageNet32NotFoundError, match="train_data_batch_7.*" + str(tmp_path)):
        find_imagenet32_files(tmp_path)
    _write(tmp_path)
    bad = {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}  # 0-based: wrong file
    (tmp_path / "val_data").write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match="1-based"):
        read_imagenet32_batch(tmp_path / "val_data")
    (tmp_path / "val_data").write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8),
                                                      "labels": [1, 2]}))
    with pytest.raises(ValueError, match="3072"):
        read_imagenet32_batch(tmp_path / "val_data")
    (tmp_path / "val_data").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="not an ImageNet32 batch"):
        read_imagenet32_batch(tmp_path / "val_data")


def test_config_check_names_the_key(tmp_path):
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny_nichani.yaml").read_text())
    # the study names its dataset; the dataset (datasets.digits_3x10) says where it comes from
    data = cfg["datasets"]["digits_3x10"]
    data.update(source="imagenet32", classes=[1, 2, 3])
    c = copy.deepcopy(cfg)
    with pytest.raises(dlc.ConfigError, match=r"datasets\.digits_3x10\.imagenet32_dir"):
        dlc.check_config(c)
    c = copy.deepcopy(cfg)
    c["datasets"]["digits_3x10"]["imagenet32_dir"] = str(tmp_path)
    with pytest.raises(dlc.ConfigError, match=r"studies\.nichani\.data\.imagenet32_dir.*"
                                              r"train_data_batch_1"):
        dlc.check_config(copy.deepcopy(c))
    warnings = dlc.check_config(copy.deepcopy(c), missing_data="warn")
    assert any("imagenet32_dir" in w for w in warnings)
    _write(tmp_path)
    dlc.check_config(copy.deepcopy(c))
    c["datasets"]["digits_3x10"]["classes"] = [0, 1]
    with pytest.raises(dlc.ConfigError, match=r"studies\.nichani\.data\.classes.*1-based"):
        dlc.check_config(c)
    cfg["datasets"]["digits_3x10"].update(source="digits", classes=[3, 12])
    with pytest.raises(dlc.ConfigError, match=r"datasets\.digits_3x10\.classes.*0\.\.9"):
        dlc.check_config(cfg)


@pytest.mark.parametrize("batch, match", [
    ({"data": np.full((2, 3072), 256, np.int32), "labels": [1, 2]},
     r"val_data: pixel values 256..256 outside 0..255"),
    ({"data": np.zeros((2, 3072), np.float32), "labels": [1, 2]},
     r"val_data: pixels are float32, expected uint8"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 1001]},
     r"val_data: labels must be 1..1000 \(1-based\), got 1..1001"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [1.0, 2.5]},
     r"val_data: labels are float64, expected integers"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [1]},
     r"val_data: 1 labels for 2 images"),
])
def test_values_outside_the_declared_type_name_the_file(tmp_path, batch, match):
    """Pixels outside uint8 0..255 and labels outside 1..1000 or not integers are refused,
    naming the file (issue 25), through the full reader as a study would call it."""
    _write(tmp_path)
    (tmp_path / "val_data").write_bytes(pickle.dumps(batch))
    with pytest.raises(ValueError, match=match):
        read_imagenet32(tmp_path)
