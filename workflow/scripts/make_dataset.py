from pathlib import Path

from depthlab.data import generate, write_dataset
from depthlab.job_setup import limit_threads, setup_logging
from depthlab.provenance import file_sha256

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
spec = dict(snakemake.params.spec)
log.info("generating %s: %s", snakemake.wildcards.dataset, spec)
data = generate(spec)
# The raw files it was made from (rule inputs), by content: the file says which MNIST it holds.
sources = {Path(p).name: file_sha256(p) for p in snakemake.input.sources}
if sources:
    data.setdefault("meta", {})["source_sha256"] = sources
    log.info("source files: %s", sources)
write_dataset(snakemake.output[0], data, spec)
log.info("wrote %s (train %s, test %s)", snakemake.output[0], data["x_train"].shape,
         data["x_test"].shape)
