"""Input functions and run tables of the Geiger rules (rules/studies/geiger.smk).

Kept out of the rules file (Snakemake's lint: rules and functions apart) and free of torch.
"""

from __future__ import annotations

from typing import Any

from depthlab.studies.geiger import grid


class GeigerInputs:
    """One job per run, one frozen-NTK prediction per (activation, depth, width, seed), for
    every Geiger study of a config, expanded once."""

    def __init__(self, studies: dict[str, Any], datasets: dict[str, Any], names: list[str],
                 results: str):
        self.studies, self.datasets, self.results = studies, datasets, results
        self.runs = {name: grid.geiger_runs(studies[name]) for name in names}

    def dataset_file(self, wildcards) -> str:
        return f"{self.results}/datasets/{self.studies[wildcards.study]['dataset']}.h5"

    def lazy_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/lazy/{act}_L{depth}_h{width}/seed{seed}.h5"
                for act, depth, width, seed in grid.geiger_lazy_cells(self.studies[study])]

    def run_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/runs/{r.arch}/{r.name}.h5" for r in self.runs[study]]

    def common_params(self, wildcards) -> dict[str, Any]:
        """Everything a Geiger job needs besides its wildcards (one params entry)."""
        study = self.studies[wildcards.study]
        return {
            "dynamics": grid.geiger_dynamics(study),
            "n_train": study["n_train"],
            "architecture": study["architecture"],
            "image_shape": grid.geiger_image_shape(study, self.datasets[study["dataset"]]),
        }
