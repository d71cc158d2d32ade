"""One depth sweep of the Xiao study: the kernel recursion run once to the largest depth,
and for every depth the spectra, eta_theory and the predictors (Xiao §3-4, App. B).

Spectra (of the train x train NTK Theta_dd, via :mod:`depthlab.kernels.spectra`):
lambda_max, lambda_bulk (mean of the others), lambda_min, lambda_2, kappa = lambda_max /
lambda_bulk, kappa_min = lambda_max / lambda_min, kappa_12 = lambda_1 / lambda_2; the NNGP's
lambda_max and kappa.  ``eta_theory`` = 2 / lambda_max is the rate of the un-normalised loss
1/2 sum_i ||f(x_i) - y_i||^2 (eq. 4); the study's trainer minimises (1/2n) sum_i ||f - y||^2,
whose rate is ``eta_trainer`` = 2 n / lambda_max.

Labelled sets (train + test in one symmetric sweep, so K_test,test is there for f0 draws):

* mean predictor (eq. 5-6) at t = inf with a ridge ``ridge * tr(Theta_dd)/n`` (eq. 69):
  test accuracy, test MSE and ||Delta Y|| / ||Y_test|| with Delta Y = (P(Theta) -
  P(Theta*)) Y (eq. 9; P(Theta*) from the phase's limit structure);
* gradient flow at eta_theory for ``times`` steps: the mean predictor's train / test
  accuracy, and the single infinite-width network's, f_t = f0 + P_t (Y - f0(X)) with f0 ~
  GP(0, K_NNGP) on train + test (``draws`` draws, common across depths; accuracy averaged).

Dropout (FC, Fig. 1 f): keep probability rho in the penultimate layer changes only the
diagonal, Theta_rho(x, x) = Theta(x, x)/rho + (1 - 1/rho) sigma_b^2 (App. C, eqs. 77-83).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from depthlab.kernels import spectra
from depthlab.kernels.phase import ntk_limit_structure, phase_point
from depthlab.kernels.regression import flow_coefficients, flow_eig, flow_train_predictions

SPECTRUM_KEYS = ("lambda_max", "lambda_bulk", "lambda_min", "lambda_second", "kappa",
                 "kappa_min", "kappa_12", "nngp_lambda_max", "nngp_kappa", "eta_theory",
                 "eta_trainer")


def kernel_spec(study: dict[str, Any], arch: str, w_var: float, image_shape) -> dict[str, Any]:
    base = {"activation": study["activation"], "w_var": float(w_var),
            "b_var": float(study["b_var"])}
    if arch == "fc":
        return base
    return {**base, "architecture": "conv", "image_shape": [int(s) for s in image_shape],
            "readout": "flatten" if arch == "cnn_f" else "gap", "padding": "circular",
            "filter_size": int(study["filter_size"]), "device": "auto"}


def run_kernel_sweep(spec: dict[str, Any], depths: list[int], x: np.ndarray,
                     n_threads: int = 1) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{depth: (nngp, ntk)} symmetric Grams of the images x (n, C, H, W), one recursion."""
    flat = x.reshape(len(x), -1)
    if spec.get("architecture") == "conv":
        from depthlab.kernels.conv import conv_sweep

        out = conv_sweep(spec, depths, flat, n_threads=n_threads)
        return {d: (v[0], v[1]) for d, v in out.items()}
    from depthlab.kernels.layers import kernel_sweep

    return kernel_sweep(spec, depths, flat, n_threads=n_threads)


def spectrum_row(nngp: np.ndarray, ntk: np.ndarray) -> dict[str, float]:
    s = spectra.spectrum(ntk)
    k = spectra.spectrum(nngp)
    n = ntk.shape[0]
    return {"lambda_max": s.lambda_max, "lambda_bulk": s.lambda_bulk,
            "lambda_min": s.lambda_min, "lambda_second": s.lambda_second, "kappa": s.kappa,
            "kappa_min": s.kappa_min,
            "kappa_12": s.lambda_max / s.lambda_second if s.lambda_second > 0 else np.inf,
            "nngp_lambda_max": k.lambda_max, "nngp_kappa": k.kappa,
            "eta_theory": s.eta_theory, "eta_trainer": n * s.eta_theory}


def dropout_ntk(ntk: np.ndarray, keep: float, b_var: float) -> np.ndarray:
    out = np.array(ntk, dtype=np.float64, copy=True)
    idx = np.diag_indices_from(out)
    out[idx] = out[idx] / keep + (1.0 - 1.0 / keep) * b_var
    return out


def gp_draws(k: np.ndarray, n_out: int, draws: int, seed: int) -> tuple[np.ndarray, float]:
    """``draws`` samples (draws, n, n_out) of GP(0, K) by Cholesky with a relative jitter
    raised x100 from 1e-12 until it factorises; returns them and the jitter used."""
    n = k.shape[0]
    scale = float(np.trace(k)) / n
    z = np.random.default_rng(seed).standard_normal((draws, n, n_out))
    jitter = 1e-12
    while True:
        try:
            chol = scipy.linalg.cholesky(k + jitter * scale * np.eye(n), lower=True)
            break
        except np.linalg.LinAlgError:
            jitter *= 100.0
            if jitter > 1e-2:
                raise
    return np.einsum("ij,djk->dik", chol, z), jitter


