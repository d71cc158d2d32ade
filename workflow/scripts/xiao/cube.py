"""rule xiao_cube: every sweep and run of a Xiao study -> {R}/{study}/cube.nc."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import setup_logging, study_import  # noqa: E402

from depthlab.cube import write_cube  # noqa: E402

build_cube, source_of = study_import(snakemake.scriptdir, "cube", "build_cube", "source_of")

log = setup_logging(snakemake.log[0])
study = dict(snakemake.params.study)
cube = build_cube(snakemake.wildcards.study, study, list(snakemake.input.sweeps),
                  list(snakemake.input.runs), source_of(study),
                  plane_runs=list(snakemake.input.plane_runs))
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
