from depthlab.cube import read_cube
from depthlab.job_setup import setup_logging
from depthlab.plotting import save_figure
from depthlab.studies import plugin

log = setup_logging(snakemake.log[0])
figure = dict(snakemake.params.figure)
cube = read_cube(snakemake.input.cube)
fig = plugin(snakemake.params.kind).PLOTS[figure["plot"]](cube, figure)
for problem in save_figure(fig, snakemake.output.pdf, snakemake.output.png):
    log.warning("readability: %s", problem)
log.info("wrote %s and %s", snakemake.output.pdf, snakemake.output.png)
