import torch  # noqa: F401  (imported before limit_threads so it is limited too)

from depthlab.data.io import dataset_arrays
from depthlab.job_setup import limit_threads, setup_logging
from depthlab.results import write_arrays
from depthlab.studies.nichani.runs import linear_job

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
task = dict(snakemake.params.task)
# conv_ae's images are its dataset's file (hash and config verified); the toy and the
# Toeplitz AE draw their inputs from their seeds
images = None
if task["task"] == "conv_ae":
    arrays, _ = dataset_arrays(snakemake.input.data, datasets=snakemake.config["datasets"])
    images = arrays["x_train"]
res = linear_job(task, images=images, log=log)
scalars = {k: v for k, v in res.items() if not hasattr(v, "shape")}
write_arrays(snakemake.output[0], {k: v for k, v in res.items() if k not in scalars},
         {**scalars, "name": task["name"], "task": task["task"]}, {"task": task})
log.info("min-norm solution: ||W*|| %.6f, stable rank %.4f", res["min_norm_norm"],
         res["min_norm_stable_rank"])
