from depthlab.cube import write_cube
from depthlab.job_setup import setup_logging
from depthlab.studies.lee.cube import build_cube

log = setup_logging(snakemake.log[0])
cube = build_cube(snakemake.wildcards.study, dict(snakemake.params.study),
                  data=snakemake.input.data, kernel=snakemake.input.kernel,
                  runs=list(snakemake.input.runs), toys=list(snakemake.input.toys),
                  spread=(list(snakemake.input.spread) or [None])[0])
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
