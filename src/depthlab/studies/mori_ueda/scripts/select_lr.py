from depthlab.data import read_dataset
from depthlab.data.io import expected_dataset
from depthlab.job_setup import limit_threads, setup_logging
from depthlab.studies.mori_ueda.lr_search import select_lr, write_lr_search

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)  # torch and BLAS
wc = snakemake.wildcards
search = dict(snakemake.params.search)
settings = dict(snakemake.params.training)
if "max_epochs" in search:
    settings["max_epochs"] = search["max_epochs"]
data = read_dataset(snakemake.input.data, n_train=int(wc.n_train),
                    expect=expected_dataset(snakemake))
result = select_lr(
    data["x_train"], data["y_train"],
    depth=int(wc.depth), width=int(wc.width), n_classes=data["n_classes"],
    train_settings=settings, n_folds=search["n_folds"], bounds=tuple(search["bounds"]),
    init_points=search["init_points"], n_iter=search["n_iter"], seed=search["seed"],
    init_design=search["init_design"],
    pack_folds=search["pack_folds"], device=settings["device"], log=log,
)
log.info("chosen lr %g (mean validation error %.4f)", result["lr"], result["mean_error"])
write_lr_search(snakemake.output[0], result,
                {"search": search, "training": settings, "dataset": data["config"]})
