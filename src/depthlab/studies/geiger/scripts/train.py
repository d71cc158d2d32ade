import numpy as np

from depthlab.results import read_record, write_record
from depthlab.studies.geiger.job import GeigerJob
from depthlab.studies.geiger.runs import train_lazy_feature

job = GeigerJob(snakemake)
dyn = job.dyn
lazy = {k: v for k, v in read_record(snakemake.input.lazy, required=("lazy_test_outputs",)).items()
        if k.startswith("lazy_")}
job.log.info("training %s with %s", job.cell, dyn)
res = train_lazy_feature(
    *job.arrays, alpha=job.cell["alpha"], **job.model, temperature=dyn["temperature"],
    df_target=dyn["df_target"], max_steps=dyn["max_steps"],
    max_time=dyn.get("max_time", float("inf")), record_per_decade=dyn["record_per_decade"],
    ntk_subset=dyn["ntk_subset"], lazy=lazy, log=job.log,
)
# The frozen-NTK prediction lives in its own file; keep only the comparison here.
arrays = {k: v for k, v in res.items()
          if isinstance(v, np.ndarray) and not k.startswith("lazy_")}
scalars = {k: v for k, v in res.items() if k not in arrays and not k.startswith("lazy_")
           and k not in job.cell}
scalars["lazy_vs_net"] = res["lazy_vs_net"]
write_record(snakemake.output[0], scalars, arrays, job.cell, config_slice=job.config_slice)
