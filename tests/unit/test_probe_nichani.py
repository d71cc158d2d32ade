"""The probe of Nichani's kernel and linear-net jobs (depthlab.studies.nichani.probe):
shape classes and work counts of the jobs Snakemake plans for tests/data/tiny_nichani.yaml,
checked against counts made by hand from that config, and each probe kind at a tiny shape."""

from pathlib import Path

import pytest

from depthlab.probe.shapes import job_work, shape_class, work_is_bound

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "data" / "tiny_nichani.yaml"
MB = 2.0**20


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from depthlab.config import load_yaml_strict
    from depthlab.probe.jobs import enumerate_jobs

    jobs = {j.label: j for j in enumerate_jobs(TINY, workdir=tmp_path_factory.mktemp("dag"))
            if j.rule in ("nichani_kernel", "nichani_linear")}
    return jobs, load_yaml_strict(TINY)


def test_kernel_jobs_shapes_and_entries(tiny):
    """digits_3x10: 3 classes of 1 x 8 x 8 digits, 4 train and 6 test rows per class; the
    kernels block keeps all (train/test_per_class null), cntk_gap_fix keeps 3 test rows per
    class. Entries: the train Gram's upper triangle n(n+1)/2 and the test x train panel;
    per depth one fit: n^3/3 + 2 n^2 k + 2 (n_test + n) n k flops."""
    from depthlab.probe.plan import data_mb, has_checkpointing

    jobs, config = tiny
    assert len(jobs) == 5
    gap = jobs["nichani_kernel[study=nichani,variant=cntk_gap_fix]"]
    van = jobs["nichani_kernel[study=nichani,variant=cntk_vanilla]"]
    fc = jobs["nichani_kernel[study=nichani,variant=fc_ntk]"]
    c_gap, c_van, c_fc = (shape_class(j, config) for j in (gap, van, fc))
    assert {c.kind for c in (c_gap, c_van, c_fc)} == {"nichani_kernel"}
    # tiles: conv_sweep's 512 MiB budget over 16 float64 buffers per pair (64^2 pixel
    # pairs with GAP: edge 32; 64 on the diagonal: 256), at most the 12 training rows
    assert c_gap.shape == {"net": "cntk", "readout": "gap", "fix": True, "image": (1, 8, 8),
                           "filter_size": 3, "padding": "zero", "depths": (2, 3),
                           "dtype": "float64", "tile": 12}
    assert c_van.shape == {**c_gap.shape, "readout": "flatten", "fix": False,
                           "depths": (1, 2, 4)}
    assert c_fc.shape == {"net": "fc", "d": 64, "depths": (1, 3), "dtype": "float64"}
    n, k = 12, 3
    fit9, fit18 = n**3 / 3 + 2 * n * n * k + 2 * (9 + n) * n * k, \
        n**3 / 3 + 2 * n * n * k + 2 * (18 + n) * n * k
    assert job_work(gap, config) == {"fixed": 1.0, "entry": 78 + 9 * 12, "chol_flop": 2 * fit9}
    assert job_work(van, config) == {"fixed": 1.0, "entry": 78 + 18 * 12,
                                     "chol_flop": 3 * fit18}
    assert job_work(fc, config) == {"fixed": 1.0, "entry": 294.0, "chol_flop": 2 * fit18}
    assert fit9 == 2952 and fit18 == 3600
    # the file's 30 rows, the kept rows twice (array + tensor), 2 depths x (NNGP, NTK) x
    # (12 x 12 + 9 x 12) Grams, two 12 x 12 fit copies; all 8 bytes
    assert data_mb(gap, config) == pytest.approx(
        (30 * 64 * 8 + 21 * 64 * 16 + 2 * 2 * (144 + 108) * 8 + 2 * 144 * 8) / MB)
    assert not work_is_bound(gap) and not has_checkpointing(gap)


