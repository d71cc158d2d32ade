import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import setup_logging  # noqa: E402

from depthlab.data import read_dataset  # noqa: E402
from depthlab.geiger import train_lazy_feature  # noqa: E402
from depthlab.results import read_record, write_record  # noqa: E402

log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
wc = snakemake.wildcards
dyn = dict(snakemake.params.dynamics)
cell = {"activation": wc.activation, "depth": int(wc.depth), "width": int(wc.width),
        "alpha": float(wc.alpha), "seed": int(wc.seed)}
data = read_dataset(snakemake.input.data, n_train=int(snakemake.params.n_train))
lazy = {k: v for k, v in read_record(snakemake.input.lazy, required=("lazy_test_outputs",)).items()
        if k.startswith("lazy_")}
log.info("training %s with %s", cell, dyn)
res = train_lazy_feature(
    data["x_train"], data["y_train"], data["x_test"], data["y_test"],
    alpha=cell["alpha"], width=cell["width"], depth=cell["depth"], seed=cell["seed"],
    activation=cell["activation"], beta=dyn["beta"], architecture=snakemake.params.architecture,
    image_shape=snakemake.params.image_shape, mu=dyn["mu"], tau=dyn["tau"],
    temperature=dyn["temperature"], df_target=dyn["df_target"],
    max_steps=dyn["max_steps"], max_time=dyn.get("max_time", float("inf")),
    record_per_decade=dyn["record_per_decade"], ntk_subset=dyn["ntk_subset"], lazy=lazy,
    log=log,
)
# The frozen-NTK prediction lives in its own file; keep only the comparison here.
arrays = {k: v for k, v in res.items()
          if isinstance(v, np.ndarray) and not k.startswith("lazy_")}
scalars = {k: v for k, v in res.items() if k not in arrays and not k.startswith("lazy_")
           and k not in cell}
scalars["lazy_vs_net"] = res["lazy_vs_net"]
write_record(snakemake.output[0], scalars, arrays, cell,
             config_slice={"dynamics": dyn, "dataset": data["config"],
                           "architecture": snakemake.params.architecture,
                           "n_train": snakemake.params.n_train, **cell})
