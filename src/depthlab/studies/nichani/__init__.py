"""Nichani, Radhakrishnan & Uhler, "Do deeper convolutional networks perform better?" (ICLR
2021 submission; shared/papers/deeper-cnns-nichani.txt) as a plug-in.

Past a critical depth, deeper conv nets generalize worse: Fully-Conv nets trained to
interpolation (:func:`depthlab.models.nichani.fully_conv`, :mod:`depthlab.training.module`),
the CNTK vs depth on the shared conv kernel engine (GAP / vanilla, Arora et al.'s fixed first
and last layers or not) with the FC NTK, and linear conv nets whose operator (identity trick)
falls in norm and stable rank toward the minimum-norm solution.  Modules: ``grid`` (jobs,
checks), ``inputs`` (rule inputs), ``data``, ``runs`` (one function per job), ``cube``,
``critical`` (the critical-depth table), ``figures``, ``paper_claims``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depthlab.studies.nichani.grid import check

__all__ = ["FIGURE_CODE", "KIND", "PLOTS", "check", "claims", "targets"]

KIND = "nichani"
FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)


def targets(name: str, study: dict[str, Any], results: str) -> list[str]:
    figures = [f"{results}/{name}/figures/{fig}.{ext}" for fig in study["figures"]
               for ext in ("pdf", "png")]
    return [f"{results}/{name}/cube.nc", *figures, f"{results}/{name}/critical_depths.csv",
            f"{results}/{name}/claims.csv"]


def __getattr__(attr: str) -> Any:
    # Figures and claims import matplotlib/xarray: only the jobs that draw or judge pay it.
    if attr == "PLOTS":
        from depthlab.studies.nichani.figures import PLOTS as value
    elif attr == "claims":
        # (the module is paper_claims: a submodule named claims would shadow the function)
        from depthlab.studies.nichani.paper_claims import claims as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    globals()[attr] = value
    return value
