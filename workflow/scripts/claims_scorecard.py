"""rule claims_scorecard: every study's claims.csv -> {R}/claims.csv (all rows) and the
scorecard the report shows first: {R}/claims.html (standalone) and {R}/claims_fragment.html
(embedded in the report's landing page by report/workflow.rst)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _common import setup_logging  # noqa: E402

from depthlab.report import write_scorecard  # noqa: E402

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
