"""The Lee study through the real pipeline (Snakemake, HDF5, packed training, cube,
figures, Table 4.1, claims) on tests/data/tiny_lee.yaml, plus its config checks."""

import copy
import shutil

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake

from depthlab import config as dlc
from depthlab.claims import read_claims
from depthlab.cube import read_cube
from depthlab.studies.lee import grid as lee_grid

TINY = REPO / "tests" / "data" / "tiny_lee.yaml"


@pytest.fixture(scope="module")
def tiny():
    return yaml.safe_load(TINY.read_text())


@pytest.fixture(scope="module")
def lee_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("lee")
    shutil.copy(TINY, work / "tiny_lee.yaml")
    run_snakemake("--cores", "2", "--configfile", "tiny_lee.yaml", cwd=work)
    return work / "results" / "lee"


def test_cube_records_every_run(lee_run, tiny):
    cube = read_cube(lee_run / "cube.nc")
    study = tiny["studies"]["lee"]
    assert cube.sizes["run"] == 1 + 2 * 2 + 1 + 1
    assert sorted(set(cube.arch.values.tolist())) == ["cnn", "mlp"]
    assert "not MNIST" in cube.attrs["data_source"]
    assert set(cube.status.values.astype(str)) <= {"converged", "max_epochs", "diverged"}
    dn = cube.where((cube.init == "deep_narrow") & (cube.arch == "mlp"), drop=True)
    # per-epoch train history, test accuracy every eval_every = 2 epochs (and the last)
    assert np.all(np.isfinite(dn.train_loss.values))
    assert np.isfinite(dn.test_acc.values[0]).tolist() == [False, True, False, True]
    # lr from the stability bound: tau * lambda_max(Theta~inf / N) = 2 * 0.5 = 1 exactly
    tau = 2 * float(dn.lr_used[0]) * 20 * 1.0 / 10
    assert tau * float(cube.lambda_max_inf) == pytest.approx(1.0, rel=1e-12)
    assert float(dn.tau[0]) == pytest.approx(tau, rel=1e-12)
    assert np.isfinite(dn.tau_lambda_max.values).all()
    base = cube.where(cube.init != "deep_narrow", drop=True)
    assert np.all(np.isnan(base.tau.values))
    # the CNN: 12 channels, pool 2, tau = 2 eta D C_L^2 / K, a test accuracy every epoch
    cnn = cube.where((cube.arch == "cnn") & (cube.init == "deep_narrow"), drop=True)
    assert cnn.width.values.tolist() == [12] and cnn.pool.values.tolist() == [2]
    assert float(cnn.tau[0]) == pytest.approx(2 * 1e-3 * 6 * 2.0**2 / 10, rel=1e-12)
    assert np.isfinite(cnn.test_acc.values[0, :2]).all()
    assert np.isfinite(cnn.train_loss.values[0, :2]).all()
    assert set(cnn.status.values.astype(str)) <= {"converged", "max_epochs", "diverged"}
    assert cube.sizes["toy_depth"] == 2 and cube.sizes["spread_depth"] == 3
    assert 0.0 <= float(cube.krr_test_acc) <= 1.0
    assert cube.sizes["epoch"] == max(g["epochs"] for g in study["grids"])


def test_figures_table_and_claims(lee_run, tiny):
    for fig in tiny["studies"]["lee"]["figures"]:
        img = mpimg.imread(lee_run / "figures" / f"{fig}.png")
        assert img.shape[0] > 100 and img.std() > 0.01
    table = pd.read_csv(lee_run / "table41.csv")
    assert table["paper_test_acc"].tolist() == [0.9748, 0.9402, 0.9887]
    assert table["depth"].tolist()[:2] == [20, 6]
    assert table["arch"].tolist() == ["MLP", "CNN", "CNN"]
    assert table["status"].tolist()[2] == "not_run" and np.isnan(table["test_acc"][2])
    claims = read_claims(lee_run / "claims.csv")
    kinds = set(claims["kind"])
    assert {"trains", "baseline_fails", "init_spread", "kernel_change",
            "kernel_regression_limit", "krr_agreement"} <= kinds
    assert set(claims["study"]) == {"lee"}
    ids = set(claims["claim_id"])
    assert {"trains_deep_narrow_cnn_D6_lr0.001", "baseline_fails_cnn_torch_default_D6"} <= ids
    cnn_train = claims[claims["claim_id"] == "trains_deep_narrow_cnn_D6_lr0.001"].iloc[0]
    assert cnn_train["figure"] == "fig4_2b"


