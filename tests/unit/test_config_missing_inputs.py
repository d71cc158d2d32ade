"""Input files a config names (MNIST, CIFAR-10 directories) are checked before any job:
an error naming the key on a real run, a warning in a dry run."""

import copy

import pytest
from conftest import REPO

from depthlab.config import ConfigError, check_config, load_yaml_strict

PAPER = REPO / "config" / "paper.yaml"


@pytest.fixture(scope="module")
def paper():
    return load_yaml_strict(PAPER)


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


@pytest.mark.parametrize("study, key", [("xiao", "plane"), ("nichani_cifar10", "data")])
def test_missing_cifar_dir_is_an_error_on_a_run(paper, study, key, tmp_path):
    cfg = copy.deepcopy(paper)
    mnist = tmp_path / "mnist"  # present (the check only looks for the files), so CIFAR fails
    mnist.mkdir()
    for name in MNIST_FILES:
        (mnist / name).touch()
    for ds in cfg["datasets"].values():
        if "mnist_dir" in ds:
            ds["mnist_dir"] = str(mnist)
    cfg["studies"] = {study: cfg["studies"][study]}
    for ds in cfg["datasets"].values():  # the datasets the studies name say where CIFAR is
        if "cifar_dir" in ds:
            ds["cifar_dir"] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=rf"studies\.{study}\.{key}\.cifar_dir: .*CIFAR-10"):
        check_config(cfg)


def test_a_dry_run_only_warns_about_missing_data(paper, tmp_path, monkeypatch):
    # from an empty directory: a checkout where `make data` filled data/mnist must not hide
    # the warning about the paper config's relative `mnist_dir: data/mnist`
    monkeypatch.chdir(tmp_path)
    warnings = check_config(copy.deepcopy(paper), missing_data="warn")
    assert any(w.startswith("studies.xiao.plane.cifar_dir") for w in warnings)
    assert any(w.startswith("datasets.") and "mnist_dir" in w for w in warnings)
    assert any(w.startswith("studies.lee_deep_narrow.data.mnist_dir") for w in warnings)
