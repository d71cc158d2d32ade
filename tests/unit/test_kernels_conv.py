"""Convolutional NNGP/NTK (depthlab.kernels.conv) against independent truths: the FC engine
on inputs where a CNN reduces to an FC net, the full spatial recursion, Monte Carlo over wide
random conv nets (depthlab.kernels.finite.conv_net), Xiao et al. App. D's large-depth condition
numbers, exact homogeneity, and a Snakemake run that builds a conv Gram target."""

import contextlib
import json
import math

import h5py
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, run_snakemake

from depthlab.kernels import conv as C
from depthlab.kernels.layers import kernel_sweep
from depthlab.kernels.phase import critical_w_var, fixed_point_q
from depthlab.kernels.spectra import condition_number


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


FC = {"w_var": 1.7, "b_var": 0.1, "first_w_var": 1.3, "first_b_var": 0.05}


# ---- reductions to the FC engine ---------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("readout", ["flatten", "gap"])
def test_one_by_one_images_are_the_fc_kernel(activation, readout):
    x = np.random.default_rng(0).standard_normal((5, 3))  # 1x1 images, 3 channels
    spec = {"architecture": "conv", "activation": activation, **FC, "image_shape": [3, 1, 1],
            "readout": readout, "padding": "circular"}
    depths = [0, 1, 3, 10]
    got = C.conv_sweep(spec, depths, x)
    want = kernel_sweep({"activation": activation, **FC}, depths, x)
    for L in depths:
        for g, w in zip(got[L], want[L], strict=True):
            assert _rel(g, w) <= 1e-13, (L, _rel(g, w))
    # cross Grams (x2 given) too
    y = np.random.default_rng(1).standard_normal((3, 3))
    got = C.conv_sweep(spec, [3], x, y)[3]
    want = kernel_sweep({"activation": activation, **FC}, [3], x, y)[3]
    assert _rel(got[1], want[1]) <= 1e-13


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("readout", ["flatten", "gap"])
def test_spatially_constant_images_with_circular_padding_are_fc_on_channels(activation, readout):
    rng = np.random.default_rng(2)
    chan = rng.standard_normal((4, 3))
    images = np.broadcast_to(chan[:, :, None, None], (4, 3, 5, 5)).copy()
    spec = {"activation": activation, **FC, "image_shape": [3, 5, 5], "readout": readout,
            "padding": "circular", "strides": [1, 2]}
    got = C.conv_sweep(spec, [1, 2, 4], images.reshape(4, -1))
    want = kernel_sweep({"activation": activation, **FC}, [1, 2, 4], chan)
    for L in (1, 2, 4):
        for g, w in zip(got[L], want[L], strict=True):
            assert _rel(g, w) <= 1e-13


@pytest.mark.parametrize("padding", ["circular", "zero"])
def test_one_by_one_filters_with_flatten_are_the_mean_of_pixel_fc_kernels(padding):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2, 3, 3))
    spec = {"activation": "erf", **FC, "image_shape": [2, 3, 3], "filter_size": 1,
            "padding": padding, "readout": "flatten"}
    got = C.conv_sweep(spec, [0, 2, 5], x.reshape(4, -1))
    pixels = x.reshape(4, 2, 9).transpose(2, 0, 1)  # (P, n, C)
    for L in (0, 2, 5):
        per_pixel = [kernel_sweep({"activation": "erf", **FC}, [L], p)[L] for p in pixels]
        for k in range(2):
            want = np.mean([pp[k] for pp in per_pixel], axis=0)
            assert _rel(got[L][k], want) <= 1e-13


def test_quadrature_activation_matches_closed_form_erf():
    x = np.random.default_rng(4).standard_normal((3, 1, 3, 3)) * 0.7
    erf_quad = C.pointwise(torch.erf, lambda u: 2 / math.sqrt(math.pi) * torch.exp(-u * u),
                           deg=120, name="erf_quad")
    nets = [C.serial(C.conv(3, 1.5, 0.1), act, C.conv(3, 1.5, 0.1), act, C.global_avg_pool(),
                     C.dense(1.5, 0.1)) for act in (C.erf(), erf_quad)]
    exact, quad = (C.kernel_matrices(net, x) for net in nets)
    for a, b in zip(quad, exact, strict=True):
        assert _rel(a, b) <= 1e-9


