"""MNIST parity datasets (Geiger et al. sec. 2, "Dataset"), from local files only.

Two generators share one transform (:func:`parity_pca_split`):

``mnist_parity``
    the MNIST IDX files in the directory given by the config key ``mnist_dir``
    (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte``, each optionally ``.gz``; the ``train-images.idx3-ubyte``
    spelling is accepted too).  Nothing is downloaded: a directory without MNIST is an
    error (:class:`MnistNotFoundError`) naming the path and the key, and it is the config
    that chooses a fallback (``digits_parity``), never this module.  Training rows are the
    first ``n_train`` of a seeded permutation of the 60 000 training images, test rows the
    first ``n_test`` of a seeded permutation of the 10 000 t10k images.
``digits_parity``
    scikit-learn's bundled 8x8 digits (1 797 images, :mod:`depthlab.data.digits`, no
    network): one seeded permutation, the first ``n_train`` rows train, the next
    ``n_test`` test (``n_train + n_test <= 1797``).

Transform: label 0 for even digits, 1 for odd (the paper's ``y = -1/+1``; the hinge-loss
code maps ``{0, 1} -> {-1, +1}``).  Pixels are scaled to [0, 1] (/255 for MNIST, /16 for
digits).  With ``pca_components = k`` (10 in the paper's FC setup) the mean training image
is subtracted, the inputs are projected on the first k principal components of the
training set and each component is divided by its training standard deviation, so every
training component has mean 0 and variance 1 (population variance, ddof = 0); the test set
goes through the same, train-fitted, map.  With ``pca_components = None`` the flattened
raw pixels are kept (``meta["image_shape"]`` gives the image shape for a CNN).  Inputs
are stored as float32.  A ``d`` in the config block (the schema asks for one) must equal
the input dimension made: ``pca_components``, or 784 / 64 for raw pixels.

The generators return their own split (a dict with ``x_train, y_train, x_test, y_test,
meta``; see :func:`depthlab.data.synthetic.generate`) because the PCA must be fitted on
the training rows only.  Training sets of size N < n_train read as the first N rows are
still nested; their PCA is the one fitted on all n_train training rows.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from depthlab.data.digits import DIGITS_SIZE, digits_images

__all__ = [
    "MNIST_FILES",
    "MnistNotFoundError",
    "read_idx",
    "find_mnist_files",
    "load_mnist",
    "check_mnist_arrays",
    "parity_labels",
    "fit_pca_whitening",
    "parity_pca_split",
    "mnist_parity_dataset",
    "digits_parity_dataset",
    "DIGITS_SIZE",
]

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# IDX type codes (third byte of the magic number); data are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class MnistNotFoundError(FileNotFoundError):
    """The configured ``mnist_dir`` holds no (complete) MNIST IDX file set."""


def _open(path: Path):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not, detected from its first bytes).

    Format: magic ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes,
    then the data in C order.  Returns the array in native byte order.
    """
    path = Path(path)
    try:
        with _open(path) as fh:
            raw = fh.read()
    except (EOFError, OSError, zlib.error) as err:  # a truncated or corrupt .gz
        raise ValueError(f"{path}: unreadable ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic bytes {raw[:4].hex()})")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(s) for s in np.frombuffer(raw[4:header], dtype=">u4"))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path}: IDX header says shape {shape} ({count * dtype.itemsize} bytes of data) "
            f"but the file has {len(raw) - header} bytes after the header (truncated?)"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _candidates(name: str) -> list[str]:
    dotted = name.replace("-idx", ".idx")  # train-images.idx3-ubyte (a common spelling)
    return [name, name + ".gz", dotted, dotted + ".gz"]


def find_mnist_files(mnist_dir: str | os.PathLike) -> dict[str, Path]:
    """Paths of the four MNIST files in ``mnist_dir``; :class:`MnistNotFoundError` if any
    is missing (the message names the directory and the config key ``mnist_dir``)."""
    root = Path(mnist_dir).expanduser()
    found, missing = {}, []
    for key, name in MNIST_FILES.items():
        hit = next((root / c for c in _candidates(name) if (root / c).is_file()), None)
        if hit is None:
            missing.append(name + "[.gz]")
        else:
            found[key] = hit
    if missing:
        where = "does not exist" if not root.is_dir() else f"lacks {', '.join(missing)}"
        raise MnistNotFoundError(
            f"no MNIST at {str(root)!r} (config key `mnist_dir`): the directory {where}. "
            "depthlab never downloads data: put the four IDX files "
            f"({', '.join(MNIST_FILES.values())}, optionally .gz) there, or point the "
            "dataset's `mnist_dir` elsewhere, or use the generator 'digits_parity' "
            "(scikit-learn's bundled 8x8 digits) in the config."
        )
    return found


