"""Study plug-ins, found by their ``kind``.

A study is a config block (``studies.<name>`` with ``kind: <kind>``) plus these files, and
nothing else; adding one edits no shared module:

==========================================  ==================================================
``src/depthlab/studies/<kind>/__init__.py``  the plug-in module (contract below)
``src/depthlab/studies/<kind>/*.py``         its own code: cube builder, figures, tables, and
                                             ``paper_claims.py`` (its claims; an input of
                                             its claims rule)
``rules/studies/<kind>.smk``                 its rules (included for every kind a config uses)
``workflow/scripts/<kind>/*.py``             the thin scripts of its rules
``workflow/schemas/studies/<kind>.schema.yaml``  its schema: the one home of its defaults
``report/<kind>/<figure>.rst``               figure captions (``report/figure.rst`` otherwise)
``tests/studies/test_<kind>*.py``            its tests
==========================================  ==================================================

The plug-in module exports:

``KIND``
    its kind name (the package name).
``check(key, study, config)``
    cross-field checks of one validated study block (defaults already filled in from its
    schema); raises :class:`depthlab.config.ConfigError` whose message starts with ``key``
    (``studies.<name>``) or a longer key path.
``targets(name, study, results)``
    the files ``snakemake`` with no target builds for this study (cube, figures, tables,
    claims), as paths under ``results``.
``PLOTS``
    ``{plot kind: function(cube, figure settings) -> matplotlib Figure}`` for the generic
    figure rule (a figure block names its ``plot``).
``FIGURE_CODE``
    the modules its figure functions live in: declared inputs of its figure rules, so
    editing them reruns that study's figures and nothing upstream.
``claims(cube, study)``
    the paper's claims evaluated on the study cube: a list of
    :class:`depthlab.claims.ClaimResult` (defined in ``paper_claims.py``; a submodule named
    ``claims`` would shadow the function).

Its rules file defines the study's jobs and its cube rule; figures and claims come from the
generic rules in ``rules/figures.smk`` and ``rules/claims.smk``, and the scorecard of every
study from ``rules/claims.smk`` too.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["KINDS", "lazy_plugin_attributes", "plugin", "rules_path", "schema_path",
           "study_targets"]

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[2]

# Every sub-package is a kind; discovered, never listed, so a new study edits nothing here.
KINDS: tuple[str, ...] = tuple(sorted(
    p.name for p in _HERE.iterdir() if p.is_dir() and (p / "__init__.py").exists()
))


def plugin(kind: str, key: str = "kind") -> ModuleType:
    """The plug-in module of ``kind``; an unknown kind is a ``ConfigError`` naming ``key``."""
    from depthlab.config import ConfigError

    if kind not in KINDS:
        raise ConfigError(f"{key}: unknown study kind {kind!r}; known kinds: {list(KINDS)}")
    return importlib.import_module(f"{__name__}.{kind}")


def schema_path(kind: str) -> Path:
    return _REPO / "workflow" / "schemas" / "studies" / f"{kind}.schema.yaml"


def rules_path(kind: str) -> Path:
    return _REPO / "rules" / "studies" / f"{kind}.smk"


def study_targets(name: str, study: dict[str, Any], results: str,
                  extra: Iterable[str] = ()) -> list[str]:
    """The usual ``targets`` of a plug-in: the cube, every figure (PDF and PNG), the study's
    own tables (``extra``, file names under its folder) and its claims."""
    figures = [f"{results}/{name}/figures/{fig}.{ext}" for fig in study["figures"]
               for ext in ("pdf", "png")]
    tables = [f"{results}/{name}/{table}" for table in extra]
    return [f"{results}/{name}/cube.nc", *figures, *tables, f"{results}/{name}/claims.csv"]


def lazy_plugin_attributes(package: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a plug-in package: ``PLOTS`` from its ``figures`` module
    and ``claims`` from its ``paper_claims`` module, imported on first use (they import
    matplotlib and xarray, which only the jobs that draw or judge should pay for: every
    cluster job's parse of the Snakefile imports every plug-in used). The module holding the
    claims is not called ``claims``: a submodule of that name would shadow the function."""
    table = {"PLOTS": ("figures", "PLOTS"), "claims": ("paper_claims", "claims")}

    def __getattr__(attr: str) -> Any:
        if attr not in table:
            raise AttributeError(f"module {package!r} has no attribute {attr!r}")
        module, name = table[attr]
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], attr, value)
        return value

    return __getattr__