# ---- layouts, symmetry, PSD, self kernels, blocks ---------------------------------------


def _full_path(spec, depth, x):
    """The recursion forced onto the full (N, N, H, W, H, W) layout all the way to flatten."""
    spec = C.ConvSpec.coerce(spec)
    imgs = C.as_images(x, spec.image_shape)
    state = C.input_state(imgs, layout="full", side_layout="diag")
    for lay in [spec.trunk_layer(i) for i in range(depth)] + [spec.head(depth)]:
        for part in lay.flat_parts():
            assert state.layout in ("full", "flat")
            state = part.update(state)
    return state.values("nngp").numpy(), state.values("ntk").numpy()


@pytest.mark.parametrize("activation,w_var", [("relu", 2.0), ("erf", 1.7476)])
def test_diagonal_path_equals_flatten_of_full_path(activation, w_var):
    x = np.random.default_rng(5).standard_normal((3, 2 * 4 * 4))
    spec = {"activation": activation, "w_var": w_var, "b_var": 0.18, "image_shape": [2, 4, 4],
            "readout": "flatten", "padding": "zero", "strides": [1, 2]}
    sweep = C.conv_sweep(spec, [1, 7, 1000], x)
    for L in (1, 7, 1000):
        full = _full_path(spec, L, x)
        for a, b in zip(sweep[L], full, strict=True):
            assert _rel(a, b) <= 1e-13, (L, _rel(a, b))


@pytest.mark.parametrize("spec", [
    {"activation": "relu", "readout": "gap", "padding": "zero", "strides": [2]},
    {"activation": "erf", "w_var": 1.5, "b_var": 0.2, "readout": "flatten"},
    {"activation": "relu", "readout": "gap", "padding": "circular", "fix_first": True,
     "fix_last": True},
])
def test_symmetric_psd_and_diagonal_is_the_self_kernel(spec):
    spec = {**spec, "image_shape": [2, 4, 4]}
    x = np.random.default_rng(6).standard_normal((7, 32))
    x[3] = 2.0 * x[1]  # a parallel pair
    for L, (nngp, ntk) in C.conv_sweep(spec, [1, 3], x).items():
        self_nngp, self_ntk = C.self_kernel(spec, x, L)
        for gram, diag in ((nngp, self_nngp), (ntk, self_ntk)):
            np.testing.assert_array_equal(gram, gram.T)
            ev = np.linalg.eigvalsh(gram)
            assert ev.min() >= -1e-12 * ev.max()
            np.testing.assert_allclose(np.diag(gram), diag, rtol=1e-14, atol=0)


