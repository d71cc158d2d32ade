"""The probe of Xiao's kernel depth sweeps (rule xiao_sweep, probe kind ``xiao_sweep``):
shape classes and exact work counts of the tiny Xiao study's sweeps, and the probe's
measurement through depthlab.studies.xiao.sweep at tiny shapes."""

from pathlib import Path

import pytest

from depthlab.probe.shapes import job_work, representatives, rule_probe, shape_class

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "data" / "tiny_xiao.yaml"
MB = 2.0**20


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    from depthlab.config import load_yaml_strict
    from depthlab.probe.jobs import enumerate_jobs

    config = load_yaml_strict(TINY)
    jobs = {j.wildcards["sweep"]: j
            for j in enumerate_jobs(TINY, workdir=tmp_path_factory.mktemp("xiao"))
            if j.rule == "xiao_sweep"}
    return jobs, config


def test_sweeps_are_planned_by_their_own_probe():
    from depthlab.probe import kinds as K

    assert rule_probe("xiao_sweep").kind == "xiao_sweep"
    assert K.KINDS["xiao_sweep"].measure.__module__ == "depthlab.studies.xiao.probe"
    assert K.KINDS["xiao_sweep"].dtype == "float64"
    # the trainer's probe is unchanged
    assert rule_probe("xiao_train").kind == rule_probe("xiao_plane_train").kind == "xiao"


def test_sweep_classes_and_work(sweeps):
    from depthlab.probe.plan import data_mb, has_checkpointing

    jobs, config = sweeps
    # phase: m6k3 x {fc, cnn_p} x 3 sigma_w^2; plane: 2 sigma_w^2; pool: {cnn_f, cnn_p}
    assert len(jobs) == 10
    reps = representatives(jobs.values(), config)
    # sigma_w^2 sets no cost: one class per (set, architecture)
    assert sorted(len(v) for v in reps.values()) == [1, 1, 2, 3, 3]
    common = {"activation": "erf", "dtype": "float64"}
    assert shape_class(jobs["phase_m6k3_fc_w1.2"], config).shape == {
        "arch": "fc", "image": (3, 3, 3), "n_train": 6, "n_test": 0, "labelled": False,
        "draws": 0, "times": 0, "dropout": 2, "filter_size": 0, **common}
    assert shape_class(jobs["plane_fc_w2.5"], config).shape == {
        "arch": "fc", "image": (1, 8, 8), "n_train": 40, "n_test": 40, "labelled": True,
        "draws": 2, "times": 1, "dropout": 0, "filter_size": 0, **common}
    # digits 8x8 pooled by 4; pool's times and draws are the schema's defaults ([1000], 2)
    assert shape_class(jobs["pool_cnn_p_w2.5"], config).shape == {
        "arch": "cnn_p", "image": (1, 2, 2), "n_train": 16, "n_test": 16, "labelled": True,
        "draws": 2, "times": 1, "dropout": 0, "filter_size": 3, **common}

    # phase depths: round(geomspace(1, 60, 8)) = 1 2 3 6 10 19 33 60; CNN-P off the
    # critical line stops at cnn_p_max_depth 30. layer pairs x (max depth + readouts)
    def work(name):
        return job_work(jobs[name], config)

    # FC: the 6 images in one tile, computed whole: 36 pairs
    assert work("phase_m6k3_fc_w1.2") == {"layer_pair": 36 * (60 + 8), "depth_row": 8}
    # conv: upper pairs only, 6 * 7 / 2 = 21
    assert work("phase_m6k3_cnn_p_w2.5") == {"layer_pair": 21 * (19 + 6), "depth_row": 6}
    assert work("phase_m6k3_cnn_p_wcrit") == {"layer_pair": 21 * (60 + 8), "depth_row": 8}
    # plane: 40 + 40 images in one FC tile (80 < 128): 6400 pairs; depths 1 4 8 16 32
    assert work("plane_fc_w1") == {"layer_pair": 6400 * (32 + 5), "depth_row": 5}
    # pool: 16 + 16 images, 32 * 33 / 2 pairs; depths 1 4 8
    assert work("pool_cnn_f_w2.5") == {"layer_pair": 528 * (8 + 3), "depth_row": 3}
    # the Grams of every depth (NNGP and NTK) and three copies of the images
    assert data_mb(jobs["plane_fc_w1"], config) == pytest.approx(
        (2 * 5 * 80**2 + 3 * 80 * 64) * 8 / MB)
    assert not has_checkpointing(jobs["plane_fc_w1"])


def test_fc_tiles_count_whole_diagonal_tiles():
    from depthlab.studies.xiao.probe import _pairs

    # 300 images in tiles 128, 128, 44: upper tiles computed whole
    assert _pairs("fc", 300, 128) == (300**2 + 2 * 128**2 + 44**2) // 2
    assert _pairs("cnn_f", 300, 32) == 300 * 301 // 2


def test_sweep_probe_measures_cost_shrinks_and_memory():
    from depthlab.probe import kinds as K

    probe = K.KINDS["xiao_sweep"]
    labelled = {"arch": "cnn_p", "image": (1, 2, 2), "n_train": 16, "n_test": 16,
                "labelled": True, "draws": 2, "times": 1, "dropout": 0, "activation": "erf",
                "filter_size": 3, "dtype": "float64"}
    phase = {"arch": "fc", "image": (3, 3, 3), "n_train": 6, "n_test": 0, "labelled": False,
             "draws": 0, "times": 0, "dropout": 2, "activation": "erf", "filter_size": 0,
             "dtype": "float64"}
    for shape in (labelled, phase):
        sec = probe.measure(shape, 2)
        assert set(sec) == {"depth_row", "layer_pair"}
        assert all(v > 0 for v in sec.values())
        cost = probe.cost(shape)
        assert set(cost) == set(sec) and all(v > 0 for v in cost.values())
        assert probe.memory(shape) > 0
        assert probe.shrink(shape) is None  # the probe runs these at their real size
    big = {**labelled, "arch": "fc", "image": (3, 32, 32), "n_train": 2048, "n_test": 2048}
    smaller = probe.shrink(big)
    assert smaller == {**big, "n_train": 1024, "n_test": 1024}
    assert probe.cost(smaller)["depth_row"] < probe.cost(big)["depth_row"]
    assert probe.memory(smaller) < probe.memory(big)
