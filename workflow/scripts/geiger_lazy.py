import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
import torch  # noqa: E402
from _common import setup_logging  # noqa: E402

from depthlab.data import read_dataset  # noqa: E402
from depthlab.geiger import frozen_ntk_prediction  # noqa: E402
from depthlab.results import write_record  # noqa: E402

log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
wc = snakemake.wildcards
dyn = dict(snakemake.params.dynamics)
cell = {"activation": wc.activation, "depth": int(wc.depth), "width": int(wc.width),
        "seed": int(wc.seed)}
data = read_dataset(snakemake.input.data, n_train=int(snakemake.params.n_train))
log.info("frozen initial NTK of %s on %d training points", cell, len(data["y_train"]))
res = frozen_ntk_prediction(
    data["x_train"], data["y_train"], data["x_test"], data["y_test"],
    width=cell["width"], depth=cell["depth"], seed=cell["seed"], activation=cell["activation"],
    beta=dyn["beta"], architecture=snakemake.params.architecture,
    image_shape=snakemake.params.image_shape, mu=dyn["mu"], tau=dyn["tau"],
    max_df=dyn["df_target"],
)
arrays = {k: res[k] for k in ("lazy_test_outputs", "lazy_times", "lazy_aloss")}
scalars = {k: v for k, v in res.items() if k not in arrays}
write_record(snakemake.output[0], scalars, arrays, cell,
             config_slice={"dynamics": dyn, "dataset": data["config"],
                           "architecture": snakemake.params.architecture,
                           "n_train": snakemake.params.n_train, **cell})
log.info("done: %s", scalars)
