"""Shared set-up for workflow scripts: route logging to the rule's log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# Import depthlab from this checkout, whether or not it is pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))


def setup_logging(log_path: str) -> logging.Logger:
    logging.basicConfig(
        filename=log_path,
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    logger = logging.getLogger("depthlab")

    def excepthook(exc_type, exc, tb):
        logger.error("failed", exc_info=(exc_type, exc, tb))
        sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = excepthook
    return logger


class GeigerJob:
    """What both Geiger job scripts read from the ``snakemake`` object: the run's cell
    (activation, depth, width, seed, and alpha where the rule has it), the dynamics
    settings, the dataset and the model keywords, with logging and threads set up."""

    def __init__(self, smk):
        import torch

        from depthlab.data import read_dataset

        self.log = setup_logging(smk.log[0])
        torch.set_num_threads(smk.threads)
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
