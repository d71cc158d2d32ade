"""Input functions of the Xiao rules (rules/studies/xiao.smk); free of torch."""

from __future__ import annotations

from typing import Any

from depthlab.data.refs import dataset_file
from depthlab.studies.xiao import data as xdata
from depthlab.studies.xiao import grid


class XiaoInputs:
    """Sweeps and runs of every Xiao study of a config, expanded once."""

    def __init__(self, studies: dict[str, Any], names: list[str], results: str):
        self.studies, self.results = studies, results
        self.sweeps = {name: grid.sweeps(studies[name]) for name in names}
        self.runs = {name: grid.runs(studies[name]) for name in names}
        self.plane_runs = {name: grid.plane_net_runs(studies[name]) for name in names}

    def sweep_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/sweeps/{s}.h5" for s in sorted(self.sweeps[study])]

    def run_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/runs/{r}.h5" for r in sorted(self.runs[study])]

    def plane_run_files(self, study: str) -> list[str]:
        return [f"{self.results}/{study}/plane_runs/{r}.h5"
                for r in sorted(self.plane_runs[study])]

    def sweep_data(self, wildcards) -> str:
        """The dataset file a sweep reads (the dataset its data group's block names)."""
        block = xdata.data_block(self.studies[wildcards.study], self.sweep(wildcards)["data"])
        return dataset_file(self.results, block["dataset"])

    def block_data(self, block: str):
        """Input function: the dataset file the study's ``block`` names."""
        return lambda wc: dataset_file(self.results, self.studies[wc.study][block]["dataset"])

    def job_train_slice(self, study: str, block: str):
        """A training job's params: :meth:`train_slice` less the block's job axes (depths,
        w_vars): a job's depth and sigma_w^2 are its `run` params, so listing them in another
        order, or adding a depth, reruns no other job."""
        out = self.train_slice(study, block)
        out[block] = {k: v for k, v in out[block].items() if k not in ("depths", "w_vars")}
        return out

    def checkpoint(self, block: str):
        """Input function: the checkpoint file of one run of ``block`` (kept across retries,
        deleted when the run finishes)."""
        return lambda wc: f"{self.results}/{wc.study}/checkpoints/{block}_{wc.run}.pt"

    def slice(self, study: str, *blocks: str) -> dict[str, Any]:
        """What a job of ``study`` depends on: the shared settings and ``blocks``."""
        s = self.studies[study]
        return {"activation": s["activation"], "b_var": s["b_var"],
                "filter_size": s["filter_size"], "data": s["data"],
                **{b: s.get(b) for b in blocks}}

    def train_slice(self, study: str, block: str) -> dict[str, Any]:
        """A training job's settings: ``block`` without ``checkpoint_every`` (how often a
        job saves changes no number, so it reruns nothing)."""
        out = self.slice(study, block)
        out[block] = {k: v for k, v in out[block].items() if k != "checkpoint_every"}
        return out

    def sweep(self, wildcards) -> dict[str, Any]:
        try:
            s = dict(self.sweeps[wildcards.study][wildcards.sweep])
        except KeyError:
            raise ValueError(f"no sweep {wildcards.sweep} in study {wildcards.study}") from None
        s["w_label"] = grid.w_label(s["w"])
        s["w_var"] = grid.w_value(self.studies[wildcards.study], s["w"])
        if s["group"] == "phase" and s["arch"] == "fc":
            drop = (self.studies[wildcards.study]["phase"].get("dropout") or {})
            if drop and drop["m"] == s["m"]:
                s["dropout_keep"] = list(drop["keep"])
        return s

    def run(self, wildcards) -> dict[str, Any]:
        return self._run(self.runs, wildcards)

    def plane_run(self, wildcards) -> dict[str, Any]:
        return self._run(self.plane_runs, wildcards)

    def _run(self, table, wildcards) -> dict[str, Any]:
        try:
            r = dict(table[wildcards.study][wildcards.run])
        except KeyError:
            raise ValueError(f"no run {wildcards.run} in study {wildcards.study}") from None
        r["w_label"] = grid.w_label(r["w"])
        r["w_var"] = grid.w_value(self.studies[wildcards.study], r["w"])
        return r
