"""The Xiao study through the real pipeline (Snakemake: data, FC and conv sweeps, the Fig. 2
nets, the Fig. 3 top SGD nets, cube, Table 1, claims) on tests/data/tiny_xiao.yaml, every
figure drawn from that cube in-process (the generic figure rule is exercised by the other
studies' workflow tests), the trainer's checkpoint / resume and device, and config checks.

Kept to ~17 jobs whose cost is mostly interpreter start-up (FC sweeps skip torch), so the
module runs in well under a minute on 2 cores."""

import copy
import json
import shutil

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, plant_checkpoint, run_snakemake

from depthlab import config as dlc
from depthlab.claims import VERDICTS, read_claims
from depthlab.cube import read_cube
from depthlab.kernels.phase import critical_w_var
from depthlab.plotting import save_figure
from depthlab.studies import plugin
from depthlab.studies.xiao import data as xdata
from depthlab.studies.xiao import train as xtrain

TINY = REPO / "tests" / "data" / "tiny_xiao.yaml"
B = 0.1849


@pytest.fixture(scope="module")
def tiny():
    return yaml.safe_load(TINY.read_text())


@pytest.fixture(scope="module")
def xiao_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("xiao")
    shutil.copy(TINY, work / "tiny_xiao.yaml")
    # A checkpoint planted under results/ before the run (anyone with write access to a
    # shared results directory could): unpickled, it would create PWNED. The jobs must refuse
    # it, train from scratch and delete it (test_planted_checkpoints_run_nothing).
    ckpts = work / "results" / "xiao" / "checkpoints"
    ckpts.mkdir(parents=True)
    for depth in (1, 8):
        plant_checkpoint(ckpts / f"plane_nets_L{depth}_w2.5.pt", work / "PWNED")
    run_snakemake("results/xiao/claims.csv", "results/xiao/table1.csv", "--cores", "2",
                  "--configfile", "tiny_xiao.yaml", cwd=work)
    return work / "results" / "xiao"


def test_cube(xiao_run, tiny):
    cube = read_cube(xiao_run / "cube.nc")
    study = tiny["studies"]["xiao"]
    assert "digits" in cube.attrs["data_source"] and "CIFAR-10" in cube.attrs["data_source"]
    # the critical sigma_w^2 is computed, never typed in
    assert float(cube.w_phase.values[1]) == pytest.approx(critical_w_var(B, "erf"))
    assert list(cube.w_phase_phase.values) == ["ordered", "critical", "chaotic"]
    # CNN-P off the critical line stops at cnn_p_max_depth
    k = cube.phase_kappa.sel(size="m6k3", arch="cnn_p")
    assert np.isnan(k.sel(w_phase=cube.w_phase[0], depth_phase=60))
    assert np.isfinite(k.sel(w_phase=cube.w_phase[1], depth_phase=60))
    # eta_trainer = n * eta_theory (the trainer's (1/2n) normalisation)
    n = tiny["datasets"][study["plane"]["dataset"]]["n_train"]
    np.testing.assert_allclose(cube.plane_eta_trainer, n * cube.plane_eta_theory)
    st = set(cube.cliff_status.values.ravel().tolist())
    assert st <= {"converged", "max_steps", "diverged"}
    assert "diverged" in st  # rho = 4 is far beyond the edge
    assert cube.cliff_best_train_acc.notnull().all()


def test_planted_checkpoints_run_nothing(xiao_run):
    """The planted files ran no code; each job said so in its log and trained afresh."""
    assert not (xiao_run.parent.parent / "PWNED").exists()
    for depth in (1, 8):
        log = (xiao_run.parent / "logs" / "xiao" / "plane_runs" / f"L{depth}_w2.5.log")
        assert "refused, unreadable as a plain tensor checkpoint" in log.read_text()
        assert not (xiao_run / "checkpoints" / f"plane_nets_L{depth}_w2.5.pt").exists()


