"""The paper-scale probe (issue #24): job -> representative mapping, work counts, Slurm
request evaluation, and the probe end to end on a tiny paper-like config."""

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import yaml

from depthlab.probe.jobs import JobInfo
from depthlab.probe.shapes import job_work, representatives, shape_class
from depthlab.probe.slurm import requests
from depthlab.provenance import cpu_model

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "data" / "tiny.yaml"

CONFIG = {
    "datasets": {"a": {"d": 100, "n_train": 1000, "n_test": 500},
                 "b": {"d": 40, "n_train": 1000, "n_test": 500},
                 "mnist": {"d": 10, "n_train": 200, "n_test": 100}},
    "studies": {"g": {"kind": "geiger", "dataset": "mnist"}},
}
TRAINING = {"batch_size": 50, "max_epochs": 100, "check_every": 10, "loss": "cross_entropy",
            "activation": "relu"}


def _train(dataset="a", n=1000, depth=2, width=64, seeds=(0, 1)):
    members = [{"lr": 0.1, "seed": s} for s in seeds]
    return JobInfo("mori_ueda_train", {"study": "s", "dataset": dataset, "n_train": str(n),
                             "depth": str(depth), "width": str(width), "member_set": "lr0.1"},
                   {"training": TRAINING, "members": members}, 1)


def _geiger(alpha, seed, width=32):
    dyn = {"max_steps": 1000, "ntk_subset": 16, "temperature": 0.0, "tau": None, "mu": 1000.0}
    return JobInfo("geiger_train", {"study": "g", "activation": "softplus", "depth": "2",
                                    "width": str(width), "alpha": str(alpha), "seed": str(seed)},
                   {"run": {"dynamics": dyn, "n_train": 200, "architecture": "fc",
                            "image_shape": None}}, 1)


def test_jobs_differing_only_in_counts_share_a_representative():
    # N sets the number of steps, not their cost: same class; width and input size do not
    assert shape_class(_train(n=1000), CONFIG) == shape_class(_train(n=200), CONFIG)
    assert shape_class(_train(width=64), CONFIG) != shape_class(_train(width=128), CONFIG)
    assert shape_class(_train(dataset="a"), CONFIG) != shape_class(_train(dataset="b"), CONFIG)
    # a pack of 2 seeds and a lone seed (padded to 2 rows by packed_sgd) cost the same step
    assert shape_class(_train(seeds=(0,)), CONFIG) == shape_class(_train(seeds=(0, 1)), CONFIG)
    assert shape_class(_train(seeds=range(10)), CONFIG) != shape_class(_train(), CONFIG)
    # Geiger: alpha and seed are not shape
    assert shape_class(_geiger(0.1, 0), CONFIG) == shape_class(_geiger(100.0, 3), CONFIG)
    assert shape_class(_geiger(0.1, 0), CONFIG) != shape_class(_geiger(0.1, 0, 64), CONFIG)
    jobs = [_train(n=1000), _train(n=200), _train(width=128), _geiger(1, 0), _geiger(2, 1),
            JobInfo("mori_ueda_cube", {"study": "s"}, {}, 1)]
    reps = representatives(jobs, CONFIG)
    assert sorted(len(v) for v in reps.values()) == [1, 1, 2, 2]
    kinds = {c.rule: c.kind for c in reps}
    assert kinds["mori_ueda_cube"] == "unprobed" and kinds["mori_ueda_train"] == "packed_fc"
    # every job is under exactly one class, the first job of a class is its representative
    assert sum(len(v) for v in reps.values()) == len(jobs)
    assert reps[shape_class(jobs[1], CONFIG)][0] is jobs[0]


def test_work_counts_follow_the_config():
    w = job_work(_train(n=1000), CONFIG)
    assert w["step_M2"] == 100 * 20  # max_epochs x ceil(N / B)
    assert w["evalrow_M2"] == 10 * 1000 + 500  # a full-set check every 10 epochs, one test
    assert job_work(_train(n=1010), CONFIG)["step_M2"] == 100 * 21  # the short last batch
    assert job_work(_geiger(0.1, 0), CONFIG) == {"fixed": 1.0, "step": 1000.0}
    gram = JobInfo("gram", {"dataset": "a", "kernel": "k", "depth": "3"},
                   {"spec": {"activation": "relu"}, "block_size": 64}, 1)
    assert job_work(gram, CONFIG)["entry"] == 1000 * 1001 / 2 + 500 * 1000


