import numpy as np

from depthlab.data import read_dataset
from depthlab.data.io import expected_dataset
from depthlab.job_setup import limit_threads, setup_logging
from depthlab.kernels.gram import compute_gram_file
from depthlab.provenance import provenance_attrs

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc = snakemake.wildcards
data = read_dataset(snakemake.input.data, expect=expected_dataset(snakemake))
spec = dict(snakemake.params.spec)
log.info("Gram of %s, kernel %s %s, depth %s", wc.dataset, wc.kernel, spec, wc.depth)
compute_gram_file(
    snakemake.output[0],
    data["x_train"].astype(np.float64),
    data["x_test"].astype(np.float64),
    spec,
    int(wc.depth),
    block_size=snakemake.params.block_size,
    n_threads=snakemake.threads,
    attrs=provenance_attrs(
        {"kernel": spec, "depth": int(wc.depth), "dataset": data["config"]},
        dataset=wc.dataset,
        kernel=wc.kernel,
        dataset_content_hash=data["attrs"]["content_hash"],
    ),
)
log.info("wrote %s", snakemake.output[0])
