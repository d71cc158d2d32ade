import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import setup_logging  # noqa: E402

from depthlab.cube import write_cube  # noqa: E402
from depthlab.studies.lee.cube import build_lee_cube  # noqa: E402

log = setup_logging(snakemake.log[0])
cube = build_lee_cube(snakemake.wildcards.study, dict(snakemake.params.study),
                      data=snakemake.input.data, kernel=snakemake.input.kernel,
                      runs=list(snakemake.input.runs), toys=list(snakemake.input.toys),
                      spread=(list(snakemake.input.spread) or [None])[0])
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
