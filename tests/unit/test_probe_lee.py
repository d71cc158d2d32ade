"""The probe of the Lee jobs (depthlab.studies.lee.probe): shape classes and work counts of
the tiny Lee config's jobs, checked against counts by hand, and each Lee probe at a tiny
shape."""

from pathlib import Path

import pytest

from depthlab.probe.shapes import job_work, representatives, shape_class, work_is_bound

REPO = Path(__file__).resolve().parents[2]
CFG = REPO / "tests" / "data" / "tiny_lee.yaml"
RULES = ("lee_train", "lee_gram", "lee_kernel", "lee_toy", "lee_ntk_spread_job")


@pytest.fixture(scope="module")
def lee(tmp_path_factory):
    from depthlab.config import load_yaml_strict
    from depthlab.probe.jobs import enumerate_jobs

    jobs = [j for j in enumerate_jobs(CFG, workdir=tmp_path_factory.mktemp("lee"))
            if j.rule in RULES]
    return {j.label: j for j in jobs}, load_yaml_strict(CFG)


def _job(jobs, rule, prefix=""):
    return next(j for j in jobs.values()
                if j.rule == rule and j.wildcards.get("job", "").startswith(prefix))


def test_train_jobs_mlp_and_cnn(lee):
    jobs, config = lee
    # digits_tiny: d = 64, K = 10, N = 200, 100 test rows; batch 64 -> ceil(200 / 64) = 4
    dn = _job(jobs, "lee_train", "mlp_deep_narrow")
    cls = shape_class(dn, config)
    assert cls.kind == "lee_train" and cls.shape == {
        "arch": "mlp", "d": 64, "depth": 20, "width": 64 + 10 + 1, "batch": 64,
        "dtype": "float32", "loss": "mse", "activation": "relu", "n_classes": 10, "M": 2}
    # 4 epochs x 4 steps; train set checked every epoch (4 x 200), test set at epochs 2, 4,
    # at the finish and for the final predictions (4 x 100)
    assert job_work(dn, config) == {"fixed": 1.0, "step_M2": 16.0, "evalrow_M2": 1200.0}
    he = _job(jobs, "lee_train", "mlp_he_uniform")
    assert shape_class(he, config) == cls  # 2 members packed: the same pack of 2
    # 2 epochs: 2 x 4 steps; 2 x 200 train rows + (1 + 2) x 100 test rows
    assert job_work(he, config) == {"fixed": 1.0, "step_M2": 8.0, "evalrow_M2": 700.0}
    cnn = _job(jobs, "lee_train", "cnn_deep_narrow")
    ccls = shape_class(cnn, config)
    # 8x8 digits pooled 2x2 -> 4x4; c + K + 1 = 12 channels
    assert ccls.kind == "lee_train" and ccls.shape == {
        "arch": "cnn", "depth": 6, "channels": 12, "side": 4, "image_side": 8, "pool": 2,
        "batch": 64, "n_out": 10, "scalar": False, "dtype": "float32"}
    # 2 epochs x 4 steps; per epoch 200 + 100 evaluated rows, then 100 final predictions
    assert job_work(cnn, config) == {"fixed": 1.0, "step": 8.0, "evalrow": 700.0}
    assert shape_class(_job(jobs, "lee_train", "cnn_torch_default"), config) == ccls
    reps = representatives([j for j in jobs.values() if j.rule == "lee_train"], config)
    assert sorted(len(v) for v in reps.values()) == [2, 3]
    assert work_is_bound(dn) and work_is_bound(cnn)  # both trainers stop at zero error


def test_train_checkpointing_follows_checkpoint_every(lee):
    from depthlab.probe.jobs import JobInfo
    from depthlab.probe.plan import has_checkpointing

    jobs, _ = lee
    dn = _job(jobs, "lee_train", "mlp_deep_narrow")
    # a checkpoint path, but checkpoint_every 0: nothing is written, nothing resumes
    assert dn.params["checkpoint"] and not has_checkpointing(dn)
    study = {**dn.params["study"],
             "training": {**dn.params["study"]["training"], "checkpoint_every": 10}}
    assert has_checkpointing(JobInfo("lee_train", dn.wildcards,
                                     {**dn.params, "study": study}, 1))
    assert not has_checkpointing(_job(jobs, "lee_gram"))
    assert not has_checkpointing(_job(jobs, "lee_toy"))


