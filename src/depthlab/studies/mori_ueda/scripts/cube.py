from depthlab.cube import write_cube
from depthlab.job_setup import setup_logging
from depthlab.provenance import to_json
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
warned = list(snakemake.params.config_warnings)
for message in warned:
    log.warning("config warning: %s", message)
if warned:  # valid settings that changed what ran (e.g. full-batch GD), stated in the cube
    cube.attrs["config_warnings"] = to_json(warned)
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
