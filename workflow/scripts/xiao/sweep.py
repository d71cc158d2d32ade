"""rule xiao_sweep: one kernel depth sweep -> {R}/{study}/sweeps/{sweep}.h5."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import limit_threads, setup_logging, study_import  # noqa: E402

sweep = dict(snakemake.params.sweep)
if sweep["arch"] != "fc":
    # the conv kernels run in torch (imported first so limit_threads sets its threads too);
    # FC sweeps are numpy only and skip the ~2 s torch import
    import torch  # noqa: E402, F401

write_sweep = study_import(snakemake.scriptdir, "jobs", "write_sweep")

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
log.info("sweep %s", sweep)
write_sweep(dict(snakemake.params.study), sweep, snakemake.input.data, snakemake.output[0],
            snakemake.threads)
log.info("wrote %s", snakemake.output[0])
