# Config validation, shared names and input functions every study uses.
# Study-specific tables and input functions live in rules/studies/<kind>.smk.
#
# THE RULES-FILE API: the names a study's rules file (rules/studies/<kind>.smk) may use.
# Anything else defined here is plumbing of the shared rules and may change.
#
#   RESULTS                the results directory (config `results`); every output under it
#   STUDIES                {study name: validated study block} (defaults filled in; its
#                          `resources` block is taken out, see job_threads below)
#   DATASETS, KERNELS      the config's `datasets` and `kernels` blocks
#   KERNEL_REGRESSION      the config's `kernel_regression` block (jitter, block_size)
#   THREADS                the config's `threads` ({train, gram}): laptop-scale defaults
#   studies_of_kind(kind)  the names of the studies of `kind`, in config order
#   study_constraint(kind) the wildcard regex matching exactly those studies. EVERY rule of
#                          a rules file whose output has `{study}` declares
#                              wildcard_constraints:
#                                  study=study_constraint("<kind>"),
#                          else another kind's rule with the same output path (every cube is
#                          {study}/cube.nc) could claim its study; a rule without it is
#                          refused at load (check_study_constraints, run in figures.smk).
#   alternatives(names)    the regex matching exactly `names` (for other wildcards)
#   dataset_file           input function: the shared dataset file of wildcard `dataset`
#   study_plugin(name)     the plug-in module of study `name` (depthlab.studies.<kind>)
#   study_warnings(name, block)  the config warnings about the keys of `block` of a study
#                          (a cube stores them as a param)
#   job_threads(job, default)    `threads:` of a study job, and
#   job_resources(job, **defaults)  its `resources:` (unpacked with **): the cluster
#                          requests (threads, runtime, mem_mb, gpu, cpus_per_task, ...) come
#                          from the study's optional `resources.<job>` block (schema
#                          workflow/schemas/resources.schema.yaml; config/paper.yaml sets
#                          them), else the rule's own defaults; `job` is the rule name. So the
#                          shared Slurm profile names no study rule.
#
# Rule names: every rule of a rules file starts with its kind (`<kind>_...`, else it is
# refused at load); figure rules are `<kind>_<figure>` (rules/figures.smk), and a figure
# named like another rule of its kind is refused at load.
import os
import re

from depthlab import config as dlc
from depthlab import studies as dls
from depthlab.seeds import apply_seed_offset


# Schemas (top level and each study's plug-in schema, defaults filled in) and cross-field
# checks, before any job: a bad value fails here with a message naming its key. Snakemake
# loads config files keeping the last of duplicate keys; re-reading them strictly refuses
# those. Input data a real run needs but cannot find (MNIST files) is an error, in a
# dry-run a warning. Warnings (valid settings that change what runs) are logged here and
# the study's are stored in its cube (attribute config_warnings).
# A job's re-parse (Slurm) skips importing the plug-ins' lazy figure and claims modules to
# check them: the main process has (depthlab.studies.plugin).
dls.lazy_checks(workflow.is_main_process)
try:
    for _path in workflow.configfiles:
        dlc.load_yaml_strict(_path)
    # the executor (and so workflow.dryrun) is set only after parsing; the CLI's -n is known
    _dryrun = workflow.dryrun or getattr(workflow.output_settings, "dryrun", False)
    CONFIG_WARNINGS = dlc.check_config(config, missing_data="warn" if _dryrun else "error")
    # seed_offset moves every seed (depthlab.seeds), after validation filled the defaults in
    for _key in apply_seed_offset(config):
        logger.info(f"seed_offset {config['seed_offset']}: shifted {_key}")
    # the dataset draws some nets train on (a study's data_draws), from the final seeds
    _draws = dls.add_dataset_draws(config)
    if _draws:
        logger.info(f"dataset draws per seed: {', '.join(_draws)}")
except dlc.ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
for _message in CONFIG_WARNINGS:
    logger.warning(f"config warning: {_message}")


def study_warnings(study_name, block):
    """The config warnings about the keys of `block` (a slice of study `study_name`, e.g.
    what its cube depends on): stored in the cube, so a warning about a figure or a summary
    reruns no cube."""
    prefix = f"studies.{study_name}."
    return [w for w in CONFIG_WARNINGS if w.startswith(prefix)
            and re.split(r"[.\[: =]", w[len(prefix):], maxsplit=1)[0] in block]

