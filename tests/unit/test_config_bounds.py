"""Issue #25: numbers finite, lists distinct, one name rule, bounded plans and bounded YAML,
checked by depthlab.config before any job (the table rows of tests/bad_inputs.md exercise each
through check_config; these test the pieces and that the schemas keep the rules)."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from depthlab import config as dlc

SCHEMAS = REPO / "workflow" / "schemas"
TINY = REPO / "tests" / "data" / "tiny.yaml"


def _bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs" YAML document of under 1 KB: width ** levels leaves."""
    items = ["&a0 [" + ", ".join(["1"] * width) + "]"]
    for i in range(1, levels):
        items.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "results: [" + ", ".join(items) + "]\ndatasets: {}\nstudies: {}\n"


def test_alias_bomb_fails_fast_naming_the_file(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb())
    assert path.stat().st_size < 1024
    start = time.perf_counter()
    with pytest.raises(dlc.ConfigError, match=r"bomb.yaml: line 1: .*expands to more than"):
        dlc.load_yaml_strict(path)
    assert time.perf_counter() - start < 1.0


def test_alias_bomb_in_memory_fails_fast_in_check_config():
    """The config Snakemake loaded itself (aliases shared, not copied) is measured too."""
    cfg = yaml.safe_load(_bomb())
    start = time.perf_counter()
    with pytest.raises(dlc.ConfigError, match="expands to more than 200000 values"):
        dlc.check_config(cfg)
    assert time.perf_counter() - start < 1.0


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("results: &r [1, *r]\n")
    with pytest.raises(dlc.ConfigError, match="loop.yaml: line 1: this value contains itself"):
        dlc.load_yaml_strict(path)


