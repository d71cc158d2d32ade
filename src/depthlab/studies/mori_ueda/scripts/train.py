from pathlib import Path

import numpy as np

from depthlab.data import read_dataset
from depthlab.data.io import expected_dataset
from depthlab.job_setup import limit_threads, setup_logging
from depthlab.studies.mori_ueda.grid import LR_CV
from depthlab.studies.mori_ueda.lr_search import read_lr_search
from depthlab.studies.mori_ueda.records import write_run
from depthlab.studies.mori_ueda.stability import ensemble_predict_fn, local_stability
from depthlab.training.packed_sgd import Member, TrainConfig, train_members

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)  # torch and BLAS
wc = snakemake.wildcards
settings = dict(snakemake.params.training)
stability = dict(snakemake.params.local_stability)
requested = [dict(m) for m in snakemake.params.members]
chosen_lr = None
if "lr_search" in snakemake.input.keys():
    chosen_lr = read_lr_search(snakemake.input.lr_search)["lr"]
    log.info("learning rate chosen by cross-validation: %g", chosen_lr)
members = [Member(seed=m["seed"], lr=chosen_lr if m["lr"] == LR_CV else m["lr"])
           for m in requested]
data = read_dataset(snakemake.input.data, n_train=int(wc.n_train),
                    expect=expected_dataset(snakemake))
x_train, y_train = data["x_train"], data["y_train"]
x_test, y_test = data["x_test"], data["y_test"]
draws = {}
if "draws" in snakemake.input.keys():
    # each member trains and is tested on its own draw of the dataset (data_draws): a draw
    # may have its own label rule (k-global labels pick their inputs at random)
    sets = []
    for member, path in zip(requested, snakemake.input.draws, strict=True):
        name = Path(path).stem
        drawn = read_dataset(path, n_train=int(wc.n_train),
                             expect=expected_dataset(snakemake, name))
        sets.append(drawn)
        draws[name] = drawn["config"]
        log.info("member seed %d trains on draw %s (seed %d)", member["seed"], name,
                 drawn["config"]["seed"])
    x_train, y_train, x_test, y_test = (np.stack([d[k] for d in sets]) for k in (
        "x_train", "y_train", "x_test", "y_test"))
cfg = TrainConfig.from_settings(settings, depth=int(wc.depth), width=int(wc.width),
                                n_classes=data["n_classes"])
log.info("training %d member(s) %s with %s", len(members), members, cfg)
results, model = train_members(
    x_train, y_train, x_test, y_test, members, cfg,
    checkpoint_path=snakemake.params.checkpoint, log=log, return_model=True,
)
for result, member in zip(results, requested, strict=True):
    result["lr_used"] = result["lr"]
    result["lr"] = member["lr"]  # the grid coordinate (0 = chosen by cross-validation)
stability_v = None
if stability:
    stability_v = [float(v) for v in stability["v"]]
    x_eval = data["x_test"][: stability.get("n_points", 1000)]
    s = local_stability(ensemble_predict_fn(model), x_eval, stability_v)
    for i, result in enumerate(results):
        result["local_stability"] = s[i].tolist()
    log.info("local stability s(v) at v=%s: %s", stability_v, s.tolist())
write_run(
    snakemake.output[0],
    results,
    cell={"dataset": wc.dataset, "n_train": int(wc.n_train), "depth": int(wc.depth),
          "width": int(wc.width)},
    config_slice={"training": settings, "members": requested, "dataset": data["config"],
                  "training_set_draws": draws,  # each member's own draw (train and test)
                  "chosen_lr": chosen_lr, "local_stability": stability},
    stability_v=stability_v,
)
log.info("done: %s", [(r["seed"], r["lr_used"], r["status"], r["test_error"]) for r in results])
