"""Mori-Ueda nets that each train on their own draw of the training set (`data_draws`): the
draws are datasets of their own (NAME@seedS, one file each, seeds derived from the dataset's
and the net's, moved by seed_offset), the packed job trains and tests each member on its own
draw, and the run file records which draw each member saw. Checked
on a tiny real run: a member's numbers are those of that net trained alone on its draw's
file, and differ from the numbers on the shared training set.
"""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from conftest import REPO, run_snakemake

from depthlab.data import read_dataset
from depthlab.data.refs import add_seed_draws, seed_draw_name, seed_draw_spec
from depthlab.errors import ConfigError
from depthlab.studies.mori_ueda.figures import plot_test_error_vs_n
from depthlab.studies.mori_ueda.records import read_run
from depthlab.training.packed_sgd import Member, TrainConfig, train_members

pytestmark = pytest.mark.slow


def _config(tmp_path, **top):
    config = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    tiny = config["studies"]["tiny"]
    tiny["grids"] = [{"datasets": ["local1", "global2"], "n_train": [60], "depth": [0, 2],
                      "width": [32], "lr": [0.1], "seeds": [0, 1]}]
    for key in ("lr_selection", "local_stability"):
        tiny.pop(key, None)
    tiny["data_draws"] = ["local1"]
    tiny["summary"] = {"shallow": 0, "deep": 2}
    tiny["kernel_baseline"] = {"kernel": "ntk_mu", "depths": [1]}
    tiny["figures"] = {"fig2": {"plot": "test_error_vs_n", "datasets": ["local1", "global2"],
                                "lr": 0.1}}
    tiny["training"]["max_epochs"] = 20
    config.update(top)
    path = tmp_path / "draws.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_each_seed_trains_on_its_own_draw(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    config = _config(tmp_path)
    run_snakemake("results/tiny/claims.csv", "--cores", "2", "--configfile", str(config),
                  cwd=work)
    res = work / "results"
    base = read_dataset(res / "datasets" / "local1.h5")
    drawn = {s: read_dataset(res / "datasets" / f"{seed_draw_name('local1', s)}.h5")
             for s in (0, 1)}
    # a draw of its own: same settings, another seed, other inputs
    seeds = {base["config"]["seed"], *(d["config"]["seed"] for d in drawn.values())}
    assert len(seeds) == 3
    assert {k: v for k, v in drawn[0]["config"].items() if k != "seed"} == {
        k: v for k, v in base["config"].items() if k != "seed"}
    assert not np.array_equal(drawn[0]["x_train"], drawn[1]["x_train"])
    # global2 is not redrawn: no draw file of it
    assert not list((res / "datasets").glob("global2@*"))

    run = res / "tiny" / "runs" / "local1" / "N60" / "L2_H32" / "lr0.1.h5"
    rows = {r["seed"]: r for r in read_run(run)}
    with h5py.File(run) as f:
        recorded = json.loads(f.attrs["config"])["training_set_draws"]
    assert {name: spec["seed"] for name, spec in recorded.items()} == {
        seed_draw_name("local1", s): drawn[s]["config"]["seed"] for s in (0, 1)}
    # each member's numbers: that net trained alone on its own draw (same file, same steps)
    # and tested on that draw's test set; on the shared dataset the numbers differ
    study = yaml.safe_load(config.read_text())["studies"]["tiny"]
    cfg = TrainConfig(depth=2, width=32, n_classes=2, device="cpu",
                      **{k: v for k, v in study["training"].items()
                         if k in ("check_every", "max_epochs")})
    for s in (0, 1):
        x = drawn[s]["x_train"][:60][None]
        y = drawn[s]["y_train"][:60][None]
        xt, yt = drawn[s]["x_test"][None], drawn[s]["y_test"][None]
        alone = train_members(x, y, xt, yt, [Member(s, 0.1)], cfg)[0]
        assert (alone["train_error"], alone["test_error"], alone["epochs"]) == (
            rows[s]["train_error"], rows[s]["test_error"], rows[s]["epochs"])
    # the cube says which datasets were drawn per seed, and so does the figure's footer
    with xr.open_dataset(res / "tiny" / "cube.nc", engine="h5netcdf") as cube:
        cube = cube.load()
    assert dict(zip(cube["dataset"].values.tolist(), cube["drawn_per_seed"].values.tolist(),
                    strict=True)) == {"local1": True, "global2": False}
    fig = plot_test_error_vs_n(cube, study["figures"]["fig2"])
    footer = " ".join(t.get_text() for t in fig.texts)
    assert "std over 2 seeds (on local1: each seed its own draw of the data)" in footer
    # the scorecard says which rows' SE holds the draws' noise
    claims = pd.read_csv(res / "tiny" / "claims.csv", keep_default_na=False)
    depth_rows = claims[claims["kind"] == "depth_effect"].set_index("claim_id")["notes"]
    assert any("local1" in c for c in depth_rows.index)
    for claim_id, notes in depth_rows.items():
        assert ("its own draw of the dataset" in notes) == ("local1" in claim_id), claim_id
    shared = train_members(base["x_train"][:60], base["y_train"][:60], base["x_test"],
                           base["y_test"], [Member(0, 0.1), Member(1, 0.1)], cfg)
    assert [(r["train_error"], r["test_error"]) for r in shared] != [
        (rows[s]["train_error"], rows[s]["test_error"]) for s in (0, 1)]


def test_seed_offset_moves_the_draws(tmp_path):
    """Under seed_offset K the nets' seeds and the datasets' seeds move, so do the draws."""
    dry = run_snakemake("-n", "--configfile", str(_config(tmp_path, seed_offset=1000)),
                        "--quiet", "rules", cwd=tmp_path).stdout + run_snakemake(
        "-n", "--configfile", str(_config(tmp_path, seed_offset=1000)), cwd=tmp_path).stdout
    assert "local1@seed1000" in dry and "local1@seed1001" in dry
    assert "local1@seed0" not in dry


def test_draw_entries_and_their_checks():
    spec = {"generator": "k_local", "k": 1, "d": 8, "n_train": 120, "n_test": 200, "seed": 1}
    datasets = {"local1": dict(spec)}
    assert add_seed_draws(datasets, [("local1", 3), ("local1", 3), ("local1", 4)]) == [
        "local1@seed3", "local1@seed4"]
    assert datasets["local1@seed3"]["seed"] != datasets["local1@seed4"]["seed"]
    assert datasets["local1@seed3"] == seed_draw_spec(spec, "local1", 3)  # deterministic
    assert add_seed_draws(datasets, [("local1", 3)]) == []  # idempotent
    # a draw's seed depends on the dataset's seed too (seed_offset moves both)
    assert seed_draw_spec({**spec, "seed": 2}, "local1", 3)["seed"] != datasets[
        "local1@seed3"]["seed"]
    datasets["local1@seed5"] = {**spec, "seed": 77}
    with pytest.raises(ConfigError, match=r"datasets\.local1@seed5: the name of a seed draw"):
        add_seed_draws(datasets, [("local1", 5)])


def test_a_draw_of_an_untrained_dataset_is_refused(tmp_path):
    config = yaml.safe_load(_config(tmp_path).read_text())
    config["studies"]["tiny"]["data_draws"] = ["nope"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    dry = run_snakemake("-n", "--configfile", str(path), cwd=tmp_path, check=False)
    assert dry.returncode != 0
    assert "studies.tiny.data_draws: 'nope' is not trained in any grid" in dry.stdout + dry.stderr