def test_plane_nets_in_cube(xiao_run, tiny):
    """Fig. 3 top's SGD nets: trained in the cells of their subset grid, not_run elsewhere,
    eta = rho * eta_theory with eta_theory = 2b / lambda_max(first b points), on the CPU."""
    cube = read_cube(xiao_run / "cube.nc")
    nets = json.loads(cube.attrs["plane_nets_settings"])  # with the schema's defaults
    assert nets["rho"] == 0.3 and nets["w_vars"] == [2.5]
    trained = cube.plane_net_status != "not_run"
    assert int(trained.sum()) == len(nets["w_vars"]) * len(nets["depths"]) * len(nets["seeds"])
    for d in nets["depths"]:
        cell = cube.sel(w_plane=2.5, depth_plane=d)
        assert set(cell.plane_net_status.values) <= {"converged", "max_steps", "diverged"}
        assert str(cell.plane_net_device.values) == "cpu"
        np.testing.assert_allclose(cell.plane_net_lr, nets["rho"] * cell.plane_net_eta_theory)
        np.testing.assert_allclose(cell.plane_net_eta_theory,
                                   2 * nets["batch_size"] / cell.plane_net_lambda_max)
        assert np.all((cell.plane_net_final_test_acc >= 0) & (cell.plane_net_final_test_acc <= 1))
    assert np.isnan(cube.plane_net_final_train_acc.sel(w_plane=1.0)).all()
    # checkpoints are deleted once a run finishes
    assert not list((xiao_run / "checkpoints").glob("*.pt"))
    with h5py.File(xiao_run / "plane_runs" / "L8_w2.5.h5") as f:
        assert f.attrs["batch_size"] == nets["batch_size"] and f.attrs["device"] == "cpu"


def test_table1_and_claims(xiao_run):
    table = pd.read_csv(xiao_run / "table1.csv")
    crit = table[(table.phase == "critical") & (table.quantity == "kappa")]
    assert set(crit.arch) == {"fc", "cnn_p"}
    assert crit[crit.arch == "cnn_p"].prediction.item() == (6 * 9 + 2) / 2
    claims = read_claims(xiao_run / "claims.csv")
    assert set(claims.verdict) <= set(VERDICTS)
    kinds = set(claims.kind)
    assert {"chaotic_kappa", "critical_kappa", "ordered_rate", "lr_cliff", "plane_xi",
            "plane_net_xi", "pooling"} <= kinds
    chaotic = claims[claims.kind == "chaotic_kappa"]
    assert (chaotic[chaotic.claim_id.str.startswith("chaotic_kappa_fc")].verdict == "holds").all()
    # one ordered and one chaotic sigma_w^2 cannot test "one multiple C across sigma_w^2"
    assert (claims[claims.kind == "plane_net_xi"].verdict == "not resolved at this scale").all()


def test_figures(xiao_run, tiny, tmp_path):
    """Every figure of the config from the cube; Fig. 3 top with and without the nets."""
    cube = read_cube(xiao_run / "cube.nc")
    plots = plugin("xiao").PLOTS
    for name, fig in tiny["studies"]["xiao"]["figures"].items():
        figure = plots[fig["plot"]](cube, fig)
        if name == "fig3_top":
            assert len(figure.axes) == 4 + 4  # 4 heat maps and their colour bars
            assert "SGD-trained" in figure.texts[-1].get_text()
        figure.savefig(tmp_path / f"{name}.png", dpi=40)  # low dpi: the test checks drawing
        plt.close(figure)
        assert (tmp_path / f"{name}.png").stat().st_size > 2_000
    kernel_only = cube.drop_vars([v for v in cube.data_vars if v.startswith("plane_net")])
    figure = plots["xiao_plane"](kernel_only, {"plot": "xiao_plane"})
    assert len(figure.axes) == 2 + 2
    assert "Kernel predictors only" in figure.texts[-1].get_text()
    save_figure(figure, tmp_path / "kernel_only.png")  # the figure rule's writer
    assert (tmp_path / "kernel_only.png").stat().st_size > 10_000


