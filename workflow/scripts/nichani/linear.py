import torch  # noqa: F401  (imported before limit_threads so it is limited too)

from depthlab.job_setup import limit_threads, setup_logging
from depthlab.results import write_arrays
from depthlab.studies.nichani.runs import linear_job

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
task = dict(snakemake.params.task)
res = linear_job(task, log=log)
scalars = {k: v for k, v in res.items() if not hasattr(v, "shape")}
write_arrays(snakemake.output[0], {k: v for k, v in res.items() if k not in scalars},
         {**scalars, "name": task["name"], "task": task["task"]}, {"task": task})
log.info("min-norm solution: ||W*|| %.6f, stable rank %.4f", res["min_norm_norm"],
         res["min_norm_stable_rank"])
