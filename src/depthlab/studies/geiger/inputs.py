"""Input functions and run tables of the Geiger rules (rules/studies/geiger.smk).

Kept out of the rules file (Snakemake's lint: rules and functions apart) and free of torch.
"""

from __future__ import annotations

from typing import Any

from depthlab.studies.geiger import grid


class GeigerInputs:
    """The training jobs (one per run, or one per packed member set: grid.pack_jobs) and one
    frozen-NTK prediction per (activation, depth, width, seed), for every Geiger study of a
    config, expanded once."""

    def __init__(self, studies: dict[str, Any], datasets: dict[str, Any], names: list[str],
                 results: str):
        self.studies, self.datasets, self.results = studies, datasets, results
        self.runs = {name: grid.geiger_runs(studies[name]) for name in names}
        self.packs = {name: grid.pack_axes(studies[name]) for name in names}
        self.jobs = {name: grid.pack_jobs(studies[name]) for name in names}

    def dataset_file(self, wildcards) -> str:
        return f"{self.results}/datasets/{self.studies[wildcards.study]['dataset']}.h5"

    def lazy_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/lazy/{act}_L{depth}_h{width}/seed{seed}.h5"
                for act, depth, width, seed in grid.geiger_lazy_cells(self.studies[study])]

    def run_files(self, study: str) -> list[str]:
        """Every run's HDF5 file (inside its pack's directory for a packed study)."""
        pack = self.packs[study]
        return [f"{self.results}/{study}/{grid.run_path(r, pack)}" for r in self.runs[study]]

    def train_outputs(self, study: str) -> list[str]:
        """What the training jobs output: the run files, or the packs' directories."""
        if not self.packs[study]:
            return self.run_files(study)
        return [f"{self.results}/{study}/runs/{arch}/{mset}"
                for arch, mset in sorted(self.jobs[study])]

    def _pack(self, wildcards) -> list[grid.GeigerRun]:
        arch = f"{wildcards.activation}_L{wildcards.depth}_h{wildcards.width}"
        try:
            return self.jobs[wildcards.study][(arch, wildcards.member_set)]
        except KeyError:
            raise ValueError(f"{wildcards.study} trains no pack {arch}/{wildcards.member_set} "
                             f"(dynamics.pack = {list(self.packs[wildcards.study])})") from None

    def pack_members(self, wildcards) -> list[list[Any]]:
        """[alpha, seed] of every member of one packed training job."""
        return [[r.alpha, r.seed] for r in self._pack(wildcards)]

    def pack_lazy_files(self, wildcards) -> list[str]:
        """The frozen-NTK predictions of a pack's seeds."""
        arch = f"{wildcards.activation}_L{wildcards.depth}_h{wildcards.width}"
        seeds = sorted({r.seed for r in self._pack(wildcards)})
        return [f"{self.results}/{wildcards.study}/lazy/{arch}/seed{s}.h5" for s in seeds]

    def common_params(self, wildcards) -> dict[str, Any]:
        """Everything a Geiger job needs besides its wildcards (one params entry)."""
        study = self.studies[wildcards.study]
        return {
            # the job layout is no dynamics setting (a packed member is bitwise its lone
            # run): leaving it out keeps every run's params and provenance whatever the pack
            "dynamics": {k: v for k, v in grid.geiger_dynamics(study).items() if k != "pack"},
            "n_train": study["n_train"],
            "architecture": study["architecture"],
            "image_shape": grid.geiger_image_shape(study, self.datasets[study["dataset"]]),
        }
