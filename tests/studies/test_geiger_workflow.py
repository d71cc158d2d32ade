"""The Geiger study through the real pipeline (real Snakemake, HDF5, training, cube,
figures, Table 1) on tests/data/tiny_geiger.yaml, plus its config checks and the Table 1
fit on a synthetic power-law cube."""

import copy
import json
import shutil

import h5py
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from conftest import REPO, run_snakemake

from depthlab import config as dlc
from depthlab.cube import read_cube
from depthlab.studies.geiger import grid as geiger_grid
from depthlab.studies.geiger.table1 import exponent_table

TINY = REPO / "tests" / "data" / "tiny_geiger.yaml"


@pytest.fixture(scope="module")
def tiny():
    return yaml.safe_load(TINY.read_text())


@pytest.fixture(scope="module")
def geiger_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("geiger")
    shutil.copy(TINY, work / "tiny_geiger.yaml")
    proc = run_snakemake("--cores", "2", "--configfile", "tiny_geiger.yaml", cwd=work)
    return work, proc


def test_cube_holds_every_run_honestly(geiger_run, tiny):
    work, _ = geiger_run
    study = tiny["studies"]["geiger"]
    cube = read_cube(work / "results" / "geiger" / "cube.nc")
    assert set(cube["test_err"].dims) == {"activation", "depth", "width", "alpha", "seed"}
    ran = cube["status"] != "not_run"
    assert int(ran.sum()) == len(geiger_grid.geiger_runs(study))
    assert set(np.unique(cube["status"].values[ran.values])) <= {"converged", "max_steps",
                                                                 "diverged"}
    assert int(cube["n_band_violations"].fillna(0).sum()) == 0
    # the data source is stated: this is not MNIST
    assert "digits" in cube.attrs["data_source"] and "not MNIST" in cube.attrs["data_source"]
    assert json.loads(cube.attrs["config"])["study"]["dataset"] == "digits"
    # sqrt(h) alpha grids give every width the same sqrt(h) alpha
    sp = cube.sel(activation="softplus", depth=2)
    for width in (8, 32):
        alpha = geiger_grid.canonical_alpha(0.01 / np.sqrt(width))
        assert float(sp["sqrt_h_alpha"].sel(width=width, alpha=alpha)) == pytest.approx(0.01)
    # the alpha = 1 grid and the sqrt(h) alpha grids are one alpha axis
    assert 1.0 in cube["alpha"].values


def test_lazy_regime_matches_frozen_ntk(geiger_run):
    """At sqrt(h) alpha = 1e4 the net follows its frozen initial NTK: test outputs within 2 %
    (relative L2) and the same test error up to a few points of the 200."""
    work, _ = geiger_run
    cube = read_cube(work / "results" / "geiger" / "cube.nc")
    sp = cube.sel(activation="softplus", depth=2)
    for width in (8, 32):
        lazy = sp.sel(width=width, alpha=geiger_grid.canonical_alpha(1e4 / np.sqrt(width)))
        assert (lazy["status"] == "converged").all()
        assert float(lazy["lazy_vs_net"].max()) < 2e-2
        diff = np.abs(lazy["test_err"] - sp["lazy_test_err"].sel(width=width))
        assert float(diff.max()) <= 3 / cube.attrs["n_test"]
    # ... while at sqrt(h) alpha = 0.01 the kernel moves by orders of magnitude more
    feature = sp["ntk_change"].sel(width=32, alpha=geiger_grid.canonical_alpha(0.01 / np.sqrt(32)))
    lazy = sp["ntk_change"].sel(width=32, alpha=geiger_grid.canonical_alpha(1e4 / np.sqrt(32)))
    assert float(feature.min()) > 1e4 * float(lazy.max())


