"""The image datasets of the Lee, Xiao and Nichani studies in the shared dataset system:
named by the studies, made by the generators of depthlab.data.images, written like every
dataset (content hash, config) and refused on read when replaced or edited."""

import copy
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from depthlab import config as dlc
from depthlab.data import generate, write_dataset
from depthlab.data.images import dataset_rows
from depthlab.data.io import dataset_arrays, read_dataset
from depthlab.data.refs import dataset_names, fill_dataset_refs
from depthlab.data.sources import data_source
from depthlab.provenance import InputFileError
from depthlab.studies.xiao.data import data_block, gaussian_images, read_set

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "data"


def _config(name):
    cfg = yaml.safe_load((TINY / f"tiny_{name}.yaml").read_text())
    dlc.check_config(cfg, missing_data="warn")
    return cfg


def _write_all(cfg, root):
    """Every dataset of ``cfg`` as the make_dataset rule writes it."""
    root.mkdir(exist_ok=True)
    for name, spec in cfg["datasets"].items():
        write_dataset(root / f"{name}.h5", generate(spec), spec)
    return root


def test_lee_dataset_replaced_or_edited_is_refused_naming_the_file(tmp_path):
    cfg = _config("lee")
    study = cfg["studies"]["lee"]
    root = _write_all(cfg, tmp_path / "datasets")
    path = root / "digits_tiny.h5"
    arrays, attrs = dataset_arrays(path, datasets=cfg["datasets"])
    assert arrays["x_train"].shape == (200, 64) and attrs["n_classes"] == 10
    assert attrs["data_source"] == "scikit-learn digits (8x8, bundled), not MNIST"
    dataset_arrays(path, data=study["data"])  # the study's filled data block: the same file
    # another dataset's file under this name (same generator, another seed)
    other = dict(cfg["datasets"]["digits_tiny"], seed=4)
    write_dataset(tmp_path / "other.h5", generate(other), other)
    shutil.copy(tmp_path / "other.h5", path)
    for kw in ({"datasets": cfg["datasets"]}, {"data": study["data"]}):
        with pytest.raises(InputFileError,
                           match=rf"{re.escape(str(path))}: made from another dataset config "
                                 r".*\(differs in \['seed'\]\)"):
            dataset_arrays(path, **kw)
    # edited in place (labels changed, attributes and hash kept)
    _write_all(cfg, root)
    with h5py.File(path, "r+") as f:
        f["train/y"][0] = (f["train/y"][0] + 1) % 10
    with pytest.raises(InputFileError, match=rf"{re.escape(str(path))}: content hash mismatch"):
        dataset_arrays(path, datasets=cfg["datasets"])


def test_nichani_dataset_replaced_is_refused_naming_the_file(tmp_path):
    cfg = _config("nichani")
    study = cfg["studies"]["nichani"]
    root = _write_all(cfg, tmp_path / "datasets")
    path = root / "digits_3x10.h5"
    arrays, attrs = dataset_arrays(path, data=study["data"])
    assert arrays["x_train"].shape == (12, 1, 8, 8) and arrays["x_test"].shape == (18, 1, 8, 8)
    assert arrays["y_train"].tolist() == [0] * 4 + [1] * 4 + [2] * 4  # class-ordered rows
    assert attrs["n_classes"] == 3 and attrs["image_shape"] == "[1, 8, 8]"
    assert "instead of CIFAR-10" in attrs["data_source"]
    other = dict(cfg["datasets"]["digits_3x10"], classes=[1, 2, 3])
    write_dataset(path, generate(other), other)
    with pytest.raises(InputFileError, match=rf"{re.escape(str(path))}: .*\['classes'\]"):
        dataset_arrays(path, data=study["data"])


