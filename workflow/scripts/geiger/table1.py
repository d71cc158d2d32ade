import sys
from pathlib import Path

# the shared script helpers (_common) one level up, this study's beside it
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _common import setup_logging, study_import  # noqa: E402

from depthlab.cube import read_cube  # noqa: E402
from depthlab.provenance import atomic_output  # noqa: E402

exponent_table, format_exponent_table = study_import(
    snakemake.scriptdir, "table1", "exponent_table", "format_exponent_table")

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
