import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import setup_logging, study_import  # noqa: E402

from depthlab.cube import read_cube  # noqa: E402
from depthlab.provenance import atomic_output  # noqa: E402

critical_table = study_import(snakemake.scriptdir, "critical", "critical_table")

log = setup_logging(snakemake.log[0])
cube = read_cube(snakemake.input.cube)
table = critical_table(cube, {"critical_depths": dict(snakemake.params.critical)})
with atomic_output(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
print(table.to_string(index=False))
log.info("critical depths:\n%s", table.to_string(index=False))
