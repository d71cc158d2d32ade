"""The one claims mechanism of every study: a paper's claim, checked on a study cube.

A study plug-in's ``claims(cube, study)`` returns a list of :class:`ClaimResult`, one per
checked claim (one paper statement at one cell of the grid), each with the measured value,
its uncertainty, the criterion that counts as holding and the verdict, one of:

``holds``
    the measurement meets the criterion (the paper's sign with separated error bars, or the
    paper's number within the tolerance, ...);
``fails``
    it resolves the question and the answer is not the paper's;
``not resolved at this scale``
    the run cannot tell: error bars overlap, too few usable members (diverged or capped
    members never count as evidence), too few fit points, a grid that does not reach the
    regime the claim is about.

A claim never disappears because it did not hold: a row is written for every claim the
study's grid can address, whatever its verdict.

Criteria are settings, not constants: a study's config may carry a ``claims:`` block whose
keys are a claim *kind* (every claim of that kind, e.g. ``table1``) or a claim *id* (that one
claim, e.g. ``table1_kernel_L5``), each a mapping of settings that override the kind's
defaults (id over kind over defaults)::

    claims:
      depth_effect: {separation: 2.0}
      table1_kernel_L5: {tolerance: 0.0}     # a claim made impossible: it shows as `fails`

:func:`write_claims` writes the rows as ``claims.csv`` atomically, stamped with provenance
columns (config hash, software versions) as every depthlab output is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from depthlab.provenance import atomic_output, provenance_attrs
from depthlab.training.status import CONVERGED, NOT_RUN

__all__ = [
    "CLAIMS_SCHEMA", "COLUMNS", "EVIDENCE_STATUS", "FAILS", "HOLDS", "NOT_RESOLVED", "VERDICTS",
    "ClaimResult", "check_claim_keys", "claim_settings", "claims_frame", "describe_excluded",
    "evidence", "excluded_members", "figure_for", "read_claims", "sign_verdict",
    "threshold_verdict", "tolerance_verdict", "verdict_counts", "write_claims",
]

HOLDS = "holds"
FAILS = "fails"
NOT_RESOLVED = "not resolved at this scale"
VERDICTS: tuple[str, ...] = (HOLDS, FAILS, NOT_RESOLVED)

# The member status that counts as evidence. Runs that diverged, hit the epoch/step cap or
# were never run (sparse grids) are excluded from every measured value.
EVIDENCE_STATUS = CONVERGED


@dataclass
class ClaimResult:
    """One checked claim: what the paper says, what this run measured, and the verdict."""

    claim_id: str              # unique within the study; config overrides use it
    kind: str                  # the family of claims it belongs to (config overrides too)
    paper: str                 # short citation, e.g. "Mori & Ueda (2020)"
    where: str                 # section / figure / table of the paper
    statement: str             # the claim, with the cell it is checked at
    measured: float            # the value this run measured (nan: could not be measured)
    uncertainty: float         # its uncertainty (see uncertainty_kind)
    criterion: str             # what counts as holding, with the numbers of the settings
    verdict: str               # one of VERDICTS
    paper_value: float = math.nan   # the paper's number, where it states one
    uncertainty_kind: str = "std over seeds"
    figure: str = ""           # the study's figure that shows it
    n_members: int = 0         # members (runs) whose values entered the measurement
    n_excluded: int = 0        # members of the same cells left out (diverged, capped)
    notes: str = ""            # why not resolved / what was excluded
    data_source: str = ""      # where the inputs came from (stand-in datasets say so)
    study: str = ""            # filled in by write_claims when empty
    scale: str = ""            # laptop / paper / ...; filled in by write_claims when empty

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.claim_id}: verdict {self.verdict!r} is not one of "
                             f"{list(VERDICTS)}")


PROVENANCE_COLUMNS = ("config_hash", "software_versions", "training_software_versions")
_ORDER = ("study", "claim_id", "kind", "verdict", "paper", "where", "statement", "paper_value",
          "measured", "uncertainty", "uncertainty_kind", "criterion", "figure", "n_members",
          "n_excluded", "notes", "data_source", "scale")
assert set(_ORDER) == {f.name for f in fields(ClaimResult)}
COLUMNS: tuple[str, ...] = (*_ORDER, *PROVENANCE_COLUMNS)


# --------------------------------------------------------------------------- settings

def claim_settings(study: Mapping[str, Any], kind: str, claim_id: str,
                   defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of one claim: ``defaults`` < ``study["claims"][kind]`` <
    ``study["claims"][claim_id]``. An unknown setting name is an error naming the key, so a
    typo in a config cannot silently leave the default in force."""
    block = study.get("claims") or {}
    merged = dict(defaults)
    for key in (kind, claim_id):
        override = block.get(key) or {}
        unknown = sorted(set(override) - set(defaults))
        if unknown:
            raise ValueError(f"claims.{key}: unknown setting(s) {unknown}; "
                             f"{kind} claims take {sorted(defaults)}")
        merged.update(override)
    return merged


