"""Mori & Ueda, "Is deeper better? It depends on locality of relevant features" (plug-in).

Packed SGD over dataset x N x depth x width x lr x seed grids (lr chosen by CV where asked),
NTK baselines from the shared kernel targets, local stability s(v), one cube, the figures
and a summary table of the depth effect.  Modules: ``grid`` (members and jobs), ``cube``,
``figures``, ``summary``, ``stability``, ``lr_search`` (learning rate by k-fold CV and
Bayesian optimisation), ``records`` (run files), ``paper_claims``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depthlab.studies import lazy_plugin_attributes, study_targets
from depthlab.studies.mori_ueda.grid import check, dataset_draws, memory_estimates

__all__ = ["FIGURE_CODE", "KIND", "PLOTS", "check", "claims", "dataset_draws",
           "memory_estimates", "targets"]

KIND = "mori_ueda"
FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)


def targets(name: str, study: dict[str, Any], results: str) -> list[str]:
    return study_targets(name, study, results, ["summary.csv"])


# Some claims compare studies of this kind (paper_claims.claims_across): the generic
# `claims_across` rule judges them on all their cubes (rules/claims.smk).
CLAIMS_ACROSS = True

__getattr__ = lazy_plugin_attributes(__name__)  # PLOTS and claims, imported on first use
