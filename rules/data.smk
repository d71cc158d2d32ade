from depthlab.data.refs import dataset_settings
from depthlab.data.sources import dataset_sources


# Every dataset of the config's `datasets:` block, for every study (Mori-Ueda's and Geiger's
# synthetic / parity sets, Lee's pixels, Xiao's Gaussian and centred images, Nichani's class
# images): one file each, with its content hash, generator, parameters, seed and the raw
# files' SHA-256; studies naming the same dataset share the file (CIFAR-10 decoded once).
rule make_dataset:
    input:
        # raw files (MNIST IDX, CIFAR-10 / ImageNet32 batches): replacing one rebuilds the
        # dataset and all downstream
        sources=lambda wc: dataset_sources(DATASETS[wc.dataset]),
    output:
        f"{RESULTS}/datasets/{{dataset}}.h5",
    log:
        f"{RESULTS}/logs/datasets/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/make_dataset/datasets/{{dataset}}.tsv",
    params:
        # its settings without the prose (`description`): a prose edit remakes nothing
        spec=lambda wc: dataset_settings(DATASETS[wc.dataset]),
    group:
        "datasets"
    # data first: priorities do not pass upstream, and every study waits on its data
    priority: 100
    resources:
        runtime=30,
        # CIFAR-10's 50 000 training images as float64 (1.2 GB) plus the selection
        mem_mb=8000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/make_dataset.py"
