"""Raw source files are rule inputs: a dataset made from real MNIST records the SHA-256 of the
IDX files it was read from, and replacing one of them rebuilds the dataset (never a silent
reuse of a dataset made from other files).

Runs on the real MNIST files of ../shared/data/mnist (copied into the test's directory so
that the test can replace one); skipped where that directory is absent."""

from __future__ import annotations

import gzip
import shutil

import h5py
import pytest
import yaml
from conftest import REPO, run_snakemake

from depthlab.provenance import file_sha256

MNIST = REPO.parent / "shared" / "data" / "mnist"
pytestmark = pytest.mark.skipif(not (MNIST / "train-labels-idx1-ubyte.gz").is_file(),
                                reason=f"real MNIST not present at {MNIST}")


def _config(tmp_path):
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["datasets"]["mnist_par"] = {"generator": "mnist_parity", "mnist_dir": "mnist",
                                    "pca_components": 10, "d": 10, "n_train": 200,
                                    "n_test": 100, "seed": 3}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return ["--configfile", "cfg.yaml"]


def test_replacing_an_idx_file_rebuilds_the_dataset(tmp_path):
    shutil.copytree(MNIST, tmp_path / "mnist")
    args = _config(tmp_path)
    target = "results/datasets/mnist_par.h5"
    run_snakemake(target, "--cores", "1", *args, cwd=tmp_path)
    with h5py.File(tmp_path / target) as f:
        meta = f.attrs["generator_meta"]
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert file_sha256(tmp_path / "mnist" / name) in meta

    quiet = run_snakemake(target, "-n", "--cores", "1", *args, cwd=tmp_path)
    assert "make_dataset" not in quiet.stdout  # nothing changed: nothing to rebuild

    # Another labels file (one label changed) under the same name.
    labels = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[8] = (raw[8] + 1) % 10
    labels.chmod(0o644)
    labels.write_bytes(gzip.compress(bytes(raw)))
    planned = run_snakemake(target, "-n", "--cores", "1", *args, cwd=tmp_path)
    assert "make_dataset" in planned.stdout
    run_snakemake(target, "--cores", "1", *args, cwd=tmp_path)
    with h5py.File(tmp_path / target) as f:
        assert file_sha256(labels) in f.attrs["generator_meta"]
