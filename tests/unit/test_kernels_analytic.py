"""Analytic NNGP/NTK kernels checked against independent truths (not self-consistency)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depthlab.kernels import (
    KernelSpec,
    dense,
    fc_kernel,
    he_relu_spec,
    input_layer,
    kernel_diag,
    kernel_matrices,
    kernel_sweep,
    relu,
    serial,
)

BETA = 0.1


def sphere(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x * np.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True)


def special_inputs(d: int = 5, seed: int = 0) -> np.ndarray:
    """Random inputs plus a parallel, an antiparallel and a duplicate one."""
    x = np.random.default_rng(seed).normal(size=(8, d))
    x[3] = 0.3 * x[1]
    x[4] = -x[2]
    x[5] = x[0]
    return x


def paper_relu_ntk(x1, x2, depth: int, beta: float, mp=None) -> tuple[float, float]:
    """Mori & Ueda eqs. (S1), (S3)-(S5) for one pair, written exactly as printed.

    Plain floats by default; pass the ``mpmath`` module to evaluate in high precision."""
    m = math if mp is None else mp
    num = float if mp is None else mp.mpf
    x1 = [num(float(v)) for v in x1]
    x2 = [num(float(v)) for v in x2]
    d = len(x1)
    b2 = num(beta) ** 2
    s12 = sum(a * b for a, b in zip(x1, x2, strict=True)) / d + b2
    s11 = sum(a * a for a in x1) / d + b2
    s22 = sum(a * a for a in x2) / d + b2
    sigmas, dots = [s12], []
    for _ in range(depth):
        sqrt_det = m.sqrt(max(s11 * s22 - s12**2, 0))
        at = m.atan(s12 / sqrt_det) if sqrt_det > 0 else (m.pi / 2 if s12 > 0 else -m.pi / 2)
        dots.append((1 + 2 / m.pi * at) / 2)
        s12 = sqrt_det / m.pi + s12 / m.pi * (m.pi / 2 + at) + b2
        s11, s22 = s11 + b2, s22 + b2  # Sigma(x, x) = Sigma_prev(x, x) + beta^2
        sigmas.append(s12)
    dots.append(num(1))  # (S3) with Sigma_dot^(L+1) = 1
    ntk = sum(sigmas[l] * math.prod(dots[l:]) for l in range(depth + 1))
    return float(sigmas[-1]), float(ntk)


def test_worked_example_from_docstring():
    x = np.array([[1.0, 1.0], [1.0, -1.0]])
    nngp, ntk = kernel_matrices(he_relu_spec(BETA), 1, x)
    theta = math.acos(0.01 / 1.01)
    s1 = 2 * 1.01 / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta)) + 0.01
    sdot = (math.pi - theta) / math.pi
    assert nngp[0, 1] == pytest.approx(s1, rel=1e-14)
    assert ntk[0, 1] == pytest.approx(sdot * 0.01 + s1, rel=1e-14)
    assert nngp[0, 0] == pytest.approx(1.02, rel=1e-15)
    assert ntk[0, 0] == pytest.approx(2.03, rel=1e-15)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_relu_matches_paper_equations(depth):
    # 40-digit evaluation: the printed formula loses ~sqrt(eps) in float64 for parallel pairs
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    x = special_inputs()
    nngp, ntk = kernel_matrices(he_relu_spec(BETA), depth, x)
    for i in range(len(x)):
        for j in range(len(x)):
            s, t = paper_relu_ntk(x[i], x[j], depth, BETA, mp=mp)
            assert nngp[i, j] == pytest.approx(s, rel=1e-13, abs=1e-15)
            assert ntk[i, j] == pytest.approx(t, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("b_var", [0.0, 0.1])
@pytest.mark.parametrize("depth", [1, 3])
def test_relu_closed_form_vs_quadrature(depth, b_var):
    # relu_quad is the generic `pointwise` layer (piecewise Gauss-Legendre split at the kink)
    x = special_inputs()
    closed = {"activation": "relu", "w_var": 1.7, "b_var": b_var}
    quad = dict(closed, activation="relu_quad")
    n1, t1 = kernel_matrices(closed, depth, x)
    n2, t2 = kernel_matrices(quad, depth, x)
    np.testing.assert_allclose(n1, n2, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(t1, t2, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("depth", [1, 3])
def test_erf_closed_form_vs_gauss_hermite(depth):
    # variances stay O(1) so 48-point Gauss-Hermite is spectrally converged
    x = special_inputs()
    x /= np.linalg.norm(x, axis=1).max() / np.sqrt(x.shape[1])
    closed = {"activation": "erf", "w_var": 0.8, "b_var": 0.05}
    quad = dict(closed, activation="erf_quad")
    n1, t1 = kernel_matrices(closed, depth, x)
    n2, t2 = kernel_matrices(quad, depth, x)
    np.testing.assert_allclose(n1, n2, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(t1, t2, rtol=1e-8, atol=1e-10)


def test_mori_ueda_diagonal_identity():
    """Sigma_l(x, x) = |x|^2/d + (l+1) beta^2 and Theta_L(x, x) = sum_l Sigma_l(x, x)."""
    x = np.random.default_rng(3).normal(size=(12, 7)) * np.linspace(0.2, 3.0, 12)[:, None]
    d = x.shape[1]
    depths = list(range(0, 21))
    sweep = kernel_sweep(he_relu_spec(BETA), depths, x)
    sq = np.sum(x**2, axis=1) / d
    for depth in depths:
        expected_sigma = sq + (depth + 1) * BETA**2
        expected_theta = sum(sq + (l + 1) * BETA**2 for l in range(depth + 1))
        nngp, ntk = sweep[depth]
        nd, td = kernel_diag(he_relu_spec(BETA), depth, x)
        np.testing.assert_allclose(np.diag(nngp), expected_sigma, rtol=1e-12)
        np.testing.assert_allclose(nd, expected_sigma, rtol=1e-12)
        np.testing.assert_allclose(td, expected_theta, rtol=1e-12)
        np.testing.assert_array_equal(np.diag(ntk), td)


def test_near_parallel_pairs_resolved_until_rounding_level():
    """Small angles are resolved to the conditioning of the problem (~eps/theta, checked
    against 40-digit evaluation of the paper's formulas); pairs parallel up to rounding
    (angle < ~1.7e-7) are snapped to exact duplicates (documented)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    x0, x1 = np.random.default_rng(11).normal(size=(2, 6))
    ortho = x1 - (x1 @ x0) / (x0 @ x0) * x0
    spec = he_relu_spec(BETA)
    for eps, rtol in [(1e-1, 1e-14), (1e-3, 1e-12), (1e-5, 1e-10)]:
        pair = np.vstack([x0, x0 + eps * ortho])
        nngp, ntk = kernel_matrices(spec, 3, pair)
        s, t = paper_relu_ntk(pair[0], pair[1], 3, BETA, mp=mp)
        assert nngp[0, 1] == pytest.approx(s, rel=1e-14)
        assert ntk[0, 1] == pytest.approx(t, rel=rtol)
    merged = np.vstack([x0 * (1 + 2**-52), x0 + 1e-9 * ortho])
    nngp, ntk = kernel_matrices(spec, 5, x0[None], merged)
    nd, td = kernel_diag(spec, 5, x0[None])
    np.testing.assert_allclose(nngp[0], nd[0], rtol=1e-14)
    np.testing.assert_allclose(ntk[0], td[0], rtol=1e-14)


def test_depth_zero_is_linear_model():
    x = sphere(5, 4)
    nngp, ntk = kernel_matrices({"activation": "relu", "w_var": 1.5, "b_var": 0.2}, 0, x)
    np.testing.assert_allclose(nngp, 1.5 * x @ x.T / 4 + 0.2, rtol=1e-14)
    np.testing.assert_array_equal(ntk, nngp)


def test_neural_tangents_convention():
    """All layers w_var = sw^2, b_var = sb^2: Sigma_0 = sw^2 x.x'/d + sb^2."""
    sw2, sb2 = 1.8, 0.3
    x = sphere(6, 5, seed=1)
    spec = {"activation": "relu", "w_var": sw2, "b_var": sb2}
    n0, _ = kernel_matrices(spec, 0, x)
    np.testing.assert_allclose(n0, sw2 * x @ x.T / 5 + sb2, rtol=1e-14)
    diag = np.diag(n0).copy()
    for depth in range(1, 5):
        diag = sw2 * diag / 2 + sb2
        np.testing.assert_allclose(kernel_diag(spec, depth, x)[0], diag, rtol=1e-13)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "identity"])
