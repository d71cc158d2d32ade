from depthlab.data import read_dataset
from depthlab.data.io import expected_dataset
from depthlab.job_setup import limit_threads, setup_logging
from depthlab.kernels.regression import check_gram_dataset, ntk_test_error
from depthlab.results import write_regression

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc = snakemake.wildcards
n_train = int(wc.n_train)
# verifies its content hash, and that it is the dataset the config names
data = read_dataset(snakemake.input.data, n_train=n_train, expect=expected_dataset(snakemake))
check_gram_dataset(snakemake.input.gram, data["attrs"]["content_hash"], snakemake.input.data)
result = ntk_test_error(
    snakemake.input.gram, n_train, data["y_train"], data["y_test"], data["n_classes"],
    jitter=snakemake.params.jitter, block_size=snakemake.params.block_size,
)
log.info("kernel regression %s %s L=%s N=%d: %s", wc.dataset, wc.kernel, wc.depth, n_train,
         result)
write_regression(
    snakemake.output[0], result,
    cell={"dataset": wc.dataset, "kernel": wc.kernel, "kernel_depth": int(wc.depth),
          "n_train": n_train},
    config_slice={"jitter": snakemake.params.jitter, "dataset": data["config"]},
)
