"""rule xiao_data: synthetic and labelled sets of one Xiao study -> {R}/{study}/data.h5."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import setup_logging, study_import  # noqa: E402

write_data = study_import(snakemake.scriptdir, "jobs", "write_data")

log = setup_logging(snakemake.log[0])
write_data(dict(snakemake.params.study), snakemake.output[0])
log.info("wrote %s", snakemake.output[0])
