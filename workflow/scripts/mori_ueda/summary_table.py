import sys
from pathlib import Path

# the shared script helpers (_common) one level up, this study's beside it
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _common import setup_logging, study_import  # noqa: E402

from depthlab.cube import read_cube  # noqa: E402
from depthlab.provenance import atomic_output  # noqa: E402

depth_effect_table, format_table = study_import(
    snakemake.scriptdir, "summary", "depth_effect_table", "format_table")

log = setup_logging(snakemake.log[0])
cube = read_cube(snakemake.input.cube)
depths = dict(snakemake.params.depths)
table = depth_effect_table(cube, dict(snakemake.params.figures), **depths)
with atomic_output(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
text = format_table(table)
log.info("depth effect (E_test(deep) - E_test(shallow)) and NTK gap, %s:\n%s", depths, text)
print(f"\n{snakemake.wildcards.study}: depth effect E_test(L={depths['deep']}) - "
      f"E_test(L={depths['shallow']})\n{text}\n")
