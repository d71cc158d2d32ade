# Nichani, Radhakrishnan & Uhler, "Do deeper convolutional networks perform better?": the
# study's data set, the CNTK / FC NTK depth sweeps (one job per kernel, every depth from one
# recursion), one training job per Fully-Conv net / FC baseline, one per ResNet, one job per
# linear task, the cube and the critical-depth table. Figures and claims come from the generic rules.
from depthlab.studies import PRESENTATION_KEYS, config_slice
from depthlab.studies.nichani.grid import RESNET_JOB
from depthlab.studies.nichani.inputs import NichaniInputs

NICHANI_STUDIES = studies_of_kind("nichani")
NICHANI = NichaniInputs(STUDIES, NICHANI_STUDIES, RESULTS)


rule nichani_data:
    output:
        f"{RESULTS}/{{study}}/data.h5",
    log:
        f"{RESULTS}/logs/{{study}}/data.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_data/{{study}}.tsv",
    wildcard_constraints:
        study=_alternatives(NICHANI_STUDIES),
    params:
        spec=lambda wc: STUDIES[wc.study]["data"],
    group:
        "datasets"
    # data first: priorities do not pass upstream, and every study waits on its data
    priority: 100
    resources:
        runtime=10,
        mem_mb=4000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/nichani/data.py"


rule nichani_kernel:
    input:
        data=f"{RESULTS}/{{study}}/data.h5",
    output:
        f"{RESULTS}/{{study}}/kernels/{{variant}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/kernels/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_kernel/{{study}}/{{variant}}.tsv",
    wildcard_constraints:
        study=_alternatives(NICHANI_STUDIES),
        variant=r"[a-z][a-z0-9_]*",
    params:
        variant=NICHANI.variant,
        kernels=lambda wc: STUDIES[wc.study]["kernels"],
        jitter=KERNEL_REGRESSION["jitter"],
    # long jobs first (see README "Where the time goes"): a long job started last runs alone
    priority: 30
    threads: THREADS["gram"]
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/nichani/kernel.py"


rule nichani_train:
    input:
        data=f"{RESULTS}/{{study}}/data.h5",
    output:
        f"{RESULTS}/{{study}}/runs/{{job}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/runs/{{job}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_train/{{study}}/{{job}}.tsv",
    wildcard_constraints:
        study=_alternatives(NICHANI_STUDIES),
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
    threads: THREADS["train"]
    resources:
        runtime=120,
        mem_mb=4000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/nichani/train.py"


# One CIFAR ResNet (blocks per stage, width, kernel size, seed) per job: Table 1 grids
# and the Fig. 15 / 17 variants; checkpointed, resumed on retry.
rule nichani_resnet:
    input:
        data=f"{RESULTS}/{{study}}/data.h5",
    output:
        f"{RESULTS}/{{study}}/resnets/{{job}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/resnets/{{job}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_resnet/{{study}}/{{job}}.tsv",
    wildcard_constraints:
        study=_alternatives(NICHANI_STUDIES),
        job=RESNET_JOB,
    params:
        job=NICHANI.resnet_job,
        resnets=lambda wc: STUDIES[wc.study]["resnets"],
        checkpoint=NICHANI.checkpoint,
    threads: THREADS["train"]
    resources:
        runtime=720,
        mem_mb=16000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/nichani/resnet.py"


rule nichani_linear:
    output:
        f"{RESULTS}/{{study}}/linear/{{task}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/linear/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/nichani_linear/{{study}}/{{task}}.tsv",
    wildcard_constraints:
        study=_alternatives(NICHANI_STUDIES),
        task=r"[a-z][a-z0-9_]*",
    params:
        task=NICHANI.task,
    # long jobs first (see README "Where the time goes"): a long job started last runs alone
    priority: 30
    threads: THREADS["train"]
    resources:
        runtime=120,
        mem_mb=4000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/nichani/linear.py"


rule nichani_cube:
    input:
        data=f"{RESULTS}/{{study}}/data.h5",
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
        study=_alternatives(NICHANI_STUDIES),
    params:
        # the study less figures, claims, prose and the critical-depth table's settings: a
        # title edit reruns one figure, not the cube and every figure (config_slice)
        study=lambda wc: config_slice(
            STUDIES[wc.study], drop=(*PRESENTATION_KEYS, "critical_depths")
        ),
    group:
        "summaries"
    resources:
        runtime=30,
        mem_mb=8000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/nichani/cube.py"


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
        study=_alternatives(NICHANI_STUDIES),
    params:
        critical=lambda wc: STUDIES[wc.study]["critical_depths"],
    group:
        "summaries"
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../workflow/scripts/nichani/critical_depths.py"
