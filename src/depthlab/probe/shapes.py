"""Jobs -> shape classes -> representatives, and the work each job needs.

A job's cost is (seconds per unit of work at its shape) x (units the full job needs). The
shape is what sets the seconds per unit: the real model, batch, width, depth, dtype and input
size; what only sets the *number* of units (N via steps per epoch, epochs, seeds run one after
another, alpha, the learning rate, Gram entries) is left out of the shape and put into
:func:`job_work`. All jobs of one (rule, shape) share one representative probe.

Units (seconds per unit are what a probe measures):

* ``step_M{m}``     one packed-SGD step of ``m`` members (``depthlab.training.packed_sgd``);
* ``evalrow_M{m}``  one sample through a pack of ``m`` members (the full-set checks);
* ``step``          one step of the rule's own dynamics / trainer (Geiger's hinge flow, the
                    Xiao trainer, one mini-batch of the module trainer incl. its per-epoch
                    train-set evaluation share);
* ``entry``         one Gram entry (NTK and NNGP together) of an FC kernel at depth L;
* ``chol_flop``     one flop of the dense Cholesky + solves of kernel regression;
* ``fixed``         set-up once per job (model init, initial NTK, final measures).

Which rules are probed, and how, is said per rule by a :class:`RuleProbe`: the shared rules
(``gram``, ``kernel_regression``) here in :data:`SHARED_RULES`, a study's rules in its hook
``depthlab.studies.<kind>.probe``, whose ``RULES`` maps each of its rule names (all
``<kind>_...``) to a RuleProbe. :func:`rule_probe` finds the hook from the rule name's kind
prefix, by name (imported on first use, like :data:`depthlab.probe.kinds.KINDS`), so this
package names no study rule and adding a study edits nothing here. Rules without a
RuleProbe map to the class ``(rule, unprobed)``: they are counted and checked against their
request, never silently given a cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from depthlab.probe.jobs import JobInfo


@dataclass(frozen=True)
class ShapeClass:
    rule: str
    kind: str  # which probe measures it (a shared one such as "packed_fc", a study's, "unprobed")
    key: tuple[tuple[str, Any], ...]

    @property
    def shape(self) -> dict[str, Any]:
        return dict(self.key)

    @property
    def label(self) -> str:
        return f"{self.rule}:" + ",".join(f"{k}={_fmt(v)}" for k, v in self.key)


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return "x".join(map(str, v))
    return str(v)


def _key(**kw: Any) -> tuple[tuple[str, Any], ...]:
    def freeze(v):
        if isinstance(v, list | tuple):
            return tuple(freeze(x) for x in v)
        if isinstance(v, dict):
            return json.dumps(v, sort_keys=True)
        return v

    return tuple((k, freeze(v)) for k, v in kw.items())


def _never(job: JobInfo) -> bool:
    return False


def _no_data(job: JobInfo, config: Mapping[str, Any]) -> float:
    return 0.0


@dataclass(frozen=True)
class RuleProbe:
    """How the probe plans the jobs of one rule.

    * ``kind``: the probe kind that measures its shape (a key of
      :data:`depthlab.probe.kinds.KINDS`: a shared kind such as ``packed_fc``, or a study's);
    * ``shape(job, config)``: the job's shape as an ordered dict (what sets the seconds per
      unit; the order is that of the class label);
    * ``work(job, config)``: the units of work the full job needs (keys as in the module
      doc);
    * ``bound(job)``: True where ``work`` counts a cap the trainer may stop before;
    * ``data_mb(job, config)``: MB of the job's data arrays (and Gram blocks);
    * ``checkpointed(job)``: whether a killed job resumes from a checkpoint; None reads the
      job's params (:func:`depthlab.probe.plan.has_checkpointing`).
    """

    kind: str
    shape: Callable[[JobInfo, Mapping[str, Any]], dict[str, Any]]
    work: Callable[[JobInfo, Mapping[str, Any]], dict[str, float]]
    bound: Callable[[JobInfo], bool] = _never
    data_mb: Callable[[JobInfo, Mapping[str, Any]], float] = _no_data
    checkpointed: Callable[[JobInfo], bool] | None = None


def dataset(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The config's dataset block ``name`` (a KeyError naming ``datasets``)."""
    try:
        return config["datasets"][name]
    except KeyError:
        raise KeyError(f"probe: dataset {name!r} is not in the config's `datasets`") from None


def n_classes(ds: Mapping[str, Any]) -> int:
    # the Mori-Ueda generators (k_local, k_global, random, ising) and parity labels: binary
    return int(ds.get("n_classes", 2))


def packed_shape(settings: Mapping[str, Any], d: int, depth: int, width: int,
                 n_classes: int) -> dict[str, Any]:
    """The shape of the shared ``packed_fc`` probe (less its pack size ``M``), from a
    ``training`` block of the packed trainer."""
    return {"d": int(d), "depth": int(depth), "width": int(width),
            "batch": int(settings.get("batch_size", 50)), "dtype": settings.get("dtype", "float32"),
            "loss": settings.get("loss", "cross_entropy"),
            "activation": settings.get("activation", "relu"), "n_classes": int(n_classes)}


