rule make_dataset:
    output:
        f"{R}/datasets/{{dataset}}.h5",
    log:
        f"{R}/logs/datasets/{{dataset}}.log",
    params:
        spec=lambda wc: DATASETS[wc.dataset],
    group:
        "datasets"
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/make_dataset.py"
