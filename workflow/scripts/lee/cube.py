import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import setup_logging, study_import  # noqa: E402

from depthlab.cube import write_cube  # noqa: E402

build_cube = study_import(snakemake.scriptdir, "cube", "build_cube")

log = setup_logging(snakemake.log[0])
cube = build_cube(snakemake.wildcards.study, dict(snakemake.params.study),
                  data=snakemake.input.data, kernel=snakemake.input.kernel,
                  runs=list(snakemake.input.runs), toys=list(snakemake.input.toys),
                  spread=(list(snakemake.input.spread) or [None])[0])
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