def test_linear_jobs_shapes_and_steps(tiny):
    """toy: the 6 x 6 RGB pixel toy, one image per label, width 4, depths 2 and 3, 2 seeds,
    300 steps at most; toeplitz: one Gaussian vector of length 5, depths 1 and 3, 2 seeds,
    2000 steps at most. A step is one step of each depth's net, counted at max_steps."""
    from depthlab.probe.plan import data_mb, has_checkpointing

    jobs, config = tiny
    toy = jobs["nichani_linear[study=nichani,task=toy]"]
    toe = jobs["nichani_linear[study=nichani,task=toeplitz]"]
    assert shape_class(toy, config).kind == shape_class(toe, config).kind == "nichani_linear"
    assert shape_class(toy, config).shape == {
        "task": "toy", "image": (3, 6, 6), "n": 2, "out": 1, "width": 4, "kernel_size": 3,
        "padding": "zero", "depths": (2, 3), "dtype": "float64"}
    assert shape_class(toe, config).shape == {"task": "toeplitz_ae", "dim": 5, "n": 1,
                                              "depths": (1, 3), "dtype": "float64"}
    assert job_work(toy, config) == {"fixed": 2.0, "step": 2 * 300.0}
    assert job_work(toe, config) == {"fixed": 2.0, "step": 2 * 2000.0}
    assert work_is_bound(toy) and not has_checkpointing(toy)
    # toy: train and test images (as inputs and targets), 3 operators 1 x 108
    assert data_mb(toy, config) == pytest.approx((2 * 22 * 108 * 8 + 3 * 108 * 8) / MB)


def test_conv_ae_reads_its_image_sample_dataset():
    """conv_ae's images are its named image_sample dataset's (CIFAR-10 downsampled to
    image_size, 32 by default; digits 1 x 8 x 8)."""
    from depthlab.probe.jobs import JobInfo

    task = {"name": "ae", "task": "conv_ae", "depths": [1, 4], "seeds": [0, 1, 2],
            "width": 16, "dataset": "ae5", "kernel_size": 3, "padding": "zero",
            "max_steps": 100, "n_test": 200}
    config = {"datasets": {"ae5": {"generator": "image_sample", "source": "cifar10",
                                   "n_images": 5, "seed": 0}}}
    job = JobInfo("nichani_linear", {"study": "s", "task": "ae"}, {"task": task}, 1)
    assert shape_class(job, config).shape["image"] == (3, 32, 32)
    assert shape_class(job, config).shape["n"] == 5 and shape_class(job, config).shape["out"] == 3
    assert job_work(job, config) == {"fixed": 3.0, "step": 300.0}


CNTK = {"net": "cntk", "readout": "gap", "fix": True, "image": (1, 4, 4), "filter_size": 3,
        "padding": "zero", "depths": (1, 2, 4), "dtype": "float32", "tile": 3}


@pytest.mark.parametrize("shape", [
    CNTK,
    {**CNTK, "readout": "flatten", "fix": False},
    {"net": "fc", "d": 16, "depths": (1, 2, 4), "dtype": "float64"},
])
def test_kernel_probe_at_a_tiny_shape(shape):
    from depthlab.probe import kinds as K

    probe = K.KINDS["nichani_kernel"]
    assert probe.measure.__module__ == "depthlab.studies.nichani.probe"
    sec = probe.measure(shape, 2)
    assert sec["entry"] > 0 and sec["chol_flop"] > 0
    cost = probe.cost(shape)
    assert cost["entry"] > 0 and cost["chol_flop"] > 0
    smaller = probe.shrink(shape)
    assert smaller == {**shape, "depths": (1, 2)}
    assert probe.cost(smaller)["entry"] < cost["entry"]
    assert probe.shrink({**shape, "depths": (1,)}) is None
    assert probe.memory(shape) > 0


@pytest.mark.parametrize("shape", [
    {"task": "toy", "image": (3, 6, 6), "n": 2, "out": 1, "width": 4, "kernel_size": 3,
     "padding": "zero", "depths": (1, 3), "dtype": "float64"},
    {"task": "conv_ae", "image": (1, 8, 8), "n": 2, "out": 1, "width": 4, "kernel_size": 3,
     "padding": "circular", "depths": (1, 2), "dtype": "float64"},
    {"task": "toeplitz_ae", "dim": 5, "n": 1, "depths": (1, 3), "dtype": "float64"},
])
def test_linear_probe_at_a_tiny_shape(shape):
    from depthlab.probe import kinds as K

    probe = K.KINDS["nichani_linear"]
    sec = probe.measure(shape, 2)
    assert sec["step"] > 0 and sec["fixed"] > 0
    assert probe.cost(shape)["step"] > 0 and probe.cost(shape)["fixed"] > 0
    assert probe.shrink(shape) is None  # small nets: measured at the real shape
    assert probe.memory(shape) > 0
