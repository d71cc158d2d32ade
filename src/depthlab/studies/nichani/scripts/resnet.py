import torch  # noqa: F401  (imported before limit_threads so it is limited too)

from depthlab.job_setup import limit_threads, setup_logging
from depthlab.results import write_arrays
from depthlab.studies.nichani.data import read_classification_data
from depthlab.studies.nichani.runs import train_job

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
job = dict(snakemake.params.job)
rn = dict(snakemake.params.resnets)
data = read_classification_data(snakemake.input.data, snakemake.config["datasets"])
res = train_job(data, {"resnets": rn}, job, checkpoint=snakemake.params.checkpoint, log=log)
scalars = {"model": "resnet", "depth": int(job["depth"]), "width": int(job["width"]),
           "kernel_size": int(job["kernel_size"]), "blocks": "-".join(map(str, job["blocks"])),
           "job": snakemake.wildcards.job}
write_arrays(snakemake.output[0], res, scalars, {"job": job, "resnets": rn})
log.info("%s: status %s, final test loss %s, test acc %s", snakemake.wildcards.job,
         list(res["status"]), [round(float(a), 4) for a in res["test_loss_final"]],
         [round(float(a), 4) for a in res["test_acc_final"]])
