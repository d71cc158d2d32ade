from depthlab.data.io import dataset_arrays
from depthlab.job_setup import setup_logging
from depthlab.results import write_arrays
from depthlab.studies.lee.runs import kernel_job

log = setup_logging(snakemake.log[0])
study = dict(snakemake.params.study)
# the shared dataset file, content hash and config checked (depthlab.data.io)
arrays, attrs = dataset_arrays(snakemake.input.data, datasets=snakemake.config["datasets"])
data = {**arrays, "n_classes": int(attrs["n_classes"])}
res = kernel_job(data, study, jitter=float(snakemake.params.jitter), gram=snakemake.input.gram,
                 block_size=int(snakemake.params.block_size))
write_arrays(snakemake.output[0], {"krr_test_pred": res.pop("krr_test_pred")}, res,
         {"deep_narrow": study["deep_narrow"], "data": study["data"],
          "stability_subset": study["training"]["stability_subset"]})
log.info("Theta~inf: lambda_max(K/N) = %.4g on %d rows; kernel regression test acc %.4f "
         "(jitter %.1e)", res["lambda_max_inf"], res["n_stability"], res["krr_test_acc"],
         res["krr_jitter"])
