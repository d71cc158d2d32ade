"""Input functions and job tables of the Mori-Ueda rules (rules/studies/mori_ueda.smk).

Kept out of the rules file (Snakemake's lint: rules and functions apart) and free of torch,
so every cluster job's parse of the Snakefile stays light.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from depthlab.data.refs import dataset_file, seed_draw_name
from depthlab.studies.mori_ueda import grid


class MoriUedaInputs:
    """What the rules of every Mori-Ueda study of a config need, expanded once (looking
    jobs up per call made the paper dry-run quadratic in the job count)."""

    def __init__(self, studies: dict[str, Any], names: list[str], results: str):
        self.studies, self.results = studies, results
        self.jobs = {name: grid.jobs(studies[name]) for name in names}

    def run_files(self, study: str) -> list[str]:
        r = self.results
        return [f"{r}/{study}/runs/{k.dataset}/N{k.n_train}/L{k.depth}_H{k.width}/"
                f"{k.member_set}.h5" for k in self.jobs[study]]

    def regression_files(self, study: str) -> list[str]:
        baseline = grid.kernel_baseline(self.studies[study])
        return [f"{self.results}/kernels/{ds}/{baseline['kernel']}/L{depth}/regression_N{n}.h5"
                for ds, n, depth in grid.kernel_regressions(self.studies[study])]

    def lr_search_file(self, study, dataset, n_train, depth, width) -> str:
        return f"{self.results}/{study}/lr_search/{dataset}/N{n_train}/L{depth}_H{width}.h5"

    def job_members(self, wildcards) -> list[dict[str, Any]]:
        key = grid.JobKey(wildcards.dataset, int(wildcards.n_train), int(wildcards.depth),
                          int(wildcards.width), wildcards.member_set)
        try:
            return [asdict(m) for m in self.jobs[wildcards.study][key]]
        except KeyError:
            raise ValueError(f"no training job {key} in the grids of study "
                             f"{wildcards.study}") from None

    def train_inputs(self, wildcards) -> dict[str, Any]:
        """The dataset, each member's own draw of it where the study redraws it per seed
        (``data_draws``, in member order: the member trains and is tested on it), and the
        learning-rate search when some member's lr is chosen by CV."""
        inputs: dict[str, Any] = {"data": dataset_file(self.results, wildcards.dataset)}
        if wildcards.dataset in self.studies[wildcards.study].get("data_draws", []):
            inputs["draws"] = [
                dataset_file(self.results, seed_draw_name(wildcards.dataset, m["seed"]))
                for m in self.job_members(wildcards)]
        if any(m["lr"] == grid.LR_CV for m in self.job_members(wildcards)):
            inputs["lr_search"] = self.lr_search_file(
                wildcards.study, wildcards.dataset, wildcards.n_train, wildcards.depth,
                wildcards.width)
        return inputs

    def stability_spec(self, study: str, dataset: str) -> dict[str, Any]:
        """The local-stability settings for members trained on `dataset` ({} = none)."""
        spec = self.studies[study].get("local_stability", {})
        return spec if dataset in spec.get("datasets", []) else {}

    def label_stability_files(self, study: str) -> list[str]:
        spec = self.studies[study].get("local_stability")
        if not spec:
            return []
        return [f"{self.results}/{study}/label_stability/{ds}.h5"
                for ds in spec["label_datasets"]]

    def checkpoint(self, wc) -> str:
        # Outside the output so a killed job keeps it and the rerun resumes.
        return (f"{self.results}/{wc.study}/checkpoints/{wc.dataset}/N{wc.n_train}/"
                f"L{wc.depth}_H{wc.width}/{wc.member_set}.pt")
