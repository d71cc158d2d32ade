"""Xiao, Pennington & Schoenholz, "Disentangling trainability and generalization in deep
neural networks" (ICLR 2020 text in shared/papers) as a plug-in.

Kernel depth sweeps (FC / CNN-F / CNN-P, one recursion to the largest depth each) give the
NTK spectra, condition numbers, eta_theory and the mean / single-network predictors per depth
(Table 1, Fig. 1, Fig. 3 with kernel predictors); finite-width erf nets in the NTK
parameterisation trained at rho * eta_theory give Fig. 2.  Modules: ``grid`` (targets,
checks), ``inputs`` (rule inputs), ``data``, ``sweep``, ``train``, ``cube``, ``figures``,
``table1``, ``paper_claims``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depthlab.studies.xiao.grid import check

__all__ = ["FIGURE_CODE", "KIND", "PLOTS", "check", "claims", "targets"]

KIND = "xiao"
FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)


def targets(name: str, study: dict[str, Any], results: str) -> list[str]:
    figures = [f"{results}/{name}/figures/{fig}.{ext}" for fig in study["figures"]
               for ext in ("pdf", "png")]
    table = [f"{results}/{name}/table1.csv"] if study.get("phase") else []
    return [f"{results}/{name}/cube.nc", *figures, *table, f"{results}/{name}/claims.csv"]


def __getattr__(attr: str) -> Any:
    # Figures and claims import matplotlib/xarray: only the jobs that draw or judge pay it.
    if attr == "PLOTS":
        from depthlab.studies.xiao.figures import PLOTS as value
    elif attr == "claims":
        # (the module is paper_claims: a submodule named claims would shadow the function)
        from depthlab.studies.xiao.paper_claims import claims as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    globals()[attr] = value
    return value
