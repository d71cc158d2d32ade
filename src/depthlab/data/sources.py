"""The raw files a dataset is made from, as Snakemake inputs of its make_dataset job.

Replacing one (another MNIST under the same name) then rebuilds the dataset and everything
downstream, and make_dataset records each file's SHA-256 in the dataset's attributes. A
missing directory gives no inputs here: the config check reports it before any job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from depthlab.data.mnist import MnistNotFoundError, find_mnist_files

__all__ = ["dataset_sources"]


def dataset_sources(spec: Mapping[str, Any]) -> list[str]:
    if spec.get("generator") != "mnist_parity":
        return []
    try:
        return sorted(str(p) for p in find_mnist_files(spec["mnist_dir"]).values())
    except MnistNotFoundError:
        return []