def test_gram_diagonal_equals_diag_path_exactly(activation):
    n = 40 if activation != "tanh" else 10
    x = sphere(n, 6, seed=2) * np.linspace(0.5, 2, n)[:, None]
    spec = {"activation": activation, "w_var": 1.6, "b_var": 0.1, "first_w_var": 1.0}
    nngp, ntk = kernel_matrices(spec, 3, x, tile=16)
    nd, td = kernel_diag(spec, 3, x)
    np.testing.assert_array_equal(np.diag(nngp), nd)
    np.testing.assert_array_equal(np.diag(ntk), td)


@pytest.mark.parametrize("depth", [1, 3, 10])
def test_symmetric_psd(depth):
    x = sphere(150, 10, seed=4)
    nngp, ntk = kernel_matrices(he_relu_spec(BETA), depth, x, tile=32)
    for k in (nngp, ntk):
        np.testing.assert_array_equal(k, k.T)
        eig = np.linalg.eigvalsh(k)
        assert eig.min() >= -1e-10 * eig.max()


def test_tiling_threads_and_direct_serial_agree():
    x1 = sphere(70, 9, seed=5)
    x2 = sphere(45, 9, seed=6)
    spec = he_relu_spec(BETA)
    ref_sym = kernel_matrices(spec, 4, x1, tile=128, n_threads=1)
    ref_cross = kernel_matrices(spec, 4, x1, x2, tile=128, n_threads=1)
    for tile, threads in [(8, 2), (16, 1), (33, 3)]:
        got = kernel_matrices(spec, 4, x1, tile=tile, n_threads=threads)
        np.testing.assert_allclose(got, ref_sym, rtol=1e-13, atol=0)
        got = kernel_matrices(spec, 4, x1, x2, tile=tile, n_threads=threads)
        np.testing.assert_allclose(got, ref_cross, rtol=1e-13, atol=0)
    # untiled composition of the layer functions
    direct = fc_kernel(4, "relu", 2.0, BETA**2, 1.0, BETA**2)(x1, x2)
    np.testing.assert_allclose(direct.nngp, ref_cross[0], rtol=1e-12)
    np.testing.assert_allclose(direct.ntk, ref_cross[1], rtol=1e-12)
    manual = serial(relu(), dense(2.0, BETA**2), relu(), dense(2.0, BETA**2))(
        input_layer(x1, x2, 1.0, BETA**2)
    )
    np.testing.assert_allclose(manual.ntk, kernel_matrices(spec, 2, x1, x2)[1], rtol=1e-12)
    # x2 equal to x1 (not the same object) is recognised as the symmetric case
    np.testing.assert_array_equal(kernel_matrices(spec, 4, x1, x1.copy())[1], ref_sym[1])


