"""rule xiao_cube: every sweep and run of a Xiao study -> {R}/{study}/cube.nc."""


from depthlab.cube import write_cube
from depthlab.job_setup import setup_logging
from depthlab.studies.xiao.cube import build_cube, source_of

log = setup_logging(snakemake.log[0])
study = dict(snakemake.params.study)
cube = build_cube(snakemake.wildcards.study, study, list(snakemake.input.sweeps),
                  list(snakemake.input.runs), source_of(study),
                  plane_runs=list(snakemake.input.plane_runs))
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
