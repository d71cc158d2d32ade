"""The rerun contract: each rule depends on what it uses.

For every study kind of the laptop config (config/config.yaml) and the paper config
(config/paper.yaml), three edits of the config are planned against the unedited one:

* a figure's title: exactly that figure job reruns (no cube, no training, no claims);
* a grid reordered (its lists permuted, the grids listed in another order): no job reruns but
  summaries (a cube and what consumes it: figures, tables, claims; a cube lists its runs in
  config order, and Lee's Table 4.1 names grids by position), so nothing is retrained and no
  kernel, data set or run file is recomputed;
* one training setting changed: only the jobs it feeds rerun (those jobs and what consumes
  their outputs: cube, figures, tables, claims), no other training job.

"What reruns" is what ``snakemake --rerun-triggers mtime params`` plans on a finished run
of the unedited config, computed without running anything: the real Snakemake DAG of both
configs is built (Snakemake's API, ``--forceall`` so every job is listed), each job keyed
by its output files with its params serialised as Snakemake records them
(``persistence._params``, the very strings ``params`` compares). A job of the edited
config reruns when one of its outputs is not an output of the unedited DAG (a missing file)
or its recorded params differ (the params trigger), and every job consuming a rerun job's
output reruns too (the mtime trigger). One test runs a tiny config for real and checks the
model against Snakemake's own dry run after a title edit.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
CONFIGS = {"laptop": REPO / "config" / "config.yaml", "paper": REPO / "config" / "paper.yaml"}
KINDS = ("mori_ueda", "geiger", "lee", "xiao", "nichani")
REQUESTS = ("runtime", "mem_mb", "gpu", "gpu_model", "cpus_per_task")


# ----------------------------------------------------------------- the DAG of a config


def _dump_dag(configfile: str, workdir: str, out: str) -> None:
    """Write {output files: {rule, params, input}} for every job of the config's DAG (run in
    a child process: the Snakemake API changes directory and keeps module state)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
    )

    # dryrun: input data a real run needs (the paper's MNIST, CIFAR) is a warning, not an error
    with SnakemakeApi(OutputSettings(dryrun=True, quiet={"all"})) as api:
        # cores enough that no job's threads are capped: the dump shows what a job asks for
        wapi = api.workflow(resource_settings=ResourceSettings(cores=64),
                            config_settings=ConfigSettings(configfiles=[Path(configfile)]),
                            snakefile=REPO / "Snakefile", workdir=Path(workdir))
        wapi.dag(DAGSettings(forceall=True))
        wf = wapi._workflow
        wf._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True,
                        nolock=True)
        wf._build_dag()
        jobs = {}
        for job in wf.dag.jobs:
            if not job.output:  # the `all` target
                continue
            jobs["|".join(sorted(map(str, job.output)))] = {
                "rule": job.rule.name,
                "params": list(wf.persistence._params(job)),
                "input": sorted(map(str, job.input)),
                # what the job asks a scheduler for (rules/common.smk job_resources)
                "threads": int(job.threads),
                "resources": {k: job.resources.get(k) for k in REQUESTS
                              if k in job.resources.keys()},
            }
    with open(out, "w") as fh:
        json.dump(jobs, fh)


def dag(config: dict, tmp_path: Path, tag: str) -> dict[str, dict]:
    path = tmp_path / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    work = tmp_path / f"work_{tag}"
    work.mkdir()
    out = tmp_path / f"{tag}.json"
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(HERE), str(path), str(work), str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, (f"DAG of {tag} failed:\n{proc.stdout[-3000:]}\n"
                                  f"{proc.stderr[-5000:]}")
    return json.loads(out.read_text())


