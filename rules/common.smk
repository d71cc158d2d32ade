# Config validation, shared names and input functions every study uses.
# Study-specific tables and input functions live in rules/studies/<kind>.smk.
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
try:
    for _path in workflow.configfiles:
        dlc.load_yaml_strict(_path)
    # the executor (and so workflow.dryrun) is set only after parsing; the CLI's -n is known
    _dryrun = workflow.dryrun or getattr(workflow.output_settings, "dryrun", False)
    CONFIG_WARNINGS = dlc.check_config(config, missing_data="warn" if _dryrun else "error")
    # seed_offset moves every seed (depthlab.seeds), after validation filled the defaults in
    for _key in apply_seed_offset(config):
        logger.info(f"seed_offset {config['seed_offset']}: shifted {_key}")
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
DATASETS = config["datasets"]
KERNELS = config["kernels"]
KERNEL_REGRESSION = config["kernel_regression"]
THREADS = config["threads"]
# Editing the shared figure plumbing reruns every figure (and nothing upstream).
PLOTTING_CODE = os.path.join(workflow.basedir, "src", "depthlab", "plotting.py")


def _alternatives(names):
    return "|".join(sorted(names)) or "NO_MATCH"


def studies_of_kind(kind):
    return [name for name, study in STUDIES.items() if study["kind"] == kind]


def study_plugin(name):
    """The plug-in module of study `name` (depthlab.studies.<kind>)."""
    return dls.plugin(STUDIES[name]["kind"])


wildcard_constraints:
    study=_alternatives(STUDIES),
    dataset=_alternatives(DATASETS),
    kernel=_alternatives(KERNELS) if KERNELS else "NO_MATCH",
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
