"""Input functions and job tables of the Lee rules (rules/studies/lee.smk); free of torch."""

from __future__ import annotations

from typing import Any

from depthlab.data.refs import dataset_file
from depthlab.studies.lee import grid


class LeeInputs:
    """Jobs of every Lee study of a config, expanded once."""

    def __init__(self, studies: dict[str, Any], names: list[str], results: str):
        self.studies, self.results = studies, results
        self.jobs = {name: grid.jobs(studies[name]) for name in names}

    def job_names(self, study: str) -> list[str]:
        """In the order of the grids in the config (then init, depth, lr, seed as strings):
        the cube's run order, the order runs had when files were named by grid position."""
        def position(job: str) -> str:
            m = self.jobs[study][job][0]
            pack = bool(self.studies[study]["training"]["pack"])
            return (f"g{m.grid}_{m.init}_D{m.depth}" if pack
                    else f"g{m.grid}_{m.init}_D{m.depth}_lr{m.lr_label}_s{m.seed}")

        return sorted(self.jobs[study], key=position)

    def run_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/runs/{job}.h5" for job in self.job_names(study)]

    def toy_files(self, study: str) -> list[str]:
        toy = self.studies[study].get("toy")
        return [f"{self.results}/{study}/toy/D{d}.h5" for d in (toy or {}).get("depths", [])]

    def spread_file(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/spread.h5"] if self.studies[study].get("spread") else []

    def _job(self, wildcards) -> list[grid.Member]:
        try:
            return self.jobs[wildcards.study][wildcards.job]
        except KeyError:
            raise ValueError(f"no training job {wildcards.job} in study "
                             f"{wildcards.study}") from None

    def train_study(self, wildcards) -> dict[str, Any]:
        """What a training job reads of its study (grid.train_slice): its params."""
        return grid.train_slice(self.studies[wildcards.study], self._job(wildcards))[0]

    def members(self, wildcards) -> list[dict[str, Any]]:
        """The job's members, pointing at grid 0 of :meth:`train_study`."""
        return grid.train_slice(self.studies[wildcards.study], self._job(wildcards))[1]

    def train_inputs(self, wildcards) -> dict[str, str]:
        base = f"{self.results}/{wildcards.study}"
        inputs = {"data": self.data_file(wildcards)}
        if any(isinstance(m["lr_spec"], dict) for m in self.members(wildcards)):
            inputs["kernel"] = f"{base}/kernel.h5"
        return inputs

    def data_file(self, wildcards) -> str:
        """The study's dataset file: the shared make_dataset output of `data.dataset`."""
        return dataset_file(self.results, self.studies[wildcards.study]["data"]["dataset"])

    def train_runtime(self, wildcards) -> int:
        """Minutes per attempt: one Slurm slot (24 h) for checkpointed (paper-scale) jobs,
        which resume from their checkpoint on the next attempt; 2 h otherwise."""
        return 1440 if self.studies[wildcards.study]["training"]["checkpoint_every"] else 120

    def train_mem_mb(self, wildcards) -> int:
        """Host memory of one job: 4 GB, or the net's parameters (x 3: weights, grads,
        checkpoint copy) plus the saved activations of a batch, whichever is larger."""
        study = self.studies[wildcards.study]
        first = self.jobs[wildcards.study][wildcards.job][0]
        g = study["grids"][first.grid]
        depth, width = first.depth, grid.width(study, g)
        tr = study["training"]
        size = 8 if tr["dtype"] == "float64" else 4
        if grid.arch(g) == "cnn":
            side = grid.image_side(study) // int(g.get("pool", 1))
            params = depth * width * width * 10
            acts = 2 * tr["batch_size"] * width * side * side * depth
        else:
            params = depth * width * (width + 1)
            acts = 2 * tr["batch_size"] * width * depth
        return max(4000, int((3 * params + acts) * size / 1e6 * 1.2) + 2000)

    def checkpoint(self, wildcards) -> str:
        return f"{self.results}/{wildcards.study}/checkpoints/{wildcards.job}.pt"
