from depthlab.cube import read_cube
from depthlab.job_setup import setup_logging
from depthlab.provenance import atomic_output
from depthlab.studies.geiger.table1 import exponent_table, format_exponent_table

log = setup_logging(snakemake.log[0])
cube = read_cube(snakemake.input.cube)
table = exponent_table(cube, dict(snakemake.params.spec))
table["data_source"] = cube.attrs["data_source"]
with atomic_output(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
text = format_exponent_table(table)
log.info("Table 1 (O ~ alpha^-a for alpha << 1):\n%s", text)
print(f"\n{snakemake.wildcards.study}: Geiger Table 1, O ~ alpha^-a for alpha << 1 "
      f"({cube.attrs['data_source']})\n{text}\n")
