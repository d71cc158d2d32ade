from depthlab.data.sources import dataset_sources


rule make_dataset:
    input:
        # raw files (MNIST IDX): replacing one rebuilds the dataset and all downstream
        sources=lambda wc: dataset_sources(DATASETS[wc.dataset]),
    output:
        f"{RESULTS}/datasets/{{dataset}}.h5",
    log:
        f"{RESULTS}/logs/datasets/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/make_dataset/datasets/{{dataset}}.tsv",
    params:
        spec=lambda wc: DATASETS[wc.dataset],
    group:
        "datasets"
    # data first: priorities do not pass upstream, and every study waits on its data
    priority: 100
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/make_dataset.py"
