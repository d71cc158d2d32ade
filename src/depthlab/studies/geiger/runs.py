r"""Feature vs lazy learning (Geiger, Spigler, Jacot & Wyart): the nets, one run, measures.

The dynamics (eq. 6, App. A) is the shared :func:`depthlab.training.hinge.hinge_flow`.

Model (App. B, eqs. 20-22)
--------------------------
A fully connected net of ``L`` hidden layers of width ``h`` in NTK parameterisation::

    z~1 = d^-1/2 W0 x + B0,   z~(l+1) = h^-1/2 W_l sigma(z~l) + B_l,
    f = h^-1/2 W_L sigma(z~L) + B_L

(the paper's eq. 21 writes ``z~l`` where the text means the activity ``z_l = sigma(z~l)``),
all ``W ~ N(0, 1)``, all biases trainable and initialised at 0.  :func:`geiger_fc` builds it
as an ``nn.Sequential`` of :class:`~depthlab.kernels.empirical.NTKLinear` (``w_var = 1``,
``b_std = 1``) and :class:`GainActivation`, so the structured empirical NTK applies.  The
activation is ``a * phi`` with ``phi`` the Softplus ``log(1 + e^(beta z)) / beta`` (``beta =
5``) or ReLU, and the gain ``a = E_{z~N(0,1)}[phi(z)^2]^{-1/2}`` (:func:`activation_gain`,
a Gaussian integral by quadrature): with unit-variance preactivations and ``W ~ N(0, 1)``
the next preactivations have variance ``E[(a phi)^2] = 1`` again (Softplus, beta = 5: ``a =
1.4043``; ReLU: ``a = sqrt(2)``).  With inputs whose components have unit variance (the
PCA-whitened data) every preactivation has unit variance at initialisation.

Measures
--------
Along the trajectory, at log-spaced times (``record_per_decade`` per decade, the first step
whose time enters a new bin, plus ``t = 0`` and the final state): ``t``, ``alpha^2 L``,
train and test error, ``||f(w_t) - f(w0)||`` and ``||f(w_t)||`` on the test set (App. E eq.
29: the root mean square over test points, of ``f``, not ``F``) and ``||w_t - w0|| /
||w0||`` (all parameters). At the end: test error, ``t1`` (``alpha^2 L = 0.5``, linear
interpolation between the two steps around the crossing), ``t2``, the kernel change
``||Theta(w_end) - Theta(w0)||_F / ||Theta(w0)||_F`` (eq. 9) on the first ``ntk_subset``
test points, and the lazy (frozen initial NTK, App. C) prediction:
:func:`depthlab.kernels.regression.frozen_kernel_dynamics` with ``lr = 1/n`` on ``F`` (``f_0
= 0``), the hinge loss, the initial empirical NTK Grams (train x train, test x train) and
the same ``tau = t/mu`` momentum as the net (the output change per step is bounded by
``df_target``).

Ensembles (sec. 4): :func:`ensemble_stats` -- the test error of the ensemble-averaged
predictor ``sign(mean_i F_i)`` and ``Var f`` of eq. 7 (population variance over members,
averaged over test points).  :func:`exponent_fit` fits power laws for Table 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from depthlab.activations import activation_gain
from depthlab.kernels.empirical import (
    empirical_ntk,
    empirical_ntk_structured,
    ntk_relative_change,
)
from depthlab.models import FCSpec, fc_net
from depthlab.studies.geiger.models import strided_cnn
from depthlab.training.device import Log, resolve_device
from depthlab.training.device import emit as _emit
from depthlab.training.hinge import (
    DF_BAND,
    DF_TARGET,
    _FCEngine,
    hinge_engine,
    hinge_flow,
    packed_hinge_flow,
    pm_labels,
)
from depthlab.training.status import CONVERGED, MAX_STEPS

__all__ = [
    "ARCHITECTURES",
    "LAZY_TIMES",
    "TRAJECTORY_KEYS",
    "ensemble_stats",
    "frozen_ntk_prediction",
    "geiger_fc",
    "geiger_model",
    "train_lazy_feature",
    "train_lazy_feature_packed",
]


ARCHITECTURES = ("fc", "cnn")


def geiger_fc(d: int, width: int, depth: int, *, activation: str = "softplus", beta: float = 5.0,
              seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """The FC net of App. B: ``d -> width x depth -> 1``, ``W ~ N(0, 1)``, biases 0 (trainable)."""
    spec = FCSpec(activation=activation, gain=True, beta=beta, w_var=1.0, first_w_var=1.0,
                  b_std=1.0, zero_bias=True)
    return fc_net(d, width, depth, spec, seed=seed, dtype=dtype)


def geiger_model(architecture: str, d: int, width: int, depth: int, *, activation: str,
                 beta: float, seed: int, image_shape: tuple[int, ...] | None = None):
    """The net of one run: :func:`geiger_fc` or :func:`geiger_cnn` (needs ``image_shape``)."""
    if architecture == "fc":
        return geiger_fc(d, width, depth, activation=activation, beta=beta, seed=seed)
    if architecture == "cnn":
        if image_shape is None or int(np.prod(image_shape)) != d:
            raise ValueError(f"the CNN needs the image shape of its {d}-pixel inputs, got "
                             f"{image_shape}")
        return strided_cnn(image_shape, width, depth, activation=activation, beta=beta,
                           seed=seed)
    raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")


def _empirical_ntk(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor | None = None):
    """The structured MLP path where it applies (exact and fast), else NTK-vector products,
    whose memory is one block's worth of gradients (a CNN's Jacobian on 10^4 MNIST images
    would not fit)."""
    if _FCEngine.applies(model):
        return empirical_ntk_structured(model, x1, x2)
    return empirical_ntk(model, x1, x2, method="ntk_vp")


def _error(outputs: np.ndarray, y_pm: np.ndarray) -> float:
    return float(np.mean(np.asarray(outputs) * y_pm <= 0))


def _as_inputs(x: Any, device: torch.device | str = "cpu") -> torch.Tensor:
    x = np.asarray(x, dtype=np.float64)
    return torch.as_tensor(x.reshape(len(x), -1)).to(device)


def _ntk_blocks(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor, block: int) -> np.ndarray:
    """Empirical NTK ``Theta(x1, x2)`` with ``x1`` in row blocks (bounded memory)."""
    return np.concatenate(
        [_empirical_ntk(model, x1[s : s + block], x2) for s in range(0, len(x1), block)]
    )


TRAJECTORY_KEYS = ("t", "step", "aloss", "train_err", "test_err", "df_test", "f_test",
                   "w_change", "dt")
LAZY_TIMES = 10.0 ** (np.arange(-30, 91) / 10.0)  # 1e-3 .. 1e9, 10 per decade


def frozen_ntk_prediction(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    width: int,
    depth: int,
    seed: int,
    activation: str = "softplus",
    beta: float = 5.0,
    architecture: str = "fc",
    image_shape: tuple[int, ...] | None = None,
    mu: float | None = 1000.0,
    tau: float | None = None,
    max_df: float = DF_TARGET,
    max_steps: int = 5_000_000,
    device: str = "cpu",
    ntk_block: int = 1024,
) -> dict[str, Any]:
    """Lazy limit of :func:`train_lazy_feature` (App. C, eq. 26): hinge dynamics of ``F`` with
    the empirical NTK of the *initial* net (same ``width, depth, seed``) frozen.

    It does not depend on ``alpha`` (the loss' ``1/alpha^2`` and ``F``'s ``alpha`` cancel),
    so one call serves a whole alpha sweep of a seed.  Uses
    :func:`~depthlab.kernels.regression.frozen_kernel_dynamics` with ``lr = 1/n`` (Geiger's
    mean loss), ``f_0 = 0``, the nets' momentum (``tau = t/mu``, or a constant ``tau``;
    ``mu=None`` and ``tau=None``: vanilla gradient flow) and an adaptive step moving no
    output by more than ``max_df``.  ``architecture`` and ``image_shape`` as in
    :func:`train_lazy_feature`.

    Returns ``lazy_status`` ("converged" or "max_steps"), ``lazy_t2`` (stopping time),
    ``lazy_test_outputs`` (``F`` on the test set), ``lazy_test_err``, ``lazy_train_err``,
    ``lazy_times`` / ``lazy_aloss`` (its ``alpha^2 L`` on :data:`LAZY_TIMES`, constant after
    the stop), ``lazy_n_steps``.
    """
    from depthlab.kernels.regression import frozen_kernel_dynamics

    dev = resolve_device(device)
    xtr, xte = _as_inputs(x_train, dev), _as_inputs(x_test, dev)
    ytr, yte = pm_labels(y_train), pm_labels(y_test)
    model = geiger_model(architecture, xtr.shape[1], width, depth, activation=activation,
                         beta=beta, seed=seed, image_shape=image_shape).to(dev)
    k_tr = _empirical_ntk(model, xtr)
    k_te = _ntk_blocks(model, xte, xtr, ntk_block)
    try:
        run = frozen_kernel_dynamics(
            k_tr, ytr, LAZY_TIMES, loss="hinge", lr=1.0 / len(ytr), max_df=max_df,
            **({"tau": float(tau)} if tau is not None else {"mu": mu}),
            k_test_train=k_te, max_steps=max_steps,
        )
    except RuntimeError:  # ran out of steps before the last record time
        nan = np.full(len(yte), np.nan)
        return {"lazy_status": MAX_STEPS, "lazy_t2": math.nan, "lazy_test_outputs": nan,
                "lazy_test_err": math.nan, "lazy_train_err": math.nan,
                "lazy_times": LAZY_TIMES.copy(), "lazy_aloss": np.full(len(LAZY_TIMES), np.nan),
                "lazy_n_steps": max_steps}
    stopped = not math.isnan(run.stop_time)
    return {
        "lazy_status": CONVERGED if stopped else MAX_STEPS,
        "lazy_t2": float(run.stop_time),
        "lazy_test_outputs": run.test[-1, :, 0],
        "lazy_test_err": _error(run.test[-1, :, 0], yte),
        "lazy_train_err": _error(run.train[-1, :, 0], ytr),
        "lazy_times": LAZY_TIMES.copy(),
        "lazy_aloss": run.loss,
        "lazy_n_steps": run.n_steps,
    }


def train_lazy_feature(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    alpha: float,
    width: int,
    depth: int,
    seed: int,
    activation: str = "softplus",
    beta: float = 5.0,
    architecture: str = "fc",
    image_shape: tuple[int, ...] | None = None,
    mu: float | None = 1000.0,
    tau: float | None = None,
    temperature: float = 0.0,
    df_band: tuple[float, float] = DF_BAND,
    df_target: float = DF_TARGET,
    max_steps: int = 1_000_000,
    max_time: float = math.inf,
    record_per_decade: int = 10,
    ntk_subset: int | None = 256,
    lazy: bool | Mapping[str, Any] = True,
    lazy_max_df: float = DF_TARGET,
    ntk_block: int = 1024,
    return_steps: bool = False,
    device: str = "cpu",
    log: Log = None,
) -> dict[str, Any]:
    """Train one net (App. B) at scale ``alpha`` with the momentum dynamics and measure it
    (module doc).  Labels may be ``{0, 1}`` or ``+-1``.  float64 throughout.

    ``architecture``: "fc" (setup A, full batch, ``tau = t/mu``) or "cnn" (setup B, with
    ``image_shape``; the paper runs it with ``tau=10`` and a ``temperature`` T > 0, the
    stochastic variant, whose batches are drawn from a generator seeded by ``seed``).
    ``device``: "cpu", "cuda" or "auto" (:func:`resolve_device`); float64 on either.

    ``lazy``: True computes :func:`frozen_ntk_prediction` here; a dict already returned by
    it (same data, width, depth, seed) is reused -- it does not depend on ``alpha``, so an
    alpha sweep should compute it once per seed; False skips it (lazy entries nan).

    Returns a dict of scalars -- ``status`` (converged / max_steps / diverged), ``alpha``,
    ``width``, ``depth``, ``seed``, ``activation``, ``act_gain``, ``n_params``, ``n_steps``,
    ``n_rejected``, ``n_band_violations``, ``t_end``, ``t1``, ``t2`` (nan unless converged),
    ``aloss`` (final ``alpha^2 L``), ``train_err``, ``test_err``, ``df_test`` (final
    ``||f - f0||``, RMS over the test set, unscaled ``f``), ``w_change`` (``||w - w0|| /
    ||w0||``), ``ntk_change`` (eq. 9 on the first ``ntk_subset`` test points), ``ntk_norm0`` /
    ``ntk_norm`` (Frobenius norms of that Gram at init / end), ``lazy_vs_net`` (relative L2
    distance ``||F - F_lazy|| / ||F_lazy||`` on the test set), ``wall_time``, the scalars of
    :func:`frozen_ntk_prediction` -- and arrays: ``traj_*`` (``t``, ``step``, ``aloss``,
    ``train_err``, ``test_err``, ``df_test``, ``w_change``, ``dt``) at the log-spaced
    records, ``test_outputs`` (final ``F`` on the test set), ``test_f0`` (``f(w0)`` on the
    test set, unscaled), ``train_outputs`` (final ``F`` on train), ``lazy_test_outputs``,
    ``lazy_times`` / ``lazy_aloss``, plus ``step_t, step_dt, step_df, step_batch`` with
    ``return_steps``.  ``traj_f_test`` is ``||f(w_t)||`` (App. E eq. 29, unscaled ``f``).
    """
    start = time.perf_counter()
    run = _Run(x_train, y_train, x_test, y_test, width=width, depth=depth, seed=seed,
               activation=activation, beta=beta, architecture=architecture,
               image_shape=image_shape, mu=mu, tau=tau, ntk_subset=ntk_subset, lazy=lazy,
               lazy_max_df=lazy_max_df, ntk_block=ntk_block, device=device)
    flow = hinge_flow(
        run.model, run.xtr, torch.as_tensor(run.ytr, device=run.dev), alpha=alpha,
        out0=run.out0_tr, mu=mu, tau=tau, temperature=temperature, batch_seed=seed,
        df_band=df_band, df_target=df_target, max_steps=max_steps, max_time=max_time,
        record_per_decade=record_per_decade, on_record=run.on_record(alpha),
        return_steps=return_steps, log=log,
    )
    return run.finish(flow, alpha, time.perf_counter() - start, return_steps, log)


def train_lazy_feature_packed(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    members: list[tuple[float, int]],
    width: int,
    depth: int,
    activation: str = "softplus",
    beta: float = 5.0,
    architecture: str = "fc",
    image_shape: tuple[int, ...] | None = None,
    mu: float | None = 1000.0,
    tau: float | None = None,
    temperature: float = 0.0,
    df_band: tuple[float, float] = DF_BAND,
    df_target: float = DF_TARGET,
    max_steps: int = 1_000_000,
    max_time: float = math.inf,
    record_per_decade: int = 10,
    ntk_subset: int | None = 256,
    lazy: bool | Mapping[int, Mapping[str, Any]] = True,
    lazy_max_df: float = DF_TARGET,
    ntk_block: int = 1024,
    return_steps: bool = False,
    device: str = "cpu",
    log: Log = None,
) -> list[dict[str, Any]]:
    """:func:`train_lazy_feature` for several ``(alpha, seed)`` members of one (activation,
    depth, width) cell, trained together by
    :func:`~depthlab.training.hinge.packed_hinge_flow` -- each member's result is bitwise
    the one :func:`train_lazy_feature` gives it alone on CPU (except ``wall_time``: the
    member's own set-up and measures plus an equal share of the packed training).

    FC nets and full-batch dynamics only (``architecture="fc"``, ``temperature=0``).
    ``lazy``: True computes :func:`frozen_ntk_prediction` once per seed; a mapping seed ->
    its already computed prediction is reused; False skips it."""
    if architecture != "fc" or temperature > 0:
        raise ValueError("packed training is for FC nets and full-batch dynamics (got "
                         f"architecture={architecture!r}, temperature={temperature})")
    if len(set(members)) != len(members):
        raise ValueError(f"a member appears twice: {members}")
    start = time.perf_counter()
    lazies: dict[int, Any] = {}
    for _, seed in members:
        if seed in lazies:
            continue
        if isinstance(lazy, Mapping):
            lazies[seed] = lazy[seed]
        elif lazy:
            lazies[seed] = frozen_ntk_prediction(
                x_train, y_train, x_test, y_test, width=width, depth=depth, seed=seed,
                activation=activation, beta=beta, mu=mu, tau=tau, max_df=lazy_max_df,
                ntk_block=ntk_block, device=device)
        else:
            lazies[seed] = False
    runs = [_Run(x_train, y_train, x_test, y_test, width=width, depth=depth, seed=seed,
                 activation=activation, beta=beta, architecture=architecture,
                 image_shape=image_shape, mu=mu, tau=tau, ntk_subset=ntk_subset,
                 lazy=lazies[seed], lazy_max_df=lazy_max_df, ntk_block=ntk_block,
                 device=device)
            for _, seed in members]
    alphas = [float(a) for a, _ in members]
    setup = time.perf_counter() - start
    hooks = [run.on_record(a) for run, a in zip(runs, alphas, strict=True)]
    first = runs[0]
    flows = packed_hinge_flow(
        [run.model for run in runs], first.xtr, torch.as_tensor(first.ytr, device=first.dev),
        alphas=alphas, out0=[run.out0_tr for run in runs], mu=mu, tau=tau, df_band=df_band,
        df_target=df_target, max_steps=max_steps, max_time=max_time,
        record_per_decade=record_per_decade,
        on_record=lambda i, params, row: hooks[i](params, row), return_steps=return_steps,
        labels=[f"alpha={a:g} seed={s}" for a, s in members], log=log,
    )
    share = (time.perf_counter() - start - setup) / len(members)
    out = []
    for run, flow, alpha in zip(runs, flows, alphas, strict=True):
        begun = time.perf_counter()
        res = run.finish(flow, alpha, 0.0, return_steps, log)
        res["wall_time"] = setup / len(members) + share + time.perf_counter() - begun
        out.append(res)
    return out


class _Run:
    """One net of :func:`train_lazy_feature`: its set-up (model, initial outputs, initial
    NTK, lazy prediction), the record hook and the final measures, around the dynamics."""

    def __init__(self, x_train, y_train, x_test, y_test, *, width, depth, seed, activation,
                 beta, architecture, image_shape, mu, tau, ntk_subset, lazy, lazy_max_df,
                 ntk_block, device):
        self.dev = dev = resolve_device(device)
        self.xtr, self.xte = _as_inputs(x_train, dev), _as_inputs(x_test, dev)
        self.ytr, self.yte = pm_labels(y_train), pm_labels(y_test)
        self.cell = {"width": int(width), "depth": int(depth), "seed": int(seed),
                     "activation": activation, "beta": beta}
        self.model = geiger_model(architecture, self.xtr.shape[1], width, depth,
                                  activation=activation, beta=beta, seed=seed,
                                  image_shape=image_shape).to(dev)
        self.engine = hinge_engine(self.model)
        w_init = {k: p.detach() for k, p in self.model.named_parameters()}
        self.out0_tr = self.engine.forward(w_init, self.xtr, False)[0]
        self.out0_te = self.engine.forward(w_init, self.xte, False)[0]
        self.x_ntk = self.xte if ntk_subset is None else self.xte[: int(ntk_subset)]
        self.theta0 = _empirical_ntk(self.model, self.x_ntk)

        yte = self.yte
        if isinstance(lazy, Mapping):
            res: dict[str, Any] = dict(lazy)
            if len(res["lazy_test_outputs"]) != len(yte):
                raise ValueError("the precomputed lazy prediction is for another test set")
        elif lazy:
            res = frozen_ntk_prediction(
                x_train, y_train, x_test, y_test, width=width, depth=depth, seed=seed,
                activation=activation, beta=beta, architecture=architecture,
                image_shape=image_shape, mu=mu, tau=tau, max_df=lazy_max_df,
                ntk_block=ntk_block, device=device,
            )
        else:
            res = {"lazy_status": "not_run", "lazy_t2": math.nan, "lazy_test_err": math.nan,
                   "lazy_train_err": math.nan, "lazy_test_outputs": np.full(len(yte), np.nan),
                   "lazy_times": np.zeros(0), "lazy_aloss": np.zeros(0), "lazy_n_steps": 0}
        self.res = res
        self.yte_t = torch.as_tensor(yte, device=dev)

    def on_record(self, alpha: float):
        def hook(params, row):
            fte = self.engine.forward(params, self.xte, False)[0]
            dte = fte - self.out0_te
            return {
                "test_err": float((alpha * dte * self.yte_t <= 0).double().mean()),
                "df_test": float(dte.pow(2).mean().sqrt()),
                "f_test": float(fte.pow(2).mean().sqrt()),
            }

        return hook

    def finish(self, flow: Mapping[str, Any], alpha: float, wall_time: float,
               return_steps: bool, log: Log) -> dict[str, Any]:
        model, engine, yte = self.model, self.engine, self.yte
        w_end = {k: p.detach() for k, p in model.named_parameters()}
        test_np = (alpha * (engine.forward(w_end, self.xte, False)[0] - self.out0_te)).cpu().numpy()
        theta = _empirical_ntk(model, self.x_ntk)
        recs = flow["records"]
        res = dict(self.res)
        lazy_out = np.asarray(res["lazy_test_outputs"], dtype=np.float64)
        lazy_norm = float(np.linalg.norm(lazy_out))
        res.update(
            status=flow["status"],
            alpha=float(alpha),
            width=self.cell["width"],
            depth=self.cell["depth"],
            seed=self.cell["seed"],
            activation=self.cell["activation"],
            act_gain=activation_gain(self.cell["activation"], self.cell["beta"]),
            n_params=int(sum(p.numel() for p in model.parameters())),
            n_steps=flow["n_steps"],
            n_rejected=flow["n_rejected"],
            n_band_violations=flow["n_band_violations"],
            t_end=flow["t"],
            t1=flow["t1"],
            t2=flow["t2"],
            aloss=flow["aloss"],
            train_err=recs[-1]["train_err"],
            test_err=_error(test_np, yte),
            df_test=recs[-1]["df_test"],
            w_change=recs[-1]["w_change"],
            ntk_change=ntk_relative_change(theta, self.theta0),
            ntk_norm0=float(np.linalg.norm(self.theta0)),
            ntk_norm=float(np.linalg.norm(theta)),
            lazy_vs_net=float(np.linalg.norm(test_np - lazy_out) / lazy_norm)
            if lazy_norm > 0 and np.isfinite(lazy_norm)
            else math.nan,
            test_outputs=test_np,
            test_f0=self.out0_te.cpu().numpy(),
            train_outputs=flow["train_outputs"].cpu().numpy(),
            device=str(self.dev),
        )
        for key in TRAJECTORY_KEYS:
            res[f"traj_{key}"] = np.array([r[key] for r in recs], dtype=np.float64)
        if return_steps:
            for key in ("step_t", "step_dt", "step_df", "step_batch"):
                res[key] = flow[key]
        res["wall_time"] = wall_time
        _emit(
            log,
            f"done: alpha={alpha:g} seed={self.cell['seed']} status={res['status']} "
            f"steps={res['n_steps']} t2={res['t2']:.3e} test_err={res['test_err']:.4f} "
            f"lazy_test_err={res['lazy_test_err']:.4f} ntk_change={res['ntk_change']:.3e} "
            f"wall={res['wall_time']:.1f}s",
        )
        return res


def ensemble_stats(outputs: Any, y: Any) -> dict[str, Any]:
    """Ensemble measures of sec. 4 from ``outputs`` (S members, n test points) -- pass the
    trained functions ``F_i = alpha (f(w_i) - f(w0_i))`` -- and labels (``{0,1}`` or ``+-1``).

    Returns ``member_test_err`` (S,), ``mean_test_err`` (their mean),
    ``ensemble_test_err`` (error of ``mean_i F_i``; ``y F <= 0`` counts as an error),
    ``var_f`` (eq. 7: ``< (F_i(x) - Fbar(x))^2 >`` over members and test points, population
    variance, divisor S) and ``mean_output`` (n,).
    """
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError(f"outputs must be (members, test points), got shape {out.shape}")
    y_pm = pm_labels(y)
    if out.shape[1] != len(y_pm):
        raise ValueError(f"{out.shape[1]} outputs per member but {len(y_pm)} labels")
    mean = out.mean(axis=0)
    member_err = np.mean(out * y_pm <= 0, axis=1)
    return {
        "member_test_err": member_err,
        "mean_test_err": float(member_err.mean()),
        "ensemble_test_err": _error(mean, y_pm),
        "var_f": float(np.mean((out - mean) ** 2)),
        "mean_output": mean,
    }
