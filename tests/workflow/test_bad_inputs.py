"""Issue #17: every bad input in tests/bad_inputs.md is refused before any job (or accepted
with a logged warning), the table and these tests being one list; plus the integrity,
caching and concurrency checks that are not config rows."""

from __future__ import annotations

import copy
import json
import logging
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from conftest import REPO, run_snakemake

from depthlab import config as dlc
from depthlab.provenance import atomic_output
from depthlab.studies.geiger import grid as geiger_grid
from depthlab.studies.mori_ueda import grid as mori_grid

TABLE = REPO / "tests" / "bad_inputs.md"
BASES = {"tiny": "tests/data/tiny.yaml", "geiger": "tests/data/tiny_geiger.yaml",
         "lee": "tests/data/tiny_lee.yaml", "nichani": "tests/data/tiny_nichani.yaml",
         "xiao": "tests/data/tiny_xiao.yaml"}
VALID = ["config/config.yaml", "config/paper.yaml", "tests/data/tiny.yaml",
         "tests/data/tiny_geiger.yaml", "tests/slurm/tiny.yaml", "tests/data/tiny_lee.yaml",
         "tests/data/tiny_nichani.yaml", "tests/data/tiny_xiao.yaml"]


def _rows() -> list[dict[str, str]]:
    """The config rows of the table (the first table of tests/bad_inputs.md)."""
    rows, header = [], None
    for line in TABLE.read_text().splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(cells[0]) <= {"-"}:
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


ROWS = _rows()
# a key is a name, [index] or ["quoted"] (a JSON string: "fig\\n1" is a newline)
_PATH = re.compile(r'\[("(?:[^"\\]|\\.)*")\]|\[(\d+)\]|\.?([A-Za-z_][A-Za-z0-9_]*)')


def _parse_path(path: str) -> list[str | int]:
    parts, pos = [], 0
    while pos < len(path):
        m = _PATH.match(path, pos)
        assert m and m.end() > pos, f"bad path {path!r} at {pos}"
        quoted, index, name = m.groups()
        parts.append(int(index) if index is not None else (json.loads(quoted)
                                                          if quoted is not None else name))
        pos = m.end()
    return parts


def _bad_config(row: dict[str, str], tmp: Path) -> tuple[dict, str | None]:
    """The row's config, and the YAML text to write when the row is about the file itself."""
    cfg = yaml.safe_load((REPO / BASES[row["config"]]).read_text())
    value_text = row["value"].replace("$TMP", str(tmp / "empty_dir"))
    (tmp / "empty_dir").mkdir(exist_ok=True)
    change = row["change"]
    if change.startswith("duplicate: "):
        key = change.removeprefix("duplicate: ")
        text = yaml.safe_dump(cfg, sort_keys=False)
        return cfg, text + yaml.safe_dump({key: yaml.safe_load(value_text)})
    *parents, last = _parse_path(change)
    node = cfg
    for part in parents:
        node = node[part]
    if value_text == "DELETE":
        del node[last]
    else:
        node[last] = yaml.safe_load(value_text)
    return cfg, None


def test_table_is_large_and_well_formed():
    assert len(ROWS) >= 60
    assert [int(r["#"]) for r in ROWS] == list(range(1, len(ROWS) + 1))
    assert {r["outcome"] for r in ROWS} <= {"error", "warning"}
    assert all(r["message"] for r in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['#']}-{r['change']}" for r in ROWS])
