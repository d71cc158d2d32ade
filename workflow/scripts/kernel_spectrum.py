import h5py

from depthlab.job_setup import limit_threads, setup_logging
from depthlab.kernels.gram import read_gram
from depthlab.kernels.spectra import eigenvalues, spectrum
from depthlab.provenance import atomic_output, open_h5_checked, provenance_attrs

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc = snakemake.wildcards
result = {}
for kind in ("ntk", "nngp"):
    k_train, _ = read_gram(snakemake.input.gram, kind=kind, n_train=int(wc.n_train))
    result[kind] = (eigenvalues(k_train), spectrum(k_train))
    log.info("%s spectrum: %s", kind, result[kind][1])
with open_h5_checked(snakemake.input.gram) as f:
    gram_config = f.attrs.get("config", "{}")
with atomic_output(snakemake.output[0]) as tmp, h5py.File(tmp, "w") as f:
    for kind, (evals, summary) in result.items():
        group = f.create_group(kind)
        group.create_dataset("eigenvalues", data=evals)
        for name, value in summary._asdict().items():
            group.attrs[name] = value
    f.attrs.update(provenance_attrs(
        {"gram": gram_config, "n_train": int(wc.n_train)},
        dataset=wc.dataset, kernel=wc.kernel, depth=int(wc.depth), n_train=int(wc.n_train),
    ))
