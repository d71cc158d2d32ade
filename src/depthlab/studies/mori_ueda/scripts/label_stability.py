import numpy as np

from depthlab.data import read_dataset
from depthlab.data.io import expected_dataset
from depthlab.data.synthetic import label_function
from depthlab.job_setup import limit_threads, setup_logging
from depthlab.studies.mori_ueda.records import write_label_stability
from depthlab.studies.mori_ueda.stability import local_stability

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
spec = dict(snakemake.params.spec)
data = read_dataset(snakemake.input.data, n_train=1, expect=expected_dataset(snakemake))
labels = label_function(data["config"], data["attrs"])
x_eval = data["x_test"][: spec.get("n_points", 1000)].astype(np.float64)
v = np.asarray(spec["v"], dtype=np.float64)
s = local_stability(labels, x_eval, v)
log.info("label %s: s(v) at v=%s: %s", snakemake.wildcards.dataset, v.tolist(), s.tolist())
write_label_stability(snakemake.output[0], v, s,
                      {"dataset": snakemake.wildcards.dataset,
                       "generator": data["config"]["generator"],
                       "k": int(data["config"].get("k", 0)), "d": int(data["config"]["d"])},
                      {"local_stability": spec, "dataset": data["config"]})
