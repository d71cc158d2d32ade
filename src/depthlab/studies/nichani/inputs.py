"""Input functions and job tables of the Nichani rules (rules/studies/nichani.smk); free of
torch."""

from __future__ import annotations

from typing import Any

from depthlab.studies.nichani import grid


class NichaniInputs:
    """Jobs of every Nichani study of a config, expanded once."""

    def __init__(self, studies: dict[str, Any], names: list[str], results: str):
        self.studies, self.results = studies, results
        self.train = {n: grid.train_jobs(studies[n]) for n in names}
        self.kernels = {n: {v["name"]: v for v in grid.kernel_variants(studies[n])}
                        for n in names}
        self.linear = {n: grid.linear_tasks(studies[n]) for n in names}
        self.resnets = {n: grid.resnet_jobs(studies[n]) for n in names}

    def run_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/runs/{j}.h5" for j in sorted(self.train[study])]

    def resnet_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/resnets/{j}.h5" for j in self.resnets[study]]

    def resnet_job(self, wildcards) -> dict[str, Any]:
        try:
            return self.resnets[wildcards.study][wildcards.job]
        except KeyError:
            raise ValueError(f"no ResNet job {wildcards.job} in study "
                             f"{wildcards.study}") from None

    def kernel_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/kernels/{v}.h5" for v in sorted(self.kernels[study])]

    def linear_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/linear/{t}.h5" for t in sorted(self.linear[study])]

    def job(self, wildcards) -> dict[str, Any]:
        try:
            return self.train[wildcards.study][wildcards.job]
        except KeyError:
            raise ValueError(f"no training job {wildcards.job} in study "
                             f"{wildcards.study}") from None

    def variant(self, wildcards) -> dict[str, Any]:
        try:
            return self.kernels[wildcards.study][wildcards.variant]
        except KeyError:
            raise ValueError(f"no kernel {wildcards.variant} in study {wildcards.study}") from None

    def task(self, wildcards) -> dict[str, Any]:
        try:
            return self.linear[wildcards.study][wildcards.task]
        except KeyError:
            raise ValueError(f"no linear task {wildcards.task} in study "
                             f"{wildcards.study}") from None

    def task_data(self, wildcards) -> str | list[str]:
        """A linear task's dataset file (conv_ae's images); the other tasks draw their
        inputs from their seeds and read none."""
        from depthlab.data.refs import dataset_file

        name = self.task(wildcards).get("dataset")
        return dataset_file(self.results, name) if name else []

    def checkpoint(self, wildcards) -> str:
        return f"{self.results}/{wildcards.study}/checkpoints/{wildcards.job}"
