"""Lee, Choi, Ryu & No, "Neural tangent kernel analysis of deep narrow neural networks"
(ICML 2022; the SNU thesis text in shared/papers) as a plug-in.

Deep narrow MLPs (width d + K + 1, the ``deep_narrow`` init of
:mod:`depthlab.models.packed_fc`) trained by the packed SGD trainer and deep narrow CNNs
(c + K + 1 channels, :mod:`depthlab.studies.lee.cnn`) trained by the module trainer,
against the authors' PyTorch-default and He-uniform baselines at the same depth and width;
the scaled NTK limit Theta~^inf (:mod:`depthlab.studies.lee.kernels`) as a kernel
regression; the toy regression of Fig. 4.1 / 5.1 (NTK convergence and invariance) and the
spread of the init kernel vs depth.  Modules: ``grid`` (runs, jobs, checks), ``data``,
``kernels`` (Theta~^inf, the init kernel, the empirical scaled NTK), ``cnn`` (the deep
narrow CNN), ``gram`` (the blocked Theta~^inf Gram file), ``runs`` (one job each), ``cube``,
``figures``, ``table41``, ``paper_claims``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depthlab.studies import lazy_plugin_attributes, study_targets
from depthlab.studies.lee.grid import check

__all__ = ["FIGURE_CODE", "KIND", "PLOTS", "check", "claims", "targets"]

KIND = "lee"
FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)


def targets(name: str, study: dict[str, Any], results: str) -> list[str]:
    return study_targets(name, study, results, ["table41.csv"] if study.get("table41") else [])


__getattr__ = lazy_plugin_attributes(__name__)  # PLOTS and claims, imported on first use
