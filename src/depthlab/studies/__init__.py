"""Study plug-ins, found by their ``kind``.

A study is a config block (``studies.<name>`` with ``kind: <kind>``) plus these files, and
nothing else; adding one edits no shared module:

==========================================  ==================================================
``src/depthlab/studies/<kind>/__init__.py``  the plug-in module (contract below)
``src/depthlab/studies/<kind>/*.py``         its own code: cube builder, figures, tables, and
                                             ``paper_claims.py`` (its claims; an input of
                                             its claims rule)
``rules/studies/<kind>.smk``                 its rules (included for every kind a config uses)
``src/depthlab/studies/<kind>/scripts/``     the thin scripts of its rules
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

Optional:

``CLAIMS_ACROSS = True`` with ``paper_claims.claims_across(cubes, studies)``
    claims no single study can check (one paper statement over several studies of the
    kind, e.g. a critical depth that grows with the number of classes): ``{name: cube}``
    and ``{name: study block}`` of every study of the kind in the config, a list of
    ClaimResult. The generic ``claims_across`` rule (rules/claims.smk) writes them to
    ``claims_across/<kind>.csv`` when the config has two or more studies of the kind; the
    scorecard lists them with the studies' own rows.
``dataset_draws(study)``
    the (dataset, seed) pairs whose own draw of the dataset a net of the study trains on
    (:func:`depthlab.data.refs.seed_draw_name`); :func:`add_dataset_draws` adds their
    ``datasets`` entries once the seeds are final.
``paper_claims.KINDS``
    every claim kind the plug-in emits: the keys its studies' ``claims:`` blocks may use.
``probe.RULES`` and ``probe.PROBE`` (``studies/<kind>/probe.py``)
    how ``make probe-paper`` plans and measures its jobs at paper scale: ``RULES`` maps
    each of its rules to a :class:`depthlab.probe.shapes.RuleProbe` (the job's shape,
    work units, data size, checkpointing), ``PROBE`` measures its own trainer where no
    shared probe kind does (:mod:`depthlab.probe.kinds` finds both by name).

:func:`plugin` checks these attributes and their types when the config is loaded (one
:class:`depthlab.config.ConfigError` naming the kind, the module file and every missing or
wrong attribute).

Its rules file defines the study's jobs and its cube rule; figures and claims come from the
generic rules in ``rules/figures.smk`` and ``rules/claims.smk``, and the scorecard of every
study from ``rules/claims.smk`` too. The names a rules file may use (``RESULTS``,
``STUDIES``, ``study_constraint``, ``job_threads``, ``job_resources``, ...) are the
rules-file API, documented in the header of ``rules/common.smk``; every rule is named
``<kind>_...`` and constrains ``{study}`` to its kind. Its schema references the shared
``claims:`` and ``resources:`` schemas (``workflow/schemas/claims.schema.yaml``,
``resources.schema.yaml``); ``figures`` is optional.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from depthlab.data.refs import add_seed_draws
from depthlab.errors import ConfigError

__all__ = ["KINDS", "PRESENTATION_KEYS", "REQUIRED_ATTRIBUTES", "add_dataset_draws",
           "check_figure_rule_names",
           "check_plugin", "config_slice", "figure_rule_name", "lazy_checks",
           "lazy_plugin_attributes", "plugin", "rules_path", "schema_path", "study_targets"]

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[2]

# Every sub-package is a kind; discovered, never listed, so a new study edits nothing here.
KINDS: tuple[str, ...] = tuple(sorted(
    p.name for p in _HERE.iterdir() if p.is_dir() and (p / "__init__.py").exists()
))


# The plug-in contract (module docstring): each attribute a plug-in module must export and
# what it must be. `PLOTS` and `claims` may be lazy (lazy_plugin_attributes): checking them
# imports the figure and claims modules once, at load, so a broken or missing one fails
# before any job rather than at the first figure after all training.
REQUIRED_ATTRIBUTES: dict[str, str] = {
    "KIND": "a str, the kind name (its package name)",
    "check": "a callable check(key, study, config)",
    "targets": "a callable targets(name, study, results)",
    "PLOTS": "a mapping {plot kind: callable(cube, figure settings)}",
    "FIGURE_CODE": "a list or tuple of the paths of its figure modules",
    "claims": "a callable claims(cube, study)",
}


# Whether checking a lazy attribute may import it. A Slurm job re-parses the Snakefile and
# so re-checks every plug-in; the main process has checked them in full already, so a job's
# parse (rules/common.smk calls lazy_checks(False) there) skips the matplotlib / xarray
# imports the lazy attributes exist to spare it.
_IMPORT_LAZY = True


def lazy_checks(enabled: bool) -> None:
    """Whether :func:`plugin` imports lazy attributes (``PLOTS``, ``claims``) to check them."""
    global _IMPORT_LAZY
    _IMPORT_LAZY = bool(enabled)


def _contract_problem(module: ModuleType, kind: str, attr: str) -> str | None:
    """What is wrong with ``attr`` of ``module`` (None when it keeps the contract)."""
    if (not _IMPORT_LAZY and attr in ("PLOTS", "claims") and attr not in vars(module)
            and "__getattr__" in vars(module)):
        return None  # lazy, checked by the main process
    try:
        value = getattr(module, attr)
    except AttributeError:
        return "missing"
    except Exception as err:  # a lazy attribute whose module fails to import
        return f"fails to load: {type(err).__name__}: {err}"
    if attr == "KIND":
        if value != kind:
            return f"is {value!r}, not its package name {kind!r}"
    elif attr in ("check", "targets", "claims"):
        if not callable(value):
            return f"is a {type(value).__name__}, not callable"
    elif attr == "PLOTS":
        if not isinstance(value, Mapping):
            return f"is a {type(value).__name__}, not a mapping"
        bad = sorted(str(k) for k, v in value.items() if not callable(v))
        if bad:
            return f"values of {bad} are not callable"
    elif attr == "FIGURE_CODE":
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            return f"is a {type(value).__name__}, not a list or tuple of paths"
        if not all(isinstance(p, str | Path) for p in value):
            return "holds entries that are not paths"
    return None


def check_plugin(module: ModuleType, kind: str) -> None:
    """Refuse a plug-in module that breaks the contract (:data:`REQUIRED_ATTRIBUTES`): one
    :class:`depthlab.config.ConfigError` naming the kind, the module file and every missing
    or wrong attribute."""
    problems = [f"{attr} {problem} (expected {REQUIRED_ATTRIBUTES[attr]})"
                for attr in REQUIRED_ATTRIBUTES
                if (problem := _contract_problem(module, kind, attr)) is not None]
    if problems:
        raise ConfigError(
            f"study kind {kind!r}: its plug-in module {module.__file__} breaks the plug-in "
            f"contract (src/depthlab/studies/__init__.py): " + "; ".join(problems))


_CHECKED: set[str] = set()


def plugin(kind: str, key: str = "kind") -> ModuleType:
    """The plug-in module of ``kind``, checked against the contract on first use; an unknown
    kind is a ``ConfigError`` naming ``key``."""
    if kind not in KINDS:
        raise ConfigError(f"{key}: unknown study kind {kind!r}; known kinds: {list(KINDS)}")
    module = importlib.import_module(f"{__name__}.{kind}")
    if kind not in _CHECKED:
        check_plugin(module, kind)
        _CHECKED.add(kind)
    return module


def add_dataset_draws(config: dict[str, Any]) -> list[str]:
    """Add to ``config["datasets"]`` the seed draws the studies train on (each plug-in's
    optional ``dataset_draws``); returns the names added. Run after ``seed_offset``, so the
    draws follow the shifted seeds of both the datasets and the nets."""
    draws = []
    for study in config["studies"].values():
        hook = getattr(plugin(study["kind"]), "dataset_draws", None)
        if hook is not None:
            draws += hook(study)
    return add_seed_draws(config["datasets"], draws)


# Keys of a study block that no job computing results reads: what the figures draw, what the
# claims judge, prose. A cube's params drop them, so a title edit reruns one figure.
PRESENTATION_KEYS: tuple[str, ...] = ("description", "figures", "claims")


def config_slice(block: Mapping[str, Any], *paths: str, drop: Iterable[str] = ()
                 ) -> dict[str, Any]:
    """The slice of a config block one job reads: what a rule passes as its params.

    Snakemake's ``--rerun-triggers params`` reruns a job when the repr of its params
    changes, so a rule that passes a whole study block reruns on an edit of any key of it
    (a figure title retrained Lee's nets). The rule names instead what the job reads:

    * ``paths``: dotted key paths into nested mappings (``"deep_narrow"``,
      ``"training.stability_subset"``); the slice keeps the nesting, e.g.
      ``{"training": {"stability_subset": 1500}}``. A path absent from ``block`` is left
      out (an optional block), so the job sees what the full block would have shown it.
    * no ``paths``: every top-level key but those in ``drop`` (e.g. a cube reads all its
      study but :data:`PRESENTATION_KEYS`).

    The values are deep copies: a job cannot edit the config another job reads.
    """
    import copy

    drop = set(drop)
    if not paths:
        return {k: copy.deepcopy(v) for k, v in block.items() if k not in drop}
    out: dict[str, Any] = {}
    for path in paths:
        keys = path.split(".")
        node: Any = block
        for key in keys:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            target = out
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = copy.deepcopy(node)
    return out


def figure_rule_name(kind: str, figure: str) -> str:
    """The rule drawing ``figure`` of a ``kind`` study (rules/figures.smk)."""
    return f"{kind}_{figure}"


def check_figure_rule_names(studies: Mapping[str, Mapping[str, Any]],
                            figures: Mapping[str, Mapping[str, Any]],
                            taken: Iterable[str]) -> None:
    """Refuse a figure whose rule name (:func:`figure_rule_name`) is already a rule of the
    workflow (``taken``, the rules defined before the figure rules): e.g. a Lee figure named
    ``table41`` or ``cube`` would be rule ``lee_table41`` / ``lee_cube``. Raises
    :class:`depthlab.config.ConfigError` naming ``studies.<name>.figures.<figure>``."""
    taken = set(taken)
    for name, study in studies.items():
        for fig in figures.get(name) or {}:
            rule = figure_rule_name(study["kind"], fig)
            if rule in taken:
                raise ConfigError(
                    f"studies.{name}.figures.{fig}: a figure's rule is named "
                    f"<kind>_<figure>, and {rule!r} is already the rule of another "
                    f"{study['kind']} job; rename the figure")


def schema_path(kind: str) -> Path:
    return _REPO / "workflow" / "schemas" / "studies" / f"{kind}.schema.yaml"


def rules_path(kind: str) -> Path:
    return _REPO / "rules" / "studies" / f"{kind}.smk"


def study_targets(name: str, study: dict[str, Any], results: str,
                  extra: Iterable[str] = ()) -> list[str]:
    """The usual ``targets`` of a plug-in: the cube, every figure (PDF and PNG), the study's
    own tables (``extra``, file names under its folder) and its claims."""
    figures = [f"{results}/{name}/figures/{fig}.{ext}" for fig in study.get("figures") or {}
               for ext in ("pdf", "png")]
    tables = [f"{results}/{name}/{table}" for table in extra]
    return [f"{results}/{name}/cube.nc", *figures, *tables, f"{results}/{name}/claims.csv"]


def lazy_plugin_attributes(package: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a plug-in package: ``PLOTS`` from its ``figures`` module
    and ``claims`` from its ``paper_claims`` module, imported on first use (they import
    matplotlib and xarray, which only the jobs that draw or judge should pay for: every
    cluster job's parse of the Snakefile imports every plug-in used). The module holding the
    claims is not called ``claims``: a submodule of that name would shadow the function."""
    table = {"PLOTS": ("figures", "PLOTS"), "claims": ("paper_claims", "claims"),
             # optional: claims over several studies of the kind (CLAIMS_ACROSS = True) and
             # every claim kind the plug-in emits (its config `claims:` keys)
             "claims_across": ("paper_claims", "claims_across"),
             "CLAIM_KINDS": ("paper_claims", "KINDS")}

    def __getattr__(attr: str) -> Any:
        if attr not in table:
            raise AttributeError(f"module {package!r} has no attribute {attr!r}")
        module, name = table[attr]
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], attr, value)
        return value

    return __getattr__
