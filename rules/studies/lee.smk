# Lee, Choi, Ryu & No, "NTK analysis of deep narrow neural networks": the scaled-NTK limit
# kernel regression of the study's dataset (`data.dataset`, a shared file of the
# make_dataset rule), training jobs (deep-narrow and baseline inits; MLPs by the packed SGD
# engine, CNNs by the module trainer, both checkpointed and resumed across Slurm wall-time
# limits), the toy regression per depth (Fig. 4.1, 5.1), the init-kernel spread, the cube
# and Table 4.1. Figures (Fig. 4.2(b): plot lee_cnn_train_curves) and claims come from the
# generic rules.
# Each rule's params are the slice of the study its job reads (config_slice), and a run file
# is named by its grid's content (grid.job_name), so a title edit or reordered grids retrain
# nothing.
from depthlab.studies import PRESENTATION_KEYS, config_slice
from depthlab.studies.lee.inputs import LeeInputs

LEE_STUDIES = studies_of_kind("lee")
LEE = LeeInputs(STUDIES, LEE_STUDIES, RESULTS)


# Theta~inf of the study's data (train x train, test x train, test diagonal) in row blocks,
# in the layout of the shared Gram files (depthlab.kernels.gram), so MNIST's 60 000 x 60 000
# Gram never needs the closed form's ~6 full-size temporaries.
rule lee_gram:
    input:
        data=LEE.data_file,
    output:
        f"{RESULTS}/{{study}}/gram.h5",
    log:
        f"{RESULTS}/logs/{{study}}/gram.log",
    benchmark:
        f"{RESULTS}/benchmarks/lee_gram/{{study}}/gram.tsv",
    wildcard_constraints:
        study=study_constraint("lee"),
    params:
        study=lambda wc: config_slice(STUDIES[wc.study], "deep_narrow"),
        block_size=KERNEL_REGRESSION["block_size"],
    threads: job_threads("lee_gram", THREADS["gram"])
    resources:
        **job_resources("lee_gram", runtime=60, mem_mb=8000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/lee/scripts/gram.py"


rule lee_kernel:
    input:
        data=LEE.data_file,
        gram=f"{RESULTS}/{{study}}/gram.h5",
    output:
        f"{RESULTS}/{{study}}/kernel.h5",
    log:
        f"{RESULTS}/logs/{{study}}/kernel.log",
    benchmark:
        f"{RESULTS}/benchmarks/lee_kernel/{{study}}/kernel.tsv",
    wildcard_constraints:
        study=study_constraint("lee"),
    params:
        study=lambda wc: config_slice(
            STUDIES[wc.study], "deep_narrow", "data", "training.stability_subset"
        ),
        jitter=KERNEL_REGRESSION["jitter"],
        block_size=KERNEL_REGRESSION["block_size"],
    threads: job_threads("lee_kernel", THREADS["gram"])
    resources:
        **job_resources("lee_kernel", runtime=60, mem_mb=8000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/lee/scripts/kernel.py"


rule lee_train:
    input:
        unpack(LEE.train_inputs),
    output:
        f"{RESULTS}/{{study}}/runs/{{job}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/runs/{{job}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lee_train/{{study}}/runs/{{job}}.tsv",
    wildcard_constraints:
        study=study_constraint("lee"),
        job=r"(mlp|cnn)_[a-z_]+_D\d+_[0-9a-f]{8}(_lr[0-9.e+-sf]+_s\d+)?",
    params:
        study=LEE.train_study,
        members=LEE.members,
        checkpoint=LEE.checkpoint,
    # long jobs first (see README "Where the time goes"): a long job started last runs alone
    priority: 45
    threads: job_threads("lee_train", THREADS["train"])
    resources:
        **job_resources("lee_train", runtime=LEE.train_runtime, mem_mb=LEE.train_mem_mb),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/lee/scripts/train.py"


rule lee_toy:
    output:
        f"{RESULTS}/{{study}}/toy/D{{depth}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/toy/D{{depth}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lee_toy/{{study}}/toy/D{{depth}}.tsv",
    wildcard_constraints:
        study=study_constraint("lee"),
    params:
        study=lambda wc: config_slice(STUDIES[wc.study], "toy", "deep_narrow"),
    threads: job_threads("lee_toy", THREADS["train"])
    resources:
        **job_resources("lee_toy", runtime=120, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/lee/scripts/toy.py"


rule lee_ntk_spread_job:
    output:
        f"{RESULTS}/{{study}}/spread.h5",
    log:
        f"{RESULTS}/logs/{{study}}/spread.log",
    benchmark:
        f"{RESULTS}/benchmarks/lee_ntk_spread_job/{{study}}/spread.tsv",
    wildcard_constraints:
        study=study_constraint("lee"),
    params:
        study=lambda wc: config_slice(STUDIES[wc.study], "spread", "deep_narrow"),
    threads: job_threads("lee_ntk_spread_job", 1)
    resources:
        **job_resources("lee_ntk_spread_job", runtime=30, mem_mb=2000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/lee/scripts/spread.py"


rule lee_cube:
    input:
        data=LEE.data_file,
        kernel=f"{RESULTS}/{{study}}/kernel.h5",
        runs=lambda wc: LEE.run_files(wc.study),
        toys=lambda wc: LEE.toy_files(wc.study),
        spread=lambda wc: LEE.spread_file(wc.study),
    output:
        f"{RESULTS}/{{study}}/cube.nc",
    log:
        f"{RESULTS}/logs/{{study}}/cube.log",
    benchmark:
        f"{RESULTS}/benchmarks/lee_cube/{{study}}/cube.tsv",
    wildcard_constraints:
        study=study_constraint("lee"),
    params:
        # the cube keeps the study block less figures, claims and prose
        study=lambda wc: config_slice(STUDIES[wc.study], drop=PRESENTATION_KEYS),
    group:
        "summaries"
    resources:
        **job_resources("lee_cube", runtime=30, mem_mb=8000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/lee/scripts/cube.py"


# Table 4.1: this run's train loss and test accuracy next to the paper's (also printed).
rule lee_table41:
    input:
        cube=f"{RESULTS}/{{study}}/cube.nc",
    output:
        f"{RESULTS}/{{study}}/table41.csv",
    log:
        f"{RESULTS}/logs/{{study}}/table41.log",
    benchmark:
        f"{RESULTS}/benchmarks/lee_table41/{{study}}/table41.tsv",
    wildcard_constraints:
        study=study_constraint("lee"),
    params:
        study=lambda wc: config_slice(STUDIES[wc.study], "table41", "grids"),
    group:
        "summaries"
    resources:
        **job_resources("lee_table41", runtime=10, mem_mb=2000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/lee/scripts/table41.py"
