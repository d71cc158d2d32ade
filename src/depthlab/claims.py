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

The statistics rule (every study, every kind)
---------------------------------------------
A measured effect ``d`` (a difference of two means, a slope, a distance to a threshold) is
*separated* when ``|d| > k x SE(d)``, with ``k`` the setting ``separation`` (default
:data:`SEPARATION_K` = 2) and ``SE(d)`` its standard error:

* over seeds, the standard error of a mean is :func:`seed_se` (sample std with ddof 1 over the
  *converged* members, divided by sqrt(n)); it is NaN with fewer than 2 members, so one seed
  never separates anything;
* for an accuracy (or error rate) over a test set of ``n`` points it is :func:`binomial_se`,
  sqrt(p (1 - p) / n) (p kept at least 1/(2n) away from 0 and 1, so a perfect score still
  has an error bar);
* for a difference of independent estimates the SEs add in quadrature (:func:`combined_se`);
* a trend is the least-squares slope over all converged members with its standard error
  (:func:`linear_trend`); too few distinct x values leave it NaN.

The margins are symmetric (:func:`separated_verdict`): ``holds`` when ``d`` has the paper's
sign and is separated, ``fails`` when it has the opposite sign and is separated, ``not
resolved at this scale`` when ``|d| <= k x SE`` (the effect is inside the noise) or SE is
not finite. A claim about a threshold ("gap >= g", "comparable within t") is the same rule
applied to the distance to the threshold (:func:`separated_threshold_verdict`); a claim that
an exponent is ``a`` rather than an alternative ``b`` is the same rule applied to the
distance from their midpoint (:func:`exponent_verdict`). A "not resolved" row's note states
the numbers that made it so (``|d|``, ``k x SE``, member counts), read from the run.

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
import yaml

from depthlab.provenance import atomic_output, provenance_attrs
from depthlab.training.status import CONVERGED, NOT_RUN

__all__ = [
    "CLAIMS_SCHEMA", "COLUMNS", "EVIDENCE_STATUS", "FAILS", "HOLDS", "NOT_RESOLVED", "ORIGINS",
    "PAPER_CLAIM", "PROJECT_CHECK", "VERDICTS",
    "ClaimResult", "check_claim_keys", "claim_settings", "claims_frame", "describe_excluded",
    "SEPARATION_K", "binomial_se", "combined_se", "evidence", "excluded_members",
    "exponent_verdict", "figure_for", "linear_trend", "mean_se", "read_claims",
    "separated_threshold_verdict", "separated_verdict", "separation_note", "seed_se",
    "sign_verdict", "threshold_verdict", "tolerance_verdict", "verdict_counts",
    "write_claims",
]

HOLDS = "holds"
FAILS = "fails"
NOT_RESOLVED = "not resolved at this scale"
VERDICTS: tuple[str, ...] = (HOLDS, FAILS, NOT_RESOLVED)
# A row is either a paper's claim (its words in ``quote``) or depthlab's own consistency check
# (e.g. a net against its kernel regression where the paper states nothing); the scorecard
# keeps the two apart.
PAPER_CLAIM = "paper"
PROJECT_CHECK = "project"
ORIGINS: tuple[str, ...] = (PAPER_CLAIM, PROJECT_CHECK)

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
    quote: str = ""            # the paper's own words for the claim (short, verbatim)
    origin: str = "paper"      # "paper": the paper states it; "project": depthlab's own check

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"claim {self.claim_id}: origin {self.origin!r} is not one of "
                             f"{list(ORIGINS)}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.claim_id}: verdict {self.verdict!r} is not one of "
                             f"{list(VERDICTS)}")


