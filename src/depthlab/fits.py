"""Power-law fits shared by the studies' tables (e.g. Geiger et al.'s Table 1)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["exponent_fit"]


def exponent_fit(x: Any, y: Any, fit_range: tuple[float, float] | None = None) -> dict[str, float]:
    """Least-squares power law ``y = c x^slope`` in log-log (base 10) over points with
    ``fit_range[0] <= x <= fit_range[1]`` (all if None) and finite positive x, y.

    ``y`` may have extra leading axes (e.g. seeds x points): ``x`` is broadcast to it and all
    points enter the fit.  Returns ``slope``, ``slope_stderr`` (OLS standard error,
    ``sqrt(RSS / (m - 2) / sum (log x - mean)^2)``; nan for m = 2), ``intercept`` (log10 c),
    ``prefactor`` (c), ``n_points`` (m) and ``r2``.  Table 1 quotes ``a = -slope``.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.broadcast_to(np.asarray(x, dtype=np.float64), y.shape).ravel()
    y = y.ravel()
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if fit_range is not None:
        keep &= (x >= fit_range[0]) & (x <= fit_range[1])
    lx, ly = np.log10(x[keep]), np.log10(y[keep])
    m = len(lx)
    if m < 2 or np.ptp(lx) == 0:
        raise ValueError(f"need at least 2 distinct x in the fit range, got {m} points")
    xm = lx.mean()
    sxx = float(((lx - xm) ** 2).sum())
    slope = float(((lx - xm) * (ly - ly.mean())).sum() / sxx)
    intercept = float(ly.mean() - slope * xm)
    resid = ly - (intercept + slope * lx)
    rss = float((resid**2).sum())
    stderr = math.sqrt(rss / (m - 2) / sxx) if m > 2 else math.nan
    tss = float(((ly - ly.mean()) ** 2).sum())
    return {
        "slope": slope,
        "slope_stderr": stderr,
        "intercept": intercept,
        "prefactor": 10.0**intercept,
        "n_points": m,
        "r2": 1.0 - rss / tss if tss > 0 else 1.0,
    }
