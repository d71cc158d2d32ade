# Geiger, Spigler, Jacot & Wyart, "Disentangling feature and lazy training in deep neural
# networks": one job per trained net (activation, depth, width, alpha, seed) -- or, with
# dynamics.pack, one per packed member set of an (activation, depth, width) cell, trained
# as one vectorized pack (each member bitwise its lone run) into a directory of the same
# per-run files -- one per frozen-initial-NTK prediction (it does not depend on alpha, so a
# whole alpha sweep of a seed shares it), one cube and Table 1. Figures come from the
# generic rule in rules/figures.smk.
from depthlab.studies.geiger import grid as geiger_grid
from depthlab.studies.geiger.inputs import GeigerInputs

GEIGER_STUDIES = studies_of_kind("geiger")
GEIGER = GeigerInputs(STUDIES, DATASETS, GEIGER_STUDIES, RESULTS)


wildcard_constraints:
    activation=alternatives(dls.plugin("geiger").ACTIVATIONS),
    alpha=r"[0-9][0-9.e+-]*",


rule geiger_lazy:
    input:
        data=GEIGER.dataset_file,
    output:
        f"{RESULTS}/{{study}}/lazy/{{activation}}_L{{depth}}_h{{width}}/seed{{seed}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/lazy/{{activation}}_L{{depth}}_h{{width}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/geiger_lazy/{{study}}/lazy/{{activation}}_L{{depth}}_h{{width}}/seed{{seed}}.tsv",
    wildcard_constraints:
        study=study_constraint("geiger"),
    params:
        run=GEIGER.common_params,
    # long jobs first (see README "Where the time goes"): a long job started last runs alone
    priority: 50
    threads: job_threads("geiger_lazy", THREADS["train"])
    resources:
        **job_resources("geiger_lazy", runtime=120, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/geiger/scripts/lazy.py"


rule geiger_train:
    input:
        data=GEIGER.dataset_file,
        lazy=f"{RESULTS}/{{study}}/lazy/{{activation}}_L{{depth}}_h{{width}}/seed{{seed}}.h5",
    output:
        f"{RESULTS}/{{study}}/runs/{{activation}}_L{{depth}}_h{{width}}/alpha{{alpha}}_seed{{seed}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/runs/{{activation}}_L{{depth}}_h{{width}}/alpha{{alpha}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/geiger_train/{{study}}/runs/{{activation}}_L{{depth}}_h{{width}}/alpha{{alpha}}_seed{{seed}}.tsv",
    wildcard_constraints:
        study=study_constraint("geiger"),
    params:
        run=GEIGER.common_params,
    # long jobs first (see README "Where the time goes"): a long job started last runs alone
    priority: 50
    threads: job_threads("geiger_train", THREADS["train"])
    resources:
        **job_resources("geiger_train", runtime=240, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/geiger/scripts/train.py"


# Packed training (dynamics.pack): no checkpoint -- a pack that fails or is killed is rerun
# whole (Snakemake removes the incomplete directory), as a one-net job was.
rule geiger_train_pack:
    input:
        data=GEIGER.dataset_file,
        lazy=GEIGER.pack_lazy_files,
    output:
        directory(
            f"{RESULTS}/{{study}}/runs/{{activation}}_L{{depth}}_h{{width}}/{{member_set}}"
        ),
    log:
        f"{RESULTS}/logs/{{study}}/runs/{{activation}}_L{{depth}}_h{{width}}/{{member_set}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/geiger_train_pack/{{study}}/runs/{{activation}}_L{{depth}}_h{{width}}/{{member_set}}.tsv",
    wildcard_constraints:
        study=study_constraint("geiger"),
        # the unpacked axes: "all" (pack [alpha, seed]), "seed3" ([alpha]), "alpha0.1" ([seed])
        member_set=r"all|seed\d+|alpha[0-9][0-9.e+-]*",
    params:
        run=GEIGER.common_params,
        members=GEIGER.pack_members,
    # long jobs first (see README "Where the time goes"): a long job started last runs alone
    priority: 50
    threads: job_threads("geiger_train_pack", THREADS["train"])
    resources:
        **job_resources("geiger_train_pack", runtime=480, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/geiger/scripts/train_pack.py"


rule geiger_cube:
    input:
        data=GEIGER.dataset_file,
        runs=lambda wc: GEIGER.train_outputs(wc.study),
        lazy=lambda wc: GEIGER.lazy_files(wc.study),
    output:
        f"{RESULTS}/{{study}}/cube.nc",
    log:
        f"{RESULTS}/logs/{{study}}/cube.log",
    benchmark:
        f"{RESULTS}/benchmarks/geiger_cube/{{study}}/cube.tsv",
    wildcard_constraints:
        study=study_constraint("geiger"),
    params:
        # only what the cube depends on: editing a figure or Table 1 reruns no cube
        study=lambda wc: geiger_grid.cube_study(STUDIES[wc.study]),
        config_warnings=lambda wc: study_warnings(
            wc.study, geiger_grid.cube_study(STUDIES[wc.study])
        ),
        dataset=lambda wc: DATASETS[STUDIES[wc.study]["dataset"]],
        # the run files (inside the packs' directories for a packed study)
        run_files=lambda wc: GEIGER.run_files(wc.study),
    group:
        "summaries"
    resources:
        **job_resources("geiger_cube", runtime=30, mem_mb=8000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/geiger/scripts/cube.py"


# Table 1: power-law exponents of the kernel and weight changes in the feature regime,
# next to the paper's values and the predictions 2 / (1 + 1/L) and 1 / (1 + L).
rule geiger_table1:
    input:
        cube=f"{RESULTS}/{{study}}/cube.nc",
    output:
        f"{RESULTS}/{{study}}/table1.csv",
    log:
        f"{RESULTS}/logs/{{study}}/table1.log",
    benchmark:
        f"{RESULTS}/benchmarks/geiger_table1/{{study}}/table1.tsv",
    wildcard_constraints:
        study=study_constraint("geiger"),
    params:
        spec=lambda wc: STUDIES[wc.study]["table1"],
    group:
        "summaries"
    resources:
        **job_resources("geiger_table1", runtime=10, mem_mb=2000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/geiger/scripts/table1.py"
