"""Local stability s(v) (sec. 4.2, eq. 15) against hand-computable classifiers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthlab.data.synthetic import k_local_labels
from depthlab.models import FCEnsemble
from depthlab.studies.mori_ueda.stability import (
    ensemble_predict_fn,
    local_stability,
    member_predict_fn,
)

V = np.array([0.0, 0.01, 0.1, 0.5, 1.0, 2.0, 5.0])


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((1500, 7))


def linear_rule(w):
    # class 0 iff w.x >= 0 (the k_local tie convention)
    return lambda z: np.where(z @ w >= 0, 0, 1)


def test_linear_classifier_exact(x):
    w = np.array([0.3, -1.7, 0.2, 0.9, -0.1, 1.1, 0.05])
    got = local_stability(linear_rule(w), x, V, batch=1000, per_point=True)
    m = x @ w
    for vi, v in enumerate(V):
        a = v * np.abs(w).max()
        # class 0 (m >= 0) survives iff m - a >= 0; class 1 (m < 0) iff m + a < 0
        expected = (m >= a) | (m < -a)
        assert np.array_equal(got[vi], expected), v
    s = local_stability(linear_rule(w), x, V)
    assert np.array_equal(s, got.mean(axis=1))
    assert s[0] == 1.0 and np.all(np.diff(s) <= 0) and s[-1] < 0.5


def test_one_local_label_exact(x):
    pts = np.vstack([x, np.zeros((3, 7))])
    pts[-3:, 0] = [0.0, 0.5, -0.5]  # on the boundary, and exactly v away from it for v = 0.5
    rule = lambda z: k_local_labels(z, np.array([0]))  # noqa: E731
    got = local_stability(rule, pts, V, batch=100, per_point=True)
    x0 = pts[:, 0]
    for vi, v in enumerate(V):
        assert np.array_equal(got[vi], (x0 >= v) | (x0 < -v)), v
    i = list(V).index(0.5)
    assert got[0, -3:].all()  # v = 0: always stable
    assert got[i, -3:].tolist() == [False, True, False]  # 0 -> -0.5 flips; 0.5 -> 0 stays class 0
    s = got.mean(axis=1)
    assert np.all(np.diff(s) <= 0)


def test_chunking_and_dtype_invariance(x):
    w = np.arange(1.0, 8.0) - 3.5
    big = local_stability(linear_rule(w), x, V, batch=10**6, per_point=True)
    small = local_stability(linear_rule(w), x, V, batch=1, per_point=True)  # one point per call
    assert np.array_equal(big, small)
    calls = []

    def counting(z):
        calls.append(len(z))
        return linear_rule(w)(z)

    local_stability(counting, x[:100], [0.3], batch=15 * 10)
    assert max(calls) <= 150 and sum(calls) == 100 * 15


def test_ensemble_predict_fn():
    torch.manual_seed(0)
    d = 6
    model = FCEnsemble(d, 2, 16, 3, seeds=[1, 2, 3])
    xs = np.random.default_rng(1).standard_normal((300, d)).astype(np.float32)
    predict = ensemble_predict_fn(model)
    labels = predict(xs)
    with torch.no_grad():
        ref = model(torch.as_tensor(xs)).argmax(-1).numpy()
    assert labels.shape == (3, 300) and np.array_equal(labels, ref)
    assert np.array_equal(member_predict_fn(model, 1)(xs), ref[1])
    s = local_stability(predict, xs, V, batch=500)
    assert s.shape == (3, len(V)) and np.all(s[:, 0] == 1.0)
    assert np.all((s >= 0) & (s <= 1)) and np.all(s[:, -1] < 1)
    for m in range(3):
        single = local_stability(member_predict_fn(model, m), xs, V, batch=500)
        assert np.array_equal(single, s[m])


def test_bad_inputs(x):
    with pytest.raises(ValueError):
        local_stability(linear_rule(np.ones(7)), x, [-0.1])
    with pytest.raises(ValueError):
        local_stability(lambda z: np.zeros((len(z), 2)), x, [0.1])
