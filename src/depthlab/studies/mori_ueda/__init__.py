"""Mori & Ueda, "Is deeper better? It depends on locality of relevant features" (plug-in).

Packed SGD over dataset x N x depth x width x lr x seed grids (lr chosen by CV where asked),
NTK baselines from the shared kernel targets, local stability s(v), one cube, the figures
and a summary table of the depth effect.  Modules: ``grid`` (members and jobs), ``cube``,
``figures``, ``summary``, ``stability``, ``claims``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depthlab.studies.mori_ueda.grid import check

__all__ = ["FIGURE_CODE", "KIND", "PLOTS", "check", "claims", "targets"]

KIND = "mori_ueda"
FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)


def targets(name: str, study: dict[str, Any], results: str) -> list[str]:
    figures = [f"{results}/{name}/figures/{fig}.{ext}" for fig in study["figures"]
               for ext in ("pdf", "png")]
    return [f"{results}/{name}/cube.nc", *figures, f"{results}/{name}/summary.csv",
            f"{results}/{name}/claims.csv"]


def __getattr__(attr: str) -> Any:
    # Figures and claims import matplotlib/xarray: only the jobs that draw or judge pay it
    # (the Snakefile imports every plug-in on each cluster job's parse).
    if attr == "PLOTS":
        from depthlab.studies.mori_ueda.figures import PLOTS as value
    elif attr == "claims":
        # (the module is paper_claims: a submodule named claims would shadow the function)
        from depthlab.studies.mori_ueda.paper_claims import claims as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    globals()[attr] = value
    return value
