import sys
from pathlib import Path

# the shared script helpers (_common) one level up, this study's beside it
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _common import setup_logging, study_import  # noqa: E402

from depthlab.cube import write_cube  # noqa: E402
from depthlab.provenance import to_json  # noqa: E402

build_cube = study_import(snakemake.scriptdir, "cube", "build_cube")

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
