"""Nichani, Radhakrishnan & Uhler, "Do deeper convolutional networks perform better?" (ICLR
2021 submission; shared/papers/deeper-cnns-nichani.txt) as a plug-in.

Past a critical depth, deeper conv nets generalize worse: Fully-Conv nets trained to
interpolation (:func:`depthlab.studies.nichani.models.fully_conv`, :mod:`depthlab.training.module`),
the CNTK vs depth on the shared conv kernel engine (GAP / vanilla, Arora et al.'s fixed first
and last layers or not) with the FC NTK, and linear conv nets whose operator (identity trick)
falls in norm and stable rank toward the minimum-norm solution.  Modules: ``grid`` (jobs,
checks), ``inputs`` (rule inputs), ``data``, ``runs`` (one function per job), ``cube``,
``critical`` (the critical-depth table), ``figures``, ``paper_claims``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depthlab.studies import lazy_plugin_attributes, study_targets
from depthlab.studies.nichani.grid import check, memory_estimates

__all__ = ["FIGURE_CODE", "KIND", "PLOTS", "check", "claims", "memory_estimates",
           "targets"]

KIND = "nichani"
FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)


def targets(name: str, study: dict[str, Any], results: str) -> list[str]:
    return study_targets(name, study, results, ["critical_depths.csv"])


# Some claims compare studies of this kind (paper_claims.claims_across): the generic
# `claims_across` rule judges them on all their cubes (rules/claims.smk).
CLAIMS_ACROSS = True

__getattr__ = lazy_plugin_attributes(__name__)  # PLOTS and claims, imported on first use
