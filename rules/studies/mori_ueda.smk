# Mori & Ueda, "Is deeper better? It depends on locality of relevant features": packed SGD
# training jobs, cross-validated learning rates, local stability, the cube and the summary
# table. Figures come from the generic rule in rules/figures.smk.
from depthlab.studies.mori_ueda import grid as mori_grid
from depthlab.studies.mori_ueda.inputs import MoriUedaInputs

MORI_UEDA_STUDIES = studies_of_kind("mori_ueda")
MORI_UEDA = MoriUedaInputs(STUDIES, MORI_UEDA_STUDIES, RESULTS)


# One job trains every member of one architecture cell that the study packs together
# (training.pack), as a single vectorized model; results land per member.


rule mori_ueda_select_lr:
    input:
        data=dataset_file,
    output:
        f"{RESULTS}/{{study}}/lr_search/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/lr_search/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mori_ueda_select_lr/{{study}}/lr_search/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}.tsv",
    wildcard_constraints:
        study=study_constraint("mori_ueda"),
    params:
        training=lambda wc: mori_grid.training_settings(STUDIES[wc.study]),
        search=lambda wc: mori_grid.lr_selection(STUDIES[wc.study]),
    # long jobs first (see README "Where the time goes"): a long job started last runs alone
    priority: 40
    threads: job_threads("mori_ueda_select_lr", THREADS["train"])
    resources:
        **job_resources("mori_ueda_select_lr", runtime=240, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/mori_ueda/scripts/select_lr.py"


rule mori_ueda_train:
    input:
        unpack(MORI_UEDA.train_inputs),
    output:
        f"{RESULTS}/{{study}}/runs/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}/{{member_set}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/train/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}/{{member_set}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mori_ueda_train/{{study}}/train/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}/{{member_set}}.tsv",
    wildcard_constraints:
        study=study_constraint("mori_ueda"),
        # the members of one job: the unpacked axes ("lr0.1_seed3", "lrcv", "seed0") or "all"
        member_set=r"all|lr([0-9.e+-]+|cv)(_seed\d+)?|seed\d+",
    params:
        training=lambda wc: mori_grid.training_settings(STUDIES[wc.study]),
        members=MORI_UEDA.job_members,
        local_stability=lambda wc: MORI_UEDA.stability_spec(wc.study, wc.dataset),
        checkpoint=MORI_UEDA.checkpoint,
    threads: job_threads("mori_ueda_train", THREADS["train"])
    resources:
        **job_resources("mori_ueda_train", runtime=120, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/mori_ueda/scripts/train.py"


# s(v) of the label rule itself (Mori-Ueda Fig. 5), on the same test inputs as the nets.
rule mori_ueda_label_stability:
    input:
        data=dataset_file,
    output:
        f"{RESULTS}/{{study}}/label_stability/{{dataset}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/label_stability/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mori_ueda_label_stability/{{study}}/label_stability/{{dataset}}.tsv",
    wildcard_constraints:
        study=study_constraint("mori_ueda"),
    params:
        spec=lambda wc: STUDIES[wc.study]["local_stability"],
    group:
        "datasets"
    resources:
        **job_resources("mori_ueda_label_stability", runtime=30, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/mori_ueda/scripts/label_stability.py"
rule mori_ueda_cube:
    input:
        runs=lambda wc: MORI_UEDA.run_files(wc.study),
        regressions=lambda wc: MORI_UEDA.regression_files(wc.study),
        label_stability=lambda wc: MORI_UEDA.label_stability_files(wc.study),
    output:
        f"{RESULTS}/{{study}}/cube.nc",
    log:
        f"{RESULTS}/logs/{{study}}/cube.log",
    benchmark:
        f"{RESULTS}/benchmarks/mori_ueda_cube/{{study}}/cube.tsv",
    wildcard_constraints:
        study=study_constraint("mori_ueda"),
    params:
        # only what the cube depends on: editing a figure or the summary reruns no cube
        study=lambda wc: mori_grid.cube_study(STUDIES[wc.study]),
        config_warnings=lambda wc: study_warnings(
            wc.study, mori_grid.cube_study(STUDIES[wc.study])
        ),
        datasets=lambda wc: {
            name: DATASETS[name]
            for name in sorted({ds for g in STUDIES[wc.study]["grids"] for ds in g["datasets"]})
        },
        kernels=KERNELS,
    group:
        "summaries"
    resources:
        **job_resources("mori_ueda_cube", runtime=30, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/mori_ueda/scripts/cube.py"
# Per figure and label: sign and size of the depth effect and the NTK gap (CSV, and
# printed), so a reader sees at a glance whether the paper's claims hold in this run.
rule mori_ueda_summary:
    input:
        cube=f"{RESULTS}/{{study}}/cube.nc",
    output:
        f"{RESULTS}/{{study}}/summary.csv",
    log:
        f"{RESULTS}/logs/{{study}}/summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/mori_ueda_summary/{{study}}/summary.tsv",
    wildcard_constraints:
        study=study_constraint("mori_ueda"),
    params:
        # the test-error-vs-N figures' datasets and lr only: a title edit reruns no summary
        figures=lambda wc: mori_grid.summary_figures(STUDIES[wc.study]),
        depths=lambda wc: mori_grid.summary_depths(STUDIES[wc.study]),
    group:
        "summaries"
    resources:
        **job_resources("mori_ueda_summary", runtime=10, mem_mb=2000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/mori_ueda/scripts/summary_table.py"
