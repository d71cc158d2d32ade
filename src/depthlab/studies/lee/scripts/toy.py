import torch

from depthlab.job_setup import setup_logging
from depthlab.results import write_arrays
from depthlab.studies.lee.runs import toy_job

log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
torch.backends.cuda.matmul.allow_tf32 = False
study = dict(snakemake.params.study)
dn = study["deep_narrow"]
res = toy_job(int(snakemake.wildcards.depth), study["toy"], dn["rho"], dn["beta"], log=log)
write_arrays(snakemake.output[0], {k: v for k, v in res.items() if k != "_attrs"}, res["_attrs"],
         {"toy": study["toy"], "deep_narrow": dn, "depth": int(snakemake.wildcards.depth)})
log.info("toy D=%s: final loss %s, kernel change %s", snakemake.wildcards.depth,
         res["loss"][:, -1], res["ntk_rel_change"])