RESULTS = config["results"]
STUDIES = config["studies"]
# A study's `resources` block is what its jobs ask a scheduler for, not what they compute:
# it is taken out of the study block after validation, so no job's params (the study slices
# its rules pass) and so no rerun depends on it. job_threads / job_resources read it here.
STUDY_RESOURCES = {name: study.pop("resources", None) or {} for name, study in STUDIES.items()}
DATASETS = config["datasets"]
KERNELS = config["kernels"]
KERNEL_REGRESSION = config["kernel_regression"]
THREADS = config["threads"]
# Editing the shared figure plumbing reruns every figure (and nothing upstream).
PLOTTING_CODE = os.path.join(workflow.basedir, "src", "depthlab", "plotting.py")


def alternatives(names):
    """The wildcard regex matching exactly `names` (a pattern matching no name when empty)."""
    return "|".join(sorted(re.escape(str(n)) for n in names)) or "NO_MATCH"


def studies_of_kind(kind):
    """The names of the studies of `kind`, in config order."""
    return [name for name, study in STUDIES.items() if study["kind"] == kind]


def study_constraint(kind):
    """The `study` wildcard constraint of each rule in the rules file of `kind`, matching
    only the studies of that kind, so no rule claims another kind's study
    (check_study_constraints)."""
    return alternatives(studies_of_kind(kind))


def study_plugin(name):
    """The plug-in module of study `name` (depthlab.studies.<kind>)."""
    return dls.plugin(STUDIES[name]["kind"])


wildcard_constraints:
    study=alternatives(STUDIES),
    dataset=alternatives(DATASETS),
    kernel=alternatives(KERNELS),
    n_train=r"\d+",
    depth=r"\d+",
    width=r"\d+",
    seed=r"\d+",


def dataset_file(wildcards):
    return f"{RESULTS}/datasets/{wildcards.dataset}.h5"


def figure_caption(kind, fig):
    """The figure's own caption (report/{kind}/{fig}.rst) or the generic one."""
    specific = os.path.join(workflow.basedir, "report", kind, f"{fig}.rst")
    return f"../report/{kind}/{fig}.rst" if os.path.exists(specific) else "../report/figure.rst"


def claims_inputs(study):
    """What a study's claims depend on: the study block without figure titles, so editing a
    title reruns that figure and not the claims (claims name figures, not titles)."""
    out = dict(study)
    if "figures" in out:
        out["figures"] = {name: {k: v for k, v in fig.items() if k != "title"}
                          for name, fig in out["figures"].items()}
    return out


def all_targets():
    """What each study's plug-in says `snakemake` with no target builds, and the claims
    scorecard across studies."""
    per_study = [t for name, study in STUDIES.items()
                 for t in study_plugin(name).targets(name, study, RESULTS)]
    return [*per_study, f"{RESULTS}/claims.csv", f"{RESULTS}/claims.html"]


# ------------------------------------------------------------- jobs' threads and resources
# Each study rule declares what its job needs (threads, runtime, mem_mb, gpu, ...) through
# these two helpers: the rule's own values are the laptop defaults, a study's
# `resources.<rule name>` block overrides them per study (config/paper.yaml sets the cluster
# requests there), so the shared Slurm profile names no study rule. Where no study of the
# config sets a request, the rule gets the plain default value, exactly what it declared
# before these helpers (the laptop run schedules the same jobs the same way).

# Requests a study may set that rules need not declare, and their value for a study that
# does not set them where another study of the config does (cpus_per_task = threads).
_REQUEST_FALLBACK = {"gpu": lambda threads: 0, "cpus_per_task": lambda threads: threads}
# Job name (the name of its rule) -> kind, for each job reading its resources; a study's
# `resources` key naming no such job of its kind is refused (check_job_resources).
JOB_RESOURCE_RULES = {}


def _job_kind(job):
    kinds = {study["kind"] for study in STUDIES.values()}
    kind = next((k for k in sorted(kinds, key=len, reverse=True)
                 if job.startswith(f"{k}_")), None)
    if kind is None:
        raise WorkflowError(f"job_threads/job_resources({job!r}): a study job is named by its "
                            f"rule, which starts with its kind (one of {sorted(kinds)})")
    JOB_RESOURCE_RULES[job] = kind
    return kind