def test_cross_block_is_sub_block_of_joint_gram():
    x = sphere(60, 8, seed=7)
    spec = he_relu_spec(BETA)
    joint = kernel_matrices(spec, 3, x)
    cross = kernel_matrices(spec, 3, x[40:], x[:40])
    for a, b in zip(joint, cross, strict=True):
        np.testing.assert_allclose(b, a[40:, :40], rtol=1e-13)


def test_sweep_equals_single_depths():
    x = sphere(30, 5, seed=8)
    spec = he_relu_spec(BETA)
    sweep = kernel_sweep(spec, [0, 1, 5, 3], x)
    assert sorted(sweep) == [0, 1, 3, 5]
    for depth, (nngp, ntk) in sweep.items():
        n1, t1 = kernel_matrices(spec, depth, x)
        np.testing.assert_array_equal(nngp, n1)
        np.testing.assert_array_equal(ntk, t1)


def test_depth_1000_stability():
    d = 10
    x = sphere(12, d, seed=9)
    x[5] = x[2]  # duplicate inside the set
    x[6] = x[3] + 1e-9 * x[4]  # near-parallel
    x_test = np.vstack([x[0], -x[1], sphere(3, d, seed=10)])  # duplicate / antiparallel
    spec = he_relu_spec(BETA)
    depths = [10, 100, 1000]
    sweep = kernel_sweep(spec, depths, x)
    cross = kernel_sweep(spec, depths, x_test, x)
    sq = np.sum(x**2, axis=1) / d
    prev_c = None
    for depth in depths:
        nngp, ntk = sweep[depth]
        assert np.all(np.isfinite(nngp)) and np.all(np.isfinite(ntk))
        assert np.all(np.isfinite(cross[depth][0])) and np.all(np.isfinite(cross[depth][1]))
        np.testing.assert_allclose(np.diag(nngp), sq + (depth + 1) * BETA**2, rtol=1e-12)
        np.testing.assert_array_equal(np.diag(ntk), kernel_diag(spec, depth, x)[1])
        # duplicates across sets behave exactly like self pairs (within rounding)
        np.testing.assert_allclose(cross[depth][0][0, 0], nngp[0, 0], rtol=1e-12)
        np.testing.assert_allclose(cross[depth][1][0, 0], ntk[0, 0], rtol=1e-10)
        np.testing.assert_allclose(nngp[5, 2], nngp[2, 2], rtol=1e-12)
        # correlations flow monotonically towards the ReLU fixed point c* = 1
        c = nngp / np.sqrt(np.outer(np.diag(nngp), np.diag(nngp)))
        assert c.max() <= 1 + 1e-12
        if prev_c is not None:
            assert np.all(c >= prev_c - 1e-12)
        prev_c = c
    assert 1 - prev_c.min() < 1e-3


def test_spec_validation_and_defaults():
    spec = KernelSpec.coerce({"activation": "relu", "w_var": 2.0, "b_var": 0.01})
    assert spec.input_w_var == 2.0 and spec.input_b_var == 0.01
    assert KernelSpec.coerce(spec.to_dict()) == spec
    mu = KernelSpec.coerce(he_relu_spec(0.1))
    assert mu.input_w_var == 1.0 and mu.b_var == pytest.approx(0.01)
    with pytest.raises(ValueError, match="unknown kernel spec key"):
        KernelSpec.coerce({"activation": "relu", "wvar": 2.0})
    with pytest.raises(ValueError, match="unknown activation"):
        KernelSpec.coerce({"activation": "swish"})
    with pytest.raises(ValueError, match="non-negative"):
        KernelSpec.coerce({"activation": "relu", "w_var": -1.0})
