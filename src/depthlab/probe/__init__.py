"""Plan paper scale by measurement (issue #24): ``python -m depthlab.probe --configfile X``.

The probe enumerates the jobs of a config's DAG (:mod:`.jobs`, Snakemake's own API), maps
every job to the representative of its (rule, shape class) (:mod:`.shapes`; each study's
rules are planned by its hook ``depthlab.studies.<kind>.probe``), runs a few real
steps of each representative through the library code its rule's script calls, at the real
shape, on this machine (:mod:`.kinds`, each in a forked child: :mod:`.runner`), extrapolates
every job's wall time and memory from its own step count, and checks them against the Slurm
profile's requests (:mod:`.plan`, :mod:`.slurm`). Outputs (``--out``): ``cost.csv`` (per study
and rule), ``jobs.csv`` (per job), ``representatives.csv`` (per probe), ``machine.json`` and
``report.md``.
"""

from depthlab.probe.jobs import JobInfo, enumerate_jobs
from depthlab.probe.shapes import (
    RuleProbe,
    ShapeClass,
    job_work,
    representatives,
    rule_probe,
    shape_class,
)

__all__ = ["JobInfo", "RuleProbe", "ShapeClass", "enumerate_jobs", "job_work",
           "representatives", "rule_probe", "shape_class"]
