import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import limit_threads, setup_logging, study_import  # noqa: E402

from depthlab.results import read_arrays  # noqa: E402

write_limit_gram = study_import(snakemake.scriptdir, "gram", "write_limit_gram")

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
study = dict(snakemake.params.study)
arrays, attrs = read_arrays(snakemake.input.data)
dn = study["deep_narrow"]
write_limit_gram(snakemake.output[0], arrays["x_train"], arrays["x_test"],
                 n_out=int(attrs["n_classes"]), rho=dn["rho"], beta=dn["beta"],
                 block_size=int(snakemake.params.block_size))
log.info("Theta~inf Gram: %d train x %d test rows in blocks of %d", len(arrays["x_train"]),
         len(arrays["x_test"]), snakemake.params.block_size)
