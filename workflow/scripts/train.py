import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
import torch  # noqa: E402
from _common import setup_logging  # noqa: E402

from depthlab.data import read_dataset  # noqa: E402
from depthlab.results import write_run  # noqa: E402
from depthlab.training import Member, TrainConfig, train_members  # noqa: E402

log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
wc = snakemake.wildcards
settings = dict(snakemake.params.training)
members = [Member(seed=m["seed"], lr=m["lr"]) for m in snakemake.params.members]
data = read_dataset(snakemake.input.data, n_train=int(wc.n_train))
cfg = TrainConfig(
    depth=int(wc.depth),
    width=int(wc.width),
    n_classes=data["n_classes"],
    activation=settings["activation"],
    loss=settings["loss"],
    batch_size=settings["batch_size"],
    check_every=settings["check_every"],
    max_epochs=settings["max_epochs"],
    checkpoint_every=settings["checkpoint_every"],
    device=settings["device"],
)
log.info("training %d member(s) %s with %s", len(members), members, cfg)
results = train_members(
    data["x_train"], data["y_train"], data["x_test"], data["y_test"], members, cfg,
    checkpoint_path=snakemake.params.checkpoint, log=log,
)
write_run(
    snakemake.output[0],
    results,
    cell={"dataset": wc.dataset, "n_train": int(wc.n_train), "depth": int(wc.depth),
          "width": int(wc.width)},
    config_slice={"training": settings, "members": snakemake.params.members,
                  "dataset": data["config"]},
)
log.info("done: %s", [(r["seed"], r["lr"], r["status"], r["test_error"]) for r in results])
