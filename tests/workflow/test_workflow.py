"""The real pipeline: real Snakemake, real HDF5, real training, on tiny configs."""

import json

import h5py
import numpy as np
import pytest
import xarray as xr
from conftest import REPO, copy_workflow, run_snakemake


def test_lint_is_clean(tmp_path):
    proc = run_snakemake("--lint", cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("configfile", [None, "config/paper.yaml"])
def test_dry_run_default_and_paper(configfile, tmp_path):
    args = ["-n", "--quiet", "rules", "--cores", "2"]
    if configfile:
        args += ["--configfile", str(REPO / configfile)]
    proc = run_snakemake(*args, cwd=tmp_path)
    assert "mori_ueda_train" in proc.stdout and "mori_ueda_fig2" in proc.stdout
    if configfile:
        # Every figure of the paper has its rule, and Fig. 2's grid is all there:
        # 4 labels x 6 N x 2 depths x 3 widths, seeds packed into one job per cell.
        for fig in ("fig1", "fig2", "fig3", "fig4a", "fig4b", "fig5", "figS1", "figS2"):
            assert f"mori_ueda_{fig} " in proc.stdout
        counts = dict(line.split()[:2] for line in proc.stdout.splitlines()
                      if len(line.split()) == 2 and line.split()[1].isdigit())
        assert int(counts["mori_ueda_train"]) >= 4 * 6 * 2 * 3
        # Geiger: setup (A) over 11 sqrt(h) alpha x 6 widths x 10 seeds at L = 5 (plus the
        # fixed-alpha, L = 2, ReLU and CNN grids), every figure and Table 1
        for fig in ("fig1a", "fig1b", "fig1c", "fig1d", "fig2a", "fig2b", "fig2c", "fig2d",
                    "fig3a", "fig3b", "fig3c", "fig6", "fig7", "fig9", "table1"):
            assert f"geiger_{fig} " in proc.stdout
        assert int(counts["geiger_train"]) >= 11 * 6 * 10


def test_slurm_profile_dry_run(tmp_path):
    proc = run_snakemake("--profile", str(REPO / "slurm"), "-n", cwd=tmp_path)
    assert "mori_ueda_fig2" in proc.stdout


@pytest.mark.slow
def test_end_to_end_tiny(tmp_path, tiny_config):
    wf = copy_workflow(tmp_path / "wf")
    work = tmp_path / "work"
    work.mkdir()

    def smk(*args, cwd=work):
        return run_snakemake(*args, "--configfile", str(tiny_config), cwd=cwd, workflow=wf)

    smk("--cores", "2")
    res = work / "results"
    # every figure came out readable (no legend over data, no tick labels running together)
    fig_logs = list((res / "logs" / "tiny" / "figures").glob("*.log"))
    assert fig_logs and not [p.name for p in fig_logs if "readability:" in p.read_text()]
    cube = xr.open_dataset(res / "tiny" / "cube.nc", engine="h5netcdf").load()
    assert dict(cube.sizes) == {"dataset": 2, "n_train": 2, "depth": 2, "width": 1, "lr": 4,
                                "seed": 2, "kernel_depth": 2, "v": 4, "label_dataset": 2}
    run = cube["status"] != "not_run"
    assert set(np.unique(cube["status"].values[run.values])) <= {"converged", "max_epochs",
                                                                 "diverged"}
    assert int(run.sum()) == 2 * 2 * 2 * 2 + 2 + 4  # the union of the three grids
    trained = cube["test_error"].where(run)
    assert np.all(np.isfinite(trained.values[run.values]))
    assert np.all((trained.values[run.values] >= 0) & (trained.values[run.values] <= 1))

    # lr: [cv] -> a cached search whose choice the training used (cube lr coordinate 0).
    from depthlab.studies.mori_ueda.lr_search import read_lr_search

    search = read_lr_search(res / "tiny" / "lr_search" / "local1" / "N60" / "L2_H32.h5")
    assert 0.01 <= search["lr"] <= 0.5 and len(search["trace"]) == 2
    assert all(len(t["fold_errors"]) == 2 for t in search["trace"])
    used = cube["lr_used"].sel(dataset="local1", n_train=60, depth=2, lr=0.0).values
    np.testing.assert_array_equal(used.ravel(), search["lr"])

    # Local stability of trained nets and of the label rules themselves.
    stab = cube["local_stability"].sel(dataset="local1", n_train=120, depth=2, lr=0.1)
    assert np.all(stab.sel(v=0.0) == 1.0) and np.all(stab.diff("v") <= 1e-12)
    # The 1-local rule sign(x_1) is v-stable iff |x_1| > v: about 5% of points at v = 2.
    label = cube["label_stability"].sel(label_dataset="local1")
    assert float(label.sel(v=0.0)) == 1.0 and float(label.sel(v=2.0)) < 0.12
    # An easy 1-local label is learnt far better than chance by nets and the NTK alike.
    assert float(cube["test_error"].sel(dataset="local1", n_train=120).mean()) < 0.3
    assert float(cube["ntk_test_error"].sel(dataset="local1", n_train=120).max()) < 0.3
    np.testing.assert_array_equal(cube["ntk_train_error"].values, 0.0)  # interpolates
    assert cube["test_error"].attrs["units"] == "1"
    assert json.loads(cube.attrs["config"])["study"]["kind"] == "mori_ueda"
    assert "torch" in json.loads(cube.attrs["software_versions"])
    assert "synthetic" in cube.attrs["data_sources"]
    for name in ("fig1", "fig2", "fig3", "fig4a", "fig5"):
        for ext in ("pdf", "png"):
            assert (res / "tiny" / "figures" / f"{name}.{ext}").stat().st_size > 5000
    summary = (res / "tiny" / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("figure,dataset") and len(summary) > 1
    with h5py.File(res / "datasets" / "local1.h5") as f:
        assert f.attrs["seed"] == 1 and len(f.attrs["content_hash"]) == 64
    assert not list(res.rglob("*.tmp")), "temporary files left behind"
    assert not list((res / "tiny" / "checkpoints").rglob("*.pt")), "checkpoints not cleaned"
    for log in (res / "logs" / "tiny" / "train").rglob("*.log"):
        assert "epoch" in log.read_text()

    # `snakemake --report` collects every figure with its caption.
    smk("--report", str(work / "report.html"))
    report = (work / "report.html").read_text(errors="ignore")
    for name in ("fig1", "fig2", "fig3", "fig4a", "fig5"):
        assert f"{name}.png" in report

    # Spectra are their own target, computed from the cached Gram only.
    spectrum = res / "kernels" / "local1" / "ntk_mu" / "L3" / "spectrum_N120.h5"
    plan = smk("-n", "--quiet", "rules", "--cores", "1", str(spectrum.relative_to(work))).stdout
    assert "kernel_spectrum" in plan and "\ngram " not in plan
    smk("--cores", "1", str(spectrum.relative_to(work)))
    with h5py.File(spectrum) as f:
        ntk = dict(f["ntk"].attrs)
        assert f["ntk/eigenvalues"].shape == (120,)
    assert ntk["lambda_max"] >= ntk["lambda_bulk"] >= ntk["lambda_min"] > 0
    assert ntk["eta_theory"] == 2 / ntk["lambda_max"]

    # Editing figure code reruns the figure rule only.
    assert "Nothing to be done" in smk("-n", "--cores", "1").stdout
    plotting = wf / "src" / "depthlab" / "plotting.py"
    plotting.write_text(plotting.read_text() + "\n# a cosmetic edit\n")
    plan = smk("-n", "--quiet", "rules", "--cores", "1").stdout
    assert "mori_ueda_fig2" in plan
    for rule in ("mori_ueda_train", "mori_ueda_select_lr", "gram", "kernel_regression",
                 "make_dataset", "mori_ueda_cube"):
        assert f"\n{rule} " not in plan, plan

    # Same config, fresh directory: identical datasets and (on CPU) identical numbers.
    again = tmp_path / "again"
    again.mkdir()
    smk("--cores", "2", cwd=again)
    cube2 = xr.open_dataset(again / "results" / "tiny" / "cube.nc", engine="h5netcdf").load()
    for var in ("test_error", "train_error", "epochs", "final_loss", "ntk_test_error"):
        np.testing.assert_array_equal(cube[var].values, cube2[var].values)