def _requested(job, key):
    """The studies (of job's kind) whose `resources.<job>` block sets `key`."""
    kind = _job_kind(job)
    return [name for name in studies_of_kind(kind)
            if key in (STUDY_RESOURCES[name].get(job) or {})]


def job_threads(job, default):
    """The threads of study job `job` (named by its rule) -- the study's
    `resources.<job>.threads`, else `default` (e.g. THREADS["train"])."""
    if not _requested(job, "threads"):
        return default

    def threads(wildcards):
        return (STUDY_RESOURCES[wildcards.study].get(job) or {}).get("threads", default)

    return threads


def job_resources(job, **defaults):
    """The resources of study job `job` (named by its rule), unpacked into its rule as
    `**job_resources(job, runtime=..., mem_mb=...)` -- the defaults (values or functions
    of the wildcards), overridden per study by its `resources.<job>` block."""
    keys = list(defaults)
    for name in studies_of_kind(_job_kind(job)):
        keys += [k for k in (STUDY_RESOURCES[name].get(job) or {})
                 if k != "threads" and k not in keys]
    out = {}
    for key in keys:
        default = defaults.get(key)
        if not _requested(job, key):
            out[key] = default
            continue

        def value(wildcards, threads, key=key, default=default):
            own = STUDY_RESOURCES[wildcards.study].get(job) or {}
            if key in own:
                return own[key]
            if callable(default):
                return default(wildcards)
            if default is not None:
                return default
            return _REQUEST_FALLBACK.get(key, lambda threads: None)(threads)

        out[key] = value
    return out


def check_job_resources():
    """Every `resources` key of a study names a rule of its kind that reads job resources."""
    for name, blocks in STUDY_RESOURCES.items():
        kind = STUDIES[name]["kind"]
        jobs = sorted(j for j, k in JOB_RESOURCE_RULES.items() if k == kind)
        for job in blocks:
            if JOB_RESOURCE_RULES.get(job) != kind:
                raise WorkflowError(
                    f"invalid config: studies.{name}.resources.{job}: no {kind} job of that "
                    f"name reads its resources; the {kind} jobs are {jobs}")


def check_study_constraints(rules):
    """Every rule of a study's rules file (rules/studies/<kind>.smk) is named `<kind>_...`,
    and each whose output has `{study}` constrains it to the studies of its kind
    (study_constraint): without that, a rule of one kind would claim another kind's study
    of the same output path (every cube is {study}/cube.nc) and fail far from the cause (a
    KeyError on a key the study lacks)."""
    studies_dir = os.path.join(workflow.basedir, "rules", "studies")
    for r in rules:
        path = str(r.snakefile)
        if os.path.dirname(os.path.abspath(path)) != os.path.abspath(studies_dir):
            continue
        kind = os.path.splitext(os.path.basename(path))[0]
        # the names of a kind's rules carry the kind, so no two kinds compete for a name
        # (a Mori-Ueda rule named plain `cube` would take that name from every other kind)
        if not r.name.startswith(f"{kind}_"):
            raise WorkflowError(
                f"rule {r.name} in {path} is not named after its kind; name it "
                f"{kind}_{r.name} (every rule of a rules file starts with its kind)")
        if not any("{study" in str(f) for f in r.output):
            continue
        constraint = r.wildcard_constraints.get("study")
        foreign = [n for n, s in STUDIES.items() if s["kind"] != kind
                   and constraint is not None and re.fullmatch(constraint, n)]
        own = [n for n in studies_of_kind(kind)
               if constraint is not None and not re.fullmatch(constraint, n)]
        if constraint is None or foreign or own:
            raise WorkflowError(
                f"rule {r.name} in {path} has {{study}} in its output, but its "
                "`wildcard_constraints:` do not restrict it to the studies of its kind "
                + (f"(it matches {foreign}) " if foreign else "")
                + (f"(it misses {own}) " if own else "")
                + f"; add `wildcard_constraints: study=study_constraint(\"{kind}\")` "
                "(rules/common.smk documents the rules-file API)")
