"""What both Geiger job scripts read from the ``snakemake`` object."""

from depthlab.job_setup import limit_threads, setup_logging


class GeigerJob:
    """What both Geiger job scripts read from the ``snakemake`` object: the run's cell
    (activation, depth, width, seed, and alpha where the rule has it), the dynamics
    settings, the dataset and the model keywords, with logging and threads set up."""

    def __init__(self, smk):

        from depthlab.data import read_dataset
        from depthlab.data.io import expected_dataset

        self.log = setup_logging(smk.log[0])
        limit_threads(smk.threads)  # torch and BLAS
        wc = smk.wildcards
        run = dict(smk.params.run)
        self.dyn = dict(run["dynamics"])
        self.cell = {"activation": wc.activation, "depth": int(wc.depth),
                     "width": int(wc.width)}
        if "seed" in wc.keys():  # not for a pack (train_pack.py: cell_of)
            self.cell["seed"] = int(wc.seed)
        if "alpha" in wc.keys():
            self.cell["alpha"] = float(wc.alpha)
        self.data = read_dataset(
            smk.input.data, n_train=int(run["n_train"]),
            expect=expected_dataset(smk, smk.config["studies"][wc.study]["dataset"]))
        self.model = {"width": self.cell["width"], "depth": self.cell["depth"],
                      "activation": self.cell["activation"],
                      "beta": self.dyn["beta"], "architecture": run["architecture"],
                      "image_shape": run["image_shape"], "mu": self.dyn["mu"],
                      "tau": self.dyn["tau"], "device": self.dyn["device"]}
        if "seed" in self.cell:
            self.model["seed"] = self.cell["seed"]
        self.run = run

    def cell_of(self, alpha: float, seed: int) -> dict:
        """The cell of one member of a pack, as a one-net job has it."""
        return {**self.cell, "seed": int(seed), "alpha": float(alpha)}

    def slice_of(self, cell: dict) -> dict:
        """The provenance config slice of a run (or lazy prediction) of ``cell``."""
        run = self.run
        return {"dynamics": self.dyn, "dataset": self.data["config"],
                "architecture": run["architecture"], "n_train": run["n_train"], **cell}

    @property
    def config_slice(self) -> dict:
        return self.slice_of(self.cell)

    @property
    def arrays(self):
        d = self.data
        return d["x_train"], d["y_train"], d["x_test"], d["y_test"]