def load_mnist(mnist_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The four MNIST arrays: ``x_train`` (60000, 28, 28) uint8, ``y_train`` (60000,),
    ``x_test`` (10000, 28, 28), ``y_test`` (10000,) -- whatever sizes the files hold."""
    files = find_mnist_files(mnist_dir)
    out = {}
    for split in ("train", "test"):
        x_path, y_path = files[f"{split}_images"], files[f"{split}_labels"]
        x, y = read_idx(x_path), read_idx(y_path)
        check_mnist_arrays(x_path, x, y_path, y)
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    return out


def check_mnist_arrays(x_path: Path, x: np.ndarray, y_path: Path, y: np.ndarray) -> None:
    """MNIST's declared types: images ubyte (n, rows, cols), labels ubyte (n,) in 0..9.

    An IDX header can declare any type and shape; a file declaring another (an int32 label
    file, a float image file) or holding a label outside 0..9 is someone else's data or a
    corrupt file, and is refused naming the file rather than trained on.
    """
    for path, arr, ndim, what in ((x_path, x, 3, "images (n, rows, cols)"),
                                  (y_path, y, 1, "labels (n,)")):
        if arr.dtype != np.uint8:
            raise ValueError(f"{path}: IDX type is {arr.dtype}, MNIST {what} are unsigned "
                             "bytes (type byte 0x08)")
        if arr.ndim != ndim:
            raise ValueError(f"{path}: IDX shape {arr.shape}, MNIST {what} have {ndim} "
                             "dimension(s)")
    if len(x) != len(y):
        raise ValueError(f"{x_path}: {len(x)} images but {y_path} has {len(y)} labels")
    if len(y) and y.max() > 9:
        bad = int(np.flatnonzero(y > 9)[0])
        raise ValueError(f"{y_path}: label {int(y[bad])} at row {bad}; MNIST labels are 0..9")


def parity_labels(digits: Any) -> np.ndarray:
    """0 for even digits, 1 for odd (int64)."""
    return (np.asarray(digits, dtype=np.int64) % 2).astype(np.int64)


def fit_pca_whitening(x_train: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Mean, first ``k`` principal directions and per-component scale, from training rows.

    ``transform(x) = (x - mean) @ components.T / scale`` gives every training component
    mean 0 and (population) variance 1.  Directions come from an SVD of the centred
    training matrix (float64); each direction's sign is fixed so that its largest-|.|
    loading is positive, which makes the map deterministic.
    """
    x = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    n, dim = x.shape
    if not 1 <= k <= min(n - 1, dim):
        raise ValueError(
            f"pca_components = {k} must be in [1, min(n_train - 1, input dim)] = "
            f"[1, {min(n - 1, dim)}]"
        )
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:k]
    flip = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    comps = comps * flip[:, None]
    scale = s[:k] / np.sqrt(n)  # std of the projection on each direction
    if np.any(scale <= 1e-12 * max(scale[0], 1e-300)):
        raise ValueError(f"the training set has fewer than {k} non-degenerate directions")
    explained = (s[:k] ** 2) / np.sum(s**2)
    return {
        "mean": mean,
        "components": comps,
        "scale": scale,
        "explained_variance_ratio": explained,
    }


