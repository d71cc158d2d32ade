"""Issue #25: a dataset file is read only by the config that made it, and no write follows a
symbolic link under the results directory."""

from __future__ import annotations

import os
import shutil

import pytest

from depthlab.data import generate, read_dataset, write_dataset
from depthlab.data.io import check_dataset_config
from depthlab.provenance import (
    InputFileError,
    UnsafeOutputError,
    atomic_output,
    links_under,
    refuse_links,
)

LOCAL = {"generator": "k_local", "k": 1, "d": 4, "indices": "first", "n_train": 20,
         "n_test": 10, "n_classes": 2, "seed": 3}
GLOBAL = {**LOCAL, "generator": "k_global", "seed": 4}


@pytest.fixture
def two_datasets(tmp_path):
    ds = tmp_path / "results" / "datasets"
    ds.mkdir(parents=True)
    for name, spec in (("loc", LOCAL), ("glob", GLOBAL)):
        write_dataset(ds / f"{name}.h5", generate(spec), spec)
    return ds


def test_own_dataset_reads(two_datasets):
    data = read_dataset(two_datasets / "loc.h5", n_train=5, expect=LOCAL)
    assert data["x_train"].shape == (5, 4)


@pytest.mark.parametrize("how", ["copy", "symlink"])
def test_swapped_dataset_is_refused_naming_both(two_datasets, how):
    target = two_datasets / "loc.h5"
    target.unlink()
    if how == "copy":
        shutil.copy(two_datasets / "glob.h5", target)
    else:
        target.symlink_to("glob.h5")
    with pytest.raises(InputFileError) as err:
        read_dataset(target, expect=LOCAL)
    message = str(err.value)
    assert message.startswith(f"{target}: made from another dataset config")
    assert "differs in ['generator', 'seed']" in message
    assert '"generator": "k_global"' in message and '"generator": "k_local"' in message
    # without the expectation (the hash alone) the foreign file would have been read
    assert read_dataset(target)["config"]["generator"] == "k_global"


def test_dataset_from_an_older_config_is_refused(two_datasets):
    newer = {**LOCAL, "n_test": 11}
    with pytest.raises(InputFileError, match=r"differs in \['n_test'\]"):
        check_dataset_config(two_datasets / "loc.h5", newer)


def test_atomic_output_replaces_a_planted_link_not_its_target(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "results" / "x.tsv"
    out.parent.mkdir()
    out.symlink_to(victim)
    with atomic_output(out) as tmp:
        tmp.write_text("result")
    assert victim.read_text() == "precious"
    assert not out.is_symlink() and out.read_text() == "result"


def test_links_under_results_are_refused_naming_them(tmp_path):
    results = tmp_path / "results"
    (results / "benchmarks" / "make_dataset").mkdir(parents=True)
    (results / "datasets").mkdir()
    refuse_links(results)  # none: fine
    refuse_links(tmp_path / "absent")  # no results yet: fine
    bench = results / "benchmarks" / "make_dataset" / "loc.tsv"
    bench.symlink_to(tmp_path / "victim.txt")  # dangling: Snakemake's open() would create it
    (results / "linked_dir").symlink_to(tmp_path, target_is_directory=True)
    assert links_under(results) == [results / "benchmarks" / "make_dataset" / "loc.tsv",
                                    results / "linked_dir"]
    with pytest.raises(UnsafeOutputError) as err:
        refuse_links(results)
    assert f"{bench} -> {tmp_path / 'victim.txt'}" in str(err.value)
    assert "2 symbolic link(s)" in str(err.value)


def test_results_directory_itself_may_be_a_link(tmp_path):
    """A results directory linked to scratch storage is fine; links inside it are not."""
    scratch = tmp_path / "scratch"
    (scratch / "datasets").mkdir(parents=True)
    results = tmp_path / "results"
    results.symlink_to(scratch, target_is_directory=True)
    refuse_links(results)
    os.symlink(scratch / "datasets", scratch / "loop")
    with pytest.raises(UnsafeOutputError, match="loop"):
        refuse_links(results)
