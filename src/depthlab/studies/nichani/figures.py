"""Nichani et al.'s figures, drawn from the study cube only (every footer states the data
source and the settings the paper leaves open)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from depthlab.plotting import finish, panels

__all__ = ["PLOTS"]

_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:red"]


def _study(cube: xr.Dataset) -> dict[str, Any]:
    return json.loads(cube.attrs.get("study_json", "{}"))


def _data_note(cube: xr.Dataset) -> str:
    return (f"Data: {cube.attrs.get('data_source', '?')}; {cube.attrs.get('n_classes')} classes, "
            f"{cube.attrs.get('n_train')} train / {cube.attrs.get('n_test')} test images "
            f"{cube.attrs.get('image_shape')}.")


def plot_fully_conv(cube: xr.Dataset, figure: dict[str, Any]):
    """Figs. 2-4 / 20-21: train and test accuracy (or test loss) vs depth, FC baseline line."""
    metric = figure.get("metric", "accuracy")
    fig, (ax,) = panels(1, height=4.6, min_width=6.0)
    d = cube.depth.values
    if metric == "accuracy":
        series = [("fc_train_acc", "train (best epoch)", "-", "o"),
                  ("fc_test_acc", "test, paper's rule (best train acc)", "-", "s"),
                  ("fc_test_acc_final", "test, final epoch", ":", "^")]
    else:
        series = [("fc_test_loss", "test loss, paper's rule", "-", "s"),
                  ("fc_train_loss", "train loss, same epoch", ":", "o")]
    for i, (var, label, ls, mk) in enumerate(series):
        v = cube[var].values
        ax.errorbar(d, np.nanmean(v, 1), yerr=np.nanstd(v, 1), ls=ls, marker=mk,
                    color=_COLORS[i], capsize=2, label=label)
    base = "mlp_test_acc" if metric == "accuracy" else "mlp_test_loss"
    if base in cube:
        m = float(np.nanmean(cube[base].values))
        ax.axhline(m, color="tab:red", lw=1.2, label=f"FC baseline, test ({m:.3f})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("depth d (d + 1 conv layers)")
    ax.set_ylabel("accuracy" if metric == "accuracy" else "cross-entropy loss")
    s = _study(cube).get("fully_conv", {})
    tr = s.get("training", {})
    note = (f"{_data_note(cube)} Fully-Conv width {s.get('width')}, kernel "
            f"{s.get('kernel_size')}, zero padding, BN (eval mode for metrics), LeakyReLU "
            f"{s.get('negative_slope')}; {tr.get('optimizer')} lr {tr.get('lr')}, batch "
            f"{tr.get('batch_size')}, <= {tr.get('max_epochs')} epochs, stop at 100 % train "
            f"acc; {cube.sizes.get('seed')} seeds (mean +- std); FC baseline: one hidden layer "
            f"of {s.get('fc_width')}. Statuses: "
            f"{sorted(set(cube.fc_status.values.ravel().tolist()))}.")
    return finish(fig, [ax], figure, note)


def plot_cntk(cube: xr.Dataset, figure: dict[str, Any]):
    """Figs. 6 / 18: kernel test loss and accuracy vs depth."""
    fig, axes = panels(2)
    for i, name in enumerate(cube.kernel.values):
        r = cube.sel(kernel=name)
        ok = np.isfinite(r.k_test_loss.values)
        d = cube.kernel_depth.values[ok]
        axes[0].plot(d, r.k_test_loss.values[ok], marker="o", color=_COLORS[i], label=str(name))
        axes[1].plot(d, r.k_test_acc.values[ok], marker="o", color=_COLORS[i], label=str(name))
        j = int(np.argmin(r.k_test_loss.values[ok]))
        axes[0].plot(d[j], r.k_test_loss.values[ok][j], "*", ms=12, color=_COLORS[i])
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("kernel depth (conv layers; FC NTK: hidden layers)")
    axes[0].set_ylabel("test MSE (sum over classes)")
    axes[1].set_ylabel("test accuracy")
    k = _study(cube).get("kernels", {})
    jit = np.nanmax(cube.k_jitter_used.values)
    note = (f"{_data_note(cube)} Ridgeless kernel regression, targets {k.get('targets')}, "
            f"{k.get('filter_size')}x{k.get('filter_size')} filters, {k.get('padding')} "
            f"padding, no bias, {k.get('dtype')}; fix = first conv and readout not trained; "
            f"largest relative jitter used {jit:.1e}. Star: lowest test loss. Images per "
            "kernel (train / test): " + ", ".join(
                f"{n} {int(a)} / {int(b)}" for n, a, b in zip(
                    cube.kernel.values, cube.k_n_train.values, cube.k_n_test.values,
                    strict=True)) + ".")
    return finish(fig, axes, figure, note, legend="first")


def _task(cube: xr.Dataset, figure: dict[str, Any]) -> xr.Dataset:
    r = cube.sel(task=figure["task"])
    return r.isel(lin_depth=np.flatnonzero(np.any(r.lin_status.values != "not_run", axis=1)))


def _scatter(ax, r: xr.Dataset, var: str, color: str, label: str) -> None:
    d = r.lin_depth.values
    v = r[var].values
    conv = r.lin_status.values == "converged"
    for j in range(v.shape[1]):
        ax.scatter(d[conv[:, j]], v[conv[:, j], j], color=color, s=14, alpha=0.7)
        ax.scatter(d[~conv[:, j]], v[~conv[:, j], j], facecolors="none", edgecolors=color, s=14)
    ax.plot(d, np.nanmean(v, 1), color=color, label=label)


def _lin_note(cube: xr.Dataset, figure: dict[str, Any]) -> str:
    t = next(x for x in _study(cube).get("linear", []) if x["name"] == figure["task"])
    return (f"Task {t['task']} ({t['name']}): width {t['width']}, {t['padding']} padding, "
            f"k = {t['kernel_size']}, {t['init']} init, no bias; full-batch Adam lr {t['lr']}, "
            f"MSE < {t['loss_tol']} or {t['max_steps']} steps; {len(t['seeds'])} seeds; "
            "depth = layers incl. the output layer. Open markers: not converged. Operator by "
            "the identity trick.")


def plot_linear_toy(cube: xr.Dataset, figure: dict[str, Any]):
    """Fig. 7 / 19: train / test accuracy and operator norm vs depth, min-norm lines."""
    r = _task(cube, figure)
    fig, axes = panels(2)
    _scatter(axes[0], r, "lin_train_acc", "tab:blue", "train accuracy")
    _scatter(axes[0], r, "lin_test_acc", "tab:orange", "test accuracy")
    axes[0].axhline(float(r.lin_min_norm_test_acc), color="k", ls="--",
                    label="min-norm solution, test")
    _scatter(axes[1], r, "lin_op_norm", "tab:green", "||W||_2 of the 1 x 108 operator")
    axes[1].axhline(float(r.lin_min_norm_norm), color="k", ls="--",
                    label=f"min-norm ||w*|| = {float(r.lin_min_norm_norm):.4f}")
    axes[0].set_ylabel("accuracy")
    axes[1].set_ylabel("operator norm")
    for ax in axes:
        ax.set_xlabel("depth (conv layers)")
    note = ("Synthetic 6x6 RGB pixel toy (generated exactly): train blue (+1) / red (-1) "
            "pixels upper left, test 100 + 100 in the lower-right quadrant. "
            + _lin_note(cube, figure))
    return finish(fig, axes, figure, note)


def plot_autoencoder(cube: xr.Dataset, figure: dict[str, Any]):
    """Fig. 8: Frobenius norm and stable rank of the AE operator vs depth."""
    r = _task(cube, figure)
    fig, axes = panels(2)
    _scatter(axes[0], r, "lin_op_norm", "tab:blue", "||W||_F")
    axes[0].axhline(float(r.lin_min_norm_norm), color="k", ls="--",
                    label=f"min-norm (projector) {float(r.lin_min_norm_norm):.3f}")
    _scatter(axes[1], r, "lin_stable_rank", "tab:orange", "stable rank")
    axes[1].axhline(float(r.lin_min_norm_stable_rank), color="k", ls="--",
                    label=f"min-norm {float(r.lin_min_norm_stable_rank):.3f}")
    axes[0].set_ylabel("Frobenius norm")
    axes[1].set_ylabel("stable rank ||W||_F^2 / ||W||_2^2")
    for ax in axes:
        ax.set_xlabel("depth (layers)")
    src = ("scikit-learn digits images (8x8) instead of CIFAR-10"
           if str(r.lin_kind.values) == "conv_ae" else "seeded Gaussian vector(s)")
    return finish(fig, axes, figure, f"Inputs: {src}. " + _lin_note(cube, figure))


PLOTS = {
    "nichani_fully_conv": plot_fully_conv,
    "nichani_cntk": plot_cntk,
    "nichani_linear_toy": plot_linear_toy,
    "nichani_autoencoder": plot_autoencoder,
}
