"""What both Geiger job scripts read from the ``snakemake`` object."""

from _common import limit_threads, setup_logging


class GeigerJob:
    """What both Geiger job scripts read from the ``snakemake`` object: the run's cell
    (activation, depth, width, seed, and alpha where the rule has it), the dynamics
    settings, the dataset and the model keywords, with logging and threads set up."""

    def __init__(self, smk):

        from depthlab.data import read_dataset

        self.log = setup_logging(smk.log[0])
        limit_threads(smk.threads)  # torch and BLAS
        wc = smk.wildcards
        run = dict(smk.params.run)
        self.dyn = dict(run["dynamics"])
        self.cell = {"activation": wc.activation, "depth": int(wc.depth),
                     "width": int(wc.width), "seed": int(wc.seed)}
        if "alpha" in wc.keys():
            self.cell["alpha"] = float(wc.alpha)
        self.data = read_dataset(smk.input.data, n_train=int(run["n_train"]))
        self.model = {"width": self.cell["width"], "depth": self.cell["depth"],
                      "seed": self.cell["seed"], "activation": self.cell["activation"],
                      "beta": self.dyn["beta"], "architecture": run["architecture"],
                      "image_shape": run["image_shape"], "mu": self.dyn["mu"],
                      "tau": self.dyn["tau"], "device": self.dyn["device"]}
        self.config_slice = {"dynamics": self.dyn, "dataset": self.data["config"],
                             "architecture": run["architecture"],
                             "n_train": run["n_train"], **self.cell}

    @property
    def arrays(self):
        d = self.data
        return d["x_train"], d["y_train"], d["x_test"], d["y_test"]
