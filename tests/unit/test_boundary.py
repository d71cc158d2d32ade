"""The shared/study boundary (issue #26): shared code under src/depthlab never imports a study
package, defines nothing named after a study and holds no string naming a study's rule
(``"<kind>_..."``), so adding or removing a study edits no shared module. Checked on the
source text (ast), not by importing it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "depthlab"
STUDIES = SRC / "studies"
# every study package, discovered as depthlab.studies.KINDS does (a new kind is covered too)
KINDS = sorted(p.name for p in STUDIES.iterdir()
               if p.is_dir() and (p / "__init__.py").exists())


def _tokens(name: str) -> str:
    """``GeigerJob`` / ``geiger_job`` / ``GEIGER_JOB`` -> ``_geiger_job_``: study names match
    as whole words only (``lee`` is not found in ``sleep``)."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return f"_{snake.strip('_')}_"


def named_after(name: str) -> str | None:
    """The study kind ``name`` is named after, or None."""
    tokens = _tokens(name)
    return next((k for k in KINDS if f"_{k}_" in tokens), None)


def _study_module(module: str) -> str | None:
    """The kind of a dotted module name inside a study package, or None."""
    m = re.match(r"depthlab\.studies\.(\w+)", module)
    return m.group(1) if m and m.group(1) in KINDS else None


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def violations(source: str, module_path: str = "<string>") -> list[str]:
    """What in one shared module's source crosses the boundary, as readable lines."""
    tree = ast.parse(source)
    out = []
    for node in ast.walk(tree):  # function-level imports count: they are imports all the same
        if isinstance(node, ast.Import):
            out += [f"{module_path}:{node.lineno}: imports {a.name}" for a in node.names
                    if _study_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _study_module(node.module):
                out.append(f"{module_path}:{node.lineno}: imports from {node.module}")
            elif node.module == "depthlab.studies":
                out += [f"{module_path}:{node.lineno}: imports depthlab.studies.{a.name}"
                        for a in node.names if a.name in KINDS]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # importlib.import_module("depthlab.studies.<kind>...") is an import too
            if _study_module(node.value.strip()):
                out.append(f"{module_path}:{node.lineno}: names module {node.value.strip()!r}")
            # a study's rule or job name ("xiao_train", "mori_ueda_" + ...): shared code that
            # branches on it knows the study (its plan belongs in the study's probe hook)
            elif k := max((k for k in KINDS if node.value.startswith(f"{k}_")), key=len,
                          default=None):
                out.append(f"{module_path}:{node.lineno}: string {_short(node.value)!r} names "
                           f"a rule of study {k!r}")
            # `kind == "xiao"`: shared code with a branch per study (it belongs in a hook)
            elif node.value in KINDS:
                out.append(f"{module_path}:{node.lineno}: string {node.value!r} names study "
                           f"kind {node.value!r}")
    for node in tree.body:  # top-level definitions
        names: list[str] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        out += [f"{module_path}:{node.lineno}: defines {n!r}, named after study {k!r}"
                for n in names if (k := named_after(n))]
    return out


SHARED_SCRIPTS = SRC.parents[1] / "workflow" / "scripts"


def shared_modules() -> list[Path]:
    """Every module of src/depthlab except those inside a study package (the registry
    depthlab/studies/__init__.py is shared: it is included), and the shared rules' scripts
    in workflow/scripts (a study's scripts live in its package)."""
    return sorted([p for p in SRC.rglob("*.py")
                   if not (p.parent != STUDIES and STUDIES in p.parents)]
                  + list(SHARED_SCRIPTS.rglob("*.py")))


def test_study_packages_are_found():
    assert {"geiger", "lee", "mori_ueda", "nichani", "xiao"} <= set(KINDS)
    mods = {p.relative_to(SRC).as_posix() for p in shared_modules() if SRC in p.parents}
    assert "studies/__init__.py" in mods and "config.py" in mods
    assert not any(m.startswith(tuple(f"studies/{k}/" for k in KINDS)) for m in mods)
    scripts = [p for p in shared_modules() if SHARED_SCRIPTS in p.parents]
    assert any(p.name == "plot_figure.py" for p in scripts)  # the shared scripts are scanned


def test_shared_code_imports_no_study_and_names_none():
    found = []
    for path in shared_modules():
        base = SRC if SRC in path.parents else SHARED_SCRIPTS
        rel = path.relative_to(base.parent).as_posix()
        # a shared module named after a study (models/nichani.py) is single-study code
        found += [f"{rel}: module named after study {k!r}"
                  for part in path.relative_to(base).with_suffix("").parts
                  if (k := named_after(part))]
        found += violations(path.read_text(encoding="utf-8"), rel)
    assert not found, "shared code crosses the study boundary:\n" + "\n".join(found)


@pytest.mark.parametrize("source, expected", [
    # what the tree held before the moves of issue #26: each one is caught
    ("def mori_ueda_spec(beta=0.1):\n    pass\n", "named after study 'mori_ueda'"),
    ("def f():\n    from depthlab.studies.geiger.runs import train_lazy_feature\n",
     "imports from depthlab.studies.geiger.runs"),
    ("import depthlab.studies.xiao.train\n", "imports depthlab.studies.xiao.train"),
    ("from depthlab.studies import nichani\n", "imports depthlab.studies.nichani"),
    ("import importlib\nm = importlib.import_module('depthlab.studies.lee.cnn')\n",
     "names module 'depthlab.studies.lee.cnn'"),
    ("class GeigerJob:\n    pass\n", "named after study 'geiger'"),
    ("LEE_DEFAULTS: dict = {}\n", "named after study 'lee'"),
    # the shared probe branching on study rules (depthlab/probe/shapes.py, plan.py before
    # the per-rule plans moved to studies/<kind>/probe.py)
    ("def f(job):\n    if job.rule == 'xiao_train':\n        return 1\n",
     "string 'xiao_train' names a rule of study 'xiao'"),
    ("PROBED_RULES = ('gram', 'nichani_resnet')\n",
     "string 'nichani_resnet' names a rule of study 'nichani'"),
    ("def f(r):\n    return r in ('mori_ueda_train', 'kernel_regression')\n",
     "names a rule of study 'mori_ueda'"),
    ("rule = 'geiger_' + suffix\n", "string 'geiger_' names a rule of study 'geiger'"),
])
def test_the_check_catches(source, expected):
    found = violations(source)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize("source", [
    # the registry, plug-ins found by a computed name, and words that merely contain a kind
    "from depthlab.studies import KINDS, plugin\n",
    "import importlib\nm = importlib.import_module(f'depthlab.studies.{kind}.probe')\n",
    "def sleep_between_steps():\n    pass\n",
    "def deep_narrow_width(d, k):\n    pass\n",
    # a rule name built from the kind found at run time, shared rule names, words that
    # merely start like a kind
    "rule = f'{kind}_train'\n",
    "RULES = ('gram', 'kernel_regression', 'make_dataset')\n",
    "x = 'sleep_between_steps'\n",
])
def test_the_check_lets_through(source):
    assert violations(source) == []