# --------------------------------------------------------------------------- shared rules


def _gram_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    ds = dataset(config, job.wildcards["dataset"])
    return {"spec": job.params["spec"], "depth": int(job.wildcards["depth"]), "d": int(ds["d"])}


def _gram_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    ds = dataset(config, job.wildcards["dataset"])
    n, nt = int(ds["n_train"]), int(ds["n_test"])
    return {"fixed": 1.0, "entry": n * (n + 1) / 2 + nt * n}


def _gram_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    ds = config["datasets"][job.wildcards["dataset"]]
    n, nt, d = int(ds["n_train"]), int(ds["n_test"]), int(ds["d"])
    # two kinds (NTK, NNGP) of one block_size x n row block, twice over while the block is
    # mirrored, and the inputs
    return (4 * int(job.params["block_size"]) * n * 8 + (n + nt) * d * 8) / 2.0**20


def _regression_shape(job: JobInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    # a dense N x N solve: its cost depends on N only, one probe times the BLAS rate
    return {"dtype": "float64"}


def _regression_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    ds = dataset(config, job.wildcards["dataset"])
    n, nt = int(job.wildcards["n_train"]), int(ds["n_test"])
    # Cholesky n^3/3, two triangular solves with the one-hot targets, test x train matvec
    return {"fixed": 1.0, "chol_flop": n**3 / 3 + 4 * n * n + 2 * nt * n}


def _regression_data_mb(job: JobInfo, config: Mapping[str, Any]) -> float:
    ds = config["datasets"][job.wildcards["dataset"]]
    n, nt, d = int(job.wildcards["n_train"]), int(ds["n_test"]), int(ds["d"])
    return (8 * n * n + 8 * int(job.params["block_size"]) * n + (n + nt) * d * 8) / 2.0**20


SHARED_RULES: dict[str, RuleProbe] = {
    "gram": RuleProbe("gram", _gram_shape, _gram_work, data_mb=_gram_data_mb),
    "kernel_regression": RuleProbe("cholesky", _regression_shape, _regression_work,
                                   data_mb=_regression_data_mb),
}


# --------------------------------------------------------------------------- dispatch


def rule_probe(rule: str) -> RuleProbe | None:
    """The :class:`RuleProbe` of ``rule``: a shared rule's, else that of the study hook of
    the kind the rule is named after (``<kind>_...``, the longest kind that prefixes it);
    None where the rule is not probed."""
    from depthlab.probe.kinds import study_hook, study_hooks

    if rule in SHARED_RULES:
        return SHARED_RULES[rule]
    owners = [k for k in study_hooks() if rule.startswith(f"{k}_")]
    if not owners:
        return None
    kind = max(owners, key=len)
    rules = getattr(study_hook(kind), "RULES", {})
    if not isinstance(rules, Mapping):
        raise TypeError(f"depthlab.studies.{kind}.probe.RULES must be a mapping "
                        f"{{rule name: RuleProbe}}, got {type(rules).__name__}")
    stray = sorted(r for r in rules if not str(r).startswith(f"{kind}_"))
    if stray:
        raise ValueError(f"depthlab.studies.{kind}.probe.RULES names rules {stray} not of "
                         f"kind {kind!r}: every rule of a study is named {kind}_...")
    found = rules.get(rule)
    if found is not None and not isinstance(found, RuleProbe):
        raise TypeError(f"depthlab.studies.{kind}.probe.RULES[{rule!r}] must be a "
                        f"depthlab.probe.shapes.RuleProbe, got {type(found).__name__}")
    return found


def shape_class(job: JobInfo, config: Mapping[str, Any]) -> ShapeClass:
    """The (rule, shape) class of ``job``: its representative is probed once for all."""
    rp = rule_probe(job.rule)
    if rp is None:
        return ShapeClass(job.rule, "unprobed", ())
    return ShapeClass(job.rule, rp.kind, _key(**rp.shape(job, config)))


def job_work(job: JobInfo, config: Mapping[str, Any]) -> dict[str, float]:
    """Units of work the full job needs (keys as in the module doc). Training rules whose
    trainer may stop early (zero training error, convergence) are counted at their cap
    (max_epochs, max_steps): an upper bound, flagged as such by :func:`work_is_bound`."""
    rp = rule_probe(job.rule)
    return {} if rp is None else rp.work(job, config)


def work_is_bound(job: JobInfo) -> bool:
    """True where :func:`job_work` counts a cap the trainer may stop before."""
    rp = rule_probe(job.rule)
    return rp is not None and bool(rp.bound(job))


def representatives(jobs: Iterable[JobInfo], config: Mapping[str, Any]
                    ) -> dict[ShapeClass, list[JobInfo]]:
    """Every job under its shape class, classes in first-seen order; the first job of a
    class is its representative (any member would do: they share the shape)."""
    out: dict[ShapeClass, list[JobInfo]] = {}
    for job in jobs:
        out.setdefault(shape_class(job, config), []).append(job)
    return out
