"""The blocked Theta~inf Gram file of the Lee study: equal to the closed form in memory, read
by the shared Gram readers, and the kernel job gives the same regression from it."""

import h5py
import numpy as np
import pytest

from depthlab.kernels.gram import read_gram, read_test_diag
from depthlab.studies.lee.data import load_lee_data
from depthlab.studies.lee.gram import write_limit_gram
from depthlab.studies.lee.kernels import limit_kernel
from depthlab.studies.lee.runs import kernel_job


@pytest.fixture(scope="module")
def digits():
    data = load_lee_data({"source": "digits", "n_train": 150, "n_test": 70, "seed": 1})
    return {**data, "n_classes": 10}


def test_blocked_gram_equals_closed_form(tmp_path, digits):
    kw = {"n_out": 10, "rho": 0.8, "beta": 1.2}
    path = write_limit_gram(tmp_path / "g.h5", digits["x_train"], digits["x_test"],
                            block_size=32, **kw)
    k_tt, blocks = read_gram(path, "ntk", None, 25)
    assert np.array_equal(k_tt, k_tt.T)  # exactly symmetric
    np.testing.assert_allclose(k_tt, limit_kernel(digits["x_train"], **kw), rtol=1e-13)
    np.testing.assert_allclose(np.concatenate(list(blocks)),
                               limit_kernel(digits["x_test"], digits["x_train"], **kw),
                               rtol=1e-13)
    np.testing.assert_allclose(read_test_diag(path),
                               np.diag(limit_kernel(digits["x_test"], **kw)), rtol=1e-13)
    sub, _ = read_gram(path, "ntk", 40)  # nested prefixes
    np.testing.assert_array_equal(sub, k_tt[:40, :40])
    with h5py.File(path) as f:
        assert f.attrs["kernel"] == "deep_narrow_limit" and f.attrs["n_out"] == 10


def test_kernel_job_from_the_gram_file(tmp_path, digits):
    study = {"deep_narrow": {"rho": 1.0, "beta": 1.0}, "training": {"stability_subset": 100}}
    path = write_limit_gram(tmp_path / "g.h5", digits["x_train"], digits["x_test"],
                            block_size=64, n_out=10, rho=1.0, beta=1.0)
    mem = kernel_job(digits, study, jitter=1e-10, block_size=2048)
    blocked = kernel_job(digits, study, jitter=1e-10, gram=str(path), block_size=16)
    assert blocked["lambda_max_inf"] == pytest.approx(mem["lambda_max_inf"], rel=1e-12)
    np.testing.assert_array_equal(blocked["krr_test_pred"], mem["krr_test_pred"])
    assert blocked["krr_test_acc"] > 0.8
    other = {**study, "deep_narrow": {"rho": 0.5, "beta": 1.0}}
    with pytest.raises(ValueError, match="other inputs or kernel parameters"):
        kernel_job(digits, other, jitter=1e-10, block_size=2048, gram=str(path))