def _small(n=48):
    return xdata.labelled_set({"source": "digits"}, n, 32, 0)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_trainer_resume_is_bitwise(tmp_path, one_thread, batch_size):
    """Interrupted after 13 updates (checkpoints every 5), then rerun: the same numbers as
    one uninterrupted run, full batch and mini-batch; the checkpoint is gone at the end."""
    data = _small()
    _, eta = xtrain.analytic_eta(data["x_train"].reshape(48, -1)[:batch_size or 48], 4, 1.5, B)
    args = (data, 4, 32, 1.5, B, [0.5, 1.0], [0, 1], 25, eta)
    kw = {"eval_every": 4, "batch_size": batch_size, "device": "cpu"}
    reference = xtrain.train_members(*args, **kw)
    ckpt = tmp_path / "run.pt"
    with pytest.raises(xtrain.TrainingInterrupted):
        xtrain.train_members(*args, **kw, checkpoint_path=ckpt, checkpoint_every=5,
                             _stop_after_step=13)
    saved = torch.load(ckpt, weights_only=True)  # plain tensors: loads without unpickling code
    assert saved["state"]["step"] == 10
    lines = []
    resumed = xtrain.train_members(*args, **kw, checkpoint_path=ckpt, checkpoint_every=5,
                                   log=lines.append)
    assert any("resumed from" in line and "step 10" in line for line in lines)
    assert resumed == reference
    assert not ckpt.exists()
    # a checkpoint of other settings is ignored, not resumed
    with pytest.raises(xtrain.TrainingInterrupted):
        xtrain.train_members(*args, **kw, checkpoint_path=ckpt, checkpoint_every=5,
                             _stop_after_step=6)
    lines = []
    other = xtrain.train_members(data, 4, 32, 1.5, B, [0.5, 1.0], [0, 1], 25, eta * 0.9, **kw,
                                 checkpoint_path=ckpt, checkpoint_every=5, log=lines.append)
    assert any("another run" in line for line in lines)
    assert other != reference


def test_trainer_minibatch_and_device(one_thread):
    """Mini-batch SGD: batches of exactly b from per-seed epoch permutations; `auto` picks
    the GPU only where one is present (CI: the CPU), and gives the CPU's numbers there."""
    data = _small()
    _, eta = xtrain.analytic_eta(data["x_train"].reshape(48, -1)[:16], 3, 1.2, B)
    batches = xtrain._Batches([0, 1], 48, 16, torch.device("cpu"))
    epoch0 = torch.cat([batches(s) for s in range(3)], dim=1)
    for row in epoch0:
        assert sorted(row.tolist()) == list(range(48))
    assert not torch.equal(epoch0[0], epoch0[1]) and not torch.equal(batches(3), batches(0))
    args = (data, 3, 16, 1.2, B, [1.0], [0], 9, eta)
    cpu = xtrain.train_members(*args, batch_size=16, device="cpu")
    auto = xtrain.train_members(*args, batch_size=16, device="auto")
    if not torch.cuda.is_available():
        assert auto == cpu
    assert cpu[0]["status"] in ("max_steps", "converged")


def test_config_checks(tiny):
    bad = copy.deepcopy(tiny)
    bad["datasets"]["digits_plane"]["source"] = "cifar10"
    with pytest.raises(dlc.ConfigError, match=r"datasets\.digits_plane\.cifar_dir"):
        dlc.check_config(bad)
    # the blocks name their datasets; sizes are the datasets' (depthlab.data.refs)
    bad = copy.deepcopy(tiny)
    bad["studies"]["xiao"]["pool"]["n_train"] = 20
    with pytest.raises(dlc.ConfigError, match=r"studies\.xiao\.pool\.n_train = 20, but dataset"):
        dlc.check_config(bad)
    bad = copy.deepcopy(tiny)
    bad["studies"]["xiao"]["cliff"]["dataset"] = "gaussian_m6_k3"
    with pytest.raises(dlc.ConfigError, match=r"studies\.xiao\.cliff\.generator"):
        dlc.check_config(bad)
    bad = copy.deepcopy(tiny)
    bad["datasets"]["digits_pool4"]["image_pool"] = 3
    with pytest.raises(dlc.ConfigError, match=r"datasets\.digits_pool4\.image_pool"):
        dlc.check_config(bad)
    bad = copy.deepcopy(tiny)
    bad["studies"]["xiao"]["phase"]["dropout"]["m"] = 7
    with pytest.raises(dlc.ConfigError, match="dropout.m"):
        dlc.check_config(bad)
    bad = copy.deepcopy(tiny)
    bad["studies"]["xiao"]["plane"]["w_vars"] = ["chaos"]
    with pytest.raises(dlc.ConfigError, match="w_vars"):
        dlc.check_config(bad)
    bad = copy.deepcopy(tiny)
    bad["studies"]["xiao"]["plane_nets"]["depths"] = [1, 5]
    with pytest.raises(dlc.ConfigError, match=r"plane_nets\.depths"):
        dlc.check_config(bad)
    bad = copy.deepcopy(tiny)
    bad["studies"]["xiao"]["plane_nets"]["device"] = "gpu"
    with pytest.raises(dlc.ConfigError, match="device"):
        dlc.check_config(bad)
    bad = copy.deepcopy(tiny)
    del bad["studies"]["xiao"]["plane"]
    bad["studies"]["xiao"]["figures"].pop("fig3_top")
    with pytest.raises(dlc.ConfigError, match="plane_nets"):
        dlc.check_config(bad)


