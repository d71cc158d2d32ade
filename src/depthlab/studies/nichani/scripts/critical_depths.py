from depthlab.cube import read_cube
from depthlab.job_setup import setup_logging
from depthlab.provenance import atomic_output
from depthlab.studies.nichani.critical import critical_table

log = setup_logging(snakemake.log[0])
cube = read_cube(snakemake.input.cube)
table = critical_table(cube, {"critical_depths": dict(snakemake.params.critical)})
with atomic_output(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
print(table.to_string(index=False))
log.info("critical depths:\n%s", table.to_string(index=False))
