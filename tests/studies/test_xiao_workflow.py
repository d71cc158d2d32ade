"""The Xiao study through the real pipeline (Snakemake, data, sweeps, finite nets, cube,
figures, Table 1, claims) on tests/data/tiny_xiao.yaml, plus its config checks."""

import copy
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake

from depthlab import config as dlc
from depthlab.claims import VERDICTS, read_claims
from depthlab.cube import read_cube
from depthlab.kernels.phase import critical_w_var

TINY = REPO / "tests" / "data" / "tiny_xiao.yaml"


@pytest.fixture(scope="module")
def tiny():
    return yaml.safe_load(TINY.read_text())


@pytest.fixture(scope="module")
def xiao_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("xiao")
    shutil.copy(TINY, work / "tiny_xiao.yaml")
    run_snakemake("--cores", "2", "--configfile", "tiny_xiao.yaml", cwd=work)
    return work / "results" / "xiao"


def test_cube(xiao_run, tiny):
    cube = read_cube(xiao_run / "cube.nc")
    study = tiny["studies"]["xiao"]
    assert "digits" in cube.attrs["data_source"] and "CIFAR-10" in cube.attrs["data_source"]
    # the critical sigma_w^2 is computed, never typed in
    assert float(cube.w_phase.values[1]) == pytest.approx(critical_w_var(0.1849, "erf"))
    assert list(cube.w_phase_phase.values) == ["ordered", "critical", "chaotic"]
    # CNN-P off the critical line stops at cnn_p_max_depth
    k = cube.phase_kappa.sel(size="m6k3", arch="cnn_p")
    assert np.isnan(k.sel(w_phase=cube.w_phase[0], depth_phase=60))
    assert np.isfinite(k.sel(w_phase=cube.w_phase[1], depth_phase=60))
    # eta_trainer = n * eta_theory (the trainer's (1/2n) normalisation)
    n = study["plane"]["n_train"]
    np.testing.assert_allclose(cube.plane_eta_trainer, n * cube.plane_eta_theory)
    st = set(cube.cliff_status.values.ravel().tolist())
    assert st <= {"converged", "max_steps", "diverged"}
    assert "diverged" in st  # rho = 4 is far beyond the edge
    assert cube.cliff_best_train_acc.notnull().all()


def test_table1_and_claims(xiao_run):
    table = pd.read_csv(xiao_run / "table1.csv")
    crit = table[(table.phase == "critical") & (table.quantity == "kappa")]
    assert set(crit.arch) == {"fc", "cnn_p"}
    assert crit[crit.arch == "cnn_p"].prediction.item() == (6 * 9 + 2) / 2
    claims = read_claims(xiao_run / "claims.csv")
    assert set(claims.verdict) <= set(VERDICTS)
    kinds = set(claims.kind)
    assert {"chaotic_kappa", "critical_kappa", "ordered_rate", "lr_cliff", "plane_xi",
            "pooling"} <= kinds
    chaotic = claims[claims.kind == "chaotic_kappa"]
    assert (chaotic[chaotic.claim_id.str.startswith("chaotic_kappa_fc")].verdict == "holds").all()
    for fig in ("fig1", "fig1e", "fig1f", "fig2", "fig3_top", "fig3_bottom"):
        assert (xiao_run / "figures" / f"{fig}.png").stat().st_size > 10_000


def test_config_checks(tiny):
    bad = copy.deepcopy(tiny)
    bad["studies"]["xiao"]["data"] = {"source": "cifar10"}
    with pytest.raises(dlc.ConfigError, match="cifar_dir"):
        dlc.check_config(bad)
    bad = copy.deepcopy(tiny)
    bad["studies"]["xiao"]["phase"]["dropout"]["m"] = 7
    with pytest.raises(dlc.ConfigError, match="dropout.m"):
        dlc.check_config(bad)
    bad = copy.deepcopy(tiny)
    bad["studies"]["xiao"]["plane"]["w_vars"] = ["chaos"]
    with pytest.raises(dlc.ConfigError, match="w_vars"):
        dlc.check_config(bad)