def test_config_checks(tiny):
    def bad(mutate, match):
        cfg = copy.deepcopy(tiny)
        mutate(cfg["studies"]["lee"])
        with pytest.raises(dlc.ConfigError, match=match):
            dlc.check_config(cfg)

    bad(lambda s: s["grids"][0].update(width=80), r"studies\.lee\.grids\[0\]\.width")
    bad(lambda s: s["grids"][1].update(lr=[{"stable_fraction": 0.5}]),
        r"studies\.lee\.grids\[1\]\.lr")
    # the study names its dataset; the datasets block defines it (depthlab.data.refs)
    bad(lambda s: s["data"].update(dataset="nope"), r"studies\.lee\.data\.dataset: no dataset")
    bad(lambda s: s["data"].update(n_train=150),
        r"studies\.lee\.data\.n_train = 150, but dataset 'digits_tiny' has n_train = 200")
    cfg = copy.deepcopy(tiny)
    cfg["datasets"]["digits_tiny"]["source"] = "mnist"
    with pytest.raises(dlc.ConfigError, match=r"datasets\.digits_tiny\.mnist_dir"):
        dlc.check_config(cfg)
    bad(lambda s: s["table41"][0].update(grid=5), r"studies\.lee\.table41\[0\]\.grid")
    # CNN checks: channels fixed, pool divides the side, literal lrs only, MLP-only options
    bad(lambda s: s["grids"][2].update(width=20), r"studies\.lee\.grids\[2\]\.width")
    bad(lambda s: s["grids"][2].update(pool=3), r"studies\.lee\.grids\[2\]\.pool")
    bad(lambda s: s["grids"][2].update(lr=[{"stable_fraction": 0.5}]),
        r"studies\.lee\.grids\[2\]\.lr")
    bad(lambda s: s["grids"][0].update(pool=2), r"studies\.lee\.grids\[0\]\.pool")
    bad(lambda s: s["data"].update(scalar_target=True), r"studies\.lee\.data\.scalar_target")
    bad(lambda s: s["table41"][2].pop("note"), r"studies\.lee\.table41\[2\]\.note")
    bad(lambda s: s["grids"].__setitem__(slice(2, 4), []), r"studies\.lee\.figures\.fig4_2b")
    cfg = copy.deepcopy(tiny)
    dlc.check_config(cfg)
    study = cfg["studies"]["lee"]
    assert study["training"]["dtype"] == "float32"  # schema defaults filled in
    # runs are named by what they train (arch, init, depth, a key of the grid's other
    # settings), not by where their grid sits: reordering the grids renames nothing
    jobs = lee_grid.jobs(study)
    assert sorted(name.rsplit("_", 1)[0] for name in jobs) == [
        "cnn_deep_narrow_D6", "cnn_torch_default_D6", "mlp_deep_narrow_D20",
        "mlp_he_uniform_D20", "mlp_torch_default_D20"]
    reordered = copy.deepcopy(study)
    reordered["grids"] = reordered["grids"][::-1]
    reordered["grids"][2]["lr"] = reordered["grids"][2]["lr"][::-1]
    assert {n: [(m.init, m.depth, m.lr_label, m.seed) for m in ms]
            for n, ms in lee_grid.jobs(reordered).items()} == {
        n: [(m.init, m.depth, m.lr_label, m.seed) for m in ms] for n, ms in jobs.items()}
    # one setting of one grid renames that grid's runs only
    longer = copy.deepcopy(study)
    longer["grids"][1]["epochs"] = 3
    assert set(lee_grid.jobs(longer)) ^ set(jobs) == {
        n for n in set(lee_grid.jobs(longer)) | set(jobs) if "_D20_" in n and "deep" not in n}
    study["training"]["pack"] = False
    assert len(lee_grid.jobs(study)) == 7


