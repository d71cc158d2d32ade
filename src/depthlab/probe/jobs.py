"""The jobs of a config's DAG, as Snakemake itself plans them (its Python API, no execution).

Each job comes back with its rule, wildcards, params and threads: everything a probe needs to
know the job's real shape. The DAG is built with ``forceall`` so the enumeration does not depend
on what already exists under the config's results directory (a half-run paper config plans the
same jobs as a fresh one), and as a dry run, so missing input data (MNIST, CIFAR) is a warning,
not an error, exactly as in ``snakemake -n``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


@dataclass
class JobInfo:
    rule: str
    wildcards: dict[str, str]
    params: dict[str, Any]
    threads: int
    jobid: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        wc = ",".join(f"{k}={v}" for k, v in sorted(self.wildcards.items()))
        return f"{self.rule}[{wc}]"


def _plain(value: Any) -> Any:
    """Snakemake's Namedlist / AttributeGuard values as plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def enumerate_jobs(configfile: str | os.PathLike, *, snakefile: str | os.PathLike | None = None,
                   workdir: str | os.PathLike | None = None) -> list[JobInfo]:
    """Every job of the DAG of ``configfile`` (what ``snakemake -n --configfile ...`` plans
    from scratch), in a stable order (rule, then wildcards)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )

    configfile = Path(configfile).absolute()
    if not configfile.is_file():
        raise FileNotFoundError(f"probe: no config file {configfile} (option --configfile)")
    snakefile = Path(snakefile or REPO / "Snakefile").absolute()
    workdir = Path(workdir or snakefile.parent).absolute()
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        with SnakemakeApi(OutputSettings(dryrun=True, quiet={Quietness.ALL})) as api:
            wapi = api.workflow(
                # cores enough that no job's threads are capped: a study job's threads are
                # its request (the study's `resources` block), which the plan divides by
                resource_settings=ResourceSettings(cores=1024),
                config_settings=ConfigSettings(configfiles=[configfile]),
                snakefile=snakefile,
            )
            wf = wapi._workflow
            wf.dag_settings = DAGSettings(forceall=True)
            # what `snakemake --printdag` does: prepare and build the DAG, execute nothing
            wf._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
            wf._build_dag()
            jobs = []
            for job in wf.dag.jobs:
                params = {k: _plain(v) for k, v in job.params.items()}
                # the rule's own `resources:`, evaluated for this job: its defaults or the
                # study's `resources.<rule>` block (rules/common.smk job_resources); the
                # profile's set-resources override them (depthlab.probe.slurm.KEYS)
                declared = {k: job.resources.get(k)
                            for k in ("runtime", "mem_mb", "gpu", "cpus_per_task")
                            if k in job.rule.resources}
                jobs.append(JobInfo(rule=job.rule.name,
                                    wildcards={k: str(v) for k, v in job.wildcards_dict.items()},
                                    params=params, threads=int(job.threads),
                                    extra={"rule_resources": declared}))
    finally:
        os.chdir(cwd)
    jobs.sort(key=lambda j: (j.rule, sorted(j.wildcards.items())))
    for i, job in enumerate(jobs):
        job.jobid = i
    return jobs
