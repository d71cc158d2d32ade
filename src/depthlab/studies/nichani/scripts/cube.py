from depthlab.cube import write_cube
from depthlab.job_setup import setup_logging
from depthlab.studies.nichani.cube import build_cube

log = setup_logging(snakemake.log[0])
cube = build_cube(snakemake.wildcards.study, dict(snakemake.params.study),
                  data=snakemake.input.data, runs=list(snakemake.input.runs),
                  kernels=list(snakemake.input.kernels),
                  linear=list(snakemake.input.linear),
                  resnets=list(snakemake.input.resnets))
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
