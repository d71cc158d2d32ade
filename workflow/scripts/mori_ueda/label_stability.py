import sys
from pathlib import Path

# the shared script helpers (_common) one level up, this study's beside it
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
sys.path.insert(0, str(Path(snakemake.scriptdir)))
import h5py  # noqa: E402
import numpy as np  # noqa: E402
from _common import limit_threads, setup_logging, study_import  # noqa: E402

from depthlab.data import read_dataset  # noqa: E402
from depthlab.data.synthetic import label_function  # noqa: E402
from depthlab.provenance import atomic_output, provenance_attrs  # noqa: E402

local_stability = study_import(snakemake.scriptdir, "stability", "local_stability")

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
spec = dict(snakemake.params.spec)
data = read_dataset(snakemake.input.data, n_train=1)
labels = label_function(data["config"], data["attrs"])
x_eval = data["x_test"][: spec.get("n_points", 1000)].astype(np.float64)
v = np.asarray(spec["v"], dtype=np.float64)
s = local_stability(labels, x_eval, v)
log.info("label %s: s(v) at v=%s: %s", snakemake.wildcards.dataset, v.tolist(), s.tolist())
with atomic_output(snakemake.output[0]) as tmp, h5py.File(tmp, "w") as f:
    f.create_dataset("v", data=v)
    f.create_dataset("stability", data=s)
    f.attrs.update(provenance_attrs({"local_stability": spec, "dataset": data["config"]},
                                    dataset=snakemake.wildcards.dataset,
                                    generator=data["config"]["generator"],
                                    k=int(data["config"].get("k", 0)),
                                    d=int(data["config"]["d"])))
