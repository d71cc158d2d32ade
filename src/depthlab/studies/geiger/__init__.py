"""Geiger, Spigler, Jacot & Wyart, "Disentangling feature and lazy training" (plug-in).

One job per net (activation x depth x width x alpha x seed) trained by the momentum hinge
flow (:mod:`depthlab.training.hinge`), one frozen-initial-NTK (lazy) prediction per seed,
one cube with trajectories and ensembles, the figures and Table 1.  Modules: ``grid``
(runs), ``runs`` (one run and its measures), ``cube``, ``figures``, ``table1``, ``claims``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depthlab.activations import names_for
from depthlab.studies.geiger.grid import check

__all__ = ["ACTIVATIONS", "FIGURE_CODE", "KIND", "PLOTS", "check", "claims", "targets"]

KIND = "geiger"
FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)
# Gain activations the nets can use (a * phi with unit second moment).
ACTIVATIONS = names_for("module")


def targets(name: str, study: dict[str, Any], results: str) -> list[str]:
    figures = [f"{results}/{name}/figures/{fig}.{ext}" for fig in study["figures"]
               for ext in ("pdf", "png")]
    table = [f"{results}/{name}/table1.csv"] if "table1" in study else []
    return [f"{results}/{name}/cube.nc", *figures, *table, f"{results}/{name}/claims.csv"]


def __getattr__(attr: str) -> Any:
    # Figures and claims import matplotlib/xarray: only the jobs that draw or judge pay it.
    if attr == "PLOTS":
        from depthlab.studies.geiger.figures import PLOTS as value
    elif attr == "claims":
        # (the module is paper_claims: a submodule named claims would shadow the function)
        from depthlab.studies.geiger.paper_claims import claims as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    globals()[attr] = value
    return value
