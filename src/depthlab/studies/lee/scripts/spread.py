import torch

from depthlab.job_setup import setup_logging
from depthlab.results import write_arrays
from depthlab.studies.lee.runs import spread_job

log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
study = dict(snakemake.params.study)
dn = study["deep_narrow"]
res = spread_job(study["spread"], dn["rho"], dn["beta"])
write_arrays(snakemake.output[0], {k: v for k, v in res.items() if k != "_attrs"}, res["_attrs"],
         {"spread": study["spread"], "deep_narrow": dn})
log.info("spread of Theta~_0 over seeds by depth: %s", res["theta0"].std(1).tolist())
