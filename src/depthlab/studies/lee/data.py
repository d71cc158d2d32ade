"""The Lee study's inputs: a dataset of generator ``pixels`` (:mod:`depthlab.data.images`:
MNIST from local IDX files or scikit-learn's digits stand-in, flattened pixels in [0, 1], an
optional class subset and positive shift), named by the study's ``data.dataset`` and written
once by the shared make_dataset rule.  :func:`load_lee_data` makes the same arrays in memory
(tests, notebooks) from such a dataset's parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["load_lee_data"]


def load_lee_data(spec: Mapping[str, Any]) -> dict[str, Any]:
    """x_train (N, d) float64, y_train (N,) int64, x_test, y_test, n_classes, meta: the
    arrays of the ``pixels`` dataset with parameters ``spec`` (source, n_train, n_test,
    seed, classes, input_shift, mnist_dir)."""
    from depthlab.data import generate

    made = generate({"generator": "pixels", "classes": None, "input_shift": 0.0,
                     **{k: v for k, v in spec.items() if k != "scalar_target"}})
    out = {k: made[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    return {**out, "n_classes": int(made["meta"]["n_classes"]), "meta": made["meta"]}
