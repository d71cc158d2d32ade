from depthlab.cube import stamp_config_warnings, write_cube
from depthlab.job_setup import setup_logging
from depthlab.studies.mori_ueda.cube import build_cube

log = setup_logging(snakemake.log[0])
cube = build_cube(
    snakemake.input.runs,
    snakemake.input.regressions,
    study_name=snakemake.wildcards.study,
    study=dict(snakemake.params.study),
    datasets=dict(snakemake.params.datasets),
    kernels=dict(snakemake.params.kernels),
    label_stability_files=snakemake.input.label_stability,
)
stamp_config_warnings(cube, list(snakemake.params.config_warnings), log)
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