def test_ordinary_aliases_and_merges_still_load(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("a: &x {p: 1, q: [1, 2]}\nb: *x\nc:\n  <<: *x\n  p: 2\n")
    assert dlc.load_yaml_strict(path) == {"a": {"p": 1, "q": [1, 2]}, "b": {"p": 1, "q": [1, 2]},
                                         "c": {"p": 2, "q": [1, 2]}}


@pytest.mark.parametrize("value, key", [
    (float("nan"), "studies.s.grids[0].lr[1]"),
    (float("inf"), "studies.s.grids[0].lr[1]"),
    (float("-inf"), "studies.s.grids[0].lr[1]"),
])
def test_non_finite_numbers_are_refused_naming_the_key(value, key):
    cfg = {"studies": {"s": {"grids": [{"lr": [0.1, value]}]}}}
    with pytest.raises(dlc.ConfigError, match=rf"^{re.escape(key)}: -?(nan|inf) is not a "
                                              "finite number"):
        dlc.check_plain_values(cfg)


def test_shared_value_is_reported_where_first_seen():
    shared = {"jitter": float("nan")}
    with pytest.raises(dlc.ConfigError, match=r"^a\.jitter: nan"):
        dlc.check_plain_values({"a": shared, "b": shared})


@pytest.mark.parametrize("text, shown", [("on: 1", "True"), ("off: 1", "False"),
                                         ("yes: 1", "True"), ("1: 1", "1"),
                                         ("null: 1", "None")])
def test_non_string_keys_are_refused_naming_the_path(text, shown):
    cfg = {"studies": {"s": {"claims": yaml.safe_load(text)}}}
    with pytest.raises(dlc.ConfigError, match=rf"^studies\.s\.claims: key {shown} is not a "
                                              "string"):
        dlc.check_plain_values(cfg)


def test_schema_error_messages_are_truncated():
    cfg = yaml.safe_load(TINY.read_text())
    cfg["results"] = list(range(20000))  # not a string: jsonschema prints the whole list
    with pytest.raises(dlc.ConfigError) as err:
        dlc.check_config(cfg)
    assert str(err.value).startswith("results: [0, 1, 2")
    assert len(str(err.value)) < 600 and "characters)" in str(err.value)


@pytest.mark.parametrize("name, ok", [
    ("fig1", True), ("Fig_3b", True), ("a" * 64, True), ("x", True),
    ("a" * 65, False), ("", False), ("1fig", False), ("_x", False), ("../x", False),
    ("a/b", False), ("..", False), ("a.b", False), ("fig\n", False), ("fig\n1", False),
    ("fig 1", False), ("fig\t1", False), ("{x}", False), ("fig*", False), ("f?g", False),
    ("f[1]", False), ("a-b", False), ("a|b", False), ("é", False), (3, False), (None, False),
])
def test_one_name_rule(name, ok):
    assert dlc.is_name(name) is ok


def _walk(node, path=""):
    """(path, schema node) for every mapping in a schema."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def _schemas():
    return [SCHEMAS / "config.schema.yaml", *sorted((SCHEMAS / "studies").glob("*.yaml"))]


@pytest.mark.parametrize("path", _schemas(), ids=lambda p: p.name)
def test_every_name_uses_the_one_rule(path):
    """Every mapping keyed by user-given names (figures, datasets, kernels, studies) and every
    `name:` setting uses `format: name`; no schema keeps a pattern of its own for names."""
    schema = yaml.safe_load(path.read_text())
    for where, node in _walk(schema):
        top_level = path.name == "config.schema.yaml" and where in (
            "/properties/datasets", "/properties/kernels", "/properties/studies")
        if where.endswith("/properties/figures") or top_level:
            assert node.get("propertyNames") == {"format": "name"}, (path.name, where)
        if where.endswith("/properties/name"):
            assert node.get("format") == "name", (path.name, where)
        if "propertyNames" in node:
            assert node["propertyNames"] == {"format": "name"}, (path.name, where)


# Lists of numbers whose values may repeat: shapes, per-layer settings and [low, high] ranges.
REPEATS_ALLOWED = ("/image_shape", "/strides", "/fit_range", "/bounds", "/blocks/items",
                   "/sizes/items", "/indices/oneOf/1", "/paper_")


def _numeric_items(items) -> bool:
    if not isinstance(items, dict):
        return False
    if items.get("type") in ("integer", "number"):
        return True
    return any(_numeric_items(alt) for alt in items.get("oneOf", []))


@pytest.mark.parametrize("path", _schemas(), ids=lambda p: p.name)
def test_every_list_of_numbers_is_distinct(path):
    """seeds, widths, depths, sigma_w^2, lr, alpha, n_train, ...: `uniqueItems: true`, so a
    duplicated value is refused naming its key (never trained, or counted as evidence, twice)."""
    schema = yaml.safe_load(path.read_text())
    missing = [where for where, node in _walk(schema)
               if node.get("type") == "array" and _numeric_items(node.get("items"))
               and not node.get("uniqueItems") and not any(a in where for a in REPEATS_ALLOWED)]
    assert not missing, (path.name, missing)


def test_limits_name_the_grid_and_can_be_raised():
    base = yaml.safe_load(TINY.read_text())
    grid = base["studies"]["tiny"]["grids"][0]
    grid["seeds"] = list(range(5000))
    cfg = copy.deepcopy(base)
    cfg["limits"] = {"max_cells": 1000}
    with pytest.raises(dlc.ConfigError, match=r"^studies\.tiny\.grids\[0\]: 40000 grid cells "
                                              r"\(datasets 2 x n_train 2 x depth 2 x width 1 x lr "
                                              r"1 x seeds 5000\) exceed limits\.max_cells = 1000"):
        dlc.check_config(cfg)
    cfg = copy.deepcopy(base)
    cfg["limits"] = {"max_cells": 100000, "max_runs": 30000}
    with pytest.raises(dlc.ConfigError, match=r"^studies: 400\d\d grid cells in all "
                                              r"\(studies\.tiny: 400\d\d\) exceed "
                                              r"limits\.max_runs = 30000"):
        dlc.check_config(cfg)
    cfg = copy.deepcopy(base)
    cfg["limits"] = {"max_runs": 50000}
    dlc.check_config(cfg)


def test_memory_estimate_names_the_key_and_can_be_raised():
    base = yaml.safe_load(TINY.read_text())
    base["studies"]["tiny"]["grids"][0]["width"] = [32, 100000]
    with pytest.raises(dlc.ConfigError, match=r"^studies\.tiny\.grids\[0\]\.width: width x width "
                                              r"float64 weights x depth \(100000 x 100000 x 2, x 2 "
                                              r"nets packed in one job\): about 320\.0 GB"):
        dlc.check_config(copy.deepcopy(base))
    base["limits"] = {"max_job_memory_gb": 400}
    dlc.check_config(base)  # a bigger machine: accepted


def test_paper_plan_is_well_inside_the_default_limits():
    cfg = dlc.load_yaml_strict(REPO / "config" / "paper.yaml")
    dlc.check_config(cfg, missing_data="warn")
    assert cfg["limits"] == {"max_cells": 100000, "max_runs": 200000, "max_job_memory_gb": 256}
    grids = [g for name, s in cfg["studies"].items()
             for g in dlc.study_grids(f"studies.{name}", s)]
    assert max(dlc._cells(axes) for _, axes in grids) * 10 < cfg["limits"]["max_cells"]
    assert sum(dlc._cells(axes) for _, axes in grids) * 10 < cfg["limits"]["max_runs"]
    estimates = [e for name, s in cfg["studies"].items()
                 for e in dlc.memory_estimates(f"studies.{name}", s, cfg)]
    assert max(nbytes for _, nbytes, _ in estimates) < 10e9  # the 30 000 x 30 000 Gram: 7.2 GB


def test_error_files_are_listed(tmp_path):
    """The loader's own size rule names file and line (the Snakefile re-reads every
    --configfile with it before Snakemake's config is validated)."""
    path = tmp_path / "nested.yaml"
    path.write_text("results: results\nx: " + _bomb(levels=7, width=8).split("results: ")[1])
    with pytest.raises(dlc.ConfigError, match=rf"{Path(path).name}: line 2"):
        dlc.load_yaml_strict(path)
