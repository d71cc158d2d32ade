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
    bad(lambda s: s["data"].update(source="mnist"), r"studies\.lee\.data\.mnist_dir")
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
    assert sorted(lee_grid.jobs(study)) == ["g0_deep_narrow_D20", "g1_he_uniform_D20",
                                            "g1_torch_default_D20", "g2_deep_narrow_D6",
                                            "g3_torch_default_D6"]
    study["training"]["pack"] = False
    assert len(lee_grid.jobs(study)) == 7
