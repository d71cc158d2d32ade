import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
import torch  # noqa: E402, F401
from _common import limit_threads, setup_logging, study_import  # noqa: E402

from depthlab.results import write_arrays  # noqa: E402

linear_job = study_import(snakemake.scriptdir, "runs", "linear_job")

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
task = dict(snakemake.params.task)
res = linear_job(task, log=log)
scalars = {k: v for k, v in res.items() if not hasattr(v, "shape")}
write_arrays(snakemake.output[0], {k: v for k, v in res.items() if k not in scalars},
         {**scalars, "name": task["name"], "task": task["task"]}, {"task": task})
log.info("min-norm solution: ||W*|| %.6f, stable rank %.4f", res["min_norm_norm"],
         res["min_norm_stable_rank"])
