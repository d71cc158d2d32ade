"""rule claims: the study plug-in's claims evaluated on its cube -> {R}/{study}/claims.csv."""


from depthlab.claims import check_claim_keys, verdict_counts, write_claims
from depthlab.cube import read_cube
from depthlab.job_setup import setup_logging
from depthlab.studies import plugin

log = setup_logging(snakemake.log[0])
study_name = snakemake.wildcards.study
study = dict(snakemake.params.study)
cube = read_cube(snakemake.input.cube)
module = plugin(study["kind"], key=f"studies.{study_name}.kind")
results = module.claims(cube, study)
# a kind the plug-in's claims across studies use (claims_across) is judged elsewhere
check_claim_keys(study, results, kinds=getattr(module, "CLAIM_KINDS", ()))
frame = write_claims(results, snakemake.output[0], study=study_name,
                     scale=snakemake.params.scale,
                     config_slice={"study": study, "scale": snakemake.params.scale},
                     cube_attrs=cube.attrs)
counts = verdict_counts(frame)
log.info("%d claims of %s (%s): %s", len(frame), study_name, study["kind"], counts)
for row in frame.itertuples():
    log.info("%-28s %s: %s", row.verdict, row.claim_id, row.statement)
print(f"\n{study_name}: {len(frame)} claims checked: "
      + ", ".join(f"{n} {v}" for v, n in counts.items()) + "\n")
