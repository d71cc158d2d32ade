"""Where a dataset comes from: its description (:func:`data_source`, the one statement every
dataset file, cube and figure makes of it) and the raw files it is made from
(:func:`dataset_sources`, the Snakemake inputs of its make_dataset job).

Replacing a raw file (another MNIST under the same name) rebuilds the dataset and everything
downstream, and make_dataset records each file's SHA-256 in the dataset's attributes. A
missing directory gives no inputs here: the config check reports it before any job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["data_source", "dataset_sources"]

_SOURCES = {
    "k_local": "synthetic Gaussian inputs",
    "k_global": "synthetic Gaussian inputs",
    "random": "synthetic Gaussian inputs",
    "ising": "synthetic 1D Ising spins (exact sampler)",
    "digits_parity": "scikit-learn digits (8x8, bundled), not MNIST",
    "mnist_parity": "MNIST (local IDX files)",
    "gaussian_images": "Gaussian images (synthetic)",
}
# image generators: by their `source`; a digits stand-in says what it stands in for
_IMAGE_SOURCES = {
    "pixels": {"digits": "scikit-learn digits (8x8, bundled), not MNIST",
               "mnist": "MNIST (local IDX files)"},
    "centred_images": {
        "digits": "scikit-learn digits (8x8, bundled), laptop stand-in for CIFAR-10",
        "cifar10": "CIFAR-10 (local python-pickle batches)"},
    "class_images": {
        "digits": "scikit-learn digits (8x8, 1 channel) instead of CIFAR-10",
        "cifar10": "CIFAR-10 (local files)",
        "imagenet32": "ImageNet32 (local pickled batches; val_data as the test set)"},
    "image_sample": {
        "digits": "scikit-learn digits (8x8, 1 channel) instead of CIFAR-10",
        "cifar10": "CIFAR-10 (local files)"},
}


def data_source(spec: Mapping[str, Any]) -> str:
    """Where a dataset's inputs come from (``spec``: its ``datasets:`` entry), as dataset
    files, cubes and figures state it."""
    gen = spec["generator"]
    if gen in _IMAGE_SOURCES:
        return _IMAGE_SOURCES[gen][spec["source"]]
    return _SOURCES.get(gen, "synthetic")


def _raw_finder(spec: Mapping[str, Any]) -> tuple[Callable[[], Any], type] | None:
    gen, source = spec.get("generator"), spec.get("source")
    if gen == "mnist_parity" or (gen == "pixels" and source == "mnist"):
        from depthlab.data.mnist import MnistNotFoundError, find_mnist_files

        return (lambda: find_mnist_files(spec["mnist_dir"]).values()), MnistNotFoundError
    if gen in ("centred_images", "class_images", "image_sample") and source == "cifar10":
        from depthlab.data.cifar import CifarNotFoundError, find_cifar10_files

        fmt = "python" if gen == "centred_images" else spec.get("cifar_format", "binary")
        return (lambda: find_cifar10_files(spec["cifar_dir"], fmt)), CifarNotFoundError
    if gen == "class_images" and source == "imagenet32":
        from depthlab.data.imagenet32 import ImageNet32NotFoundError, find_imagenet32_files

        return (lambda: find_imagenet32_files(spec["imagenet32_dir"])), ImageNet32NotFoundError
    return None


def dataset_sources(spec: Mapping[str, Any]) -> list[str]:
    """The raw files (MNIST IDX, CIFAR-10 or ImageNet32 batches) a dataset is made from."""
    found = _raw_finder(spec)
    if found is None:
        return []
    find, missing = found
    try:
        return sorted(str(p) for p in find())
    except missing:  # reported by the config check (or the generator) naming the key
        return []
