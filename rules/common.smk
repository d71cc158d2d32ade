# Config validation, grid expansion, wildcard constraints and input functions.
import os
from dataclasses import asdict

from snakemake.utils import validate

from depthlab import config as dlc


validate(config, "../workflow/schemas/config.schema.yaml")
try:
    dlc.check_config(config)
except dlc.ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None

R = config.get("results", "results")
# Library modules that figure rules declare as inputs: editing them reruns figures only.
PLOTTING_CODE = os.path.join(workflow.basedir, "src", "depthlab", "plotting.py")
GEIGER_PLOTTING_CODE = os.path.join(workflow.basedir, "src", "depthlab", "geiger_plots.py")
STUDIES = config["studies"]
DATASETS = config["datasets"]
KERNELS = config.get("kernels", {})
KERNEL_REGRESSION = dlc.kernel_regression_settings(config)
# Every training job of every study, expanded once: input functions look jobs up here
# (recomputing per job made the paper dry-run quadratic in the job count).
STUDY_JOBS = {
    name: dlc.jobs(study) for name, study in STUDIES.items() if study["kind"] == "mori_ueda"
}


def _alternatives(names):
    return "|".join(sorted(names)) or "NO_MATCH"



def studies_of_kind(kind):
    return [name for name, study in STUDIES.items() if study["kind"] == kind]


MORI_UEDA_STUDIES = studies_of_kind("mori_ueda")
GEIGER_STUDIES = studies_of_kind("geiger")


wildcard_constraints:
    study=_alternatives(STUDIES),
    dataset=_alternatives(DATASETS),
    kernel=_alternatives(KERNELS) if KERNELS else "NO_MATCH",
    n_train=r"\d+",
    depth=r"\d+",
    width=r"\d+",
    job=r"all|lr([0-9.e+-]+|cv)(_seed\d+)?|seed\d+",
    activation="softplus|relu",
    alpha=r"[0-9][0-9.e+-]*",
    seed=r"\d+",


def dataset_file(wildcards):
    return f"{R}/datasets/{wildcards.dataset}.h5"


def run_files(study_name):
    return [
        f"{R}/{study_name}/runs/{k.dataset}/N{k.n_train}/L{k.depth}_H{k.width}/{k.job}.h5"
        for k in STUDY_JOBS[study_name]
    ]


def regression_files(study_name):
    baseline = dlc.kernel_baseline(STUDIES[study_name])
    return [
        f"{R}/kernels/{ds}/{baseline['kernel']}/L{depth}/regression_N{n}.h5"
        for ds, n, depth in dlc.kernel_regressions(STUDIES[study_name])
    ]


def lr_search_file(study, dataset, n_train, depth, width):
    return f"{R}/{study}/lr_search/{dataset}/N{n_train}/L{depth}_H{width}.h5"


def train_inputs(wildcards):
    """The dataset, plus the learning-rate search when some member's lr is chosen by CV."""
    inputs = {"data": dataset_file(wildcards)}
    members = job_members(wildcards)
    if any(m["lr"] == dlc.LR_CV for m in members):
        inputs["lr_search"] = lr_search_file(
            wildcards.study, wildcards.dataset, wildcards.n_train, wildcards.depth,
            wildcards.width,
        )
    return inputs


def stability_spec(study_name, dataset):
    """The local-stability settings for members trained on `dataset` ({} = none)."""
    spec = STUDIES[study_name].get("local_stability", {})
    return spec if dataset in spec.get("datasets", []) else {}


def label_stability_files(study_name):
    spec = STUDIES[study_name].get("local_stability")
    if not spec:
        return []
    return [f"{R}/{study_name}/label_stability/{ds}.h5" for ds in spec.get("label_datasets", [])]


def job_members(wildcards):
    key = dlc.JobKey(wildcards.dataset, int(wildcards.n_train), int(wildcards.depth),
                     int(wildcards.width), wildcards.job)
    try:
        return [asdict(m) for m in STUDY_JOBS[wildcards.study][key]]
    except KeyError:
        raise WorkflowError(f"no training job {key} in the grids of study {wildcards.study}")


def figure_caption(prefix, fig):
    """The figure's own caption (report/{prefix}_{fig}.rst) or a generic one."""
    specific = os.path.join(workflow.basedir, "report", f"{prefix}_{fig}.rst")
    name = f"{prefix}_{fig}.rst" if os.path.exists(specific) else "figure.rst"
    return f"../report/{name}"


def figure_files(study_name):
    return [
        f"{R}/{study_name}/figures/{fig}.{ext}"
        for fig in STUDIES[study_name]["figures"]
        for ext in ("pdf", "png")
    ]


def all_targets():
    targets = []
    for name, study in STUDIES.items():
        targets.append(f"{R}/{name}/cube.nc")
        targets.extend(figure_files(name))
        if study["kind"] == "mori_ueda":
            targets.append(f"{R}/{name}/summary.csv")
        if study["kind"] == "geiger" and "table1" in study:
            targets.append(f"{R}/{name}/table1.csv")
    return targets


# Geiger studies: one job per run, one frozen-NTK prediction per (activation, depth, width,
# seed), looked up in these tables.
GEIGER_RUNS = {name: dlc.geiger_runs(STUDIES[name]) for name in GEIGER_STUDIES}


def geiger_dataset_file(wildcards):
    return f"{R}/datasets/{STUDIES[wildcards.study]['dataset']}.h5"


def geiger_lazy_files(study_name):
    return [
        f"{R}/{study_name}/lazy/{act}_L{depth}_h{width}/seed{seed}.h5"
        for act, depth, width, seed in dlc.geiger_lazy_cells(STUDIES[study_name])
    ]


def geiger_run_files(study_name):
    return [f"{R}/{study_name}/runs/{r.arch}/{r.name}.h5" for r in GEIGER_RUNS[study_name]]


def geiger_common_params(wildcards):
    """Everything a Geiger job needs besides its wildcards (one params entry)."""
    study = STUDIES[wildcards.study]
    return {
        "dynamics": dlc.geiger_dynamics(study),
        "n_train": study["n_train"],
        "architecture": study.get("architecture", "fc"),
        "image_shape": dlc.geiger_image_shape(study, DATASETS[study["dataset"]]),
    }
