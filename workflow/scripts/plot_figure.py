import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _common import setup_logging  # noqa: E402

from depthlab.cube import read_cube  # noqa: E402
from depthlab.plotting import save_figure  # noqa: E402
from depthlab.studies import plugin  # noqa: E402

log = setup_logging(snakemake.log[0])
figure = dict(snakemake.params.figure)
cube = read_cube(snakemake.input.cube)
fig = plugin(snakemake.params.kind).PLOTS[figure["plot"]](cube, figure)
for problem in save_figure(fig, snakemake.output.pdf, snakemake.output.png):
    log.warning("readability: %s", problem)
log.info("wrote %s and %s", snakemake.output.pdf, snakemake.output.png)