def _acc(f: np.ndarray, labels: np.ndarray, freq: np.ndarray) -> float:
    return float(np.mean(np.argmax(f + freq, axis=-1) == labels))


def labelled_row(nngp: np.ndarray, ntk: np.ndarray, data: dict[str, np.ndarray],
                 settings: dict[str, Any], point, seed: int) -> dict[str, Any]:
    n = len(data["y_train"])
    y, yt = data["y_train"], data["y_test"]
    lt, lte, freq = data["labels_train"], data["labels_test"], data["class_freq"]
    t_dd, t_td = ntk[:n, :n], ntk[n:, :n]
    row = spectrum_row(nngp[:n, :n], t_dd)
    ridge = float(settings["ridge"]) * float(np.trace(t_dd)) / n
    pred = spectra.predictor_apply(t_td, t_dd, y, ridge)
    diag, off = ntk_limit_structure(point)
    p_lim = spectra.structured_limit_predictor(len(yt), n, diag, off)
    delta = pred - p_lim @ y
    row.update(ridge=ridge, mean_test_acc_inf=_acc(pred, lte, freq),
               mean_test_mse_inf=float(np.mean(np.sum((pred - yt) ** 2, axis=1))),
               delta_norm=float(np.linalg.norm(delta) / np.linalg.norm(yt)))
    times = [float(t) for t in settings["times"]]
    eig = flow_eig(t_dd)
    lr = row["eta_theory"]
    coef = flow_coefficients(eig, y, times, lr)  # (T, n, K)
    mean_tr = flow_train_predictions(eig, y, times, lr)
    mean_te = np.einsum("ij,tjk->tik", t_td, coef)
    f0, jitter = gp_draws(nngp, y.shape[1], int(settings["draws"]), seed)
    f0_tr, f0_te = f0[:, :n], f0[:, n:]
    res = y[None] - f0_tr  # (D, n, K)
    single_tr = np.zeros(len(times))
    single_te = np.zeros(len(times))
    for d in range(f0.shape[0]):
        c_d = flow_coefficients(eig, res[d], times, lr)
        tr_d = f0_tr[d][None] + flow_train_predictions(eig, res[d], times, lr)
        te_d = f0_te[d][None] + np.einsum("ij,tjk->tik", t_td, c_d)
        single_tr += [_acc(tr_d[i], lt, freq) for i in range(len(times))]
        single_te += [_acc(te_d[i], lte, freq) for i in range(len(times))]
    row.update(
        flow_train_acc=[_acc(mean_tr[i], lt, freq) for i in range(len(times))],
        flow_test_acc=[_acc(mean_te[i], lte, freq) for i in range(len(times))],
        single_train_acc=list(single_tr / f0.shape[0]),
        single_test_acc=list(single_te / f0.shape[0]),
        gp_jitter=jitter,
    )
    return row


def compute(study: dict[str, Any], sweep: dict[str, Any], data: dict[str, np.ndarray],
            n_threads: int = 1) -> dict[str, Any]:
    """Every per-depth quantity of one sweep (module doc) as arrays over ``depths``."""
    w = float(sweep["w_var"])
    point = phase_point(w, float(study["b_var"]), study["activation"])
    labelled = "y_train" in data
    x = np.concatenate([data["x_train"], data["x_test"]]) if labelled else data["x"]
    spec = kernel_spec(study, sweep["arch"], w, x.shape[1:])
    depths = list(sweep["depths"])
    grams = run_kernel_sweep(spec, depths, x, n_threads)
    rows = []
    drop = []
    keeps = sweep.get("dropout_keep") or []
    for d in depths:
        nngp, ntk = grams[d]
        if labelled:
            rows.append(labelled_row(nngp, ntk, data, study[sweep["group"]], point,
                                     seed=int(study["data"]["seed"]) + 7919))
        else:
            rows.append(spectrum_row(nngp, ntk))
            if keeps:
                drop.append([spectra.spectrum(dropout_ntk(ntk, kp, float(study["b_var"]))).kappa
                             for kp in keeps])
    out = {"depth": np.asarray(depths, dtype=np.int64)}
    for key in rows[0]:
        out[key] = np.asarray([r[key] for r in rows], dtype=np.float64)
    if drop:
        out["kappa_dropout"] = np.asarray(drop, dtype=np.float64)  # (depth, keep)
        out["dropout_keep"] = np.asarray(keeps, dtype=np.float64)
    out["attrs"] = {**point.to_dict(), "arch": sweep["arch"], "spec": spec,
                    "w_label": sweep["w_label"], "group": sweep["group"]}
    return out
