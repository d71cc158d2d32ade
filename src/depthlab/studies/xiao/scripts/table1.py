"""rule xiao_table1_csv: Table 1 of the cube -> {R}/{study}/table1.csv (printed too)."""


from depthlab.cube import read_cube
from depthlab.job_setup import setup_logging
from depthlab.studies.xiao.table1 import write_table1

log = setup_logging(snakemake.log[0])
frame = write_table1(read_cube(snakemake.input.cube), snakemake.output[0])
print(frame.to_string(index=False))
log.info("wrote %s", snakemake.output[0])
