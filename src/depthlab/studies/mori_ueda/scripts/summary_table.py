from depthlab.cube import read_cube
from depthlab.job_setup import setup_logging
from depthlab.provenance import atomic_output
from depthlab.studies.mori_ueda.summary import depth_effect_table, format_table

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
