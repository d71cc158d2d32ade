"""The Nichani study through the real pipeline (Snakemake, HDF5, cube, figures, the
critical-depth table, claims) on tests/data/tiny_nichani.yaml; its config checks; the
claims and the critical-depth table on hand-made cubes whose answers are known."""

import copy
import shutil

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from conftest import REPO, run_snakemake

from depthlab import config as dlc
from depthlab.claims import read_claims
from depthlab.cube import read_cube
from depthlab.studies.nichani.critical import critical_table
from depthlab.studies.nichani.paper_claims import claims

TINY = REPO / "tests" / "data" / "tiny_nichani.yaml"


@pytest.fixture(scope="module")
def tiny():
    return yaml.safe_load(TINY.read_text())


@pytest.fixture(scope="module")
def nichani_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("nichani")
    shutil.copy(TINY, work / "tiny_nichani.yaml")
    run_snakemake("--cores", "2", "--configfile", "tiny_nichani.yaml", cwd=work)
    return work / "results" / "nichani"


def test_cube_figures_table_claims(nichani_run, tiny):
    cube = read_cube(nichani_run / "cube.nc")
    assert "instead of CIFAR-10" in cube.attrs["data_source"]
    assert cube.sizes["depth"] == 2 and cube.sizes["seed"] == 2 and cube.sizes["mlp_seed"] == 2
    assert set(cube.fc_status.values.ravel()) <= {"converged", "max_epochs", "diverged"}
    assert np.all(cube.fc_epochs.values <= 3)
    assert list(cube.kernel.values) == ["cntk_gap_fix", "cntk_vanilla", "fc_ntk"]
    gap = cube.sel(kernel="cntk_gap_fix")
    assert np.isnan(gap.k_test_loss.sel(kernel_depth=1)) and int(gap.k_n_test) == 9
    # ridgeless regression interpolates its training set
    assert np.nanmin(cube.k_train_acc.values) == 1.0
    assert np.nanmax(cube.k_jitter_used.values) <= 1e-4
    toy = cube.sel(task="toy")
    assert float(toy.lin_min_norm_norm) == pytest.approx(np.sqrt(2))
    assert float(toy.lin_min_norm_test_acc) == 0.5
    for fig in tiny["studies"]["nichani"]["figures"]:
        img = mpimg.imread(nichani_run / "figures" / f"{fig}.png")
        assert img.shape[0] > 100 and img.std() > 0.01
    table = pd.read_csv(nichani_run / "critical_depths.csv")
    assert table["panel"].tolist()[1:] == ["cntk_gap_fix", "cntk_vanilla", "fc_ntk",
                                           "resnet, width 2, kernel 3"]
    # the ResNet smoke run: one ResNet-10 of width 2, 2 epochs, through the shared trainer
    rn = cube.sel(rn_blocks="1-1-1-1", rn_width=2, rn_kernel=3, rn_seed=0)
    assert int(cube.rn_depth.sel(rn_blocks="1-1-1-1")) == 10
    assert str(rn.rn_status.values) in {"converged", "max_epochs"} and int(rn.rn_epochs) <= 2
    assert np.isfinite(float(rn.rn_test_loss_final)) and 0 < float(rn.rn_n_params)
    # Yang's MSE (mean over the 3 classes) run as the trainer's sum: lr / 3, weight decay x 3
    assert float(rn.rn_lr_used) == pytest.approx(0.1 / 3)
    assert float(rn.rn_weight_decay_used) == pytest.approx(5e-4 * 3)
    assert not (nichani_run / "checkpoints" / "rn_1-1-1-1_w2_k3_s0_s0.pt").exists()
    rows = read_claims(nichani_run / "claims.csv")
    assert {"cntk_u_shape", "fully_conv_past_interpolation", "toy_accuracy",
            "min_norm_solution", "operator_norm", "stable_rank_falls"} <= set(rows["kind"])
    assert rows.set_index("claim_id").loc["min_norm_solution_toy", "verdict"] == "holds"
    # two GAP depths cannot make a U
    assert rows.set_index("claim_id").loc["cntk_u_shape_loss_cntk_gap_fix", "verdict"] == \
        "not resolved at this scale"


