import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from _common import setup_logging, study_import  # noqa: E402

from depthlab.results import write_arrays  # noqa: E402

load_lee_data = study_import(snakemake.scriptdir, "data", "load_lee_data")

log = setup_logging(snakemake.log[0])
spec = dict(snakemake.params.spec)
data = load_lee_data(spec)
write_arrays(snakemake.output[0],
         {k: data[k] for k in ("x_train", "y_train", "x_test", "y_test")},
         {"n_classes": int(data["n_classes"]), "data_source": data["meta"]["source"],
          "classes": str(data["meta"]["classes"])}, {"data": spec})
log.info("%s: %d train / %d test rows, d = %d", data["meta"]["source"], len(data["y_train"]),
         len(data["y_test"]), data["x_train"].shape[1])
