"""rules xiao_train / xiao_plane_train: finite-width nets of one (depth, sigma_w^2) ->
{R}/{study}/runs/{run}.h5 (Fig. 2) or {R}/{study}/plane_runs/{run}.h5 (Fig. 3 top)."""


import torch  # noqa: F401  (so limit_threads sets torch's threads too)

from depthlab.job_setup import limit_threads, setup_logging
from depthlab.studies.xiao.jobs import write_run

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
run = dict(snakemake.params.run)
log.info("run %s", run)
write_run(dict(snakemake.params.study), run, snakemake.input.data, snakemake.output[0],
          block=snakemake.params.block, checkpoint=snakemake.params.checkpoint,
          checkpoint_every=int(snakemake.params.checkpoint_every), log=log)
log.info("wrote %s", snakemake.output[0])
