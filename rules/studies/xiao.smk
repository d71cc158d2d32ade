# Xiao, Pennington & Schoenholz, "Disentangling trainability and generalization": on the
# datasets its blocks name (shared files of the make_dataset rule), one kernel depth sweep
# per (set, architecture, sigma_w^2), the finite-width nets
# of Fig. 2 and of Fig. 3 top (SGD over the sigma_w^2 x depth plane, `plane_nets`), the cube
# and Table 1. Figures and claims come from the generic rules.
from depthlab.studies.xiao.inputs import XiaoInputs

XIAO_STUDIES = studies_of_kind("xiao")
XIAO = XiaoInputs(STUDIES, XIAO_STUDIES, RESULTS)


rule xiao_sweep:
    input:
        data=XIAO.sweep_data,
    output:
        f"{RESULTS}/{{study}}/sweeps/{{sweep}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/sweeps/{{sweep}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/xiao_sweep/{{study}}/sweeps/{{sweep}}.tsv",
    wildcard_constraints:
        study=study_constraint("xiao"),
        sweep=r"(phase|plane|pool)_[a-z0-9]+_?[a-z_]*_w[a-z0-9.e+-]+",
    params:
        sweep=XIAO.sweep,
        study=lambda wc: XIAO.slice(wc.study, XIAO.sweep(wc)["group"]),
    threads: job_threads("xiao_sweep", THREADS["gram"])
    resources:
        **job_resources("xiao_sweep", runtime=60, mem_mb=8000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/xiao/scripts/sweep.py"


rule xiao_train:
    input:
        data=XIAO.block_data("cliff"),
    output:
        f"{RESULTS}/{{study}}/runs/{{run}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/runs/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/xiao_train/{{study}}/runs/{{run}}.tsv",
    wildcard_constraints:
        study=study_constraint("xiao"),
        run=r"L\d+_w[a-z0-9.e+-]+",
    params:
        run=XIAO.run,
        block="cliff",
        study=lambda wc: XIAO.job_train_slice(wc.study, "cliff"),
        checkpoint=XIAO.checkpoint("cliff"),
        checkpoint_every=lambda wc: STUDIES[wc.study]["cliff"]["checkpoint_every"],
    threads: job_threads("xiao_train", THREADS["train"])
    resources:
        **job_resources("xiao_train", runtime=120, mem_mb=4000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/xiao/scripts/train.py"


# Fig. 3 top with SGD-trained nets: every seed of one (depth, sigma_w^2) cell of the plane
# (plane_nets), the trainer of Fig. 2 with mini-batches; checkpointed, resumed on retry.
rule xiao_plane_train:
    input:
        data=XIAO.block_data("plane_nets"),
    output:
        f"{RESULTS}/{{study}}/plane_runs/{{run}}.h5",
    log:
        f"{RESULTS}/logs/{{study}}/plane_runs/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/xiao_plane_train/{{study}}/plane_runs/{{run}}.tsv",
    wildcard_constraints:
        study=study_constraint("xiao"),
        run=r"L\d+_w[a-z0-9.e+-]+",
    params:
        run=XIAO.plane_run,
        block="plane_nets",
        study=lambda wc: XIAO.job_train_slice(wc.study, "plane_nets"),
        checkpoint=XIAO.checkpoint("plane_nets"),
        checkpoint_every=lambda wc: STUDIES[wc.study]["plane_nets"]["checkpoint_every"],
    threads: job_threads("xiao_plane_train", THREADS["train"])
    resources:
        **job_resources("xiao_plane_train", runtime=240, mem_mb=8000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/xiao/scripts/train.py"


rule xiao_cube:
    input:
        sweeps=lambda wc: XIAO.sweep_files(wc.study),
        runs=lambda wc: XIAO.run_files(wc.study),
        plane_runs=lambda wc: XIAO.plane_run_files(wc.study),
    output:
        f"{RESULTS}/{{study}}/cube.nc",
    log:
        f"{RESULTS}/logs/{{study}}/cube.log",
    benchmark:
        f"{RESULTS}/benchmarks/xiao_cube/{{study}}/cube.tsv",
    wildcard_constraints:
        study=study_constraint("xiao"),
    params:
        study=lambda wc: {k: v for k, v in STUDIES[wc.study].items()
                          if k not in ("figures", "claims", "description")},
    group:
        "summaries"
    resources:
        **job_resources("xiao_cube", runtime=30, mem_mb=8000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/xiao/scripts/cube.py"


# Table 1: the fitted / measured large-depth quantities next to the predictions (printed too).
rule xiao_table1_csv:
    input:
        cube=f"{RESULTS}/{{study}}/cube.nc",
    output:
        f"{RESULTS}/{{study}}/table1.csv",
    log:
        f"{RESULTS}/logs/{{study}}/table1.log",
    benchmark:
        f"{RESULTS}/benchmarks/xiao_table1_csv/{{study}}/table1.tsv",
    wildcard_constraints:
        study=study_constraint("xiao"),
    group:
        "summaries"
    resources:
        **job_resources("xiao_table1_csv", runtime=10, mem_mb=2000),
    conda:
        "../../envs/depthlab.yaml"
    script:
        "../../src/depthlab/studies/xiao/scripts/table1.py"