def test_ensemble_observables_match_the_run_files(geiger_run):
    """Var F and the ensemble error, recomputed here from the per-run HDF5 outputs."""
    work, _ = geiger_run
    cube = read_cube(work / "results" / "geiger" / "cube.nc")
    width, alpha = 32, geiger_grid.canonical_alpha(0.1 / np.sqrt(32))
    outs = []
    for seed in (0, 1):
        path = (work / "results" / "geiger" / "runs" / f"softplus_L2_h{width}" /
                f"alpha{geiger_grid.fmt_alpha(alpha)}_seed{seed}.h5")
        with h5py.File(path) as f:
            outs.append(f["test_outputs"][:])
            assert "software_versions" in f.attrs and "config" in f.attrs
            assert json.loads(f.attrs["config"])["dynamics"]["mu"] == 1000.0
    outs = np.stack(outs)
    with h5py.File(work / "results" / "datasets" / "digits.h5") as f:
        y = np.where(f["test/y"][:] > 0, 1.0, -1.0)
    cell = cube.sel(activation="softplus", depth=2, width=width, alpha=alpha)
    assert float(cell["ensemble_var"]) == pytest.approx(outs.var(axis=0).mean(), rel=1e-12)
    assert float(cell["ensemble_test_err"]) == pytest.approx(
        np.mean(outs.mean(axis=0) * y <= 0))
    assert int(cell["ensemble_size"]) == 2


def test_table1_and_every_figure(geiger_run, tiny):
    work, proc = geiger_run
    table = pd.read_csv(work / "results" / "geiger" / "table1.csv")
    assert len(table) == 2 and set(table["depth"]) == {2}
    assert np.isfinite(table["exponent_a"]).all() and (table["n_points"] >= 4).all()
    kernel = table[table["observable"].str.startswith("||Theta")].iloc[0]
    assert kernel["prediction"] == pytest.approx(4 / 3) and kernel["paper"] == 1.25
    assert "digits" in table["data_source"].iloc[0]
    assert "Geiger Table 1" in proc.stdout  # the rule prints it
    for fig in tiny["studies"]["geiger"]["figures"]:
        png = work / "results" / "geiger" / "figures" / f"{fig}.png"
        assert mpimg.imread(png).shape[0] > 100
        assert (png.with_suffix(".pdf")).stat().st_size > 1000
    again = run_snakemake("-n", "--configfile", "tiny_geiger.yaml", cwd=work)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_packed_jobs_write_the_one_net_results(geiger_run, tiny, tmp_path):
    """dynamics.pack: [alpha, seed] trains each (activation, depth, width) cell in one job;
    its per-run files hold exactly the one-net jobs' numbers, so every cube variable but the
    timings is identical to the unpacked run's."""
    work, _ = geiger_run
    cfg = copy.deepcopy(tiny)
    cfg["studies"] = {"geiger": cfg["studies"]["geiger"]}
    cfg["studies"]["geiger"]["dynamics"]["pack"] = ["alpha", "seed"]
    (tmp_path / "packed.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_snakemake("results/geiger/cube.nc", "--cores", "2", "--configfile", "packed.yaml",
                         cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert "geiger_train_pack" in log and "rule geiger_train:" not in log
    jobs = geiger_grid.pack_jobs(cfg["studies"]["geiger"])
    assert sorted(jobs) == [("relu_L3_h8", "all"), ("softplus_L2_h32", "all"),
                            ("softplus_L2_h8", "all")]
    ref = read_cube(work / "results" / "geiger" / "cube.nc")
    got = read_cube(tmp_path / "results" / "geiger" / "cube.nc")
    assert set(ref.data_vars) == set(got.data_vars)
    for name in ref.data_vars:
        if name == "wall_time":
            continue
        a, b = ref[name].values, got[name].values
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), name
        else:
            assert (a == b).all(), name
    alpha = geiger_grid.fmt_alpha(geiger_grid.canonical_alpha(0.1 / np.sqrt(32)))
    with (h5py.File(work / "results/geiger/runs/softplus_L2_h32" / f"alpha{alpha}_seed1.h5") as f,
          h5py.File(tmp_path / "results/geiger/runs/softplus_L2_h32/all" /
                    f"alpha{alpha}_seed1.h5") as g):
        assert set(f) == set(g) and f.attrs["config"] == g.attrs["config"]
        assert f.attrs["scalars"] == g.attrs["scalars"]  # the same scalars, arrays and cell
        for key in f:  # every array and scalar (0-d) but the measured wall time
            value = f[key][()]
            if key == "wall_time":
                continue
            if isinstance(value, bytes):
                assert value == g[key][()], key
            else:
                assert np.array_equal(value, g[key][()], equal_nan=True), key


