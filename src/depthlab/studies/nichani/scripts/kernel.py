import torch  # noqa: F401  (imported before limit_threads so it is limited too)

from depthlab.job_setup import limit_threads, setup_logging
from depthlab.results import write_arrays
from depthlab.studies.nichani.data import read_classification_data
from depthlab.studies.nichani.runs import kernel_job

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
variant = dict(snakemake.params.variant)
kcfg = dict(snakemake.params.kernels)
data = read_classification_data(snakemake.input.data, snakemake.config["datasets"])
res = kernel_job(data, variant, kcfg, jitter=float(snakemake.params.jitter),
                 threads=snakemake.threads)
write_arrays(snakemake.output[0], {k: res[k] for k in
                               ("depth", "test_loss", "test_acc", "train_acc", "jitter_used")},
         {"name": variant["name"], "readout": variant["readout"], "fix": int(variant["fix"]),
          "gram_seconds": float(res["gram_seconds"]), "spec": res["spec"],
          "n_test": int(res["n_test"]), "n_train": int(res["n_train"])},
         {"variant": variant, "kernels": kcfg, "jitter": snakemake.params.jitter})
for d, lo, acc, j in zip(res["depth"], res["test_loss"], res["test_acc"], res["jitter_used"],
                         strict=True):
    log.info("%s depth %d: test loss %.4f, test acc %.4f (jitter %.1e)", variant["name"], d, lo,
             acc, j)
log.info("Grams in %.1f s", res["gram_seconds"])
