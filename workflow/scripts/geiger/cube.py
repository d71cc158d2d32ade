import sys
from pathlib import Path

# the shared script helpers (_common) one level up, this study's beside it
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _common import setup_logging, study_import  # noqa: E402

from depthlab.cube import data_source, write_cube  # noqa: E402
from depthlab.data import read_dataset  # noqa: E402
from depthlab.provenance import to_json  # noqa: E402

build_cube = study_import(snakemake.scriptdir, "cube", "build_cube")

log = setup_logging(snakemake.log[0])
study = dict(snakemake.params.study)
dataset = dict(snakemake.params.dataset)
data = read_dataset(snakemake.input.data, n_train=study["n_train"], expect=dataset)
cube = build_cube(
    list(snakemake.params.run_files), snakemake.input.lazy, y_test=data["y_test"],
    study_name=snakemake.wildcards.study, study=study, dataset=dataset,
    data_source=data_source(dataset),
)
warned = list(snakemake.params.config_warnings)
for message in warned:
    log.warning("config warning: %s", message)
if warned:  # valid settings that changed what ran (e.g. full-batch GD), stated in the cube
    cube.attrs["config_warnings"] = to_json(warned)
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