def planned(before: dict[str, dict], after: dict[str, dict]) -> set[str]:
    """The jobs of ``after`` that ``--rerun-triggers mtime params`` plans once every job of
    ``before`` has run: a missing output or changed params, and whatever consumes them."""
    old_outputs = {f: key for key in before for f in key.split("|")}
    out = set()
    for key, job in after.items():
        files = key.split("|")
        if any(f not in old_outputs for f in files):
            out.add(key)
            continue
        if any(before[old_outputs[f]]["params"] != job["params"] for f in files):
            out.add(key)
    return downstream(after, out)


def downstream(jobs: dict[str, dict], seeds: set[str]) -> set[str]:
    """``seeds`` and every job consuming (transitively) one of their outputs."""
    producer = {f: key for key in jobs for f in key.split("|")}
    consumers: dict[str, set[str]] = {}
    for key, job in jobs.items():
        for f in job["input"]:
            if f in producer:
                consumers.setdefault(producer[f], set()).add(key)
    out, todo = set(seeds), list(seeds)
    while todo:
        for nxt in consumers.get(todo.pop(), ()):
            if nxt not in out:
                out.add(nxt)
                todo.append(nxt)
    return out


def describe(jobs: dict[str, dict], keys: set[str]) -> str:
    return "\n".join(sorted(f"  {jobs[k]['rule']}: {k.split('|')[0]}" for k in keys)) or "  none"


# ------------------------------------------------------------------------- the edits


def load(scale: str) -> dict:
    with open(CONFIGS[scale]) as fh:
        return yaml.safe_load(fh)


def studies(config: dict, kind: str) -> list[str]:
    return [name for name, s in config["studies"].items() if s["kind"] == kind]


def edit_titles(config: dict, kind: str) -> set[tuple[str, str]]:
    """Retitle the first figure of every study of ``kind``; the figure jobs expected."""
    expected = set()
    for name in studies(config, kind):
        figures = config["studies"][name].get("figures") or {}
        if figures:
            fig = next(iter(figures))
            figures[fig]["title"] = str(figures[fig].get("title", fig)) + " (edited)"
            expected.add((f"{kind}_{fig}", f"/{name}/figures/{fig}."))
    return expected


def _reverse(block: dict, *keys: str) -> None:
    for key in keys:
        if isinstance(block.get(key), list):
            block[key] = block[key][::-1]


def reorder(config: dict, kind: str) -> bool:
    """Permute the lists of ``kind``'s grids (the grids themselves, seeds, depths ...): the
    same runs, listed in another order. False when nothing could be permuted."""
    changed = False
    for name in studies(config, kind):
        s = config["studies"][name]
        before = copy.deepcopy(s)
        if kind in ("mori_ueda", "geiger", "lee") and "grids" in s:
            n = len(s["grids"])
            s["grids"] = s["grids"][::-1]
            for g in s["grids"]:
                _reverse(g, "seeds", "depth", "width", "n_train", "init", "lr")
            if kind == "lee":  # table rows name a grid by position
                for row in s.get("table41") or []:
                    if row.get("grid") is not None:
                        row["grid"] = n - 1 - row["grid"]
        if kind == "xiao":
            for block in ("cliff", "plane_nets"):
                if block in s:  # the job axes (seeds are members of one job, in order)
                    _reverse(s[block], "depths", "w_vars")
        if kind == "nichani":
            if "fully_conv" in s:
                _reverse(s["fully_conv"], "seeds", "depths")
            if isinstance(s.get("linear"), list):
                s["linear"] = s["linear"][::-1]
        changed |= s != before
    return changed