def test_blocked_tiles_equal_one_tile_and_gram_file(tmp_path):
    from depthlab.kernels.gram import compute_gram_file, read_gram, read_test_diag

    rng = np.random.default_rng(7)
    x_train, x_test = rng.standard_normal((9, 18)), rng.standard_normal((5, 18))
    spec = {"architecture": "conv", "activation": "relu", "w_var": 2.0, "b_var": 0.05,
            "image_shape": [2, 3, 3], "readout": "gap", "padding": "zero"}
    one = C.conv_sweep(spec, [2], x_train)[2]
    # tiles of one to two pairs (the memory budget sets the tile edge)
    tiny = C.conv_sweep(spec, [2], x_train, memory=3 * 16 * 8 * 81)[2]
    for a, b in zip(tiny, one, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    cross = C.conv_sweep(spec, [2], x_test, x_train)[2]
    path = compute_gram_file(tmp_path / "g.h5", x_train, x_test, spec, 2, block_size=4)
    for kind, k in (("nngp", 0), ("ntk", 1)):
        tt, blocks = read_gram(path, kind)
        np.testing.assert_allclose(tt, one[k], rtol=1e-14, atol=0)
        np.testing.assert_allclose(blocks.read(), cross[k], rtol=1e-14, atol=0)
        np.testing.assert_allclose(read_test_diag(path, kind),
                                   C.self_kernel(spec, x_test, 2)[k], rtol=0, atol=0)
        assert np.array_equal(tt, tt.T)
    with h5py.File(path) as f:
        assert json.loads(f.attrs["spec"])["readout"] == "gap"
        assert f.attrs["architecture"] == "conv" and f.attrs["depth"] == 2


# ---- fast paths: upper-triangle tiles, fused activations, buffer pool --------------------


def _special_images():
    """Images with zero pixels (variance 0 with b_var = 0), an all-zero image, and parallel
    and antiparallel images."""
    x = np.random.default_rng(13).standard_normal((6, 2, 4, 4))
    x[:, :, :1] = 0.0
    x[2] = 0.0
    x[3] = 2.0 * x[1]
    x[4] = -x[0]
    return x


@pytest.mark.parametrize("layout", ["full", "diag"])
@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_upper_pair_batch_equals_the_grid(layout, activation):
    """input_state(upper=True) (the diagonal tiles of a symmetric Gram: pairs i <= j only)
    gives the grid's values at those pairs."""
    imgs = torch.as_tensor(_special_images())
    net = C.serial(C.conv(3, 1.0, 0.0, padding="zero"), C.CONV_ACTIVATIONS[activation](),
                   C.conv(3, 2.0, 0.1, padding="zero"), C.CONV_ACTIVATIONS[activation](),
                   C.flatten() if layout == "diag" else C.global_avg_pool(), C.dense(2.0, 0.0))
    grid = net(C.input_state(imgs, layout=layout))
    pairs = net(C.input_state(imgs, layout=layout, upper=True))
    i, j = torch.triu_indices(6, 6)
    assert pairs.pairs is not None and pairs.nngp.shape == (21,)
    for kind in ("nngp", "ntk"):
        np.testing.assert_allclose(pairs.values(kind).numpy(),
                                   grid.values(kind)[i, j].numpy(), rtol=1e-15, atol=0)


def _relu_cross_reference(n, v1, v2):
    # the arc-cosine formulas as first written (layers._relu_cross), one tensor op at a time
    s = torch.sqrt(v1) * torch.sqrt(v2)
    a = (s - n).clamp_min(0.0)
    b = (s + n).clamp_min(0.0)
    det = torch.sqrt(a * b)
    t = torch.nan_to_num(torch.sqrt(a / b), nan=0.0, posinf=math.inf)
    snap = t < C._snap_tan(t.dtype)
    t[snap] = 0.0
    det[snap] = 0.0
    k0 = 0.5 - torch.atan(t) / math.pi
    return k0 * n + det / (2.0 * math.pi), k0


def _erf_cross_reference(n, v1, v2):
    den = torch.sqrt((1.0 + 2.0 * v1) * (1.0 + 2.0 * v2))
    r = (2.0 * n / den).clamp(-1.0, 1.0)
    return 2.0 / math.pi * torch.asin(r), 4.0 / math.pi / (den * torch.sqrt(1.0 - r * r))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_activation_kernels_match_the_formulas(dtype):
    """The fused in-place ReLU / erf kernels against the closed forms written plainly:
    parallel pairs (also up to rounding) snap to theta = 0, antiparallel ones give theta = pi,
    zero variances give finite values."""
    v1 = torch.tensor([4.0, 4.0, 0.0, 2.0, 2.0, 3.0, 1.0, 5.0, 0.0], dtype=dtype)
    v2 = torch.tensor([4.0, 4.0, 0.0, 2.0, 2.0, 0.5, 1.0, 0.2, 2.0], dtype=dtype)
    n = torch.tensor([4.0, -4.0, 0.0, 2.0, -2.0, 0.7, 1.0 - 1e-3, -0.9, 0.0], dtype=dtype)
    tol = 1e-15 if dtype == torch.float64 else 1e-6
    k1, k0 = C._relu_cross(n, v1, v2)
    r1, r0 = _relu_cross_reference(n, v1, v2)
    assert torch.all(torch.isfinite(k1)) and torch.all(torch.isfinite(k0))
    assert k0[0] == 0.5 and k1[0] == 2.0 and k0[3] == 0.5 and k1[3] == 1.0  # parallel
    assert k0[1] == r0[1] and k1[1] == 0.0  # antiparallel: theta = pi exactly
    assert k0[2] == 0.5 and k1[2] == 0.0
    assert float((k1 - r1).abs().max()) <= tol * float(r1.abs().max())
    assert float((k0 - r0).abs().max()) <= tol
    k1, k0 = C._erf_cross(n, v1, v2)
    r1, r0 = _erf_cross_reference(n, v1, v2)
    assert float((k1 - r1).abs().max()) <= 4 * tol * float(r1.abs().max())
    assert float((k0 - r0).abs().max()) <= 4 * tol * float(r0.abs().max())


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("readout", ["flatten", "gap"])
def test_fused_path_equals_the_generic_activation(activation, readout):
    """relu() / erf() (fused) against the same closed forms through the generic
    ``activation(cross)`` path, with zero-variance pixels and (anti)parallel images."""
    x = _special_images()
    cross = {"relu": _relu_cross_reference, "erf": _erf_cross_reference}[activation]
    plain = C.activation(cross, activation, homogeneous=activation == "relu")
    fused = C.CONV_ACTIVATIONS[activation]()

    def net(act):
        layers = [C.conv(3, 1.3, 0.0, padding="zero")]
        for _ in range(4):
            layers += [act, C.conv(3, 1.8, 0.0, padding="zero")]
        return C.serial(*layers, act, C.flatten() if readout == "flatten"
                        else C.global_avg_pool(), C.dense(2.0, 0.0))

    got = C.kernel_matrices(net(fused), x)
    want = C.kernel_matrices(net(plain), x)
    for g, w in zip(got, want, strict=True):
        assert np.all(np.isfinite(g))
        assert _rel(g, w) <= 1e-14


def test_torch_transcendentals_equal_the_numpy_ones(monkeypatch):
    """Off CPU (CUDA) the fused kernels use torch's sqrt / atan / asin instead of NumPy's."""
    x = _special_images().reshape(6, -1)
    for activation in ("relu", "erf"):
        spec = {"activation": activation, "b_var": 0.0, "image_shape": [2, 4, 4],
                "readout": "flatten", "padding": "zero"}
        with monkeypatch.context() as m:
            m.setattr(C, "_np_inplace_", lambda t, np_fn, torch_fn_: torch_fn_(t))
            torch_only = C.conv_sweep(spec, [3], x)[3]
        for a, b in zip(torch_only, C.conv_sweep(spec, [3], x)[3], strict=True):
            assert _rel(a, b) <= 1e-14


def test_buffer_pool_leaves_the_callers_state_alone(monkeypatch):
    """Buffers are recycled only from states made inside a run: the caller's input state is
    untouched, and the Grams equal those computed without the pool."""
    imgs = torch.as_tensor(_special_images())
    spec = C.ConvSpec(activation="relu", b_var=0.1, image_shape=(2, 4, 4), readout="gap",
                      padding="zero")
    state = C.input_state(imgs, layout="full", upper=True)
    before = [t.clone() for t in (state.nngp, state.ntk, state.side1.nngp)]
    with C._pooled():
        out = spec.network(3)(state)
        again = spec.network(3)(state)
    for t, b in zip((state.nngp, state.ntk, state.side1.nngp), before, strict=True):
        assert torch.equal(t, b)
    assert torch.equal(out.ntk, again.ntk)
    # a first layer that hands the caller's tensors on unchanged (flatten of a flat state)
    flat = C.flatten()(C.input_state(imgs, layout="diag"))
    with C._pooled():
        C.serial(C.flatten(), C.dense(2.0, 0.1), C.dense(1.0, 0.0))(flat)
        pooled_ptrs = {t.data_ptr() for ts in C._POOL.get().free.values() for t in ts}
    assert not pooled_ptrs & {flat.nngp.data_ptr(), flat.ntk.data_ptr()}
    x = _special_images().reshape(6, -1)
    pooled = C.conv_sweep(spec, [1, 3], x)
    monkeypatch.setattr(C, "_pooled", contextlib.nullcontext)
    unpooled = C.conv_sweep(spec, [1, 3], x)
    for L in (1, 3):
        for a, b in zip(pooled[L], unpooled[L], strict=True):
            np.testing.assert_array_equal(a, b)


# ---- Monte Carlo over finite nets -------------------------------------------------------


def _empirical_ntk(model, x):
    params = [p for p in model.parameters() if p.requires_grad]
    grads = []
    for i in range(x.shape[0]):
        g = torch.autograd.grad(model(x[i : i + 1]).sum(), params)
        grads.append(torch.cat([t.reshape(-1) for t in g]))
    g = torch.stack(grads)
    return (g @ g.T).numpy()


MC_SPECS = [
    {"activation": "relu", "w_var": 2.0, "b_var": 0.1, "readout": "flatten",
     "padding": "circular", "strides": [1, 2]},
    {"activation": "erf", "w_var": 1.5, "b_var": 0.2, "readout": "gap", "padding": "zero",
     "strides": [2]},
    {"activation": "relu", "first_w_var": 1.0, "w_var": 2.0, "b_var": 0.0, "readout": "gap",
     "padding": "zero", "fix_first": True, "fix_last": True},
]


@pytest.mark.parametrize("spec", MC_SPECS, ids=["circ-flatten-stride", "zero-gap-stride",
                                                "arora-gap-fix"])
def test_monte_carlo_wide_conv_nets_converge_to_the_kernel(spec):
    """Empirical NNGP (readout-averaged features) and NTK of random nets from
    kernels.finite.conv_net, mean over seeds: the error is within 3 standard errors (Frobenius,
    plus an O(1/channels) bias allowance) at 384 channels, and shrinks from 12 channels."""
    from depthlab.kernels.empirical import feature_nngp
    from depthlab.kernels.finite import conv_net

    spec = {**spec, "image_shape": [2, 4, 4]}
    depth, seeds = 2, 8
    x = np.random.default_rng(8).standard_normal((4, 32))
    xt = torch.as_tensor(x)
    analytic = C.kernel_matrices(spec, x, depth=depth)
    iu = np.triu_indices(4)
    errors = {}
    for channels in (12, 384):
        samples = [[], []]
        for seed in range(seeds):
            net = conv_net(spec, depth, channels, seed=seed)
            samples[0].append(feature_nngp(net, xt)[iu])
            samples[1].append(_empirical_ntk(net, xt)[iu])
        for k, kind in enumerate(("nngp", "ntk")):
            s = np.array(samples[k])
            want = analytic[k][iu]
            err = np.linalg.norm(s.mean(0) - want)
            se = np.linalg.norm(s.std(0, ddof=1) / math.sqrt(seeds))
            errors[channels, kind] = err / np.linalg.norm(want)
            if channels == 384:
                assert err <= 3 * se + 3 / channels * np.linalg.norm(want), (kind, err, se)
    for kind in ("nngp", "ntk"):
        assert errors[384, kind] < 0.1
        assert errors[384, kind] < 0.5 * errors[12, kind], errors


# ---- Xiao et al. App. D: condition numbers at criticality -----------------------------------


def test_xiao_kappa_asymptotes_at_criticality():
    """erf at the order-to-chaos line, sigma_b^2 = 0.18, pixels normalised to q*, circular
    3x3: kappa of CNN-F -> (m + 2)/2 and of CNN-P -> (m d + 2)/2 (App. D eqs. 99-100), with
    the O(log l / l) approach: within 3% at l = 1000, closer than at l = 100, and no slower
    than 3 (log l)/l between the two."""
    b_var = 0.18
    w_var = critical_w_var(b_var, "erf")
    q_star = fixed_point_q(w_var, b_var, "erf")
    m, c, h = 8, 2, 4
    d = h * h
    x = np.random.default_rng(9).standard_normal((m, c, h, h))
    x *= np.sqrt(q_star / np.mean(x**2, axis=1, keepdims=True))  # every pixel at q*
    depths = [100, 1000]
    limits = {"flatten": (m + 2) / 2, "gap": (m * d + 2) / 2}
    for readout, limit in limits.items():
        spec = {"activation": "erf", "w_var": w_var, "b_var": b_var, "first_w_var": 1.0,
                "first_b_var": 0.0, "image_shape": [c, h, h], "readout": readout}
        sweep = C.conv_sweep(spec, depths, x.reshape(m, -1))
        gaps = {L: abs(condition_number(sweep[L][1]) / limit - 1) for L in depths}
        assert gaps[1000] <= 0.03, (readout, gaps)
        assert gaps[1000] < gaps[100], (readout, gaps)
        rate = (math.log(1000) / 1000) / (math.log(100) / 100)
        assert gaps[1000] <= 3 * rate * gaps[100], (readout, gaps)


# ---- numerics: homogeneity, overflow, float32 ----------------------------------------------


@pytest.mark.parametrize("padding,w_lo,w_hi", [("circular", 2.0, 4.0), ("zero", 1.0, 2.0)])
def test_relu_homogeneity_far_beyond_float64_range(padding, w_lo, w_hi):
    """Without biases the ReLU kernels scale exactly: K(w) = (w/w')^L K(w') at depth L
    (L - 1 conv layers and the readout carry w; the first conv has w = 1).  Circular,
    w = 4, L = 1100: 2^1100 overflows float64; zero padding shrinks the kernels like 0.65^l
    (border pixels see zeros), so w = 1 underflows there.  The scaled output (mantissa,
    exponent) keeps both, and the unscaled one gives inf / 0, never nan."""
    x = np.random.default_rng(10).standard_normal((2, 2 * 3 * 3))
    base = {"activation": "relu", "b_var": 0.0, "first_w_var": 1.0, "image_shape": [2, 3, 3],
            "readout": "gap", "padding": padding}
    L = 1100
    lo = C.conv_sweep({**base, "w_var": w_lo}, [L], x, scaled=True)[L]
    hi = C.conv_sweep({**base, "w_var": w_hi}, [L], x, scaled=True)[L]
    for k in range(2):
        assert np.all(np.isfinite(hi[k])) and np.all(np.isfinite(lo[k]))
        log2_lo = np.log2(np.abs(lo[k])) + lo[2 + k]
        log2_hi = np.log2(np.abs(hi[k])) + hi[2 + k]
        assert np.all(log2_hi > 1030) or np.all(log2_lo < -1080)
        np.testing.assert_allclose(log2_hi, log2_lo + L * math.log2(w_hi / w_lo),
                                   rtol=0, atol=1e-9)
        assert np.array_equal(np.sign(hi[k]), np.sign(lo[k]))
    plain = C.conv_sweep({**base, "w_var": w_hi if padding == "circular" else w_lo}, [L], x)[L]
    want = np.inf if padding == "circular" else 0.0
    assert np.all(np.abs(plain[1]) == want)


def test_float32_chaotic_erf_ntk_does_not_overflow():
    """Chaotic erf (sigma_w^2 = 4): Theta grows like chi_1^l past float32's 3e38 by l = 400;
    float32 with the exponent carried agrees with float64."""
    x = np.random.default_rng(11).standard_normal((4, 16))
    spec = {"activation": "erf", "w_var": 4.0, "b_var": 0.1, "image_shape": [4, 2, 2],
            "readout": "flatten"}
    f64 = C.conv_sweep(spec, [400], x)[400]
    f32 = C.conv_sweep({**spec, "dtype": "float32"}, [400], x)[400]
    assert np.max(np.abs(f64[1])) > 1e45
    assert np.all(np.isfinite(f32[1]))
    assert _rel(f32[1], f64[1]) <= 1e-3
    assert _rel(f32[0], f64[0]) <= 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu():
    x = np.random.default_rng(12).standard_normal((6, 32))
    spec = {"activation": "relu", "w_var": 2.0, "b_var": 0.1, "image_shape": [2, 4, 4],
            "readout": "gap"}
    cpu = C.conv_sweep(spec, [1, 5], x, device="cpu")
    gpu = C.conv_sweep(spec, [1, 5], x, device="cuda")
    for L in (1, 5):
        for a, b in zip(gpu[L], cpu[L], strict=True):
            assert _rel(a, b) <= 1e-12


# ---- config checks and the workflow target ------------------------------------------------


def test_check_kernel_spec_names_the_key():
    good = {"architecture": "conv", "activation": "relu", "w_var": 2.0, "b_var": 0.0,
            "image_shape": [2, 2, 2]}
    C.check_kernel_spec("kernels.cntk", good, {"local1": {"d": 8}})
    C.check_kernel_spec("kernels.fc", {"activation": "relu", "w_var": 2.0, "b_var": 0.0})
    bad = [
        ({**good, "filter_size": 2}, "kernels.cntk.filter_size"),
        ({**good, "activation": "swish"}, "kernels.cntk.activation"),
        ({**good, "readout": "max"}, "kernels.cntk.readout"),
        ({**good, "image_shape": [4]}, "kernels.cntk.image_shape"),
        ({**good, "depth": 3}, "kernels.cntk: unknown"),
    ]
    for spec, prefix in bad:
        with pytest.raises(ValueError) as err:
            C.check_kernel_spec("kernels.cntk", spec)
        assert str(err.value).startswith(prefix), str(err.value)
    with pytest.raises(ValueError, match=r"^kernels\.cntk\.image_shape: .*'local1' has d = 6"):
        C.check_kernel_spec("kernels.cntk", good, {"local1": {"d": 6}})


def test_snakemake_builds_a_conv_gram_target(tmp_path):
    """A copy of the tiny config with a conv kernel: the Gram, regression and spectrum targets
    of the conv kernel run as rules and hold the engine's numbers."""
    from depthlab.data import read_dataset

    config = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    config["kernels"]["cntk"] = {"architecture": "conv", "activation": "relu", "w_var": 2.0,
                                 "b_var": 0.01, "image_shape": [2, 2, 2], "readout": "gap",
                                 "padding": "circular", "device": "cpu"}
    cfg = tmp_path / "tiny_conv.yaml"
    cfg.write_text(yaml.safe_dump(config))
    base = "results/kernels/local1/cntk/L2"
    targets = [f"{base}/gram.h5", f"{base}/regression_N60.h5", f"{base}/spectrum_N60.h5"]
    run_snakemake(*targets, "--cores", "2", "--configfile", str(cfg), cwd=tmp_path)
    data = read_dataset(tmp_path / "results" / "datasets" / "local1.h5")
    spec = config["kernels"]["cntk"]
    x_train = data["x_train"].astype(np.float64)
    x_test = data["x_test"].astype(np.float64)
    want_tt = C.conv_sweep(spec, [2], x_train)[2]
    want_te = C.conv_sweep(spec, [2], x_test[:10], x_train)[2]
    with h5py.File(tmp_path / base / "gram.h5") as f:
        assert f.attrs["architecture"] == "conv"
        assert json.loads(f.attrs["spec"])["readout"] == "gap"
        np.testing.assert_allclose(f["ntk_train_train"][:], want_tt[1], rtol=1e-13)
        np.testing.assert_allclose(f["nngp_test_train"][:10], want_te[0], rtol=1e-13)
    for name in targets[1:]:
        assert (tmp_path / name).stat().st_size > 0


def test_config_conv_spec_defaults_are_the_schema_s_and_match_the_library():
    """A config's conv kernel spec is filled from the schema (the one home of its defaults),
    and those defaults are the ones ConvSpec applies to a spec built in code."""
    import dataclasses

    from depthlab.config import check_config

    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    given = {"architecture": "conv", "activation": "relu", "w_var": 2.0, "b_var": 0.0,
             "image_shape": [4, 4]}
    cfg["kernels"]["cnn"] = dict(given)
    check_config(cfg, missing_data="warn")
    filled = {k: v for k, v in cfg["kernels"]["cnn"].items() if k not in given}
    assert filled, "the schema filled no default"
    library = {f.name: f.default for f in dataclasses.fields(C.ConvSpec)}
    for key, value in filled.items():
        want = library[key]
        assert (list(want) if isinstance(want, tuple) else want) == value, key
