"""One pending re-evaluation timer in Snakemake's scheduler (applied by the Snakefile).

Snakemake 9 rate-limits job submissions (``--max-jobs-per-timespan``, default 100 per
second). To re-check the limit, every scheduling pass that leaves a ready job waiting ends
by starting a `threading.Timer` that triggers another pass one timespan later
(``JobScheduler._schedule_reevalutation``). That pass starts its own timer, so each chain of
passes lives as long as jobs wait, and every finished job starts a new chain: after k
finished jobs the scheduler makes about k passes per second, each one stat-ing the inputs of
every ready job and solving the job-selection problem again. In `make run` (310 jobs, ready
jobs waiting for one of 2 cores almost throughout) the Snakemake process used 512 s of CPU
in a 28.6-minute run, a sixth of the machine, taken from the jobs; `python
benchmarks/scheduler_overhead.py` measures it on a small workflow.

`coalesce_reevaluations` keeps at most one such timer pending per scheduler: the limit is
still re-checked once per timespan while jobs wait, and a finished job still triggers its
own pass (Snakemake releases the scheduler on every job end, not through this timer). The
timer is a daemon thread, so a pending one never delays Snakemake's exit.
"""

from __future__ import annotations

import threading
from typing import Any

_HOOK = "_schedule_reevalutation"  # (sic) Snakemake's name
_PENDING = "_depthlab_reevaluation_pending"


def _schedule_one_reevaluation(self: Any, delay: float) -> None:
    """Release the scheduler after `delay` seconds, unless a release is already pending."""
    lock = self.__dict__.setdefault("_depthlab_reevaluation_lock", threading.Lock())
    with lock:
        if getattr(self, _PENDING, False):
            return
        setattr(self, _PENDING, True)

    def release() -> None:
        with lock:  # cleared before the pass it triggers, which may schedule the next one
            setattr(self, _PENDING, False)
        self._open_jobs.release()

    timer = threading.Timer(delay, release)
    timer.daemon = True
    timer.start()


def coalesce_reevaluations(scheduler_cls: type | None = None) -> bool:
    """Make `scheduler_cls` (Snakemake's `JobScheduler` by default) keep one pending
    re-evaluation timer at a time. Returns False, changing nothing, when the class has no
    such hook (another Snakemake version): the workflow then runs as Snakemake made it."""
    if scheduler_cls is None:
        try:
            from snakemake.scheduling.job_scheduler import JobScheduler as scheduler_cls
        except ImportError:
            return False
    if not callable(getattr(scheduler_cls, _HOOK, None)):
        return False
    setattr(scheduler_cls, _HOOK, _schedule_one_reevaluation)
    return True
