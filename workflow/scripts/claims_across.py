"""rule claims_across: the claims no single study can check (a plug-in's optional
``claims_across(cubes, studies)``), over every study of one kind ->
{R}/claims_across/{kind}.csv, one of the scorecard's inputs."""

from depthlab.claims import verdict_counts, write_claims
from depthlab.cube import read_cube
from depthlab.job_setup import setup_logging
from depthlab.studies import plugin

log = setup_logging(snakemake.log[0])
kind = snakemake.wildcards.kind
studies = {name: dict(block) for name, block in snakemake.params.studies.items()}
cubes = {name: read_cube(path) for name, path in zip(studies, snakemake.input.cubes, strict=True)}
results = plugin(kind).claims_across(cubes, studies)
first = next(iter(cubes.values()))
frame = write_claims(results, snakemake.output[0], study="+".join(studies),
                     scale=snakemake.params.scale,
                     config_slice={"studies": studies, "scale": snakemake.params.scale},
                     cube_attrs=first.attrs)
log.info("%d claims across %s (%s): %s", len(frame), list(studies), kind, verdict_counts(frame))
for row in frame.itertuples():
    log.info("%-28s %s: %s", row.verdict, row.claim_id, row.statement)
