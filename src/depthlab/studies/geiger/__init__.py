"""Geiger, Spigler, Jacot & Wyart, "Disentangling feature and lazy training" (plug-in).

One job per net (activation x depth x width x alpha x seed) trained by the momentum hinge
flow (:mod:`depthlab.training.hinge`), one frozen-initial-NTK (lazy) prediction per seed,
one cube with trajectories and ensembles, the figures and Table 1.  Modules: ``grid``
(runs), ``inputs`` (rule inputs), ``job`` (a job's set-up), ``runs`` (one run and its
measures), ``cube``, ``figures``, ``table1``, ``paper_claims``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depthlab.activations import names_for
from depthlab.studies import lazy_plugin_attributes, study_targets
from depthlab.studies.geiger.grid import check, memory_estimates

__all__ = ["ACTIVATIONS", "FIGURE_CODE", "KIND", "PLOTS", "check", "claims", "memory_estimates",
           "targets"]

KIND = "geiger"
FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)
# Gain activations the nets can use (a * phi with unit second moment).
ACTIVATIONS = names_for("module")


def targets(name: str, study: dict[str, Any], results: str) -> list[str]:
    return study_targets(name, study, results, ["table1.csv"] if "table1" in study else [])


__getattr__ = lazy_plugin_attributes(__name__)  # PLOTS and claims, imported on first use