def test_kernel_gram_toy_spread_work(lee):
    from depthlab.probe.plan import data_mb

    jobs, config = lee
    gram = _job(jobs, "lee_gram")
    assert shape_class(gram, config).shape == {"d": 64, "block_size": 200}  # N < 2048
    # one row block: 200 x 200 train entries, then 100 x 200 test entries
    assert job_work(gram, config) == {"fixed": 1.0, "entry": 200 * 200 + 100 * 200}
    assert data_mb(gram, config) == (10 * 200 * 200 * 8 + 300 * 64 * 8) / 2**20
    kernel = _job(jobs, "lee_kernel")
    assert shape_class(kernel, config).kind == "cholesky"
    # Cholesky, 2 solves x 10 columns, eigvalsh of the 200-row stability block, prediction
    want = 200**3 / 3 + 2 * 10 * 200**2 + 4 * 200**3 / 3 + 2 * 100 * 200 * 10
    assert job_work(kernel, config)["chol_flop"] == pytest.approx(want)
    toys = {j.wildcards["depth"]: j for j in jobs.values() if j.rule == "lee_toy"}
    assert {d: shape_class(j, config).shape for d, j in toys.items()} == {
        "10": {"depth": 10, "members": 2}, "30": {"depth": 30, "members": 2}}
    assert job_work(toys["30"], config) == {"fixed": 1.0, "step": 20.0}
    spread = _job(jobs, "lee_ntk_spread_job")
    assert shape_class(spread, config).kind == "lee_spread"
    assert job_work(spread, config) == {"fixed": 1.0, "layer": 8.0 * (5 + 50 + 500)}


CNN = {"arch": "cnn", "depth": 3, "channels": 12, "side": 4, "image_side": 8, "pool": 2,
       "batch": 8, "n_out": 10, "scalar": False, "dtype": "float32"}
MLP = {"arch": "mlp", "d": 16, "depth": 3, "width": 24, "batch": 16, "dtype": "float32",
       "loss": "mse", "activation": "relu", "n_classes": 10, "M": 2}


@pytest.mark.parametrize("kind,shape", [
    ("lee_train", MLP),
    ("lee_train", CNN),
    ("lee_train", {**CNN, "channels": 3, "n_out": 1, "scalar": True, "dtype": "float64"}),
    ("lee_limit_gram", {"d": 8, "block_size": 64}),
    ("lee_toy", {"depth": 4, "members": 2}),
    ("lee_spread", {"d": 2}),
])
def test_lee_probes_measure(kind, shape):
    from depthlab.probe import kinds as K

    probe = K.KINDS[kind]
    sec = probe.measure(shape, 2)
    cost = probe.cost(shape)
    assert sec and all(v >= 0 for v in sec.values())
    assert all(sec[u] > 0 for u in sec if u != "fixed")
    assert set(sec) - {"fixed"} <= set(cost) and all(v > 0 for v in cost.values())
    smaller = probe.shrink(shape)
    assert smaller is None or probe.cost(smaller)[next(iter(cost))] < cost[next(iter(cost))]
    assert probe.memory is None or probe.memory(shape) > 0
    assert kind == "lee_spread" or probe.memory is not None


def test_train_shrinks_depth_then_batch():
    from depthlab.probe import kinds as K

    shrink = K.KINDS["lee_train"].shrink
    deep = {**CNN, "depth": 1000, "batch": 512}
    assert shrink(deep) == {**deep, "depth": 500}
    assert shrink({**deep, "depth": 8}) == {**deep, "depth": 8, "batch": 256}
    assert shrink({**deep, "depth": 8, "batch": 8}) is None
    mlp = {**MLP, "depth": 8, "batch": 32, "width": 128}
    assert shrink(mlp) == {**mlp, "width": 64}  # then the shared packed shrink (width)