def test_pack_member_sets(tiny):
    """pack [alpha]: one job per seed; [seed]: one per alpha; [] none; CNN refused."""
    study = copy.deepcopy(tiny["studies"]["geiger"])
    runs = geiger_grid.geiger_runs(study)
    for pack, prefix in ((["alpha"], "seed"), (["seed"], "alpha")):
        study["dynamics"]["pack"] = pack
        jobs = geiger_grid.pack_jobs(study)
        assert sorted(r for members in jobs.values() for r in members) == runs
        assert all(mset.startswith(prefix) for _, mset in jobs)
        for (arch, _), members in jobs.items():
            assert {r.arch for r in members} == {arch}
            assert len({getattr(r, prefix) for r in members}) == 1
    assert len(geiger_grid.pack_jobs(tiny["studies"]["geiger"])) == 0
    cfg = copy.deepcopy(tiny)
    cfg["studies"]["geiger_cnn"]["dynamics"]["pack"] = ["seed"]
    with pytest.raises(dlc.ConfigError, match="geiger_cnn.dynamics.pack"):
        dlc.check_config(cfg)


def _write(tmp_path, cfg):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


BAD = [
    (("studies", "geiger", "dataset"), "nope", "studies.geiger.dataset"),
    (("studies", "geiger", "n_train"), 500, "studies.geiger.n_train"),
    (("studies", "geiger", "figures", "fig9", "depth"), 7, "studies.geiger.figures.fig9"),
    (("studies", "geiger", "table1", "depths"), [5], "studies.geiger.table1.depths"),
    (("studies", "geiger", "dynamics", "df_target"), 0.05, "df_target"),
    (("studies", "geiger", "grids", 0, "alpha"), [1.0], "alpha"),  # both alpha kinds
]


@pytest.mark.parametrize("path,value,needle", BAD, ids=[b[2] for b in BAD])
def test_bad_geiger_config_fails_before_any_job(tmp_path, tiny, path, value, needle):
    cfg = copy.deepcopy(tiny)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    proc = run_snakemake("--cores", "1", "--configfile", str(_write(tmp_path, cfg)),
                         cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert needle in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert not (tmp_path / "results").exists()


def test_non_parity_dataset_is_refused(tiny):
    cfg = copy.deepcopy(tiny)
    cfg["datasets"]["digits"] = {"generator": "k_local", "k": 1, "d": 10, "n_train": 40,
                                 "n_test": 200, "seed": 0}
    with pytest.raises(dlc.ConfigError, match="studies.geiger.dataset"):
        dlc.check_config(cfg)


def test_alpha_grids_share_one_axis(tiny):
    runs = geiger_grid.geiger_runs(tiny["studies"]["geiger"])
    assert len(runs) == len(set(runs))
    # width 8: 3 sqrt(h) alpha + alpha = 1; width 32 likewise; 2 seeds; relu 2 x 1 x 1
    assert len(runs) == (4 * 2 * 2) + 2
    assert geiger_grid.fmt_alpha(1e-3 / 4) == "0.00025"
    assert geiger_grid.canonical_alpha(4.0 / np.sqrt(16)) == 1.0


def test_exponent_table_recovers_synthetic_power_laws():
    """A cube whose kernel change is (sqrt(h) alpha)^-1.5 and whose weight change is
    (sqrt(h) alpha)^-0.3 / sqrt(h) exactly, with lazy-regime points outside the fit range."""
    widths = np.array([16.0, 64.0])
    alphas = np.geomspace(1e-5, 1e3, 9)
    s = np.sqrt(widths)[:, None] * alphas[None, :]
    kernel = np.where(s < 1, s**-1.5, s**-1.0)[None, None, :, :, None]
    weights = (np.where(s < 1, s**-0.3, s**-1.0) / np.sqrt(widths)[:, None])[None, None, :, :,
                                                                              None]
    dims = ("activation", "depth", "width", "alpha", "seed")
    coords = {"activation": ["softplus"], "depth": [3], "width": widths, "alpha": alphas,
              "seed": [0]}
    cube = xr.Dataset({"ntk_change": (dims, kernel), "w_change": (dims, weights),
                       "status": (dims, np.full(kernel.shape, "converged"))}, coords=coords)
    cube = cube.assign_coords(sqrt_h_alpha=np.sqrt(cube["width"]) * cube["alpha"])
    table = exponent_table(cube, {"depths": [3], "fit_range": [1e-4, 0.5]})
    got = dict(zip(table["observable"].str[:6], table["exponent_a"], strict=True))
    assert got["||Thet"] == pytest.approx(1.5, abs=1e-10)
    assert got["sqrt(h"] == pytest.approx(0.3, abs=1e-10)
    assert table["prediction"].tolist() == pytest.approx([2 / (1 + 1 / 3), 1 / 4])