def test_slurm_requests_precedence_and_expressions():
    job = JobInfo("kernel_regression", {"n_train": "30000"}, {}, 1,
                  extra={"rule_resources": {"runtime": 60, "mem_mb": 8000}})
    profile = {"default-resources": {"runtime": 30, "mem_mb": 4000},
               "set-resources": {"kernel_regression": {
                   "mem_mb": "4000 + 16 * int(wildcards.n_train) ** 2 // 10 ** 6"}},
               "set-threads": {"kernel_regression": 8}}
    req = requests(job, profile)
    assert req["mem_mb"] == 4000 + 16 * 30000**2 // 10**6  # the profile's expression
    assert req["runtime"] == 60 and req["source"]["runtime"] == "rule"
    assert req["threads"] == 8 and req["gpu"] == 0
    other = JobInfo("mori_ueda_cube", {}, {}, 1)
    assert requests(other, profile)["runtime"] == 30  # default-resources


def test_study_resources_reach_the_probe(tmp_path):
    # a study's `resources:` block (config/paper.yaml's place for cluster requests) is what
    # the probe checks against, under a profile that names no study rule
    from depthlab.probe.jobs import enumerate_jobs

    cfg = yaml.safe_load(TINY.read_text())
    cfg["studies"]["tiny"]["resources"] = {"mori_ueda_train": {
        "threads": 3, "gpu": 1, "runtime": 600, "mem_mb": 9000, "cpus_per_task": 3}}
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = enumerate_jobs(config, workdir=tmp_path)
    profile = {"default-resources": {"runtime": 30, "mem_mb": 4000, "cpus_per_task": 1}}
    train = [j for j in jobs if j.rule == "mori_ueda_train"]
    assert train
    for job in train:
        req = requests(job, profile)
        assert (req["runtime"], req["mem_mb"], req["gpu"], req["cpus_per_task"]) == \
            (600, 9000, 1, 3), req
        assert req["source"]["gpu"] == "rule" and req["threads"] == 3
    # a job the block leaves out keeps its rule's own requests, and no GPU
    cube = requests(next(j for j in jobs if j.rule == "mori_ueda_cube"), profile)
    assert (cube["runtime"], cube["mem_mb"], cube["gpu"], cube["cpus_per_task"]) == \
        (30, 4000, 0, 1)


