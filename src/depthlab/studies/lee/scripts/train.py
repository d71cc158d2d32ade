import torch

from depthlab.data.io import dataset_arrays
from depthlab.job_setup import setup_logging
from depthlab.results import read_arrays, write_arrays
from depthlab.studies.lee.runs import train_job

log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
torch.backends.cuda.matmul.allow_tf32 = False  # the C_L cancellation needs full precision
torch.backends.cudnn.allow_tf32 = False
study = dict(snakemake.params.study)
members = list(snakemake.params.members)
# the shared dataset file, content hash and config checked (depthlab.data.io)
arrays, attrs = dataset_arrays(snakemake.input.data, datasets=snakemake.config["datasets"])
data = {**arrays, "n_classes": int(attrs["n_classes"])}
lam = None
if "kernel" in snakemake.input.keys():
    lam = float(read_arrays(snakemake.input.kernel)[1]["lambda_max_inf"])
res = train_job(data, study, members, lam, checkpoint=snakemake.params.checkpoint, log=log)
cell = res.pop("_attrs")
# the params hold this job's grid only (grid 0): its position in the config is the cube's
# business (studies/lee/cube.py), so a run file says nothing about it
cell.pop("grid")
write_arrays(snakemake.output[0], res, {**cell, "job": snakemake.wildcards.job},
         {"members": members, "training": study["training"], "data": study["data"],
          "grid": study["grids"][0], "deep_narrow": study["deep_narrow"]})
for i in range(len(members)):
    log.info("%s lr=%s seed=%d: %s after %d epochs, train loss %.4g, test acc %.4f, "
             "tau*lambda_max %.3g", cell["init"], res["lr_label"][i], res["seed"][i],
             res["status"][i], res["epochs"][i], res["final_loss"][i],
             1 - res["test_error"][i], res["tau_lambda_max"][i])
