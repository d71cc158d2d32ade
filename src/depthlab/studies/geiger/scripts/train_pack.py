"""One packed training job: every (alpha, seed) member of one member set of an
(activation, depth, width) cell trained together (each member bitwise its lone run), one
HDF5 file per member in the output directory, as the one-net job writes it."""

from pathlib import Path

import numpy as np

from depthlab.results import read_record, write_record
from depthlab.studies.geiger.grid import GeigerRun
from depthlab.studies.geiger.job import GeigerJob
from depthlab.studies.geiger.runs import train_lazy_feature_packed

job = GeigerJob(snakemake)
dyn = job.dyn
members = [(float(a), int(s)) for a, s in snakemake.params.members]
lazy = {}
for path in snakemake.input.lazy:
    rec = read_record(path, required=("lazy_test_outputs",))
    lazy[int(rec["seed"])] = {k: v for k, v in rec.items() if k.startswith("lazy_")}
job.log.info("training %d members of %s together with %s: %s", len(members), job.cell, dyn,
             members)
results = train_lazy_feature_packed(
    *job.arrays, members=members, **job.model, temperature=dyn["temperature"],
    df_target=dyn["df_target"], max_steps=dyn["max_steps"],
    max_time=dyn.get("max_time", float("inf")), record_per_decade=dyn["record_per_decade"],
    ntk_subset=dyn["ntk_subset"], lazy=lazy, log=job.log,
)
out = Path(snakemake.output[0])
out.mkdir(parents=True, exist_ok=True)
for (alpha, seed), res in zip(members, results, strict=True):
    cell = job.cell_of(alpha, seed)
    name = GeigerRun(cell["activation"], cell["depth"], cell["width"], alpha, seed).name
    # as scripts/train.py: the frozen-NTK prediction lives in its own file
    arrays = {k: v for k, v in res.items()
              if isinstance(v, np.ndarray) and not k.startswith("lazy_")}
    scalars = {k: v for k, v in res.items() if k not in arrays and not k.startswith("lazy_")
               and k not in cell}
    scalars["lazy_vs_net"] = res["lazy_vs_net"]
    write_record(out / f"{name}.h5", scalars, arrays, cell, config_slice=job.slice_of(cell))
job.log.info("done: %d runs in %s", len(members), out)