def test_config_checks(tiny):
    def bad(mutate, match):
        cfg = copy.deepcopy(tiny)
        mutate(cfg["studies"]["nichani"])
        with pytest.raises(dlc.ConfigError, match=match):
            dlc.check_config(cfg)

    bad(lambda s: s["kernels"]["variants"][0].update(depths=[1, 2]),
        r"studies\.nichani\.kernels\.variants\[0\]\.depths")
    # the study names its dataset; the datasets block defines it (depthlab.data.refs)
    bad(lambda s: s["data"].update(n_train_per_class=170),
        r"studies\.nichani\.data\.n_train_per_class = 170, but dataset 'digits_3x10'")
    for change, match in (({"source": "cifar10"}, r"datasets\.digits_3x10\.cifar_dir"),
                          ({"n_train_per_class": 170}, r"studies\.nichani\.data: n_train_per")):
        cfg = copy.deepcopy(tiny)
        cfg["datasets"]["digits_3x10"].update(change)
        with pytest.raises(dlc.ConfigError, match=match):
            dlc.check_config(cfg)
    bad(lambda s: s["linear"][0].update(n_per_class=2), r"studies\.nichani\.linear\[0\]")
    bad(lambda s: s["figures"]["fig7"].update(task="toeplitz"),
        r"studies\.nichani\.figures\.fig7\.task")
    bad(lambda s: s["kernels"]["variants"][1].update(readout="pool"),
        r"studies\.nichani\.kernels")
    # conv_ae names its images' dataset (and only conv_ae names one)
    bad(lambda s: s["linear"].append({"name": "ae", "task": "conv_ae", "depths": [1, 2],
                                      "seeds": [0]}),
        r"studies\.nichani.*linear.*dataset")
    bad(lambda s: s["linear"][0].update(dataset="digits_3x10"),
        r"studies\.nichani.*linear")
    bad(lambda s: s["linear"].append({"name": "ae", "task": "conv_ae", "depths": [1, 2],
                                      "seeds": [0], "dataset": "digits_3x10"}),
        r"studies\.nichani\.linear\[2\]\.generator")
    cfg = copy.deepcopy(tiny)
    cfg["datasets"]["ae1"] = {"generator": "image_sample", "source": "cifar10", "n_images": 1,
                              "seed": 0}
    cfg["studies"]["nichani"]["linear"].append({"name": "ae", "task": "conv_ae",
                                                "depths": [1, 2], "seeds": [0],
                                                "dataset": "ae1"})
    with pytest.raises(dlc.ConfigError, match=r"datasets\.ae1\.cifar_dir"):
        dlc.check_config(cfg)
    bad(lambda s: s["figures"]["fig1b"].update(metric="loss"),
        r"studies\.nichani\.figures\.fig1b")


def _kernel_cube(losses, accs):
    depths = [1, 2, 4, 8, 16]
    return xr.Dataset(
        {"k_test_loss": (("kernel", "kernel_depth"), [losses]),
         "k_test_acc": (("kernel", "kernel_depth"), [accs]),
         "k_train_acc": (("kernel", "kernel_depth"), [[1.0] * 5]),
         "k_n_test": ("kernel", [1000]), "k_n_train": ("kernel", [50])},
        coords={"kernel": ["cntk_x"], "kernel_depth": depths},
        attrs={"n_test": 100, "n_classes": 10, "data_source": "synthetic"})


def test_cntk_u_shape_verdicts():
    study = {"figures": {}}
    verdict = lambda c: {r.claim_id: r.verdict for r in claims(c, study)}  # noqa: E731
    u = verdict(_kernel_cube([0.5, 0.3, 0.2, 0.3, 0.6], [0.80, 0.85, 0.90, 0.86, 0.70]))
    assert u == {"cntk_u_shape_loss_cntk_x": "holds", "cntk_u_shape_acc_cntk_x": "holds"}
    mono = verdict(_kernel_cube([0.2, 0.3, 0.4, 0.5, 0.6], [0.90, 0.85, 0.80, 0.75, 0.70]))
    assert set(mono.values()) == {"fails"}
    flat = verdict(_kernel_cube([0.3, 0.299, 0.298, 0.299, 0.3], [0.90, 0.90, 0.91, 0.90, 0.90]))
    assert set(flat.values()) == {"not resolved at this scale"}


def _fc_cube(test_acc, train_acc):
    test_acc, train_acc = np.asarray(test_acc, float), np.asarray(train_acc, float)
    status = np.where(train_acc >= 1, "converged", "max_epochs")
    dims = ("depth", "seed")
    return xr.Dataset(
        {"fc_test_acc": (dims, test_acc), "fc_train_acc": (dims, train_acc),
         "fc_test_loss": (dims, 1 - test_acc), "fc_test_acc_final": (dims, test_acc),
         "fc_status": (dims, status)},
        coords={"depth": [1, 2, 4, 8], "seed": [0, 1, 2]},
        attrs={"n_classes": 10, "data_source": "synthetic"})


def test_fully_conv_claim_and_critical_table():
    train = [[0.8, 0.9, 0.85], [1, 1, 1], [1, 1, 1], [1, 1, 1]]
    falls = _fc_cube([[0.6, 0.62, 0.61], [0.85, 0.86, 0.84], [0.80, 0.79, 0.81],
                      [0.60, 0.62, 0.58]], train)
    (r,) = claims(falls, {"figures": {}})
    assert r.verdict == "holds" and r.measured == pytest.approx(0.85 - 0.60)
    rises = _fc_cube([[0.6, 0.62, 0.61], [0.70, 0.71, 0.69], [0.80, 0.79, 0.81],
                      [0.90, 0.89, 0.91]], train)
    assert claims(rises, {"figures": {}})[0].verdict == "fails"
    never = _fc_cube(np.full((4, 3), 0.5), np.full((4, 3), 0.9))
    assert claims(never, {"figures": {}})[0].verdict == "not resolved at this scale"
    table = critical_table(falls, {"critical_depths": {"bootstrap": 200, "seed": 0,
                                                       "level": 0.9}})
    row = table.iloc[0]
    assert row.d_star_acc == 2 and row.d_interpolation == 2 and row.d_star_loss == 2
    assert row.d_star_acc_lo == 2 and row.d_star_acc_hi == 2  # separated: every resample
    # a tie between depths 2 and 4 in the mean shows up in the bootstrap interval
    close = _fc_cube([[0.6, 0.6, 0.6], [0.85, 0.75, 0.80], [0.80, 0.76, 0.83],
                      [0.60, 0.62, 0.58]], train)
    row = critical_table(close, {"critical_depths": {"bootstrap": 500, "seed": 0,
                                                     "level": 0.9}}).iloc[0]
    assert row.d_star_acc_lo == 2 and row.d_star_acc_hi == 4
