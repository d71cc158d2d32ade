from depthlab.data.io import dataset_arrays
from depthlab.job_setup import limit_threads, setup_logging
from depthlab.studies.lee.gram import write_limit_gram

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
study = dict(snakemake.params.study)
# the shared dataset file, content hash and config checked (depthlab.data.io)
arrays, attrs = dataset_arrays(snakemake.input.data, datasets=snakemake.config["datasets"])
dn = study["deep_narrow"]
write_limit_gram(snakemake.output[0], arrays["x_train"], arrays["x_test"],
                 n_out=int(attrs["n_classes"]), rho=dn["rho"], beta=dn["beta"],
                 block_size=int(snakemake.params.block_size))
log.info("Theta~inf Gram: %d train x %d test rows in blocks of %d", len(arrays["x_train"]),
         len(arrays["x_test"]), snakemake.params.block_size)
