"""Table 1 of Xiao et al. from the cube: the large-depth NTK quantities of FC / CNN-F / CNN-P
in each phase next to their predictions.

* critical: kappa at the largest depth against (m+2)/2 (FC, CNN-F) or (m d + 2)/2 (CNN-P,
  d = k^2 pixels); lambda_max / (l q*) against (m d + 2)/(3 d) and lambda_bulk / (l q*)
  against 2/(3 d) (d = 1 for FC and CNN-F);
* ordered: the growth rate of kappa, fitted as log(kappa l) = a + r l over the depths where
  kappa < 1e12 (beyond it float64 rounding sets the small eigenvalues), against r = -ln chi_1
  (kappa ~ chi_1^-l / l); and lambda_max / m against p* = q*/(1 - chi_1) (FC, CNN-F);
* chaotic: kappa - 1 at the largest depth against 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from depthlab.provenance import atomic_output

KAPPA_CAP = 1e12


def ordered_rate(depth: np.ndarray, kappa: np.ndarray, start: int = 10) -> tuple[float, int]:
    """Fitted r of log(kappa l) = a + r l over depths >= start with kappa < KAPPA_CAP."""
    ok = np.isfinite(kappa) & (kappa < KAPPA_CAP) & (depth >= start)
    if ok.sum() < 3:
        return math.nan, int(ok.sum())
    r = np.polyfit(depth[ok], np.log(kappa[ok] * depth[ok]), 1)[0]
    return float(r), int(ok.sum())


def table1(cube: xr.Dataset) -> pd.DataFrame:
    rows = []
    for size in cube["size"].values:
        m = int(cube.size_m.sel(size=size))
        k = int(cube.size_k.sel(size=size))
        for arch in cube["arch"].values:
            d = k * k if arch == "cnn_p" else 1
            for w in cube.w_phase.values:
                sel = dict(size=size, arch=arch, w_phase=w)
                kap = cube.phase_kappa.sel(**sel)
                valid = kap.dropna("depth_phase")
                if valid.sizes["depth_phase"] == 0:
                    continue
                depth = valid.depth_phase.values
                lmax = cube.phase_lambda_max.sel(**sel).sel(depth_phase=depth).values
                lbulk = cube.phase_lambda_bulk.sel(**sel).sel(depth_phase=depth).values
                phase = str(cube.w_phase_phase.sel(w_phase=w).values)
                q = float(cube.w_phase_q_star.sel(w_phase=w))
                chi = float(cube.w_phase_chi_1.sel(w_phase=w))
                L = int(depth[-1])
                base = {"arch": arch, "m": m, "k": k, "d": d, "phase": phase,
                        "w_var": float(w), "depth": L}
                if phase == "critical":
                    rows.append({**base, "quantity": "kappa", "measured": float(valid[-1]),
                                 "prediction": (m * d + 2) / 2})
                    rows.append({**base, "quantity": "lambda_max/(l q*)",
                                 "measured": lmax[-1] / (L * q),
                                 "prediction": (m * d + 2) / (3 * d)})
                    rows.append({**base, "quantity": "lambda_bulk/(l q*)",
                                 "measured": lbulk[-1] / (L * q), "prediction": 2 / (3 * d)})
                elif phase == "ordered":
                    r, n = ordered_rate(depth.astype(float), valid.values)
                    rows.append({**base, "quantity": "d log(kappa l)/dl",
                                 "measured": r, "prediction": -math.log(chi),
                                 "note": f"fit over {n} depths with kappa < {KAPPA_CAP:g}"})
                    if arch != "cnn_p":
                        p_star = q / (1 - chi)
                        rows.append({**base, "quantity": "lambda_max/m",
                                     "measured": lmax[-1] / m, "prediction": p_star})
                else:
                    rows.append({**base, "quantity": "kappa - 1",
                                 "measured": float(valid[-1]) - 1.0, "prediction": 0.0})
    frame = pd.DataFrame(rows)
    if "note" not in frame:
        frame["note"] = ""
    frame["note"] = frame["note"].fillna("")
    frame["rel_dev"] = np.where(frame.prediction != 0,
                                (frame.measured - frame.prediction) / frame.prediction,
                                frame.measured)
    return frame


def write_table1(cube: xr.Dataset, path: str) -> pd.DataFrame:
    frame = table1(cube)
    frame["data_source"] = "Gaussian images (synthetic)"
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False)
    return frame
