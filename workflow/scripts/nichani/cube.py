import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import setup_logging  # noqa: E402

from depthlab.cube import write_cube  # noqa: E402
from depthlab.studies.nichani.cube import build_nichani_cube  # noqa: E402

log = setup_logging(snakemake.log[0])
cube = build_nichani_cube(snakemake.wildcards.study, dict(snakemake.params.study),
                          data=snakemake.input.data, runs=list(snakemake.input.runs),
                          kernels=list(snakemake.input.kernels),
                          linear=list(snakemake.input.linear),
                          resnets=list(snakemake.input.resnets))
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
