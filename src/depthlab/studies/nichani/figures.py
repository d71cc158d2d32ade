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
    metric = figure["metric"]
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
    t = next(x for x in _study(cube).get("linear", []) if x["name"] == figure["task"])
    if str(r.lin_kind.values) != "conv_ae":
        src = "seeded Gaussian vector(s)"
    elif t.get("images", "digits") == "cifar10":
        src = (f"{t['n_images']} CIFAR-10 training image(s) (seeded choice), "
               f"{t.get('image_size', 32)}x{t.get('image_size', 32)}, pixels / 255")
    else:
        src = "scikit-learn digits images (8x8) instead of CIFAR-10"
    return finish(fig, axes, figure, f"Inputs: {src}. " + _lin_note(cube, figure))


_RN_VARS = {"final": {"test_loss": "rn_test_loss_final", "train_loss": "rn_train_loss_final",
                      "test_acc": "rn_test_acc_final", "train_acc": "rn_train_acc_final"},
            "best_train": {"test_loss": "rn_test_loss", "train_loss": "rn_train_loss",
                           "test_acc": "rn_test_acc", "train_acc": "rn_train_acc"}}
_RN_LABELS = {"test_loss": "test loss (MSE, sum over classes)",
              "train_loss": "train loss (MSE, sum over classes)",
              "test_acc": "test accuracy", "train_acc": "train accuracy",
              "test_err": "test error"}


def resnet_lines(cube: xr.Dataset, figure: dict[str, Any]) -> list[dict[str, Any]]:
    """The lines of a ``nichani_resnet`` figure: ``label``, ``x`` and, per metric, the
    seed values ``(len(x), n_seeds)`` (NaN where a seed did not run)."""
    from depthlab.studies.nichani.grid import grid_blocks

    rn = _study(cube)["resnets"]
    grids = {g["name"]: g for g in rn["grids"]}
    chosen = figure.get("grids") or list(grids)
    xaxis = figure["x"]
    metrics = figure["metrics"]
    names = _RN_VARS[figure["selection"]]
    keep = lambda axis, v: not figure.get(axis) or v in figure[axis]  # noqa: E731
    lines: dict[tuple, dict[tuple, tuple]] = {}
    for gname in chosen:
        g = grids[gname]
        for b in grid_blocks(g):
            depth = 2 + 2 * sum(b)
            for w in g["widths"]:
                for k in g["kernel_sizes"]:
                    if not (keep("widths", w) and keep("depths", depth)
                            and keep("kernel_sizes", k)):
                        continue
                    cell = ("-".join(map(str, b)), int(w), int(k))
                    if xaxis == "depth":
                        key, xv = (gname if len(chosen) > 1 else "", w, k), depth
                    elif xaxis == "width":
                        key, xv = (cell[0], depth, k), w
                    else:
                        key, xv = (cell[0], depth, w), k
                    lines.setdefault(key, {})[xv] = cell
    out = []
    for key, pts in lines.items():
        xs = sorted(pts)
        vals = {}
        for m in metrics:
            var = names["test_acc" if m == "test_err" else m]
            rows = []
            for xv in xs:
                b, w, k = pts[xv]
                if var in cube and b in cube.rn_blocks.values and w in cube.rn_width.values \
                        and k in cube.rn_kernel.values:
                    v = cube[var].sel(rn_blocks=b, rn_width=w, rn_kernel=k).values.astype(float)
                else:
                    v = np.full(cube.sizes.get("rn_seed", 1), np.nan)
                rows.append(1 - v if m == "test_err" else v)
            vals[m] = np.array(rows)
        if xaxis == "depth":
            k_note = f"k = {key[2]}" if cube.sizes.get("rn_kernel", 1) > 1 else ""
            label = " ".join(p for p in (key[0], f"width {key[1]}", k_note) if p)
        elif xaxis == "width":
            label = f"ResNet-{key[1]} ({key[0]}), k = {key[2]}"
        else:
            label = f"ResNet-{key[1]} ({key[0]}), width {key[2]}"
        out.append({"label": label, "x": np.array(xs), "values": vals, "key": key})
    return out


def plot_resnet(cube: xr.Dataset, figure: dict[str, Any]):
    """Figs. 1, 5, 12-17: ResNet loss / accuracy vs depth (one line per width or per grid),
    vs width (Fig. 1a) or vs kernel size (Fig. 17); mean +- std over seeds."""
    metrics = figure["metrics"]
    xaxis = figure["x"]
    fig, axes = panels(len(metrics), min_width=6.0)
    lines = resnet_lines(cube, figure)
    for i, line in enumerate(lines):
        for ax, m in zip(axes, metrics, strict=True):
            v = line["values"][m]
            ok = np.isfinite(v).any(axis=1)
            if not ok.any():
                continue
            mean = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in v])
            std = np.array([np.nanstd(r) if np.isfinite(r).any() else np.nan for r in v])
            ax.errorbar(line["x"][ok], mean[ok], yerr=std[ok], marker="o", capsize=2,
                        color=_COLORS[i % len(_COLORS)], label=line["label"])
    for ax, m in zip(axes, metrics, strict=True):
        ax.set_xlabel({"depth": "depth (2 + 2 x blocks)", "width": "width w (stage 1 filters)",
                       "kernel_size": "kernel size"}[xaxis])
        ax.set_ylabel(_RN_LABELS[m])
        if xaxis == "width":
            ax.set_xscale("log", base=2)
    rn = _study(cube)["resnets"]
    tr = rn["training"]
    status = sorted(set(cube.rn_status.values.ravel().tolist())) if "rn_status" in cube else []
    sel = figure["selection"]
    aug = (f"random crop (pad {rn['crop_padding']}) + flip" if rn["augment"]
           else "no augmentation")
    note = (f"{_data_note(cube)} CIFAR ResNets (BasicBlocks, widths w, 2w, 4w, 8w, "
            f"{'softmax + ' if rn['softmax_output'] else ''}{tr['loss']}, {aug}); "
            f"{tr['optimizer']} lr {tr['lr']}, momentum {tr['momentum']}, weight decay "
            f"{tr['weight_decay']} (for the MSE {tr['mse_reduction']} over classes), "
            f"batch {tr['batch_size']}, {tr['max_epochs']} epochs, lr x {tr['lr_decay']} at "
            f"{tr['lr_decay_epochs']}. Plotted: "
            f"{'final epoch' if sel == 'final' else 'first epoch of best train accuracy'}; "
            f"mean +- std over seeds {cube.rn_seed.values.tolist() if 'rn_seed' in cube else []}. "
            f"Trainer stops at 100 % train acc: "
            f"{cube.attrs.get('rn_trainer_stops_at_interpolation', '?')}. Statuses: {status}.")
    return finish(fig, axes, figure, note, legend="first")


PLOTS = {
    "nichani_resnet": plot_resnet,
    "nichani_fully_conv": plot_fully_conv,
    "nichani_cntk": plot_cntk,
    "nichani_linear_toy": plot_linear_toy,
    "nichani_autoencoder": plot_autoencoder,
}