# --------------------------------------------------------------------------- members

def evidence(values: xr.DataArray, status: xr.DataArray) -> xr.DataArray:
    """``values`` where the member converged, NaN elsewhere: diverged, capped and not-run
    members never enter a measured value."""
    return values.where(status == EVIDENCE_STATUS)


def excluded_members(status: xr.DataArray) -> dict[str, int]:
    """Members that ran but do not count as evidence, by status (e.g. {"diverged": 1})."""
    values = np.asarray(status.values).astype(str).ravel()
    out: dict[str, int] = {}
    for s in values:
        if s not in (EVIDENCE_STATUS, NOT_RUN, ""):
            out[s] = out.get(s, 0) + 1
    return dict(sorted(out.items()))


def describe_excluded(excluded: Mapping[str, int]) -> str:
    if not excluded:
        return ""
    parts = ", ".join(f"{n} {s}" for s, n in excluded.items())
    return f"excluded (not converged, never evidence): {parts}"


# --------------------------------------------------------------------------- verdicts

def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(float(v)) for v in values)


def sign_verdict(value: float, margin: float, expected_sign: int) -> str:
    """The paper's sign with separated error bars.

    ``holds`` when ``value`` has ``expected_sign`` and ``|value| > margin``; ``fails`` when
    it has the opposite sign and ``|value| > margin``; ``not resolved at this scale`` when
    ``|value| <= margin`` (error bars overlap) or the value is not finite. ``margin`` is the
    half-width that separates the two error bars, e.g. the sum of the two seed stds.
    """
    if expected_sign not in (-1, 1):
        raise ValueError(f"expected_sign must be -1 or +1, got {expected_sign!r}")
    if not _finite(value, margin) or abs(value) <= margin:
        return NOT_RESOLVED
    return HOLDS if np.sign(value) == expected_sign else FAILS