def _planned(work, config, tmp_name):
    """The jobs (rule: count) `snakemake -n --rerun-triggers mtime params` plans for ``config``
    on the finished run in ``work``; the config file keeps the run's file name (the claims'
    scale is named after it)."""
    sub = work / tmp_name
    sub.mkdir()
    (sub / "tiny_lee.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = run_snakemake("-n", "--rerun-triggers", "mtime", "params", "--configfile",
                         str(sub / "tiny_lee.yaml"), cwd=work)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    stats = text.split("Job stats:", 1)[1].split("total", 1)[0]
    jobs = {}
    for line in stats.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "all":
            jobs[parts[0]] = int(parts[1])
    return jobs


def test_a_title_edit_reruns_that_figure_only(lee_run, tiny):
    """The rerun contract on a finished run, by Snakemake itself (the DAG-level model of
    every kind and both configs is tests/workflow/test_rerun_contract.py)."""
    work = lee_run.parents[1]
    assert _planned(work, tiny, "same") == {}
    edited = copy.deepcopy(tiny)
    edited["studies"]["lee"]["figures"]["fig4_2a"]["title"] = "Fig. 4.2(a), retitled"
    assert _planned(work, edited, "title") == {"lee_fig4_2a": 1}


def test_reordered_grids_retrain_nothing(lee_run, tiny):
    work = lee_run.parents[1]
    reordered = copy.deepcopy(tiny)
    study = reordered["studies"]["lee"]
    n = len(study["grids"])
    study["grids"] = study["grids"][::-1]
    for g in study["grids"]:
        g["init"], g["lr"] = g["init"][::-1], g["lr"][::-1]
    for row in study["table41"]:
        if row["grid"] is not None:
            row["grid"] = n - 1 - row["grid"]
    planned = _planned(work, reordered, "reordered")
    # the cube lists runs in config order and Table 4.1 names grids by position: summaries
    # rerun, no net, kernel or data set
    assert not set(planned) & {"lee_train", "make_dataset", "lee_gram", "lee_kernel", "lee_toy",
                               "lee_ntk_spread_job"}, planned
    assert "lee_cube" in planned


def test_a_figure_named_like_a_rule_fails_at_load_naming_the_key(tmp_path, tiny):
    """Figure `table41` would be rule lee_table41, the table's: refused when the config is
    loaded, with its key, not by Snakemake's CreateRuleException."""
    cfg = copy.deepcopy(tiny)
    cfg["studies"]["lee"]["figures"]["table41"] = {"plot": "lee_toy_fit"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = run_snakemake("-n", "--configfile", "c.yaml", cwd=tmp_path, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "studies.lee.figures.table41" in out and "lee_table41" in out, out[-2000:]
    assert "CreateRuleException" not in out


def test_a_replaced_dataset_file_is_refused_by_the_jobs(lee_run, tiny, tmp_path):
    """The study's dataset is the shared make_dataset file results/datasets/digits_tiny.h5:
    another dataset's file put in its place (here the same generator at another seed) is
    refused by the job reading it, naming the file, never trained on."""
    from depthlab.data import generate, write_dataset

    work = tmp_path / "run"
    shutil.copytree(lee_run.parents[1], work, symlinks=True)
    cfg = copy.deepcopy(tiny)
    dlc.check_config(cfg)
    other = dict(cfg["datasets"]["digits_tiny"], seed=4)
    write_dataset(work / "results" / "datasets" / "digits_tiny.h5", generate(other), other)
    proc = run_snakemake("--cores", "1", "--configfile", "tiny_lee.yaml", "--forcerun",
                         "lee_gram", "results/lee/gram.h5", cwd=work, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "results/datasets/digits_tiny.h5: made from another dataset config" in out, out[-3000:]
