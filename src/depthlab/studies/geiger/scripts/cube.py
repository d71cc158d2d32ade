from depthlab.cube import data_source, stamp_config_warnings, write_cube
from depthlab.data import read_dataset
from depthlab.job_setup import setup_logging
from depthlab.studies.geiger.cube import build_cube

log = setup_logging(snakemake.log[0])
study = dict(snakemake.params.study)
dataset = dict(snakemake.params.dataset)
data = read_dataset(snakemake.input.data, n_train=study["n_train"], expect=dataset)
cube = build_cube(
    list(snakemake.params.run_files), snakemake.input.lazy, y_test=data["y_test"],
    study_name=snakemake.wildcards.study, study=study, dataset=dataset,
    data_source=data_source(dataset),
)
stamp_config_warnings(cube, list(snakemake.params.config_warnings), log)
log.info("cube:\n%s", cube)
write_cube(cube, snakemake.output[0])
