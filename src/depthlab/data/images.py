"""Image datasets of the Lee, Xiao and Nichani studies, as generators of the shared
``datasets:`` block (:func:`depthlab.data.synthetic.generate`; one HDF5 file per dataset,
content hash verified on every read).  Every preprocessing step is a declared parameter.

``pixels`` (Lee et al.)
    ``source`` digits (scikit-learn's bundled 8x8, /16) or mnist (IDX files in
    ``mnist_dir``, /255): flattened pixels in [0, 1], optionally shifted to be strictly
    positive (``input_shift`` s: x <- (1 - s) x + s, the theorem's x > 0), restricted to
    ``classes`` (relabelled 0..k-1; null = all ten).  Rows: digits, one seeded permutation
    of the chosen images, the first ``n_train`` train and the next ``n_test`` test; MNIST,
    seeded permutations of the training and t10k files separately.  float64.
``centred_images`` (Xiao et al.)
    ``source`` digits (train candidates the first half of the 1797 images, test the second
    half) or cifar10 (python-pickle batches in ``cifar_dir``), pixels in [0, 1]; seeded
    ``n_train`` / ``n_test`` choices, average pooled by ``image_pool``, centred by the
    training mean, each image scaled to mean square 1.  Labels are the class indices (the
    study makes its centred one-hot targets from them).  (n, C, H, W) float64.
``gaussian_images`` (Xiao et al., Fig. 1 / Table 1)
    ``n_train`` standard Gaussian images of shape (``channels``, ``image_size``,
    ``image_size``), each pixel's channel vector rescaled to mean square 1; no test rows,
    labels 0.
``class_images`` (Nichani et al.)
    ``source`` digits (8x8, 1 channel, /16), cifar10 (``cifar_dir``, ``cifar_format``) or
    imagenet32 (``imagenet32_dir``, stored 1-based labels): ``n_train_per_class`` /
    ``n_test_per_class`` rows of each of ``classes`` (relabelled 0..k-1, rows in class
    order, seeded choices).  CIFAR / ImageNet32 images are block-mean downsampled to
    ``image_size``, scaled to [0, 1] and standardised per channel (``normalize``: the
    training subset's statistics, or Yang et al.'s fixed CIFAR-10 constants).  float64.
``image_sample`` (Nichani et al., the linear autoencoders of Fig. 8)
    a seeded choice of ``n_images`` training images: ``source`` digits (8x8, 1 channel,
    /16) or cifar10 (``cifar_dir``, ``cifar_format``; block-mean downsampled to
    ``image_size``, /255).  x_train (n, C, H, W) float64, the net's inputs and its targets;
    y_train zeros; no test rows.

Each generator returns its own split (a dict with ``x_train, y_train, x_test, y_test,
meta``), and ``meta["n_classes"]`` (the file's ``n_classes`` attribute).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from depthlab.data.digits import digits_images

__all__ = [
    "IMAGE_GENERATORS",
    "YANG_MEAN",
    "YANG_STD",
    "avg_pool_images",
    "centred_images_dataset",
    "class_images_dataset",
    "dataset_rows",
    "gaussian_images",
    "gaussian_images_dataset",
    "image_input_dim",
    "image_sample_dataset",
    "pixels_dataset",
]

# Yang et al.'s CIFAR-10 normalisation (their ResNet recipe), pixels in [0, 1]
YANG_MEAN = (0.4914, 0.4822, 0.4465)
YANG_STD = (0.2023, 0.1994, 0.2010)


def dataset_rows(spec: Mapping[str, Any]) -> tuple[int, int]:
    """(training rows, test rows) a dataset config makes."""
    if spec["generator"] == "class_images":
        k = len(spec["classes"])
        return k * int(spec["n_train_per_class"]), k * int(spec["n_test_per_class"])
    if spec["generator"] == "gaussian_images":
        return int(spec["n_train"]), 0
    if spec["generator"] == "image_sample":
        return int(spec["n_images"]), 0
    return int(spec["n_train"]), int(spec["n_test"])


def image_input_dim(spec: Mapping[str, Any]) -> int:
    """Inputs per row (flattened) an image dataset config makes (for memory bounds)."""
    gen, source = spec["generator"], spec.get("source")
    if gen == "gaussian_images":
        return int(spec.get("channels", 3)) * int(spec["image_size"]) ** 2
    if gen == "pixels":
        return 64 if source == "digits" else 784
    if gen == "centred_images":
        side, channels = (8, 1) if source == "digits" else (32, 3)
        side //= int(spec.get("image_pool", 1))
        return channels * side * side
    if gen == "class_images":
        return 64 if source == "digits" else 3 * int(spec.get("image_size", 16)) ** 2
    if gen == "image_sample":
        return 64 if source == "digits" else 3 * int(spec.get("image_size", 32)) ** 2
    return int(spec["d"])


def _subset(x: np.ndarray, y: np.ndarray, classes):
    if classes is None:
        return x, y
    keep = np.isin(y, classes)
    relabel = {c: i for i, c in enumerate(classes)}
    return x[keep], np.array([relabel[int(c)] for c in y[keep]], dtype=np.int64)


def pixels_dataset(params: Mapping[str, Any], n_total: int, rng: np.random.Generator):
    """Generator ``pixels`` (module doc)."""
    classes = params.get("classes")
    n_train, n_test = int(params["n_train"]), int(params["n_test"])
    if params["source"] == "digits":
        images, target = digits_images()
        x = images.reshape(len(images), -1) / 16.0
        x, y = _subset(x, target.astype(np.int64), classes)
        perm = rng.permutation(len(y))
        if n_train + n_test > len(y):
            raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds the {len(y)} "
                             "digits images of the chosen classes")
        itr, ite = perm[:n_train], perm[n_train:n_train + n_test]
        xtr, ytr, xte, yte = x[itr], y[itr], x[ite], y[ite]
        source = "scikit-learn digits (8x8, bundled)"
    else:
        from depthlab.data.mnist import load_mnist

        raw = load_mnist(params["mnist_dir"])
        xtr, ytr = _subset(raw["x_train"].reshape(len(raw["x_train"]), -1) / 255.0,
                           raw["y_train"].astype(np.int64), classes)
        xte, yte = _subset(raw["x_test"].reshape(len(raw["x_test"]), -1) / 255.0,
                           raw["y_test"].astype(np.int64), classes)
        if n_train > len(ytr) or n_test > len(yte):
            raise ValueError(f"n_train = {n_train} / n_test = {n_test} exceed the "
                             f"{len(ytr)} / {len(yte)} MNIST images of the chosen classes")
        itr, ite = rng.permutation(len(ytr))[:n_train], rng.permutation(len(yte))[:n_test]
        xtr, ytr, xte, yte = xtr[itr], ytr[itr], xte[ite], yte[ite]
        source = "MNIST (local IDX files)"
    shift = float(params.get("input_shift", 0.0))
    return {
        "x_train": _shift(xtr, shift), "y_train": ytr,
        "x_test": _shift(xte, shift), "y_test": yte,
        "meta": {"n_classes": len(classes) if classes is not None else 10,
                 "classes": list(classes) if classes is not None else list(range(10)),
                 "input_shift": shift, "source": source},
    }


def _shift(x: np.ndarray, shift: float) -> np.ndarray:
    """x <- (1 - s) x + s: pixels in [0, 1] become strictly positive (the theorem's x > 0)."""
    if not 0.0 <= shift < 1.0:
        raise ValueError(f"input_shift must be in [0, 1), got {shift}")
    x = np.asarray(x, dtype=np.float64)
    return x if shift == 0.0 else (1.0 - shift) * x + shift


def avg_pool_images(x: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return x
    n, c, h, w = x.shape
    return x[:, :, : h - h % factor, : w - w % factor].reshape(
        n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def _centred_raw(params: Mapping[str, Any]):
    """(x_train, y_train, x_test, y_test) candidates as float images (n, C, H, W) in [0, 1]."""
    if params["source"] == "digits":
        images, target = digits_images()
        x = images[:, None, :, :] / 16.0
        y = target.astype(np.int64)
        # the pools of train candidates and of test candidates are disjoint halves
        half = len(y) // 2
        return x[:half], y[:half], x[half:], y[half:]
    from depthlab.data.cifar import read_cifar10

    raw = read_cifar10(params["cifar_dir"], fmt="python")
    return (raw["x_train"] / 255.0, raw["y_train"], raw["x_test"] / 255.0, raw["y_test"])


def centred_images_dataset(params: Mapping[str, Any], n_total: int, rng: np.random.Generator):
    """Generator ``centred_images`` (module doc)."""
    n_train, n_test = int(params["n_train"]), int(params["n_test"])
    xtr, ytr, xte, yte = _centred_raw(params)
    if n_train > len(ytr) or n_test > len(yte):
        raise ValueError(f"n_train = {n_train} / n_test = {n_test} exceed the {len(ytr)} / "
                         f"{len(yte)} candidate images of {params['source']}")
    itr = rng.permutation(len(ytr))[:n_train]
    ite = rng.permutation(len(yte))[:n_test]
    pool = int(params.get("image_pool", 1))
    xtr, xte = avg_pool_images(xtr[itr], pool), avg_pool_images(xte[ite], pool)
    ytr, yte = ytr[itr], yte[ite]
    mean = xtr.mean(axis=0, keepdims=True)
    xtr, xte = xtr - mean, xte - mean

    def unit(x):
        ms = (x**2).reshape(len(x), -1).mean(axis=1)
        return x / np.sqrt(np.where(ms > 0, ms, 1.0))[:, None, None, None]

    source = ("scikit-learn digits (8x8, bundled)" if params["source"] == "digits"
              else "CIFAR-10 (local python-pickle batches)")
    return {"x_train": unit(xtr), "y_train": ytr, "x_test": unit(xte), "y_test": yte,
            "meta": {"n_classes": 10, "image_pool": pool, "source": source}}


def gaussian_images(m: int, k: int, seed: int, channels: int = 3) -> np.ndarray:
    """(m, C, k, k) Gaussian images, each pixel's channel vector of mean square 1."""
    return _gaussian(np.random.default_rng(seed), m, k, channels)


def _gaussian(rng: np.random.Generator, m: int, k: int, channels: int) -> np.ndarray:
    x = rng.standard_normal((m, channels, k, k))
    norm = np.sqrt((x**2).mean(axis=1, keepdims=True))
    return x / norm


def gaussian_images_dataset(params: Mapping[str, Any], n_total: int,
                            rng: np.random.Generator):
    """Generator ``gaussian_images`` (module doc): the seed's first draw, so
    ``gaussian_images(m, k, seed)`` is the same array."""
    m, k = int(params["n_train"]), int(params["image_size"])
    channels = int(params.get("channels", 3))
    x = _gaussian(rng, m, k, channels)
    return {"x_train": x, "y_train": np.zeros(m, dtype=np.int64),
            "x_test": np.zeros((0, channels, k, k)), "y_test": np.zeros(0, dtype=np.int64),
            "meta": {"n_classes": 1, "source": "Gaussian images (synthetic)"}}


def class_images_dataset(params: Mapping[str, Any], n_total: int, rng: np.random.Generator):
    """Generator ``class_images`` (module doc); rows in class order."""
    from depthlab.data.cifar import class_subset, downsample

    classes = list(params["classes"])
    seed = int(params["seed"])
    n_tr, n_te = int(params["n_train_per_class"]), int(params["n_test_per_class"])
    if params["source"] == "digits":
        images, target = digits_images()
        x = images[:, None].astype(np.float64) / 16.0
        y = target.astype(np.int64)
        xs, ys = class_subset(x, y, classes, n_tr + n_te, seed)
        first = np.concatenate([np.arange(n_tr) + i * (n_tr + n_te)
                                for i in range(len(classes))])
        mask = np.zeros(len(ys), bool)
        mask[first] = True
        xtr, ytr, xte, yte = xs[mask], ys[mask], xs[~mask], ys[~mask]
        source = "scikit-learn digits (8x8, 1 channel)"
    else:
        if params["source"] == "imagenet32":
            from depthlab.data.imagenet32 import read_imagenet32

            raw = read_imagenet32(params["imagenet32_dir"], classes)
            source = "ImageNet32 (local pickled batches; val_data as the test set)"
        else:
            from depthlab.data.cifar import read_cifar10

            raw = read_cifar10(params["cifar_dir"], params.get("cifar_format", "binary"))
            source = "CIFAR-10 (local files)"
        xtr, ytr = class_subset(raw["x_train"], raw["y_train"], classes, n_tr, seed)
        xte, yte = class_subset(raw["x_test"], raw["y_test"], classes, n_te, seed + 1)
        size = int(params.get("image_size", 16))
        xtr, xte = downsample(xtr, size), downsample(xte, size)
        xtr, xte = xtr / 255.0, xte / 255.0
        if params.get("normalize", "train_stats") == "yang":
            mean = np.asarray(YANG_MEAN).reshape(1, 3, 1, 1)
            std = np.asarray(YANG_STD).reshape(1, 3, 1, 1)
        else:
            mean = xtr.mean(axis=(0, 2, 3), keepdims=True)
            std = xtr.std(axis=(0, 2, 3), keepdims=True)
        xtr, xte = (xtr - mean) / std, (xte - mean) / std
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte,
            "meta": {"n_classes": len(classes), "classes": classes,
                     "image_shape": list(xtr.shape[1:]), "source": source}}


def image_sample_dataset(params: Mapping[str, Any], n_total: int, rng: np.random.Generator):
    """Generator ``image_sample`` (module doc): the seed's first draw is the permutation
    the images are chosen by."""
    n = int(params["n_images"])
    if params["source"] == "cifar10":
        from depthlab.data.cifar import downsample, read_cifar10

        x = read_cifar10(params["cifar_dir"], params.get("cifar_format", "binary"))["x_train"]
        pick = x[rng.permutation(len(x))[:n]]
        x = downsample(pick, int(params.get("image_size", 32))) / 255.0
        source = "CIFAR-10 (local files)"
    else:
        imgs, _ = digits_images()
        x = imgs[rng.permutation(len(imgs))[:n], None].astype(np.float64) / 16.0
        source = "scikit-learn digits (8x8, 1 channel)"
    if len(x) != n:
        raise ValueError(f"n_images = {n} exceeds the {len(x)} {params['source']} "
                         "training images")
    return {"x_train": x, "y_train": np.zeros(n, dtype=np.int64),
            "x_test": np.zeros((0, *x.shape[1:])), "y_test": np.zeros(0, dtype=np.int64),
            "meta": {"n_classes": 1, "image_shape": list(x.shape[1:]), "source": source}}


IMAGE_GENERATORS = {
    "pixels": pixels_dataset,
    "centred_images": centred_images_dataset,
    "gaussian_images": gaussian_images_dataset,
    "class_images": class_images_dataset,
    "image_sample": image_sample_dataset,
}