def test_bad_input(row, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths (results, mnist_dir) as Snakemake sees them
    cfg, text = _bad_config(row, tmp_path)
    if text is not None:
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        check = lambda: dlc.check_config(dlc.load_yaml_strict(path))  # noqa: E731
    else:
        check = lambda: dlc.check_config(cfg)  # noqa: E731
    if row["outcome"] == "error":
        with pytest.raises(dlc.ConfigError) as err:
            check()
        assert row["message"] in str(err.value), str(err.value)
    else:
        warnings = check()
        assert any(row["message"] in w for w in warnings), warnings


SMK_ROWS = [r for r in ROWS if r["smk"] == "smk"]


@pytest.mark.parametrize("row", SMK_ROWS, ids=[f"{r['#']}-{r['change']}" for r in SMK_ROWS])
def test_bad_input_fails_before_any_job(row, tmp_path):
    """A representative handful through the real `snakemake` (about 3 s each)."""
    cfg, text = _bad_config(row, tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(cfg))
    proc = run_snakemake("--cores", "1", "--configfile", str(path), cwd=tmp_path, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert row["message"] in out, out[-3000:]
    assert not (tmp_path / "results").exists(), "a job ran despite the bad config"


@pytest.mark.parametrize("name", VALID)
def test_valid_configs_still_validate(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = dlc.load_yaml_strict(REPO / name)
    checked = copy.deepcopy(cfg)
    warnings = dlc.check_config(checked, missing_data="warn")
    mnist = [d for d, spec in cfg["datasets"].items() if spec["generator"] == "mnist_parity"]
    # inputs the study plug-ins check themselves (a Lee study's MNIST, CIFAR-10, ImageNet32),
    # named by the blocks that name those datasets (their parameters filled in)
    sources = {"mnist_dir": "mnist", "cifar_dir": "cifar10", "imagenet32_dir": "imagenet32"}
    own = [f"studies.{s}.{block}.{key}" for s, study in checked["studies"].items()
           for block in ("data", "plane", "pool", "cliff", "plane_nets")
           for key, source in sources.items()
           if isinstance(study.get(block), dict) and study[block].get("source") == source]
    # image samples (Nichani's autoencoder inputs) are checked where a task names them
    samples = [f"datasets.{d}.cifar_dir" for d, spec in cfg["datasets"].items()
               if spec["generator"] == "image_sample" and spec.get("source") == "cifar10"]
    about_inputs = [w for w in warnings if any(key in w for key in sources)]
    assert sorted(w.split(":")[0].split(" (named by")[0] for w in about_inputs) == (
        sorted([f"datasets.{d}.mnist_dir" for d in mnist] + own + samples))
    if mnist:  # a real run without the MNIST files stops before any job, naming the key
        with pytest.raises(dlc.ConfigError, match=f"datasets.{mnist[0]}.mnist_dir"):
            dlc.check_config(copy.deepcopy(cfg))
    if name == "tests/slurm/tiny.yaml":  # depths 0 and 2, default summary depths 1 and 7
        assert any(w.startswith("studies.tiny.summary") for w in warnings)
    else:
        assert [w for w in warnings if w not in about_inputs] == []


def test_strict_yaml_loader(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n")
    with pytest.raises(dlc.ConfigError, match=r"dup.yaml: line 5: duplicate key 'c'"):
        dlc.load_yaml_strict(dup)
    merge = tmp_path / "merge.yaml"
    merge.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert dlc.load_yaml_strict(merge)["other"] == {"x": 1, "y": 3}
    # config.yaml's `<<: *training` merges are legal and load like safe_load
    path = REPO / "config" / "config.yaml"
    assert dlc.load_yaml_strict(path) == yaml.safe_load(path.read_text())


def test_integers_are_strict():
    """32.0 and True are not integers; 32 is."""
    base = yaml.safe_load((REPO / BASES["tiny"]).read_text())
    for bad in (32.0, True):
        cfg = copy.deepcopy(base)
        cfg["studies"]["tiny"]["grids"][0]["width"] = [bad]
        with pytest.raises(dlc.ConfigError, match=r"grids\[0\]\.width\[0\]"):
            dlc.check_config(cfg)
    cfg = copy.deepcopy(base)
    cfg["studies"]["tiny"]["grids"][0]["seeds"] = [2**63 - 1]
    dlc.check_config(cfg)  # the largest int64 seed is fine


def test_cube_params_ignore_figures_and_summaries():
    tiny = yaml.safe_load((REPO / BASES["tiny"]).read_text())["studies"]["tiny"]
    assert set(mori_grid.cube_study(tiny)) == set(tiny) - {"figures", "summary"}
    assert set(mori_grid.summary_figures(tiny)) == {"fig1", "fig2"}
    assert all(set(f) <= {"plot", "datasets", "lr"}
               for f in mori_grid.summary_figures(tiny).values())
    geiger = yaml.safe_load((REPO / BASES["geiger"]).read_text())["studies"]["geiger"]
    assert set(geiger_grid.cube_study(geiger)) == set(geiger) - {"figures", "table1"}


SMALL = """
results: results
datasets:
  loc: {generator: k_local, k: 1, d: 4, n_train: 20, n_test: 20, seed: 3}
studies:
  small:
    kind: mori_ueda
    grids:
      - {datasets: [loc], n_train: [20], depth: [0, 1], width: [4], lr: [0.1], seeds: [0]}
    summary: {shallow: 0, deep: 1}
    training: {batch_size: 20, check_every: 2, max_epochs: 4, checkpoint_every: 0,
               device: cpu}          # batch = N: full-batch GD, a warning in log and cube
    figures:
      figa: {plot: test_error_vs_n, datasets: [loc], title: "first"}
      figb: {plot: test_error_vs_n, datasets: [loc], title: "second"}
"""


def _planned(proc) -> set[str]:
    """The rules of the jobs a dry-run plans (its "Job stats" table)."""
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return set(re.findall(r"^(\w+)\s+\d+\s*$", table, flags=re.M))


def test_figure_title_edit_reruns_that_figure_only(tmp_path):
    """A figure's own settings are params of its rule only: not of the cube (which used to
    hold the whole study block), nor of the summary."""
    (tmp_path / "small.yaml").write_text(SMALL)
    first = run_snakemake("--cores", "2", "--configfile", "small.yaml", cwd=tmp_path)
    warning = "studies.small.training.batch_size = 20 >= N for loc N = 20"
    assert f"config warning: {warning}" in first.stdout + first.stderr
    cube = xr.open_dataset(tmp_path / "results" / "small" / "cube.nc", engine="h5netcdf")
    with cube:
        assert warning in cube.attrs["config_warnings"]
        assert "figures" not in cube.attrs["config"]  # the cube records what it depends on
    cfg = yaml.safe_load(SMALL)
    cfg["studies"]["small"]["figures"]["figa"]["title"] = "edited"
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    dry = run_snakemake("-n", "--configfile", "small.yaml", cwd=tmp_path)
    assert _planned(dry) == {"mori_ueda_figa", "all"}, dry.stdout + dry.stderr
    # the summary's depths are its own params (and the claims'): they rerun, the cube not
    cfg["studies"]["small"]["summary"] = {"shallow": 1, "deep": 0}
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    dry = run_snakemake("-n", "--configfile", "small.yaml", cwd=tmp_path)
    assert _planned(dry) == {"mori_ueda_figa", "mori_ueda_summary", "claims",
                             "claims_scorecard", "all"}, dry.stdout
    # and a training setting still reruns the training and everything after it
    cfg["studies"]["small"]["training"]["max_epochs"] = 6
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    dry = run_snakemake("-n", "--configfile", "small.yaml", cwd=tmp_path)
    assert {"mori_ueda_train", "mori_ueda_cube", "mori_ueda_figb"} <= _planned(dry), dry.stdout


FIGURE_RULE = """
rule fig:
    input: cube="cube.nc"
    output: pdf="fig.pdf", png="fig.png"
    log: "fig.log"
    params: kind="mori_ueda", figure={{"plot": "test_error_vs_n", "datasets": ["local1"]}}
    script: "{script}"
"""


def test_truncated_cube_fails_the_figure_job_naming_it(tmp_path):
    """The figure script reads the cube with depthlab.cube.read_cube: a truncated file is an
    InputFileError naming it, not an h5netcdf traceback."""
    ds = xr.Dataset({"test_error": (("seed",), np.zeros(64))}, coords={"seed": np.arange(64)})
    ds.to_netcdf(tmp_path / "full.nc", engine="h5netcdf")
    raw = (tmp_path / "full.nc").read_bytes()
    (tmp_path / "cube.nc").write_bytes(raw[: len(raw) // 2])
    workflow = tmp_path / "wf"
    workflow.mkdir()
    (workflow / "Snakefile").write_text(textwrap.dedent(FIGURE_RULE.format(
        script=REPO / "workflow" / "scripts" / "plot_figure.py")))
    proc = run_snakemake("--cores", "1", cwd=tmp_path, check=False, workflow=workflow)
    assert proc.returncode != 0
    log = (tmp_path / "fig.log").read_text()
    assert "cube.nc: not a readable cube" in log, log[-2000:]
    assert not (tmp_path / "fig.png").exists()


def test_concurrent_writer_is_reported(tmp_path, caplog):
    """Two runs making the same output at once (both passed Snakemake's lock): each
    publishes a whole file atomically, and the later one says so in its log."""
    target = tmp_path / "out.txt"
    with caplog.at_level(logging.WARNING, logger="depthlab"):
        with atomic_output(target) as mine:
            mine.write_text("mine")
            with atomic_output(target) as theirs:  # the other run finishes first
                theirs.write_text("theirs")
            assert not caplog.records
    assert target.read_text() == "mine"
    assert "written by another process" in caplog.text and "out.txt" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="depthlab"), atomic_output(target) as tmp:
        tmp.write_text("again")  # an ordinary overwrite (file there before) is not reported
    assert not caplog.records


def test_table_lists_the_non_config_tests():
    """Every test the table's second part names exists."""
    text = TABLE.read_text()
    for path, name in re.findall(r"(tests/[\w/]+\.py)::(\w+)", text):
        assert f"def {name}(" in (REPO / path).read_text(), (path, name)


