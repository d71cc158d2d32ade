import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
import torch  # noqa: E402, F401
from _common import limit_threads, setup_logging, study_import  # noqa: E402

from depthlab.results import read_arrays, write_arrays  # noqa: E402

train_job = study_import(snakemake.scriptdir, "runs", "train_job")

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
job = dict(snakemake.params.job)
rn = dict(snakemake.params.resnets)
arrays, attrs = read_arrays(snakemake.input.data)
data = {**arrays, "n_classes": int(attrs["n_classes"])}
res = train_job(data, {"resnets": rn}, job, checkpoint=snakemake.params.checkpoint, log=log)
scalars = {"model": "resnet", "depth": int(job["depth"]), "width": int(job["width"]),
           "kernel_size": int(job["kernel_size"]), "blocks": "-".join(map(str, job["blocks"])),
           "job": snakemake.wildcards.job}
write_arrays(snakemake.output[0], res, scalars, {"job": job, "resnets": rn})
log.info("%s: status %s, final test loss %s, test acc %s", snakemake.wildcards.job,
         list(res["status"]), [round(float(a), 4) for a in res["test_loss_final"]],
         [round(float(a), 4) for a in res["test_acc_final"]])
