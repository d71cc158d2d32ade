"""Xiao, Pennington & Schoenholz, "Disentangling trainability and generalization in deep
neural networks" (ICLR 2020 text in shared/papers) as a plug-in.

Kernel depth sweeps (FC / CNN-F / CNN-P, one recursion to the largest depth each) give the
NTK spectra, condition numbers, eta_theory and the mean / single-network predictors per depth
(Table 1, Fig. 1, Fig. 3 with kernel predictors); finite-width erf nets in the NTK
parameterisation trained at rho * eta_theory give Fig. 2 (full batch) and, where the config
has ``plane_nets``, Fig. 3 top (SGD over the sigma_w^2 x depth plane).  Modules: ``grid`` (targets,
checks), ``inputs`` (rule inputs), ``data``, ``sweep``, ``train``, ``cube``, ``figures``,
``table1``, ``paper_claims``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depthlab.studies import lazy_plugin_attributes, study_targets
from depthlab.studies.xiao.grid import check, memory_estimates

__all__ = ["FIGURE_CODE", "KIND", "PLOTS", "check", "claims", "memory_estimates",
           "targets"]

KIND = "xiao"
FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)


def targets(name: str, study: dict[str, Any], results: str) -> list[str]:
    return study_targets(name, study, results, ["table1.csv"] if study.get("phase") else [])


__getattr__ = lazy_plugin_attributes(__name__)  # PLOTS and claims, imported on first use
