"""rule claims_scorecard: every study's claims.csv -> {R}/claims.csv (all rows) and the
scorecard the report shows first: {R}/claims.html (standalone) and {R}/claims_fragment.html
(embedded in the report's landing page by report/workflow.rst)."""


from depthlab.job_setup import setup_logging
from depthlab.report import write_scorecard

log = setup_logging(snakemake.log[0])
frame = write_scorecard(
    dict(zip(snakemake.params.studies, snakemake.input.claims, strict=True)),
    csv_path=snakemake.output.csv,
    html_path=snakemake.output.html,
    fragment_path=snakemake.output.fragment,
    figures=dict(snakemake.params.figures),
    kinds=dict(snakemake.params.kinds),
)
log.info("scorecard: %d claims of %d studies", len(frame), len(snakemake.params.studies))