def test_paper_config_grids():
    """config/paper.yaml's Xiao block (validated as the workflow does, CIFAR-10 absent here):
    Fig. 3 top trains 20 x 20 (sigma_w^2, depth) SGD nets of width 2048 to depth 100 on 16k
    CIFAR-10 images (one job per cell), Fig. 2 width-2048 nets, Fig. 1 to depth 1000."""
    from depthlab.studies.xiao import grid
    from depthlab.studies.xiao.inputs import XiaoInputs

    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    dlc.check_config(config, missing_data="warn")
    study = config["studies"]["xiao"]
    assert {study[b]["source"] for b in ("plane", "pool", "cliff", "plane_nets")} == {"cifar10"}
    inputs = XiaoInputs(config["studies"], ["xiao"], "results")
    files = inputs.plane_run_files("xiao")
    assert len(files) == 400 and files[0].startswith("results/xiao/plane_runs/")
    nets = study["plane_nets"]
    assert (nets["width"], nets["n_train"], nets["batch_size"], nets["rho"]) == (
        2048, 16000, 1024, 0.3)
    assert nets["device"] == "auto" and nets["checkpoint_every"] > 0
    assert max(r["depth"] for r in grid.plane_net_runs(study).values()) == 100
    assert study["cliff"]["width"] == 2048 and len(inputs.run_files("xiao")) == 44
    assert study["phase"]["max_depth"] == 1000


def test_empirical_lambda_max_matches_the_explicit_jacobian(one_thread):
    """Power iteration with VJP/JVP against the eigenvalues of J J^T from an explicit
    Jacobian (torch.func.jacrev), per member, and -> the analytic NTK's lambda_max as the
    width grows (finite-width fluctuations shrink)."""
    from torch.func import jacrev

    data = _small(24)
    x = torch.as_tensor(data["x_train"].reshape(24, -1), dtype=torch.float64)
    params = xtrain.init_params(x.shape[1], 12, 3, 10, [0, 5], torch.float64)
    got = xtrain.empirical_lambda_max(params, x, 1.5, B, iters=200)
    for m in range(2):
        flat = [t[m:m + 1] for wb in params for t in wb]
        f = xtrain._flat_forward(len(params), x, 1.5, B)
        jac = jacrev(lambda *ts, f=f: f(*ts).reshape(-1), argnums=tuple(range(len(flat))))(*flat)
        j = torch.cat([t.reshape(t.shape[0], -1) for t in jac], dim=1)
        assert got[m] == pytest.approx(float(torch.linalg.eigvalsh(j @ j.T)[-1]), rel=1e-6)
    lam_an, _ = xtrain.analytic_eta(x.numpy(), 3, 1.5, B)
    wide = xtrain.init_params(x.shape[1], 2048, 3, 10, [0], torch.float64)
    narrow = xtrain.init_params(x.shape[1], 16, 3, 10, [0], torch.float64)
    gap_wide = abs(xtrain.empirical_lambda_max(wide, x, 1.5, B)[0] / lam_an - 1)
    gap_narrow = abs(xtrain.empirical_lambda_max(narrow, x, 1.5, B)[0] / lam_an - 1)
    assert gap_wide < 0.15 and gap_wide < gap_narrow


def test_cliff_nets_record_their_own_kernel(xiao_run):
    """Fig. 2's nets carry their own NTK lambda_max at init and at the end; a net that
    trained past eta_theory ends with a kernel flat enough for its step size."""
    cube = read_cube(xiao_run / "cube.nc")
    init, final = cube.cliff_lambda_emp_init, cube.cliff_lambda_emp_final
    ran = cube.cliff_status != "not_run"
    assert np.isfinite(init.where(ran)).sum() == int(ran.sum())
    assert (init.where(ran) > 0).sum() == int(ran.sum())
    diverged = cube.cliff_status == "diverged"
    assert np.isnan(final.where(diverged)).all()
