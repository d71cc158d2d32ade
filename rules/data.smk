def dataset_sources(wildcards):
    """The raw files a dataset is made from (MNIST's IDX files), as rule inputs: replacing
    one rebuilds the dataset and everything downstream, and make_dataset records their
    SHA-256. A missing directory is reported by the config check before any job."""
    spec = DATASETS[wildcards.dataset]
    if spec["generator"] != "mnist_parity":
        return []
    from depthlab.data.mnist import MnistNotFoundError, find_mnist_files

    try:
        return sorted(str(p) for p in find_mnist_files(spec["mnist_dir"]).values())
    except MnistNotFoundError:
        return []


rule make_dataset:
    input:
        sources=dataset_sources,
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