def edit_training(config: dict, kind: str) -> Callable[[dict, str, dict], bool] | None:
    """Change one training setting of the first study of ``kind`` that has it; return the
    predicate (job, its key, the unedited DAG) of the jobs it feeds directly (their
    consumers are expected too)."""
    for name in studies(config, kind):
        s = config["studies"][name]
        under = f"/{name}/"
        if kind == "mori_ueda" and "lr_selection" in s and any(
                "cv" in map(str, g["lr"]) for g in s["grids"]):
            s["lr_selection"]["n_iter"] = int(s["lr_selection"].get("n_iter", 1)) + 1
            return lambda job, k, before: job["rule"] == "mori_ueda_select_lr" and under in k
        if kind == "geiger" and "grids" in s:
            g = s["grids"][-1]
            axis = "alpha_sqrt_h" if "alpha_sqrt_h" in g else "alpha"
            g[axis] = [*g[axis][:-1], float(g[axis][-1]) * 2]
            cells = {f"/{a}_L{d}_h{w}/" for a in g["activation"] for d in g["depth"]
                     for w in g["width"]}
            # packed: the packs of the grid's cells; one net per job: the new alpha's nets
            return lambda job, k, before: (
                under in k and any(c in k + "/" for c in cells)
                and (job["rule"] == "geiger_train_pack"
                     or job["rule"] == "geiger_train" and k not in before))
        if kind == "lee" and "grids" in s:
            g = s["grids"][-1]
            g["epochs"] = int(g["epochs"]) + 1
            arch = g.get("arch", "mlp")
            cells = {f"/runs/{arch}_{i}_D{d}_" for i in g["init"] for d in g["depth"]}
            return lambda job, k, before: (job["rule"] == "lee_train" and under in k
                                           and any(c in k for c in cells))
        if kind == "xiao" and "cliff" in s:
            s["cliff"]["steps"] = int(s["cliff"]["steps"]) + 10
            return lambda job, k, before: job["rule"] == "xiao_train" and under in k
        if kind == "nichani" and "fully_conv" in s:
            tr = s["fully_conv"]["training"]
            tr["max_epochs"] = int(tr["max_epochs"]) + 1
            return lambda job, k, before: job["rule"] == "nichani_train" and under in k
    return None


# ------------------------------------------------------------------------------ tests

_BASE: dict[str, dict] = {}


def base_dag(scale: str, tmp_path_factory) -> dict[str, dict]:
    if scale not in _BASE:
        _BASE[scale] = dag(load(scale), tmp_path_factory.mktemp(f"base_{scale}"), "base")
    return _BASE[scale]


SCALES_KINDS = [(scale, kind) for scale in CONFIGS for kind in KINDS]


@pytest.mark.parametrize("scale,kind", SCALES_KINDS)
def test_a_title_edit_reruns_that_figure_only(scale, kind, tmp_path, tmp_path_factory):
    config = load(scale)
    expected = edit_titles(config, kind)
    assert expected, f"{scale}: no figure of a {kind} study"
    before = base_dag(scale, tmp_path_factory)
    after = dag(config, tmp_path, "titles")
    got = planned(before, after)
    want = {k for k, job in after.items()
            if any(job["rule"] == rule and where in k for rule, where in expected)}
    assert len(want) == len(expected)
    assert got == want, (f"{scale} {kind}: a title edit plans\n{describe(after, got)}\n"
                         f"instead of\n{describe(after, want)}")


@pytest.mark.parametrize("scale,kind", SCALES_KINDS)
def test_reordering_a_grid_retrains_nothing(scale, kind, tmp_path, tmp_path_factory):
    config = load(scale)
    assert reorder(config, kind), f"{scale}: nothing to reorder in a {kind} study"
    before = base_dag(scale, tmp_path_factory)
    after = dag(config, tmp_path, "reordered")
    summaries = downstream(after, {k for k in after if k.endswith("/cube.nc")})
    got = planned(before, after) - summaries
    assert not got, f"{scale} {kind}: reordering the grids plans\n{describe(after, got)}"


