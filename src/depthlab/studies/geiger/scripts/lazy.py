from depthlab.results import write_record
from depthlab.studies.geiger.job import GeigerJob
from depthlab.studies.geiger.runs import frozen_ntk_prediction

job = GeigerJob(snakemake)
job.log.info("frozen initial NTK of %s on %d training points", job.cell,
             len(job.data["y_train"]))
res = frozen_ntk_prediction(*job.arrays, **job.model, max_df=job.dyn["df_target"])
arrays = {k: res[k] for k in ("lazy_test_outputs", "lazy_times", "lazy_aloss")}
scalars = {k: v for k, v in res.items() if k not in arrays}
write_record(snakemake.output[0], scalars, arrays, job.cell, config_slice=job.config_slice)
job.log.info("done: %s", scalars)
