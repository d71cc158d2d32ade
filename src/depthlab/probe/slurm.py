"""What a Slurm profile requests for a job: runtime (minutes), mem_mb, threads, GPUs.

Precedence as Snakemake applies it: the profile's ``set-resources.<rule>`` over the rule's
own ``resources:``, over the profile's ``default-resources``; threads from
``set-threads.<rule>`` else the rule's. A study rule's own requests are those of its study's
``resources.<rule>`` block in the config (config/paper.yaml), else the rule's defaults (read
by ``job_threads`` / ``job_resources`` in rules/common.smk): the job's evaluated
``resources`` and ``threads`` (:func:`depthlab.probe.jobs.enumerate_jobs`) carry them, and
the profile names only the shared rules. String values are Snakemake expressions of the
job's ``wildcards`` (e.g. kernel_regression's ``16 * int(wildcards.n_train) ** 2``),
evaluated here the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from depthlab.probe.jobs import REPO, JobInfo

DEFAULT_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
KEYS = ("runtime", "mem_mb", "gpu", "cpus_per_task")


def load_profile(path: str | os.PathLike = DEFAULT_PROFILE) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"probe: no Slurm profile at {path} (option --profile)")
    with open(path) as f:
        return yaml.safe_load(f) or {}


def _value(raw: Any, job: JobInfo) -> Any:
    if isinstance(raw, str):
        try:
            return eval(raw, {"__builtins__": {"int": int, "float": float, "min": min,  # noqa: S307
                                               "max": max}},
                        {"wildcards": SimpleNamespace(**job.wildcards)})
        except Exception:  # a site string (partition name...), not an expression
            return raw
    return raw


def requests(job: JobInfo, profile: Mapping[str, Any]) -> dict[str, Any]:
    """The job's Slurm requests: runtime (min), mem_mb, gpu (0/1...), cpus_per_task,
    threads, and where each came from."""
    out: dict[str, Any] = {}
    src: dict[str, str] = {}
    default = profile.get("default-resources") or {}
    own = job.extra.get("rule_resources", {})
    rule_set = (profile.get("set-resources") or {}).get(job.rule) or {}
    for key in KEYS:
        if key in rule_set:
            out[key], src[key] = _value(rule_set[key], job), "set-resources"
        elif key in own:
            out[key], src[key] = own[key], "rule"
        elif key in default:
            out[key], src[key] = _value(default[key], job), "default-resources"
        else:
            out[key], src[key] = (0 if key == "gpu" else None), "none"
    threads = (profile.get("set-threads") or {}).get(job.rule, job.threads)
    out["threads"] = int(threads)
    out["source"] = src
    return out
