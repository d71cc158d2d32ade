# Mori & Ueda, "Is deeper better? It depends on locality of relevant features": packed SGD
# training jobs, cross-validated learning rates, local stability, the cube and the summary
# table. Figures come from the generic rule in rules/figures.smk.
from dataclasses import asdict

from depthlab.studies.mori_ueda import grid as mori_grid

MORI_UEDA_STUDIES = studies_of_kind("mori_ueda")
# Every training job of every Mori-Ueda study, expanded once: input functions look jobs up
# here (recomputing per job made the paper dry-run quadratic in the job count).
MORI_UEDA_JOBS = {name: mori_grid.jobs(STUDIES[name]) for name in MORI_UEDA_STUDIES}


def mori_ueda_run_files(study_name):
    return [
        f"{R}/{study_name}/runs/{k.dataset}/N{k.n_train}/L{k.depth}_H{k.width}/{k.member_set}.h5"
        for k in MORI_UEDA_JOBS[study_name]
    ]


def mori_ueda_regression_files(study_name):
    baseline = mori_grid.kernel_baseline(STUDIES[study_name])
    return [
        f"{R}/kernels/{ds}/{baseline['kernel']}/L{depth}/regression_N{n}.h5"
        for ds, n, depth in mori_grid.kernel_regressions(STUDIES[study_name])
    ]


def mori_ueda_lr_search_file(study, dataset, n_train, depth, width):
    return f"{R}/{study}/lr_search/{dataset}/N{n_train}/L{depth}_H{width}.h5"


def mori_ueda_job_members(wildcards):
    key = mori_grid.JobKey(wildcards.dataset, int(wildcards.n_train), int(wildcards.depth),
                           int(wildcards.width), wildcards.member_set)
    try:
        return [asdict(m) for m in MORI_UEDA_JOBS[wildcards.study][key]]
    except KeyError:
        raise WorkflowError(f"no training job {key} in the grids of study {wildcards.study}")


def mori_ueda_train_inputs(wildcards):
    """The dataset, plus the learning-rate search when some member's lr is chosen by CV."""
    inputs = {"data": dataset_file(wildcards)}
    if any(m["lr"] == mori_grid.LR_CV for m in mori_ueda_job_members(wildcards)):
        inputs["lr_search"] = mori_ueda_lr_search_file(
            wildcards.study, wildcards.dataset, wildcards.n_train, wildcards.depth,
            wildcards.width,
        )
    return inputs


def mori_ueda_stability_spec(study_name, dataset):
    """The local-stability settings for members trained on `dataset` ({} = none)."""
    spec = STUDIES[study_name].get("local_stability", {})
    return spec if dataset in spec.get("datasets", []) else {}


def mori_ueda_label_stability_files(study_name):
    spec = STUDIES[study_name].get("local_stability")
    if not spec:
        return []
    return [f"{R}/{study_name}/label_stability/{ds}.h5" for ds in spec["label_datasets"]]


# One job trains every member of one architecture cell that the study packs together
# (training.pack), as a single vectorized model; results land per member.


rule select_lr:
    input:
        data=dataset_file,
    output:
        f"{R}/{{study}}/lr_search/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}.h5",
    log:
        f"{R}/logs/{{study}}/lr_search/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}.log",
    wildcard_constraints:
        study=_alternatives(MORI_UEDA_STUDIES),
    params:
        training=lambda wc: mori_grid.training_settings(STUDIES[wc.study]),
        search=lambda wc: mori_grid.lr_selection(STUDIES[wc.study]),
    threads: THREADS["train"]
    resources:
        runtime=240,
        mem_mb=4000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/mori_ueda/select_lr.py"


rule train:
    input:
        unpack(mori_ueda_train_inputs),
    output:
        f"{R}/{{study}}/runs/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}/{{member_set}}.h5",
    log:
        f"{R}/logs/{{study}}/train/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}/{{member_set}}.log",
    wildcard_constraints:
        study=_alternatives(MORI_UEDA_STUDIES),
        # the members of one job: the unpacked axes ("lr0.1_seed3", "lrcv", "seed0") or "all"
        member_set=r"all|lr([0-9.e+-]+|cv)(_seed\d+)?|seed\d+",
    params:
        training=lambda wc: mori_grid.training_settings(STUDIES[wc.study]),
        members=mori_ueda_job_members,
        local_stability=lambda wc: mori_ueda_stability_spec(wc.study, wc.dataset),
        # Outside the output so a killed job keeps it and the rerun resumes.
        checkpoint=lambda wc: (
            f"{R}/{wc.study}/checkpoints/{wc.dataset}/N{wc.n_train}/"
            f"L{wc.depth}_H{wc.width}/{wc.member_set}.pt"
        ),
    threads: THREADS["train"]
    resources:
        runtime=120,
        mem_mb=4000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/mori_ueda/train.py"


# s(v) of the label rule itself (Mori-Ueda Fig. 5), on the same test inputs as the nets.
rule label_stability:
    input:
        data=dataset_file,
    output:
        f"{R}/{{study}}/label_stability/{{dataset}}.h5",
    log:
        f"{R}/logs/{{study}}/label_stability/{{dataset}}.log",
    wildcard_constraints:
        study=_alternatives(MORI_UEDA_STUDIES),
    params:
        spec=lambda wc: STUDIES[wc.study]["local_stability"],
    group:
        "datasets"
    resources:
        runtime=30,
        mem_mb=4000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/mori_ueda/label_stability.py"
rule cube:
    input:
        runs=lambda wc: mori_ueda_run_files(wc.study),
        regressions=lambda wc: mori_ueda_regression_files(wc.study),
        label_stability=lambda wc: mori_ueda_label_stability_files(wc.study),
    output:
        f"{R}/{{study}}/cube.nc",
    log:
        f"{R}/logs/{{study}}/cube.log",
    wildcard_constraints:
        study=_alternatives(MORI_UEDA_STUDIES),
    params:
        study=lambda wc: STUDIES[wc.study],
        datasets=lambda wc: {
            name: DATASETS[name]
            for name in sorted({ds for g in STUDIES[wc.study]["grids"] for ds in g["datasets"]})
        },
        kernels=KERNELS,
    group:
        "summaries"
    resources:
        runtime=30,
        mem_mb=4000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/mori_ueda/cube.py"
# Per figure and label: sign and size of the depth effect and the NTK gap (CSV, and
# printed), so a reader sees at a glance whether the paper's claims hold in this run.
rule mori_ueda_summary:
    input:
        cube=f"{R}/{{study}}/cube.nc",
    output:
        f"{R}/{{study}}/summary.csv",
    log:
        f"{R}/logs/{{study}}/summary.log",
    wildcard_constraints:
        study=_alternatives(MORI_UEDA_STUDIES),
    params:
        figures=lambda wc: STUDIES[wc.study]["figures"],
        depths=lambda wc: STUDIES[wc.study]["summary"],
    group:
        "summaries"
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/mori_ueda/summary_table.py"