def test_probe_end_to_end_on_tiny_config(tmp_path):
    # a profile whose train request is far too small: the check must flag it
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({
        "default-resources": {"runtime": 30, "mem_mb": 4000},
        "set-resources": {"mori_ueda_train": {"runtime": 0, "mem_mb": 10}},
        "set-threads": {"mori_ueda_train": 1}}))
    out = tmp_path / "probe"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "depthlab.probe", "--configfile", str(TINY), "--out", str(out),
         "--profile", str(profile), "--budget", "15", "--max-rep", "3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = list(csv.DictReader(open(out / "jobs.csv")))
    dry = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "-n", "--quiet",
                          "rules", "--configfile", str(TINY), "--forceall"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    total = [ln.split()[-1] for ln in dry.stdout.splitlines() if ln.startswith("total")]
    assert total and len(jobs) == int(total[0])  # every job of the DAG, no more, no less
    train = [j for j in jobs if j["rule"] == "mori_ueda_train"]
    assert train and all(j["status"] == "measured" for j in train)
    assert all(float(j["core_s"]) > 0 and float(j["mem_pred_mb"]) > 100 for j in train)
    assert {j["status"] for j in jobs if j["rule"] == "mori_ueda_cube"} == {"unprobed"}
    cost = {(r["study"], r["rule"]): r for r in csv.DictReader(open(out / "cost.csv"))}
    row = cost[("tiny", "mori_ueda_train")]
    assert int(row["jobs"]) == len(train) and float(row["core_hours"]) > 0
    assert "request runtime" in row["flags"] and "request mem_mb" in row["flags"]
    reps = list(csv.DictReader(open(out / "representatives.csv")))
    assert all("synthetic" in r["data"] for r in reps if r["status"] == "measured")
    assert f"Measured on: {cpu_model()}," in (out / "report.md").read_text()  # any vendor

    # --reuse: a request edit is re-planned from the measurements, without probing again
    profile.write_text(yaml.safe_dump({
        "default-resources": {"runtime": 30, "mem_mb": 4000},
        "set-resources": {"mori_ueda_train": {"runtime": 10**6, "mem_mb": 10**6}},
        "set-threads": {"mori_ueda_train": 1}}))
    again = tmp_path / "again"
    proc = subprocess.run(
        [sys.executable, "-m", "depthlab.probe", "--configfile", str(TINY), "--out", str(again),
         "--profile", str(profile), "--reuse", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "0 classes left to probe" in proc.stdout
    row2 = {(r["study"], r["rule"]): r for r in csv.DictReader(open(again / "cost.csv"))}[
        ("tiny", "mori_ueda_train")]
    assert row2["flags"] == ""  # the new request passes
    # the earlier run's numbers, unrounded: the same prediction to the last digit written
    assert row2["core_hours"] == row["core_hours"]
    assert row2["largest_mem_mb"] == row["largest_mem_mb"]
    first = {j["job"]: j for j in jobs}
    assert all(j["mem_pred_mb"] == first[j["job"]]["mem_pred_mb"]
               for j in csv.DictReader(open(again / "jobs.csv")) if j["mem_pred_mb"])


def test_study_probes_are_found_by_name():
    """A study whose jobs run its own trainer brings its probe (depthlab.studies.<kind>.probe,
    ``PROBE``); the shared probe package finds it by the kind's name, imports no study package
    (tests/unit/test_boundary.py) and measures through it."""
    from depthlab.probe import kinds as K

    assert {"packed_fc", "gram", "cholesky", "geiger", "xiao", "nichani"} <= set(K.KINDS)
    assert "mori_ueda" not in K.KINDS and "unprobed" not in K.KINDS  # no hook: not probed
    assert K.KINDS.get("unprobed") is None  # an unknown kind is a KeyError, not an import
    xiao = K.KINDS["xiao"]
    assert xiao.measure.__module__ == "depthlab.studies.xiao.probe"
    assert K.KINDS["geiger"].dtype == "float64" and xiao.dtype == "float32"
    shape = {"d": 12, "depth": 2, "width": 16, "batch": 8, "members": 2, "dtype": "float32",
             "n_train": 64}
    sec = xiao.measure(shape, 2)
    assert sec["step"] > 0 and sec["fixed"] >= 0
    assert xiao.cost(shape)["step"] > 0 and xiao.memory(shape) > 0
    assert xiao.shrink({**shape, "batch": 64}) == {**shape, "batch": 32}


def test_each_study_plans_its_own_rules():
    """The per-rule plans (shape, work, data size, checkpointing) live in each study's hook
    (depthlab.studies.<kind>.probe.RULES), found from the rule name's kind: every rule a hook
    plans is a rule of that study's rules file, and the shared probe package plans only the
    shared rules (tests/unit/test_boundary.py: it names no study rule)."""
    import re

    from depthlab.probe import kinds as K
    from depthlab.probe.shapes import SHARED_RULES, RuleProbe, rule_probe

    planned = {}
    for kind in K.study_hooks():
        rules = getattr(K.study_hook(kind), "RULES", {})
        smk = (REPO / "rules" / "studies" / f"{kind}.smk").read_text()
        defined = set(re.findall(r"^rule (\w+):", smk, flags=re.M))
        assert set(rules) <= defined, (kind, set(rules) - defined)
        for rule, rp in rules.items():
            assert isinstance(rp, RuleProbe) and rule_probe(rule) is rp
            assert rp.kind in K.KINDS, (rule, rp.kind)  # a shared or the study's probe
            planned[rule] = rp.kind
    # Mori-Ueda's rules run the shared packed trainer: a shared probe, its own mapping
    assert planned["mori_ueda_train"] == planned["mori_ueda_select_lr"] == "packed_fc"
    assert {planned[r] for r in ("geiger_train", "xiao_train", "nichani_resnet")} == \
        {"geiger", "xiao", "nichani"}
    assert set(SHARED_RULES) == {"gram", "kernel_regression"}
    # a study rule its hook does not plan, and a rule of no kind: counted, unprobed
    assert rule_probe("lee_cube") is None and rule_probe("mori_ueda_cube") is None
    assert rule_probe("claims") is None
    assert shape_class(JobInfo("lee_cube", {}, {}, 1), CONFIG).kind == "unprobed"


def test_the_search_is_planned_as_select_lr_packs_it():
    """The lr search's packs (`fold_packs`): with pack_folds, equal folds share a pack (3000
    samples in 3 folds of 2000 + 1000: the 4 init points as one pack of 12, each suggestion
    as one of 3); without it, one fold per pack (init points 4 rows, a suggestion padded to
    2), 3 packs per evaluation."""
    wc = {"study": "s", "dataset": "a", "n_train": "3000", "depth": "2", "width": "64"}
    search = {"n_folds": 3, "n_iter": 2, "init_points": 4}
    steps = 100 * math.ceil(2000 / 50)  # epochs x batches of the 2000 training samples
    evalrows = 10 * 2000 + 1000  # 10 checks of the training folds + the validation fold
    packed = JobInfo("mori_ueda_select_lr", wc, {"training": TRAINING, "search": search}, 1)
    assert shape_class(packed, CONFIG).shape["M"] == (3, 12)
    assert job_work(packed, CONFIG) == {"fixed": 3.0, "step_M12": steps, "step_M3": 2 * steps,
                                        "evalrow_M12": evalrows, "evalrow_M3": 2 * evalrows}
    alone = JobInfo("mori_ueda_select_lr", wc,
                    {"training": TRAINING, "search": {**search, "pack_folds": False}}, 1)
    assert shape_class(alone, CONFIG).shape["M"] == (2, 4)
    assert job_work(alone, CONFIG) == {"fixed": 9.0, "step_M4": 3 * steps,
                                       "step_M2": 6 * steps, "evalrow_M4": 3 * evalrows,
                                       "evalrow_M2": 6 * evalrows}
    # memory: the largest multi-fold pack's copies of its folds' sets (12 members x 3000
    # samples x d = 100 float32); one-fold packs share the job's arrays and add nothing
    from depthlab.probe.plan import data_mb

    assert data_mb(packed, CONFIG) - data_mb(alone, CONFIG) == 12 * 3000 * 100 * 4 / 2**20


def test_checkpointing_as_each_rule_says():
    from depthlab.probe.plan import has_checkpointing

    train = _train()
    assert not has_checkpointing(train)
    train.params["checkpoint"] = "results/s/checkpoints/x"
    assert has_checkpointing(train)
    # the search's training block carries checkpoint_every, which the search overrides
    # with 0 (studies/mori_ueda/lr_search.py): not resumable, whatever the block says
    search = JobInfo("mori_ueda_select_lr", train.wildcards,
                     {"training": {**TRAINING, "checkpoint_every": 5},
                      "search": {"n_folds": 5, "n_iter": 4, "init_points": 3}}, 1)
    assert not has_checkpointing(search)
    assert has_checkpointing(JobInfo("mori_ueda_train", train.wildcards,
                                     {"training": {**TRAINING, "checkpoint_every": 5},
                                      "members": train.params["members"]}, 1))


def test_nichani_jobs_read_their_named_dataset(tmp_path):
    """A Nichani study names its dataset (`data: {dataset: NAME}`): the probe reads the
    classes, sizes and per-class counts from the config's `datasets` block (the raw config
    file has no copy of them in the study block), on the DAG Snakemake plans."""
    from depthlab.config import load_yaml_strict
    from depthlab.probe.jobs import enumerate_jobs
    from depthlab.probe.plan import data_mb

    cfgfile = REPO / "tests" / "data" / "tiny_nichani.yaml"
    config = load_yaml_strict(cfgfile)
    jobs = {j.label: j for j in enumerate_jobs(cfgfile, workdir=tmp_path)
            if j.rule in ("nichani_train", "nichani_resnet")}
    fc = jobs["nichani_train[job=fc_d2,study=nichani]"]
    cls = shape_class(fc, config)
    # digits_3x10: 3 classes of 8x8 digits; the study's fully_conv width 4, batch 8
    assert cls.kind == "nichani" and cls.shape == {
        "model": "fully_conv", "depth": 2, "width": 4, "kernel_size": 3, "batch": 8,
        "image_size": 8, "n_classes": 3}
    # 2 seeds x 3 epochs x (ceil(12 / 8) steps + ceil(18 / 8) / 3 test batches)
    assert job_work(fc, config) == {"fixed": 2.0, "step": 18.0}
    assert data_mb(fc, config) == 3 * (4 + 6) * 3 * 8**2 * 8 / 2**20
    rn = jobs["nichani_resnet[job=rn_1-1-1-1_w2_k3_s0,study=nichani]"]
    assert shape_class(rn, config).shape["blocks"] == (1, 1, 1, 1)
    assert job_work(rn, config) == {"fixed": 1.0, "step": 2 * 3.0}  # 1 seed, 2 epochs


def test_checkpointed_jobs_get_the_profiles_retries():
    """A checkpointed job killed at its wall time is resubmitted (`retries`) and resumes:
    it fits when its predicted time fits in (retries + 1) attempts, and the flag says how
    many retries it needs; a job without checkpoints must fit one attempt."""
    from depthlab.probe.plan import RUNTIME_MARGIN, cost_table

    def row(wall_h, attempts, checkpointed):
        return {"study": "s", "rule": "r", "job": "j", "bound": False, "gpu": 0, "threads": 1,
                "runtime_min": 60, "mem_mb": 10**6, "checkpointed": checkpointed,
                "attempts": attempts, "status": "measured", "core_s": wall_h * 3600,
                "gpu_s_est": 0.0, "wall_s": wall_h * 3600, "mem_pred_mb": 1.0}

    fits = 2.9 / RUNTIME_MARGIN  # hours: 3 attempts of 1 h with the margin
    assert cost_table([row(fits, 3, True)])[0]["flags"] == ""
    flag = cost_table([row(10 / RUNTIME_MARGIN, 3, True)])[0]["flags"]
    assert "checkpointed" in flag and "retries to 9" in flag
    flag = cost_table([row(fits, 1, False)])[0]["flags"]
    assert "request runtime 180 min" in flag


# The paper config's requests that the probe's check still flags, each with the knob the
# README ("What reproducing the papers costs") names for it: counted at a cap no Slurm
# request can hold (geiger), a global retry count (lee_train), a partition limit
# (mori_ueda_select_lr). Anything else flagged is a request to fix.
KNOWN_SHORTFALLS = {
    ("geiger_fc", "geiger_train"), ("geiger_cnn", "geiger_train"),
    ("geiger_cnn", "geiger_lazy"), ("lee_deep_narrow", "lee_train"),
    ("mori_ueda", "mori_ueda_select_lr"), ("mori_ueda_mse", "mori_ueda_select_lr"),
}


def test_shipped_requests_pass_their_own_check(tmp_path):
    """Every request of config/paper.yaml and profiles/slurm is at or above what the probe
    measured on the machine of docs/probe (re-planned from its measurements with --reuse),
    or is a known shortfall whose knob the README names."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    out = tmp_path / "probe"
    proc = subprocess.run(
        [sys.executable, "-m", "depthlab.probe", "--configfile", "config/paper.yaml",
         "--out", str(out), "--reuse", "docs/probe", "--budget", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " 0 classes left to probe" in proc.stdout  # docs/probe covers every class
    rows = list(csv.DictReader(open(out / "cost.csv")))
    flagged = {(r["study"], r["rule"]) for r in rows if r["flags"]}
    assert flagged == KNOWN_SHORTFALLS, flagged ^ KNOWN_SHORTFALLS
    probed = {r["rule"] for r in rows if r["status"] != "unprobed"}
    # every job kind that trains or computes kernels is probed
    assert {"geiger_lazy", "xiao_sweep", "lee_train", "lee_gram", "lee_kernel", "lee_toy",
            "nichani_kernel", "nichani_linear", "gram", "kernel_regression"} <= probed
    section = (REPO / "README.md").read_text().split("## What reproducing the papers costs")[1]
    for _, rule in KNOWN_SHORTFALLS:
        assert f"`{rule}`" in section.split("\n## ")[0], rule