def test_xiao_dataset_replaced_or_edited_is_refused_naming_the_file(tmp_path):
    cfg = _config("xiao")
    study = cfg["studies"]["xiao"]
    root = _write_all(cfg, tmp_path / "datasets")
    cliff = root / "digits_cliff.h5"
    s = read_set(cliff, study["cliff"])
    # the study's targets: one-hot minus the training class frequencies (1^T Y = 0)
    np.testing.assert_allclose(s["y_train"].sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_array_equal(s["y_train"] + s["class_freq"],
                                  np.eye(10)[s["labels_train"]])
    synth = read_set(root / "gaussian_m6_k3.h5", data_block(study, "synth_m6_k3"))
    np.testing.assert_array_equal(synth["x"], gaussian_images(6, 3, 6003))
    shutil.copy(root / "digits_plane.h5", cliff)  # the plane's set in the cliff's place
    with pytest.raises(InputFileError, match=rf"{re.escape(str(cliff))}: made from another"):
        read_set(cliff, study["cliff"])
    _write_all(cfg, root)
    with h5py.File(cliff, "r+") as f:
        f["train/x"][0] = 0.0
    with pytest.raises(InputFileError, match=rf"{re.escape(str(cliff))}: content hash"):
        read_set(cliff, study["cliff"])


def test_studies_name_datasets_and_share_their_files():
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    dlc.check_config(cfg, missing_data="warn")
    named = {n: dataset_names(s) for n, s in cfg["studies"].items()
             if s["kind"] in ("lee", "xiao", "nichani")}
    assert named["xiao"] == ["gaussian_m12_k6", "gaussian_m12_k10", "gaussian_m20_k6",
                             "gaussian_m20_k10", "cifar_centred_2048", "cifar_centred_16000",
                             "cifar_centred_pool4", "cifar_centred_1000"]
    nichani = [d for n, ds in named.items() if n.startswith("nichani") for d in ds]
    # 13 Nichani studies' data and the 2 autoencoder image sets of nichani_cifar10's conv_ae
    # tasks, 13 datasets: CIFAR-10 (ImageNet32) decoded once per dataset
    assert len(nichani) == 15 and len(set(nichani)) == 13
    assert named["nichani_cifar10"] == [named["nichani_cifar10_w32"][0], "cifar_ae_s16_n1",
                                        "cifar_ae_s16_n5"]


def test_fill_dataset_refs_conflicts_and_unknown_names_name_the_key():
    datasets = {"d": {"generator": "pixels", "source": "digits", "n_train": 5, "n_test": 5,
                      "seed": 0}}
    study = {"kind": "lee", "data": {"dataset": "d", "scalar_target": False}}
    fill_dataset_refs("studies.s", study, datasets)
    again = copy.deepcopy(study)
    fill_dataset_refs("studies.s", again, datasets)
    assert again == study and study["data"]["n_train"] == 5  # idempotent
    study["data"]["seed"] = 1
    with pytest.raises(dlc.ConfigError, match=r"studies\.s\.data\.seed = 1, but dataset 'd'"):
        fill_dataset_refs("studies.s", study, datasets)
    with pytest.raises(dlc.ConfigError, match=r"studies\.s\.data\.dataset: no dataset 'e'"):
        fill_dataset_refs("studies.s", {"data": {"dataset": "e"}}, datasets)
    # a study's own top-level `dataset` (Geiger) names a dataset without being filled
    geiger = {"kind": "geiger", "dataset": "d"}
    fill_dataset_refs("studies.g", geiger, datasets)
    assert geiger == {"kind": "geiger", "dataset": "d"}


def test_image_generators():
    px = generate({"generator": "pixels", "source": "digits", "classes": [0, 1],
                   "n_train": 100, "n_test": 50, "seed": 2, "input_shift": 0.25})
    assert set(np.unique(px["y_train"])) == {0, 1} and px["meta"]["n_classes"] == 2
    assert 0.25 <= px["x_train"].min() and px["x_train"].max() <= 1.0  # shifted to > 0
    ci = generate({"generator": "centred_images", "source": "digits", "n_train": 64,
                   "n_test": 32, "image_pool": 2, "seed": 0})
    assert ci["x_train"].shape == (64, 1, 4, 4)
    np.testing.assert_allclose((ci["x_train"] ** 2).mean(axis=(1, 2, 3)), 1.0)
    gi = generate({"generator": "gaussian_images", "n_train": 5, "image_size": 3,
                   "channels": 3, "seed": 7})
    assert gi["x_test"].shape == (0, 3, 3, 3)
    np.testing.assert_allclose((gi["x_train"] ** 2).mean(axis=1), 1.0)
    spec = {"generator": "class_images", "source": "digits", "classes": [7, 1],
            "n_train_per_class": 3, "n_test_per_class": 2, "seed": 0}
    assert dataset_rows(spec) == (6, 4)
    assert generate(spec)["y_test"].tolist() == [0, 0, 1, 1]


def test_one_digits_loader_and_one_data_source():
    """scikit-learn's digits are loaded in one place; where a dataset comes from is said by
    one function (the cube re-exports it)."""
    src = REPO / "src"
    loads = [p for p in src.rglob("*.py") if "load_digits" in p.read_text()]
    assert [p.relative_to(src).as_posix() for p in loads] == ["depthlab/data/digits.py"]
    defs = [p for p in src.rglob("*.py") if "def data_source(" in p.read_text()]
    assert [p.relative_to(src).as_posix() for p in defs] == ["depthlab/data/sources.py"]
    from depthlab import cube

    assert cube.data_source is data_source
    assert data_source({"generator": "class_images", "source": "imagenet32"}).startswith(
        "ImageNet32")


def test_a_study_dataset_without_its_content_hash_is_refused(tmp_path):
    """A study's dataset file without its content hash (not made by make_dataset) is refused."""
    cfg = _config("lee")
    root = _write_all(cfg, tmp_path / "datasets")
    path = root / "digits_tiny.h5"
    with h5py.File(path, "r+") as f:
        del f.attrs["content_hash"]
    with pytest.raises(InputFileError, match=rf"{re.escape(str(path))}: no content_hash"):
        read_dataset(path)