def tolerance_verdict(value: float, target: float, tolerance: float) -> str:
    """The paper's number within a tolerance: ``holds`` when ``|value - target| <=
    tolerance``, ``fails`` otherwise; ``not resolved at this scale`` when the value could
    not be measured (NaN). A tolerance of 0 asks for exact equality."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if not _finite(value, target):
        return NOT_RESOLVED
    return HOLDS if abs(value - target) <= tolerance else FAILS


def threshold_verdict(value: float, threshold: float, *, above: bool) -> str:
    """A one-sided criterion: ``holds`` when ``value >= threshold`` (``above``) or ``value <
    threshold`` (not ``above``), ``fails`` otherwise, ``not resolved`` when NaN."""
    if not _finite(value, threshold):
        return NOT_RESOLVED
    return HOLDS if (value >= threshold) == above else FAILS


def figure_for(study: Mapping[str, Any], plots: Sequence[str] | None, **match: Any) -> str:
    """The first of the study's figures (in config order) drawn by one of ``plots`` (None:
    any) whose settings agree with ``match`` (a setting the figure does not name agrees)."""
    for name, fig in (study.get("figures") or {}).items():
        if plots is not None and fig.get("plot") not in plots:
            continue
        if all(key not in fig or _same(fig[key], value) for key, value in match.items()):
            return name
    return ""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)):
        return b in a
    return a == b or str(a) == str(b)


# --------------------------------------------------------------------------- output

def claims_frame(results: Iterable[ClaimResult], *, study: str = "", scale: str = "",
                 data_source: str = "", provenance: Mapping[str, str] | None = None
                 ) -> pd.DataFrame:
    """The rows as a DataFrame with :data:`COLUMNS`; empty study/scale/data_source fields
    take the given defaults; ``provenance`` fills the provenance columns of every row."""
    rows = []
    seen: set[str] = set()
    for r in results:
        row = asdict(r)
        if row["claim_id"] in seen:
            raise ValueError(f"claim id {row['claim_id']!r} appears twice")
        seen.add(row["claim_id"])
        row["study"] = row["study"] or study
        row["scale"] = row["scale"] or scale
        row["data_source"] = row["data_source"] or data_source
        for key in PROVENANCE_COLUMNS:
            row[key] = (provenance or {}).get(key, "")
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_claims(results: Iterable[ClaimResult], path: str | Path, *, study: str,
                 scale: str, config_slice: Any, cube_attrs: Mapping[str, Any] | None = None,
                 data_source: str = "") -> pd.DataFrame:
    """Write ``claims.csv`` atomically (temporary file, then rename) and return its frame.

    Every row carries the hash of ``config_slice`` (the study block and the run-wide
    settings that made the claims), the software versions of this evaluation and the
    training software versions the cube records."""
    attrs = provenance_attrs(config_slice, study=study, scale=scale)
    cube_attrs = cube_attrs or {}
    provenance = {
        "config_hash": attrs["config_hash"],
        "software_versions": attrs["software_versions"],
        "training_software_versions": str(cube_attrs.get("training_software_versions", "")),
    }
    source = data_source or str(cube_attrs.get("data_source")
                                or cube_attrs.get("data_sources") or "")
    frame = claims_frame(results, study=study, scale=scale, data_source=source,
                         provenance=provenance)
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def read_claims(path: str | Path) -> pd.DataFrame:
    """A claims.csv back as a DataFrame (empty text fields as "", not NaN)."""
    frame = pd.read_csv(path, keep_default_na=False, na_values={
        c: ["", "nan", "NaN"] for c in ("paper_value", "measured", "uncertainty")})
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"{path}: not a claims table (missing columns {missing})")
    bad = sorted(set(frame["verdict"]) - set(VERDICTS))
    if bad:
        raise ValueError(f"{path}: unknown verdict(s) {bad}")
    return frame


def check_claim_keys(study: Mapping[str, Any], results: Iterable[ClaimResult]) -> None:
    """Every key of the study's ``claims:`` block names a kind or an id of its claims; a key
    that names neither (a typo, a cell the grid does not have) is an error naming it."""
    results = list(results)
    known = {r.kind for r in results} | {r.claim_id for r in results}
    unknown = sorted(set(study.get("claims") or {}) - known)
    if unknown:
        kinds = sorted({r.kind for r in results})
        raise ValueError(f"claims: {unknown} name(s) no claim of this study; kinds are "
                         f"{kinds}, ids are listed in its claims.csv")


def verdict_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many claims hold, fail and are not resolved (every verdict present, 0 or not)."""
    counts = frame["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


# JSON schema of a study's ``claims:`` block (the study schemas embed it).
CLAIMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "overrides of the claim criteria: keys are a claim kind (every claim of "
                   "that kind) or a claim id (one claim); id settings win over kind settings",
    "additionalProperties": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tolerance": {"type": "number", "minimum": 0},
            "separation": {"type": "number", "minimum": 0},
            "min_members": {"type": "integer", "minimum": 1},
            "min_points": {"type": "integer", "minimum": 2},
            "min_gap": {"type": "number"},
            "min_sqrt_h_alpha": {"type": "number", "exclusiveMinimum": 0},
            "max_sqrt_h_alpha": {"type": "number", "exclusiveMinimum": 0},
        },
    },
}
