"""Issue #25 on real runs: a dataset file replaced by another dataset's file (copy or link) is
refused by the job that reads it, naming the file; a benchmark file planted as a symbolic link
stops the run before any job, its target untouched."""

from __future__ import annotations

import shutil

import pytest
from conftest import run_snakemake

CONFIG = """
results: results
datasets:
  loc: {generator: k_local, k: 1, d: 4, n_train: 20, n_test: 20, seed: 3}
  glob: {generator: k_global, k: 1, d: 4, n_train: 20, n_test: 20, seed: 4}
studies:
  small:
    kind: mori_ueda
    grids:
      - {datasets: [loc, glob], n_train: [20], depth: [0, 1], width: [4], lr: [0.1], seeds: [0]}
    summary: {shallow: 0, deep: 1}
    training: {batch_size: 10, check_every: 2, max_epochs: 2, checkpoint_every: 0,
               device: cpu}
    figures:
      figa: {plot: test_error_vs_n, datasets: [loc, glob]}
"""


@pytest.mark.parametrize("how", ["copy", "symlink"])
def test_swapped_dataset_file_is_refused_by_the_job(tmp_path, how):
    (tmp_path / "c.yaml").write_text(CONFIG)
    datasets = tmp_path / "results" / "datasets"
    run_snakemake("--cores", "1", "results/datasets/loc.h5", "results/datasets/glob.h5",
                  "--configfile", "c.yaml", cwd=tmp_path)
    (datasets / "loc.h5").unlink()
    if how == "copy":
        shutil.copy(datasets / "glob.h5", datasets / "loc.h5")
        proc = run_snakemake("--cores", "1", "--configfile", "c.yaml", cwd=tmp_path,
                             check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0
        logs = "".join(p.read_text() for p in (tmp_path / "results" / "logs").rglob("*.log"))
        assert f"{'results/datasets/loc.h5'}: made from another dataset config" in logs + out, (
            out[-3000:])
        assert "differs in ['generator', 'seed']" in logs + out
        assert not list((tmp_path / "results" / "small" / "runs" / "loc").rglob("*.h5"))
    else:  # a link under results/ stops the run before any job
        (datasets / "loc.h5").symlink_to("glob.h5")
        proc = run_snakemake("--cores", "1", "--configfile", "c.yaml", cwd=tmp_path,
                             check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "results/datasets/loc.h5 -> glob.h5" in out, out[-3000:]
        assert not (tmp_path / "results" / "small").exists()


def test_planted_benchmark_link_stops_the_run_and_spares_its_target(tmp_path):
    (tmp_path / "c.yaml").write_text(CONFIG)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    bench = tmp_path / "results" / "benchmarks" / "make_dataset" / "datasets" / "loc.tsv"
    bench.parent.mkdir(parents=True)
    bench.symlink_to(victim)
    proc = run_snakemake("--cores", "1", "--configfile", "c.yaml", cwd=tmp_path, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{bench.relative_to(tmp_path)} -> {victim}" in out, out[-3000:]
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "results" / "datasets").exists()
    # a dry run writes nothing and is not refused
    run_snakemake("-n", "--configfile", "c.yaml", cwd=tmp_path)
