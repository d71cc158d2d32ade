# depthlab: depth-versus-width studies as one cacheable workflow.
#   snakemake --cores 2                          laptop default (config/config.yaml)
#   snakemake --configfile config/paper.yaml -n  the papers' grids, dry-run
#   snakemake --profile slurm                    on a Slurm cluster
# Top-level code stays light (no torch import): every cluster job re-parses this file.
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# The library lives in src/. Rules and every job's script import this checkout's copy, set
# here once (PYTHONPATH is inherited by script jobs, local or re-parsed on a Slurm node), so
# conda and Slurm jobs need no install of it and scripts use plain imports.
_SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, _SRC)
# (set here, not required from the user: hence no `envvars:` assertion)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        [_SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
)

# Snakemake's scheduler would start a new re-evaluation timer chain with every finished job
# (src/depthlab/scheduling.py): in `make run` that cost a sixth of the 2 cores. One at a time.
from depthlab.scheduling import coalesce_reevaluations

coalesce_reevaluations()

# A --configfile on the command line replaces the laptop default instead of being
# merged into it (a merge would leave laptop-only datasets and figures behind); --config
# overrides alone (e.g. seed_offset=1000) apply on top of the default.
if not workflow.configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/data_fetch.smk"
include: "rules/kernels.smk"


# Each study kind the config uses brings its own rules (src/depthlab/studies/__init__.py
# documents the plug-in contract); a new study kind edits nothing here.
for _kind in sorted({study["kind"] for study in STUDIES.values()}):

    include: os.path.join("rules", "studies", f"{_kind}.smk")


include: "rules/figures.smk"
include: "rules/claims.smk"


# No write follows a symbolic link out of the results directory: Snakemake writes benchmark
# and log files with a plain open(), which would overwrite a planted link's target. A run
# (not a dry run) with any link under RESULTS stops here, after the DAG and before any job.
onstart:
    from depthlab.provenance import UnsafeOutputError, refuse_links

    try:
        refuse_links(RESULTS)
    except UnsafeOutputError as err:
        raise WorkflowError(str(err)) from None


# The report (snakemake --report results/report.html) opens on the claims scorecard.
report: "report/workflow.rst"


rule all:
    input:
        all_targets(),
    default_target: True