def _apply_pca(pca: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return (x - pca["mean"]) @ pca["components"].T / pca["scale"]


def parity_pca_split(
    images_train: np.ndarray,
    digits_train: np.ndarray,
    images_test: np.ndarray,
    digits_test: np.ndarray,
    pca_components: int | None,
    *,
    pixel_max: float,
) -> dict[str, Any]:
    """The shared transform (module doc): parity labels, pixels / ``pixel_max``, then the
    train-fitted PCA whitening to ``pca_components`` dimensions (or flat raw pixels)."""
    image_shape = list(np.shape(images_train)[1:])
    xtr = np.asarray(images_train, dtype=np.float64).reshape(len(images_train), -1) / pixel_max
    xte = np.asarray(images_test, dtype=np.float64).reshape(len(images_test), -1) / pixel_max
    meta: dict[str, Any] = {
        "labels": "parity: 0 = even digit, 1 = odd digit",
        "image_shape": image_shape,
        "pixel_scale": f"1/{pixel_max:g}",
        "pca_components": None if pca_components is None else int(pca_components),
    }
    if pca_components is not None:
        pca = fit_pca_whitening(xtr, int(pca_components))
        xtr, xte = _apply_pca(pca, xtr), _apply_pca(pca, xte)
        meta["pca"] = (
            "fitted on the training rows only: mean image subtracted, projection on the first "
            "k principal components, each scaled to unit variance"
        )
        meta["explained_variance_ratio"] = [float(v) for v in pca["explained_variance_ratio"]]
    return {
        "x_train": xtr.astype(np.float32),
        "y_train": parity_labels(digits_train),
        "x_test": xte.astype(np.float32),
        "y_test": parity_labels(digits_test),
        "meta": meta,
    }


def _pca_param(params: Mapping[str, Any]) -> int | None:
    k = params.get("pca_components", 10)
    return None if k is None else int(k)


def _check_d(params: Mapping[str, Any], out: Mapping[str, Any]) -> None:
    """A config ``d`` (the schema's input dimension), if given, must match the inputs made."""
    dim = out["x_train"].shape[1]
    if params.get("d") is not None and int(params["d"]) != dim:
        raise ValueError(
            f"d = {params['d']} but generator {params['generator']!r} makes {dim}-dimensional "
            f"inputs (pca_components = {params.get('pca_components', 10)}); set d = {dim}"
        )


def mnist_parity_dataset(params: Mapping[str, Any], n_total: int, rng: np.random.Generator):
    """Generator ``mnist_parity``: params ``mnist_dir``, ``n_train``, ``n_test``,
    ``pca_components`` (default 10; null keeps raw pixels), ``seed``."""
    if "mnist_dir" not in params or params["mnist_dir"] in (None, ""):
        raise MnistNotFoundError("generator 'mnist_parity' needs the config key `mnist_dir`")
    n_train, n_test = int(params["n_train"]), int(params["n_test"])
    data = load_mnist(params["mnist_dir"])
    pool_train, pool_test = len(data["x_train"]), len(data["x_test"])
    if n_train > pool_train or n_test > pool_test:
        raise ValueError(
            f"n_train = {n_train} / n_test = {n_test} exceed the MNIST files' "
            f"{pool_train} / {pool_test} images (at {params['mnist_dir']})"
        )
    itr = rng.permutation(pool_train)[:n_train]
    ite = rng.permutation(pool_test)[:n_test]
    out = parity_pca_split(
        data["x_train"][itr], data["y_train"][itr], data["x_test"][ite], data["y_test"][ite],
        _pca_param(params), pixel_max=255.0,
    )
    _check_d(params, out)
    root = Path(params["mnist_dir"]).expanduser().resolve()
    out["meta"].update(
        source=f"MNIST (IDX files at {root})",
        split="train rows from the MNIST training file, test rows from the t10k file "
        "(seeded permutations)",
    )
    return out


def digits_parity_dataset(params: Mapping[str, Any], n_total: int, rng: np.random.Generator):
    """Generator ``digits_parity``: params ``n_train``, ``n_test`` (sum <= 1797),
    ``pca_components`` (default 10; null keeps the 64 raw pixels), ``seed``."""
    n_train, n_test = int(params["n_train"]), int(params["n_test"])
    if n_train + n_test > DIGITS_SIZE:
        raise ValueError(
            f"n_train + n_test = {n_train + n_test} exceeds the {DIGITS_SIZE} images of "
            "scikit-learn's digits"
        )
    images, target = digits_images()
    perm = rng.permutation(len(target))
    itr, ite = perm[:n_train], perm[n_train : n_train + n_test]
    out = parity_pca_split(
        images[itr], target[itr], images[ite], target[ite],
        _pca_param(params), pixel_max=16.0,
    )
    _check_d(params, out)
    out["meta"].update(
        source="scikit-learn digits (8x8, bundled)",
        split="one seeded permutation of the 1797 images: first n_train train, next n_test test",
    )
    return out
