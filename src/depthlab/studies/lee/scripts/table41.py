from depthlab.cube import read_cube
from depthlab.job_setup import setup_logging
from depthlab.provenance import atomic_output
from depthlab.studies.lee.table41 import table41

log = setup_logging(snakemake.log[0])
frame = table41(read_cube(snakemake.input.cube), dict(snakemake.params.study))
with atomic_output(snakemake.output[0]) as tmp:
    frame.to_csv(tmp, index=False)
log.info("Table 4.1:\n%s", frame.to_string(index=False))
print(frame.to_string(index=False))