PROVENANCE_COLUMNS = ("config_hash", "software_versions", "training_software_versions")
_ORDER = ("study", "claim_id", "kind", "verdict", "origin", "paper", "where", "quote",
          "statement", "paper_value",
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


# ------------------------------------------------------------- the statistics rule

# k of the rule "separated when |d| > k x SE(d)" (module docstring); a claim's ``separation``
# setting overrides it. 2 standard errors: about a 5 % two-sided false call per row on
# normal noise, the same distance on the holds side as on the fails side.
SEPARATION_K = 2.0


def _finite_array(values: Any) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


def seed_se(values: Any) -> float:
    """Standard error of the mean over seeds: sample std (ddof 1) of the finite values over
    sqrt(n). NaN with fewer than 2 finite values (one seed has no spread to measure).
    Pass only converged members (:func:`evidence` turns the others into NaN)."""
    v = _finite_array(values)
    if len(v) < 2:
        return math.nan
    return float(v.std(ddof=1) / math.sqrt(len(v)))


def mean_se(values: Any) -> tuple[float, float, int]:
    """(mean, :func:`seed_se`, n) over the finite values; (nan, nan, 0) when there is none."""
    v = _finite_array(values)
    if not len(v):
        return math.nan, math.nan, 0
    return float(v.mean()), seed_se(v), int(len(v))


def binomial_se(acc: float, n: int) -> float:
    """Standard error of an accuracy (or error rate) ``acc`` measured on ``n`` test points,
    sqrt(p (1 - p) / n), with p clipped to [1/(2n), 1 - 1/(2n)] so that 0 or n errors
    still carry an error bar. NaN when ``acc`` is not finite or ``n < 1``."""
    if not _finite(acc) or n is None or int(n) < 1:
        return math.nan
    n = int(n)
    p = min(max(float(acc), 0.5 / n), 1.0 - 0.5 / n)
    return math.sqrt(p * (1.0 - p) / n)


def combined_se(*ses: float) -> float:
    """The SE of a sum or difference of independent estimates: their SEs in quadrature
    (NaN if any is NaN)."""
    if not ses:
        return math.nan
    return float(math.sqrt(sum(float(s) ** 2 for s in ses)))


def linear_trend(x: Any, y: Any) -> tuple[float, float, int]:
    """Least-squares slope of ``y`` on ``x`` over the finite pairs, its standard error and the
    number of pairs: (slope, se, n). Pass every converged member as its own point (seeds
    repeat an x), so the SE reflects the seed scatter. The SE is NaN with fewer than 3 points
    or fewer than 2 distinct x (no residual degrees of freedom); the slope NaN with fewer
    than 2 distinct x."""
    xv = np.asarray(x, dtype=float).ravel()
    yv = np.asarray(y, dtype=float).ravel()
    if xv.shape != yv.shape:
        raise ValueError(f"linear_trend: x has {xv.size} values, y {yv.size}")
    ok = np.isfinite(xv) & np.isfinite(yv)
    xv, yv = xv[ok], yv[ok]
    n = int(len(xv))
    if n < 2 or len(np.unique(xv)) < 2:
        return math.nan, math.nan, n
    xc = xv - xv.mean()
    sxx = float((xc ** 2).sum())
    slope = float((xc * (yv - yv.mean())).sum() / sxx)
    if n < 3:
        return slope, math.nan, n
    resid = yv - yv.mean() - slope * xc
    se = math.sqrt(float((resid ** 2).sum()) / (n - 2) / sxx)
    return slope, se, n


def separated_verdict(diff: float, se: float, expected_sign: int,
                      k: float = SEPARATION_K) -> str:
    """The statistics rule: ``holds`` when ``diff`` has ``expected_sign`` and ``|diff| > k x
    se``, ``fails`` when it has the opposite sign and ``|diff| > k x se``, ``not resolved at
    this scale`` when ``|diff| <= k x se`` or either is not finite (a NaN SE: too few
    members to measure the noise). ``k = 0`` switches the noise margin off: the sign alone
    decides, whatever the SE (a config can make a claim impossible that way)."""
    if k < 0:
        raise ValueError(f"separation k must be >= 0, got {k}")
    if k == 0:  # the noise margin switched off (a config's choice): the sign alone decides
        return sign_verdict(diff, 0.0, expected_sign)
    if not _finite(se):
        if expected_sign not in (-1, 1):
            raise ValueError(f"expected_sign must be -1 or +1, got {expected_sign!r}")
        return NOT_RESOLVED
    return sign_verdict(diff, k * float(se), expected_sign)


def separated_threshold_verdict(value: float, threshold: float, se: float, *, above: bool,
                                k: float = SEPARATION_K) -> str:
    """A one-sided claim with noise: "value >= threshold" (``above``) or "value <=
    threshold" (not ``above``), decided by :func:`separated_verdict` on ``value -
    threshold``: ``holds``/``fails`` only when the value is more than ``k x se`` on one side
    of the threshold."""
    return separated_verdict(float(value) - float(threshold), se, 1 if above else -1, k)


def exponent_verdict(slope: float, se: float, expected: float,
                     alternative: float | Sequence[float], k: float = SEPARATION_K) -> str:
    """A measured exponent ``slope`` (+- ``se``) against the paper's ``expected`` and one or
    more rival exponents (``alternative``): :func:`separated_verdict` on the distance from
    the midpoint between ``expected`` and each rival. ``holds`` when the slope sits on the
    paper's side of every midpoint by more than ``k x se``, ``fails`` when it sits on a
    rival's side of its midpoint by more than ``k x se``, ``not resolved`` otherwise (the
    noise straddles a midpoint)."""
    rivals = [float(a) for a in np.atleast_1d(np.asarray(alternative, dtype=float))]
    if not rivals or any(a == expected for a in rivals):
        raise ValueError("exponent_verdict: give rival exponents different from the expected")
    verdicts = []
    for a in rivals:
        mid = 0.5 * (expected + a)
        verdicts.append(separated_verdict(float(slope) - mid, se,
                                          1 if expected > mid else -1, k))
    if FAILS in verdicts:
        return FAILS
    return HOLDS if all(v == HOLDS for v in verdicts) else NOT_RESOLVED


def separation_note(diff: float, se: float, k: float = SEPARATION_K, what: str = "effect"
                    ) -> str:
    """The numbers behind a verdict of :func:`separated_verdict`, for a row's notes, e.g.
    "effect -0.03 vs 2 x SE 0.01 = 0.02: separated"."""
    if not _finite(se):
        return f"{what} {diff:.4g}: its standard error cannot be measured (too few members)"
    if _finite(diff) and abs(diff) > k * se:
        return f"{what} {diff:.4g} vs {k:g} x SE {se:.4g} = {k * se:.4g}: separated"
    return f"{what} {diff:.4g} vs {k:g} x SE {se:.4g} = {k * se:.4g}: inside the noise"


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


def check_claim_keys(study: Mapping[str, Any], results: Iterable[ClaimResult],
                     kinds: Iterable[str] = ()) -> None:
    """Every key of the study's ``claims:`` block names a kind or an id of its claims, or
    one of ``kinds`` (the plug-in's claim kinds, e.g. those its claims across studies use);
    a key that names none (a typo, a cell the grid does not have) is an error naming it."""
    results = list(results)
    known = {r.kind for r in results} | {r.claim_id for r in results} | set(kinds)
    unknown = sorted(set(study.get("claims") or {}) - known)
    if unknown:
        kinds = sorted({r.kind for r in results})
        raise ValueError(f"claims: {unknown} name(s) no claim of this study; kinds are "
                         f"{kinds}, ids are listed in its claims.csv")


def verdict_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many claims hold, fail and are not resolved (every verdict present, 0 or not)."""
    counts = frame["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


# JSON schema of a study's ``claims:`` block: its one home is workflow/schemas/
# claims.schema.yaml, which every study schema references.
CLAIMS_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / \
    "claims.schema.yaml"
with open(CLAIMS_SCHEMA_PATH) as _fh:
    CLAIMS_SCHEMA: dict[str, Any] = yaml.safe_load(_fh)
