"""Packed hinge dynamics (depthlab.training.hinge.packed_hinge_flow): every member of a pack
follows, bit for bit, the trajectory `hinge_flow` gives it alone on CPU -- the same promise
as the Mori-Ueda packing (tests/unit/test_training.py), tested the same way: members that
differ in alpha (so their step sizes, retries and stopping times differ), compared field by
field with `np.array_equal` / `torch.equal`, no tolerance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from depthlab.studies.geiger.runs import geiger_fc
from depthlab.training.hinge import _PackedFC, hinge_flow, packed_hinge_flow

torch.set_num_threads(1)


def _task(n=40, d=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, 1.0, -1.0)
    return torch.as_tensor(x), torch.as_tensor(y)




def _alone(model_args, alpha, x, y, **kw):
    model = geiger_fc(**model_args)
    res = hinge_flow(model, x, y, alpha=alpha, return_steps=True,
                     on_record=lambda p, row: {"psum": float(sum(v.sum() for v in p.values()))},
                     **kw)
    return res, {k: p.detach().clone() for k, p in model.named_parameters()}


def _packed(model_args, members, x, y, **kw):
    models = [geiger_fc(**{**model_args, "seed": s}) for _, s in members]
    res = packed_hinge_flow(
        models, x, y, alphas=[a for a, _ in members], return_steps=True,
        on_record=lambda i, p, row: {"psum": float(sum(v.sum() for v in p.values()))}, **kw)
    params = [{k: p.detach().clone() for k, p in m.named_parameters()} for m in models]
    return res, params


def _assert_identical(alone, packed):
    res_a, par_a = alone
    res_p, par_p = packed
    assert res_a.keys() == res_p.keys()
    for key, va in res_a.items():
        vp = res_p[key]
        if key == "records":
            assert len(va) == len(vp)
            for ra, rp in zip(va, vp, strict=True):
                assert ra.keys() == rp.keys()
                for k in ra:  # floats compared bitwise (nan == nan)
                    assert np.array_equal(np.float64(ra[k]), np.float64(rp[k]), equal_nan=True), k
        elif isinstance(va, torch.Tensor):
            assert torch.equal(va, vp), key
        elif isinstance(va, np.ndarray):
            assert np.array_equal(va, vp, equal_nan=True), key
        elif isinstance(va, float):
            assert np.array_equal(va, vp, equal_nan=True), key
        else:
            assert va == vp, key
    for k in par_a:
        assert torch.equal(par_a[k], par_p[k]), k


@pytest.mark.parametrize("activation", ["softplus", "relu"])
def test_packed_members_are_bitwise_their_lone_runs(activation):
    """Five members, four alphas over six decades and three seeds: each member's result
    (status, times, step/retry counts, every record, per-step dt and df, final outputs and
    parameters) equals its lone `hinge_flow` run exactly; the members stop at different
    steps, so the pack shrinks (down to a lone member, padded) before the last one ends."""
    x, y = _task()
    args = {"d": 5, "width": 32, "depth": 2, "activation": activation}
    members = [(1e-2, 0), (1.0, 1), (1e2, 0), (1e4, 2), (1.0, 0)]
    kw = {"max_steps": 4000, "mu": 1000.0, "df_target": 6e-3}
    packed = _packed(args, members, x, y, **kw)
    n_steps = []
    for i, (alpha, seed) in enumerate(members):
        alone = _alone({**args, "seed": seed}, alpha, x, y, **kw)
        _assert_identical(alone, (packed[0][i], packed[1][i]))
        n_steps.append(alone[0]["n_steps"])
        assert alone[0]["n_rejected"] > 0  # retries happened
    assert len(set(n_steps)) == len(n_steps)  # all stop at different steps
    assert {r["status"] for r in packed[0]} == {"converged"}
    # one member stops well before the others (leaves the pack)
    assert min(n_steps) < 0.75 * max(n_steps)


def test_step_cap_and_lone_member():
    """A member stopped by max_steps, one by max_time, and a pack of one (padded to two
    rows inside) are all their lone runs."""
    x, y = _task(n=30, seed=3)
    args = {"d": 5, "width": 16, "depth": 3, "activation": "softplus"}
    for kw in ({"max_steps": 57}, {"max_time": 0.05}):
        members = [(0.1, 0), (10.0, 1)]
        packed = _packed(args, members, x, y, **kw)
        for i, (alpha, seed) in enumerate(members):
            alone = _alone({**args, "seed": seed}, alpha, x, y, **kw)
            assert alone[0]["status"] == "max_steps"
            _assert_identical(alone, (packed[0][i], packed[1][i]))
    packed = _packed(args, [(3.0, 4)], x, y)
    _assert_identical(_alone({**args, "seed": 4}, 3.0, x, y), (packed[0][0], packed[1][0]))
    assert packed[0][0]["status"] == "converged" and math.isfinite(packed[0][0]["t2"])


def _decisions(width, depth, n):
    """Which matmuls of the packed engine run batched (True) at this size."""
    x, y = _task(n=n, d=10)
    nets = [geiger_fc(10, width, depth, seed=s) for s in (0, 1, 2)]
    engine = _PackedFC(nets)
    flat = engine.flatten([dict(m.named_parameters()) for m in nets]).detach()
    out, cache = engine.forward(flat, x, True)
    engine.grad(flat, cache, torch.ones_like(out))
    return engine._batched


def test_small_layers_run_member_by_member():
    """Width 8 on 40 points: some per-member products are under torch's small-bmm size, whose
    loop kernel rounds otherwise than addmm; those matmuls run member by member, and the
    members are still bitwise their lone runs (the laptop shapes run all batched)."""
    assert not all(_decisions(8, 2, 40).values())
    assert all(_decisions(16, 5, 150).values()) and all(_decisions(64, 2, 150).values())
    x, y = _task(n=40, d=10, seed=5)
    members = [(0.01 / 8**0.5, 0), (1e4 / 8**0.5, 1), (1.0, 0)]
    for activation, depth in (("softplus", 2), ("relu", 3)):
        args = {"d": 10, "width": 8, "depth": depth, "activation": activation}
        packed = _packed(args, members, x, y, max_steps=1500)
        for i, (alpha, seed) in enumerate(members):
            alone = _alone({**args, "seed": seed}, alpha, x, y, max_steps=1500)
            _assert_identical(alone, (packed[0][i], packed[1][i]))


def test_packing_refuses_mixed_architectures():
    x, y = _task()
    nets = [geiger_fc(5, 16, 2, seed=0), geiger_fc(5, 32, 2, seed=0)]
    with pytest.raises(ValueError, match="one architecture"):
        packed_hinge_flow(nets, x, y, alphas=[1.0, 1.0])
