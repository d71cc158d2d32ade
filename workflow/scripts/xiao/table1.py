"""rule xiao_table1_csv: Table 1 of the cube -> {R}/{study}/table1.csv (printed too)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import setup_logging, study_import  # noqa: E402

from depthlab.cube import read_cube  # noqa: E402

write_table1 = study_import(snakemake.scriptdir, "table1", "write_table1")

log = setup_logging(snakemake.log[0])
frame = write_table1(read_cube(snakemake.input.cube), snakemake.output[0])
print(frame.to_string(index=False))
log.info("wrote %s", snakemake.output[0])
