# Nichani, Radhakrishnan & Uhler, "Do deeper convolutional networks perform better?": on the
# study's dataset, the CNTK / FC NTK depth sweeps (one job per kernel, every depth from one
# recursion), one training job per Fully-Conv net / FC baseline, one per ResNet, one job per
# linear task, the cube and the critical-depth table. Figures and claims come from the generic rules.
from depthlab.data.refs import study_dataset_input
from depthlab.studies import PRESENTATION_KEYS, config_slice
from depthlab.studies.nichani.grid import RESNET_JOB
from depthlab.studies.nichani.inputs import NichaniInputs

NICHANI_STUDIES = studies_of_kind("nichani")
NICHANI = NichaniInputs(STUDIES, NICHANI_STUDIES, RESULTS)
# the study's dataset (`data.dataset`): a shared file of the make_dataset rule
NICHANI_DATA = study_dataset_input(STUDIES, RESULTS)


rule nichani_kernel:
    input:
        data=NICHANI_DATA,
    output:
        f"{RESULTS}/{{study}}/kernels/{{variant}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/kernels/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_kernel/{{study}}/{{variant}}.tsv",
    wildcard_constraints:
        study=study_constraint("nichani"),
        variant=r"[a-z][a-z0-9_]*",
    params:
        variant=NICHANI.variant,
        kernels=lambda wc: STUDIES[wc.study]["kernels"],
        jitter=KERNEL_REGRESSION["jitter"],
    # long jobs first (see README "Where the time goes"): a long job started last runs alone
    priority: 30
    threads: job_threads("nichani_kernel", THREADS["gram"])
    resources:
        **job_resources("nichani_kernel", runtime=60, mem_mb=8000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/nichani/scripts/kernel.py"


rule nichani_train:
    input:
        data=NICHANI_DATA,
    output:
        f"{RESULTS}/{{study}}/runs/{{job}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/runs/{{job}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_train/{{study}}/{{job}}.tsv",
    wildcard_constraints:
        study=study_constraint("nichani"),
        job=r"fc_d\d+|mlp",
    params:
        job=NICHANI.job,
        # the block less its job axes (a job's depth and seeds are in `job`)
        fully_conv=lambda wc: config_slice(
            STUDIES[wc.study]["fully_conv"], drop=("depths", "seeds")
        ),
        checkpoint=NICHANI.checkpoint,
    # long jobs first (see README "Where the time goes"): a long job started last runs alone
    priority: 30
    threads: job_threads("nichani_train", THREADS["train"])
    resources:
        **job_resources("nichani_train", runtime=120, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/nichani/scripts/train.py"


# One CIFAR ResNet (blocks per stage, width, kernel size, seed) per job: Table 1 grids
# and the Fig. 15 / 17 variants; checkpointed, resumed on retry.
rule nichani_resnet:
    input:
        data=NICHANI_DATA,
    output:
        f"{RESULTS}/{{study}}/resnets/{{job}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/resnets/{{job}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_resnet/{{study}}/{{job}}.tsv",
    wildcard_constraints:
        study=study_constraint("nichani"),
        job=RESNET_JOB,
    params:
        job=NICHANI.resnet_job,
        resnets=lambda wc: STUDIES[wc.study]["resnets"],
        checkpoint=NICHANI.checkpoint,
    threads: job_threads("nichani_resnet", THREADS["train"])
    resources:
        **job_resources("nichani_resnet", runtime=720, mem_mb=16000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/nichani/scripts/resnet.py"


rule nichani_linear:
    input:
        # conv_ae's images: its dataset's file; the other tasks draw theirs from seeds
        data=NICHANI.task_data,
    output:
        f"{RESULTS}/{{study}}/linear/{{task}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/linear/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_linear/{{study}}/{{task}}.tsv",
    wildcard_constraints:
        study=study_constraint("nichani"),
        task=r"[a-z][a-z0-9_]*",
    params:
        task=NICHANI.task,
    # long jobs first (see README "Where the time goes"): a long job started last runs alone
    priority: 30
    threads: job_threads("nichani_linear", THREADS["train"])
    resources:
        **job_resources("nichani_linear", runtime=120, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/nichani/scripts/linear.py"


rule nichani_cube:
    input:
        data=NICHANI_DATA,
        runs=lambda wc: NICHANI.run_files(wc.study),
        resnets=lambda wc: NICHANI.resnet_files(wc.study),
        kernels=lambda wc: NICHANI.kernel_files(wc.study),
        linear=lambda wc: NICHANI.linear_files(wc.study),
    output:
        f"{RESULTS}/{{study}}/cube.nc",
    log:
        f"{RESULTS}/logs/{{study}}/cube.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_cube/{{study}}.tsv",
    wildcard_constraints:
        study=study_constraint("nichani"),
    params:
        # the study less figures, claims, prose and the critical-depth table's settings: a
        # title edit reruns one figure, not the cube and every figure (config_slice)
        study=lambda wc: config_slice(
            STUDIES[wc.study], drop=(*PRESENTATION_KEYS, "critical_depths")
        ),
    group:
        "summaries"
    resources:
        **job_resources("nichani_cube", runtime=30, mem_mb=8000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/nichani/scripts/cube.py"


# Critical depths: d* of test accuracy and of test loss (bootstrap over seeds) and the
# interpolation depth, per panel (also printed).
rule nichani_critical_depths:
    input:
        cube=f"{RESULTS}/{{study}}/cube.nc",
    output:
        f"{RESULTS}/{{study}}/critical_depths.csv",
    log:
        f"{RESULTS}/logs/{{study}}/critical_depths.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_critical_depths/{{study}}.tsv",
    wildcard_constraints:
        study=study_constraint("nichani"),
    params:
        critical=lambda wc: STUDIES[wc.study]["critical_depths"],
    group:
        "summaries"
    resources:
        **job_resources("nichani_critical_depths", runtime=10, mem_mb=2000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/nichani/scripts/critical_depths.py"