@pytest.mark.parametrize("scale,kind", SCALES_KINDS)
def test_a_training_setting_reruns_only_the_jobs_it_feeds(scale, kind, tmp_path,
                                                          tmp_path_factory):
    config = load(scale)
    fed = edit_training(config, kind)
    if fed is None:
        pytest.skip(f"{scale}: no {kind} study with the setting this test edits")
    before = base_dag(scale, tmp_path_factory)
    after = dag(config, tmp_path, "training")
    seeds = {k for k, job in after.items() if fed(job, k, before)}
    assert seeds, f"{scale} {kind}: the edited setting feeds no job"
    got = planned(before, after)
    want = downstream(after, seeds)
    # every other training job of the study keeps its results
    assert got == want, (f"{scale} {kind}: the training edit plans\n{describe(after, got)}\n"
                         f"instead of\n{describe(after, want)}")


def test_resource_requests_are_read_per_study_and_rerun_nothing(tmp_path, tmp_path_factory):
    """A study's `resources:` block (config/paper.yaml) sets its jobs' threads and requests,
    and editing it is scheduling only: no job reruns."""
    config = load("paper")
    before = base_dag("paper", tmp_path_factory)
    # every job of a study with a `resources.<rule>` block asks for exactly that
    checked = set()
    for key, job in before.items():
        name = key.split("|")[0].split("/")[2]  # results/paper/<study>/...
        own = (config["studies"].get(name, {}).get("resources") or {}).get(job["rule"])
        if not own:
            continue
        checked.add(job["rule"])
        assert job["threads"] == own.get("threads", job["threads"]), (key, job)
        for k, v in own.items():
            if k != "threads":
                assert job["resources"].get(k) == v, (key, k, job["resources"])
    assert {"mori_ueda_train", "geiger_lazy", "lee_train", "xiao_train",
            "nichani_resnet"} <= checked, checked
    # edit every request of every study (a copy per study, the config's aliases broken)
    for study in config["studies"].values():
        blocks = copy.deepcopy(study.get("resources") or {})
        for block in blocks.values():
            block["runtime"] = int(block.get("runtime", 30)) + 1
            block["threads"] = int(block.get("threads", 1)) + 1
        study["resources"] = blocks
    after = dag(config, tmp_path, "resources")
    got = planned(before, after)
    assert not got, f"a resources edit plans\n{describe(after, got)}"
    edited = [k for k, job in after.items()
              if job["resources"].get("runtime") != before[k]["resources"].get("runtime")]
    assert edited, "the edited requests reached no job"


def test_the_laptop_config_asks_for_each_rule_s_own_defaults(tmp_path_factory):
    """The laptop config sets no study `resources`: every job asks for its rule's own
    threads and requests (no GPU, no cpus_per_task), as before they moved out of the
    Slurm profile."""
    config = load("laptop")
    assert not any(s.get("resources") for s in config["studies"].values())
    jobs = base_dag("laptop", tmp_path_factory)
    threads = {1, *config["threads"].values()}
    for key, job in jobs.items():
        assert set(job["resources"]) <= {"runtime", "mem_mb"}, (key, job["resources"])
        assert job["threads"] in threads, (key, job["threads"])
    train = [job for job in jobs.values() if job["rule"] == "mori_ueda_train"]
    assert train and all(j["resources"] == {"runtime": 120, "mem_mb": 4000} for j in train)


if __name__ == "__main__":
    _dump_dag(*sys.argv[1:4])


@pytest.mark.parametrize("scale", list(CONFIGS))
def test_a_dataset_description_edit_remakes_no_data(scale, tmp_path, tmp_path_factory):
    """A dataset's `description` is prose: no dataset file, training or kernel job reruns
    (only summaries that quote it may)."""
    config = load(scale)
    for spec in config["datasets"].values():
        spec["description"] = "edited: " + str(spec.get("description", ""))
    before = base_dag(scale, tmp_path_factory)
    after = dag(config, tmp_path, "description")
    work = {k for k in planned(before, after)
            if after[k]["rule"] == "make_dataset" or "/runs/" in k or "/kernels/" in k
            or after[k]["rule"].endswith(("_train", "_train_pack", "_select_lr"))}
    assert not work, f"{scale}: a description edit plans\n{describe(after, work)}"
