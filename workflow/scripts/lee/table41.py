import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import setup_logging, study_import  # noqa: E402

from depthlab.cube import read_cube  # noqa: E402
from depthlab.provenance import atomic_output  # noqa: E402

table41 = study_import(snakemake.scriptdir, "table41", "table41")

log = setup_logging(snakemake.log[0])
frame = table41(read_cube(snakemake.input.cube), dict(snakemake.params.study))
with atomic_output(snakemake.output[0]) as tmp:
    frame.to_csv(tmp, index=False)
log.info("Table 4.1:\n%s", frame.to_string(index=False))
print(frame.to_string(index=False))
