"""Real MNIST end to end: `snakemake data` installs it from a file:// mirror of the shared copy
(../shared/data/mnist beside the repository), then a tiny Geiger and a tiny Lee study run on
it through real Snakemake, configured the way config/real.yaml is used (a second
--configfile merged over the first). Also: the real.yaml overlay itself, dry-run, as
Snakemake merges it and the config checks see it. Skipped where the shared copy is absent.
"""

from __future__ import annotations

import copy
import os
import shutil

import h5py
import numpy as np
import pytest
import yaml
from conftest import REPO, run_snakemake

from depthlab.cube import read_cube
from depthlab.data.fetch import ENV_MIRRORS

SHARED = REPO.parent / "shared" / "data" / "mnist"
pytestmark = pytest.mark.skipif(not (SHARED / "train-images-idx3-ubyte.gz").is_file(),
                                reason=f"no real MNIST at {SHARED} (the shared copy beside "
                                "the checkout)")


@pytest.fixture(scope="module")
def mnist_data(tmp_path_factory):
    """data/ as `snakemake data` fills it, through the workflow's own rule and a mirror
    given the way a user would (relative file:// URL, environment variable)."""
    work = tmp_path_factory.mktemp("fetch")
    os.environ[ENV_MIRRORS] = "file://../shared/data/mnist"
    try:
        proc = run_snakemake("--cores", "1", "data", cwd=work)
    finally:
        del os.environ[ENV_MIRRORS]
    assert (proc.stdout + proc.stderr).count("SHA-256 verified") == 4
    assert sorted(p.name for p in (work / "data" / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte"]
    return work / "data"


def _workdir(tmp_path_factory, name, mnist_data):
    work = tmp_path_factory.mktemp(name)
    (work / "data").symlink_to(mnist_data, target_is_directory=True)
    return work


@pytest.fixture(scope="module")
def geiger_real(tmp_path_factory, mnist_data):
    """tiny_geiger.yaml cut to one packed cell (a feature and a lazy alpha, two seeds) and
    two figures, to stay near a minute on a shared 2-core machine, plus an overlay
    switching the study to real MNIST parity, as config/real.yaml does."""
    work = _workdir(tmp_path_factory, "geiger_real", mnist_data)
    base = yaml.safe_load((REPO / "tests" / "data" / "tiny_geiger.yaml").read_text())
    del base["studies"]["geiger_cnn"], base["datasets"]["digits_raw"]
    study = base["studies"]["geiger"]
    study["grids"] = [{"activation": ["softplus"], "depth": [2], "width": [8],
                       "alpha_sqrt_h": [0.01, 1.0e+4], "seeds": [0, 1]}]
    study["dynamics"]["pack"] = ["alpha", "seed"]
    study.pop("table1")
    study["figures"] = {k: study["figures"][k] for k in ("fig1c", "fig3a")}
    (work / "base.yaml").write_text(yaml.safe_dump(base))
    overlay = {
        "datasets": {"mnist": {"generator": "mnist_parity", "mnist_dir": "data/mnist",
                               "pca_components": 10, "d": 10, "n_train": 40, "n_test": 200,
                               "seed": 11}},
        "studies": {"geiger": {"dataset": "mnist"}},
    }
    (work / "real.yaml").write_text(yaml.safe_dump(overlay))
    proc = run_snakemake("--cores", "2", "--configfile", "base.yaml", "real.yaml", cwd=work,
                         timeout=600)
    return work, proc


def test_tiny_geiger_on_real_mnist(geiger_real):
    work, _ = geiger_real
    results = work / "results"
    # the dataset file was made from the MNIST files (not the digits), and only it was made
    assert sorted(p.name for p in (results / "datasets").glob("*.h5")) == ["mnist.h5"]
    with h5py.File(results / "datasets" / "mnist.h5") as f:
        x, y = f["train/x"][:], f["train/y"][:]
        assert "MNIST" in str(f.attrs["generator_meta"])
    assert x.shape == (40, 10) and set(np.unique(y)) <= {0, 1}
    # train-fitted PCA whitening: unit variance on the training rows
    np.testing.assert_allclose(x.var(axis=0), 1.0, rtol=1e-4)
    cube = read_cube(results / "geiger" / "cube.nc")
    assert "MNIST" in cube.attrs["data_source"] and "digits" not in cube.attrs["data_source"]
    ran = cube["status"] != "not_run"
    errs = cube["test_err"].values[ran.values]
    assert len(errs) == 4 and np.isfinite(errs).all()
    assert (errs < 0.5).any()  # a net beats chance on MNIST parity
    for fig in ("fig1c", "fig3a"):
        assert (results / "geiger" / "figures" / f"{fig}.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def lee_real(tmp_path_factory, mnist_data):
    """tiny_lee.yaml cut to a deep-narrow MLP, one baseline and the deep-narrow CNN (no toy,
    spread or Table 4.1), plus an overlay switching its data to real MNIST (784 inputs, so
    the deep-narrow width is 795) and its CNN to the paper's 4x4 pool (28 -> 7)."""
    work = _workdir(tmp_path_factory, "lee_real", mnist_data)
    base = yaml.safe_load((REPO / "tests" / "data" / "tiny_lee.yaml").read_text())
    study = base["studies"]["lee"]
    for key in ("toy", "spread", "table41"):
        study.pop(key)
    study["grids"] = [
        {"init": ["deep_narrow"], "depth": [20], "lr": [{"stable_fraction": 0.5}],
         "seeds": [0], "epochs": 2},
        {"init": ["torch_default"], "depth": [20], "lr": [0.01], "seeds": [0], "epochs": 2},
        {"arch": "cnn", "pool": 2, "init": ["deep_narrow"], "depth": [6], "C_L": 2.0,
         "rho": 0.5, "lr": [1.0e-3], "seeds": [0], "epochs": 2},
    ]
    study["figures"] = {"fig4_2a": {"plot": "lee_train_curves", "depth": 20}}
    (work / "base.yaml").write_text(yaml.safe_dump(base))
    grids = copy.deepcopy(study["grids"])
    grids[2]["pool"] = 4
    overlay = {
        "datasets": {"mnist_small": {"generator": "pixels", "source": "mnist",
                                     "mnist_dir": "data/mnist", "n_train": 200,
                                     "n_test": 100, "seed": 3}},
        "studies": {"lee": {"data": {"dataset": "mnist_small"}, "grids": grids}},
    }
    (work / "real.yaml").write_text(yaml.safe_dump(overlay))
    run_snakemake("--cores", "2", "--configfile", "base.yaml", "real.yaml", cwd=work,
                  timeout=600)
    return work / "results" / "lee"


def test_tiny_lee_on_real_mnist(lee_real):
    cube = read_cube(lee_real / "cube.nc")
    assert cube.attrs["data_source"] == "MNIST (local IDX files)"
    # the shared dataset file (make_dataset), with the MNIST files' hashes it was made from
    with h5py.File(lee_real.parent / "datasets" / "mnist_small.h5") as f:
        assert f["train/x"].shape == (200, 784) and f["test/x"].shape == (100, 784)
        assert "source_sha256" in f.attrs["generator_meta"]
        x = f["train/x"][:]
    assert 0.0 <= x.min() and x.max() <= 1.0  # MNIST pixels / 255
    mlp = cube.where((cube.arch == "mlp") & (cube.init == "deep_narrow"), drop=True)
    assert mlp.width.values.tolist() == [784 + 10 + 1]  # d + K + 1
    cnn = cube.where((cube.arch == "cnn") & (cube.init == "deep_narrow"), drop=True)
    assert cnn.pool.values.tolist() == [4]
    assert np.isfinite(mlp.train_loss.values[0]).all()
    assert set(cube.status.values.astype(str)) <= {"converged", "max_epochs", "diverged"}
    assert 0.0 <= float(cube.krr_test_acc) <= 1.0
    assert (lee_real / "figures" / "fig4_2a.png").stat().st_size > 10_000
    assert (lee_real / "claims.csv").is_file()


def _dry_real(work, *extra, check=True):
    return run_snakemake("-n", "--cores", "2", "--configfile",
                         str(REPO / "config" / "config.yaml"), str(REPO / "config" / "real.yaml"),
                         *extra, cwd=work, check=check, timeout=300)


def test_the_real_overlay_merges_over_the_laptop_config(tmp_path_factory, mnist_data):
    """`--configfile config/config.yaml config/real.yaml`: the overlay's keys win (results
    tree, Geiger's dataset, Lee's data and grids), the laptop's other studies stay."""
    work = _workdir(tmp_path_factory, "real_dry", mnist_data)
    proc = _dry_real(work)
    out = proc.stdout + proc.stderr
    assert "results/real/datasets/mnist_parity_pca10.h5" in out
    assert "results/real/datasets/digits_parity_pca10.h5" not in out  # unused: not made
    assert "results/real/mori_ueda/" in out and "results/real/xiao/" in out
    assert "lee_deep_narrow/runs/" in out and "_D100_" in out and "_D1000_" not in out
    assert "config warning" not in out


def test_the_real_overlay_without_mnist_names_the_key(tmp_path):
    """No data/mnist: the dry run warns, a real run stops before any job; both name the
    config key and the directory."""
    dry = _dry_real(tmp_path)
    assert "datasets.mnist_parity_pca10.mnist_dir" in dry.stdout + dry.stderr
    real = run_snakemake("--cores", "1", "--configfile", str(REPO / "config" / "config.yaml"),
                         str(REPO / "config" / "real.yaml"), cwd=tmp_path, check=False,
                         timeout=300)
    assert real.returncode != 0
    assert "datasets.mnist_parity_pca10.mnist_dir" in real.stdout + real.stderr
    assert not (tmp_path / "results" / "real" / "datasets").exists()


def test_a_bad_value_in_an_overlay_is_refused_by_the_merged_config_check(tmp_path):
    bad = {"datasets": {"mnist_pixels": {"n_train": -5}}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = run_snakemake("-n", "--configfile", str(REPO / "config" / "config.yaml"),
                         str(REPO / "config" / "real.yaml"), "bad.yaml", cwd=tmp_path,
                         check=False, timeout=300)
    assert proc.returncode != 0
    assert "invalid config: datasets.mnist_pixels.n_train: -5" in proc.stdout + proc.stderr


def test_snakemake_data_offline_fails_listing_the_mirror(tmp_path):
    env_before = os.environ.get(ENV_MIRRORS)
    os.environ[ENV_MIRRORS] = "http://127.0.0.1:9/mnist/"  # discard port: refused
    try:
        proc = run_snakemake("--cores", "1", "data", cwd=tmp_path, check=False, timeout=120)
    finally:
        if env_before is None:
            del os.environ[ENV_MIRRORS]
        else:
            os.environ[ENV_MIRRORS] = env_before
    assert proc.returncode != 0
    assert "http://127.0.0.1:9/mnist/train-images-idx3-ubyte.gz: unreachable" in (
        proc.stdout + proc.stderr)


def test_the_cifar_overlay_switches_xiao_and_nichani(tmp_path_factory, mnist_data):
    """config/real-cifar.yaml over real.yaml (what `make run-real` adds where
    data/cifar-10-batches-py exists), dry-run on CIFAR-shaped python batches written here:
    the merged config passes every check with no missing-data warning."""
    import pickle

    work = _workdir(tmp_path_factory, "real_cifar_dry", mnist_data)
    batches = work / "cifar" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (100, 3072), dtype=np.uint8),
                 b"labels": [i % 10 for i in range(100)]}
        (batches / name).write_bytes(pickle.dumps(batch, protocol=2))
    # data/ is the shared fetched MNIST (read-only to this test): CIFAR goes beside it
    overlay = yaml.safe_load((REPO / "config" / "real-cifar.yaml").read_text())
    for spec in overlay["datasets"].values():  # the CIFAR-10 datasets the studies name
        spec["cifar_dir"] = str(batches)
    (work / "real-cifar.yaml").write_text(yaml.safe_dump(overlay))
    proc = _dry_real(work, "real-cifar.yaml")
    out = proc.stdout + proc.stderr
    assert "config warning" not in out
    for name in ("cifar_centred_256", "cifar_centred_pool8", "cifar_centred_128",
                 "cifar_s8_c10_10x30"):
        assert f"results/real/datasets/{name}.h5" in out
    assert "results/real/datasets/digits_10x40.h5" not in out  # the digits: not made
    assert "results/real/xiao/" in out and "results/real/nichani_cnn/" in out
    # the overlay is in effect: without the batches both studies' keys are named
    shutil.rmtree(batches)
    proc = _dry_real(work, "real-cifar.yaml")
    out = proc.stdout + proc.stderr
    assert "studies.xiao.plane.cifar_dir" in out and "studies.nichani_cnn.data.cifar_dir" in out
