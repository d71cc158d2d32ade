# Geiger, Spigler, Jacot & Wyart, "Disentangling feature and lazy training in deep neural
# networks": one job per trained net (activation, depth, width, alpha, seed), one per
# frozen-initial-NTK prediction (it does not depend on alpha, so a whole alpha sweep of a
# seed shares it), one cube and Table 1. Figures come from the generic rule in
# rules/figures.smk.
from depthlab.studies.geiger import grid as geiger_grid

GEIGER_STUDIES = studies_of_kind("geiger")
# One job per run, one frozen-NTK prediction per (activation, depth, width, seed), looked up
# in these tables.
GEIGER_RUNS = {name: geiger_grid.geiger_runs(STUDIES[name]) for name in GEIGER_STUDIES}


wildcard_constraints:
    activation=_alternatives(dls.plugin("geiger").ACTIVATIONS),
    alpha=r"[0-9][0-9.e+-]*",


def geiger_dataset_file(wildcards):
    return f"{R}/datasets/{STUDIES[wildcards.study]['dataset']}.h5"


def geiger_lazy_files(study_name):
    return [
        f"{R}/{study_name}/lazy/{act}_L{depth}_h{width}/seed{seed}.h5"
        for act, depth, width, seed in geiger_grid.geiger_lazy_cells(STUDIES[study_name])
    ]


def geiger_run_files(study_name):
    return [f"{R}/{study_name}/runs/{r.arch}/{r.name}.h5" for r in GEIGER_RUNS[study_name]]


def geiger_common_params(wildcards):
    """Everything a Geiger job needs besides its wildcards (one params entry)."""
    study = STUDIES[wildcards.study]
    return {
        "dynamics": geiger_grid.geiger_dynamics(study),
        "n_train": study["n_train"],
        "architecture": study["architecture"],
        "image_shape": geiger_grid.geiger_image_shape(study, DATASETS[study["dataset"]]),
    }


rule geiger_lazy:
    input:
        data=geiger_dataset_file,
    output:
        f"{R}/{{study}}/lazy/{{activation}}_L{{depth}}_h{{width}}/seed{{seed}}.h5",
    log:
        f"{R}/logs/{{study}}/lazy/{{activation}}_L{{depth}}_h{{width}}/seed{{seed}}.log",
    wildcard_constraints:
        study=_alternatives(GEIGER_STUDIES),
    params:
        run=geiger_common_params,
    threads: THREADS["train"]
    resources:
        runtime=120,
        mem_mb=4000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/geiger/lazy.py"


rule geiger_train:
    input:
        data=geiger_dataset_file,
        lazy=f"{R}/{{study}}/lazy/{{activation}}_L{{depth}}_h{{width}}/seed{{seed}}.h5",
    output:
        f"{R}/{{study}}/runs/{{activation}}_L{{depth}}_h{{width}}/alpha{{alpha}}_seed{{seed}}.h5",
    log:
        f"{R}/logs/{{study}}/runs/{{activation}}_L{{depth}}_h{{width}}/alpha{{alpha}}_seed{{seed}}.log",
    wildcard_constraints:
        study=_alternatives(GEIGER_STUDIES),
    params:
        run=geiger_common_params,
    threads: THREADS["train"]
    resources:
        runtime=240,
        mem_mb=4000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/geiger/train.py"


rule geiger_cube:
    input:
        data=geiger_dataset_file,
        runs=lambda wc: geiger_run_files(wc.study),
        lazy=lambda wc: geiger_lazy_files(wc.study),
    output:
        f"{R}/{{study}}/cube.nc",
    log:
        f"{R}/logs/{{study}}/cube.log",
    wildcard_constraints:
        study=_alternatives(GEIGER_STUDIES),
    params:
        study=lambda wc: STUDIES[wc.study],
        dataset=lambda wc: DATASETS[STUDIES[wc.study]["dataset"]],
    group:
        "summaries"
    resources:
        runtime=30,
        mem_mb=8000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/geiger/cube.py"


# Table 1: power-law exponents of the kernel and weight changes in the feature regime,
# next to the paper's values and the predictions 2 / (1 + 1/L) and 1 / (1 + L).
rule geiger_table1:
    input:
        cube=f"{R}/{{study}}/cube.nc",
    output:
        f"{R}/{{study}}/table1.csv",
    log:
        f"{R}/logs/{{study}}/table1.log",
    wildcard_constraints:
        study=_alternatives(GEIGER_STUDIES),
    params:
        spec=lambda wc: STUDIES[wc.study]["table1"],
    group:
        "summaries"
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/geiger/table1.py"
