"""rule xiao_sweep: one kernel depth sweep -> {R}/{study}/sweeps/{sweep}.h5."""

import importlib

from depthlab.job_setup import limit_threads, setup_logging
from depthlab.studies.xiao.jobs import write_sweep

sweep = dict(snakemake.params.sweep)
if sweep["arch"] != "fc":
    # the conv kernels run in torch (imported first so limit_threads sets its threads too);
    # FC sweeps are numpy only and skip the ~2 s torch import
    importlib.import_module("torch")

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
log.info("sweep %s", sweep)
write_sweep(dict(snakemake.params.study), sweep, snakemake.input.data, snakemake.output[0],
            snakemake.threads)
log.info("wrote %s", snakemake.output[0])
