import sys
from pathlib import Path

# the shared script helpers (_common) one level up, this study's beside it
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _common import study_import  # noqa: E402
from _job import GeigerJob  # noqa: E402

from depthlab.results import write_record  # noqa: E402

frozen_ntk_prediction = study_import(snakemake.scriptdir, "runs", "frozen_ntk_prediction")

job = GeigerJob(snakemake)
job.log.info("frozen initial NTK of %s on %d training points", job.cell,
             len(job.data["y_train"]))
res = frozen_ntk_prediction(*job.arrays, **job.model, max_df=job.dyn["df_target"])
arrays = {k: res[k] for k in ("lazy_test_outputs", "lazy_times", "lazy_aloss")}
scalars = {k: v for k, v in res.items() if k not in arrays}
write_record(snakemake.output[0], scalars, arrays, job.cell, config_slice=job.config_slice)
job.log.info("done: %s", scalars)
