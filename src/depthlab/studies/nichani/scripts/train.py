import torch  # noqa: F401  (imported before limit_threads so it is limited too)

from depthlab.job_setup import limit_threads, setup_logging
from depthlab.results import write_arrays
from depthlab.studies.nichani.data import read_classification_data
from depthlab.studies.nichani.runs import train_job

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
job = dict(snakemake.params.job)
fc = dict(snakemake.params.fully_conv)
data = read_classification_data(snakemake.input.data, snakemake.config["datasets"])
res = train_job(data, {"fully_conv": fc}, job, checkpoint=snakemake.params.checkpoint, log=log)
scalars = {"model": job["model"], "depth": int(job["depth"]), "job": snakemake.wildcards.job}
write_arrays(snakemake.output[0], res, scalars, {"job": job, "fully_conv": fc})
log.info("%s: statuses %s, test acc %s", snakemake.wildcards.job, list(res["status"]),
         [round(float(a), 4) for a in res["test_acc"]])
