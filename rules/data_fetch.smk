# `snakemake data` (or `make data`): download MNIST and CIFAR-10 into data/ from the mirrors
# of config/data_sources.yaml, each file checked against its pinned SHA-256
# (src/depthlab/data/fetch.py). The only rule that touches the network, and only when named
# as a target: no other rule depends on it, so `snakemake` (rule all) never downloads.
# Mirrors for one run: DEPTHLAB_DATA_MIRRORS="file://../shared/data/mnist" snakemake data
# No output files: it always runs when asked for, and the fetcher skips verified files.
rule data:
    localrule: True  # cluster compute nodes are often offline; the login node is not
    log:
        "data/fetch.log",
    params:
        python=sys.executable,
        src=os.path.join(workflow.basedir, "src"),
    conda:
        "../envs/depthlab.yaml"
    # progress on the terminal and in the log (the shell runs with pipefail)
    shell:
        "PYTHONPATH={params.src:q} {params.python:q} -m depthlab.data.fetch --data-dir data"
        " 2>&1 | tee {log:q}"
