"""The probe of Geiger's frozen-NTK rule geiger_lazy (depthlab.studies.geiger.probe): its
shape classes and work counts on the tiny Geiger config, and its probe at a tiny shape."""

from pathlib import Path

from depthlab.probe import kinds as K
from depthlab.probe.shapes import job_work, shape_class, work_is_bound

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "data" / "tiny_geiger.yaml"


def _lazy_jobs(tmp_path):
    from depthlab.config import load_yaml_strict
    from depthlab.probe.jobs import enumerate_jobs

    config = load_yaml_strict(TINY)
    jobs = {j.label: j for j in enumerate_jobs(TINY, workdir=tmp_path) if j.rule == "geiger_lazy"}
    return config, jobs


def test_lazy_classes_and_work_follow_the_tiny_config(tmp_path):
    from depthlab.probe.plan import data_mb
    from depthlab.studies.geiger.runs import frozen_ntk_prediction

    config, jobs = _lazy_jobs(tmp_path)
    # one job per (activation, depth, width, seed) cell, alpha is no wildcard: the FC study's
    # softplus L2 widths 8, 32 x seeds 0, 1 (both of its grids) and relu L3 width 8 seed 0;
    # the CNN study's one cell
    assert len(jobs) == 6
    classes = {j: shape_class(job, config) for j, job in jobs.items()}
    assert {c.kind for c in classes.values()} == {"geiger_lazy"}
    assert len(set(classes.values())) == 4  # the seed sets no cost
    fc = classes["geiger_lazy[activation=softplus,depth=2,seed=1,study=geiger,width=32]"]
    assert fc == classes["geiger_lazy[activation=softplus,depth=2,seed=0,study=geiger,width=32]"]
    # dataset digits: d 10, n_test 200; the study's n_train 40; mu 1000 (the FC default)
    assert fc.shape == {"architecture": "fc", "activation": "softplus", "depth": 2, "width": 32,
                        "d": 10, "image_shape": None, "n_train": 40, "n_test": 200,
                        "mu": 1000.0, "tau": None}
    cnn_job = jobs["geiger_lazy[activation=relu,depth=4,seed=0,study=geiger_cnn,width=4]"]
    cnn = shape_class(cnn_job, config)
    assert cnn.shape == {"architecture": "cnn", "activation": "relu", "depth": 4, "width": 4,
                         "d": 64, "image_shape": (8, 8), "n_train": 20, "n_test": 60,
                         "mu": None, "tau": 10.0}
    # entries: the train Gram in full and the test x train Gram, n (n + n_test); steps: the
    # function's own cap (the script passes none), a bound
    cap = 5_000_000
    assert frozen_ntk_prediction.__kwdefaults__["max_steps"] == cap
    for label, job in jobs.items():
        n, nt = (20, 60) if "geiger_cnn" in label else (40, 200)
        assert job_work(job, config) == {"fixed": 1.0, "entry": n * (n + nt), "step": cap}
        assert work_is_bound(job)
    # at these sizes the probe's subset is the whole set: data_mb is the float32 arrays and
    # their float64 tensors, (n + n_test) d (4 + 8) bytes
    assert data_mb(cnn_job, config) == (20 + 60) * 64 * 12 / 2**20
    fc_job = jobs["geiger_lazy[activation=relu,depth=3,seed=0,study=geiger,width=8]"]
    assert data_mb(fc_job, config) == (40 + 200) * 10 * 12 / 2**20


def test_lazy_probe_measures_at_a_tiny_shape():
    probe = K.KINDS["geiger_lazy"]
    assert probe.measure.__module__ == "depthlab.studies.geiger.probe"
    assert probe.dtype == "float64" and K.KINDS["geiger"] is not probe
    fc = {"architecture": "fc", "activation": "softplus", "depth": 2, "width": 16, "d": 10,
          "image_shape": None, "n_train": 64, "n_test": 96, "mu": 1000.0, "tau": None}
    cnn = {"architecture": "cnn", "activation": "relu", "depth": 4, "width": 4, "d": 64,
           "image_shape": (8, 8), "n_train": 32, "n_test": 40, "mu": None, "tau": 10.0}
    for shape in (fc, cnn):
        sec = probe.measure(shape, 2)
        assert sec["entry"] > 0 and sec["step"] > 0 and sec["fixed"] > 0
        cost = probe.cost(shape)
        assert next(iter(cost)) == "entry"  # the unit whose cost predicts the probe's time
        assert all(v > 0 for v in cost.values())
        assert probe.memory(shape) > 0
        assert probe.shrink(shape) is None  # already small
    # width halves (the step is timed at the real n whatever the width)
    big = {**cnn, "width": 128}
    assert probe.shrink(big) == {**cnn, "width": 64}
    assert probe.cost(probe.shrink(big))["entry"] < probe.cost(big)["entry"]
    assert probe.shrink({**cnn, "width": 32}) == {**cnn, "width": 16}
    assert probe.shrink({**cnn, "width": 16}) is None
    assert probe.shrink({**fc, "width": 1024}) == {**fc, "width": 512}
    assert probe.shrink({**fc, "width": 128}) is None
    # memory: the probe holds the n x n flow Gram (and its |K| temporary) and the CNN's
    # Jacobian blocks, which grow with width; a job also the train Gram's build (5 n^2
    # doubles while the FC Gram is symmetrised), added by data_mb
    from depthlab.studies.geiger.probe import lazy_job_mb

    real = {**fc, "n_train": 10_000, "n_test": 10_000}
    assert probe.memory(real) >= 2 * 10_000**2 * 8 / 2**20
    assert lazy_job_mb(real) > 5 * 10_000**2 * 8 / 2**20
    assert probe.memory({**cnn, "width": 256}) > probe.memory(cnn)


def test_lazy_data_mb_adds_what_the_probe_does_not_hold():
    from depthlab.probe.jobs import JobInfo
    from depthlab.probe.plan import data_mb
    from depthlab.studies.geiger.probe import lazy_job_mb, lazy_memory

    # a paper-sized FC job (setup A: MNIST parity, 10 PCA components, n = n_test = 10^4)
    config = {"datasets": {"m": {"d": 10, "n_train": 10_000, "n_test": 10_000}},
              "studies": {"g": {"kind": "geiger", "dataset": "m"}}}
    dyn = {"mu": 1000.0, "tau": None, "max_steps": 10**7, "ntk_subset": 1024}
    job = JobInfo("geiger_lazy", {"study": "g", "activation": "softplus", "depth": "5",
                                  "width": "1024", "seed": "0"},
                  {"run": {"dynamics": dyn, "n_train": 10_000, "architecture": "fc",
                           "image_shape": None}}, 8)
    shape = shape_class(job, config).shape
    extra = lazy_job_mb(shape) - lazy_memory(shape)
    assert extra > 3 * 10_000**2 * 8 / 2**20  # the train Gram's build beyond the flow's 2 n^2
    assert data_mb(job, config) == 20_000 * 10 * 12 / 2**20 + extra
