"""One pending re-evaluation timer in Snakemake's scheduler (depthlab.scheduling)."""

from __future__ import annotations

import threading
import time

from depthlab.scheduling import coalesce_reevaluations


class _Scheduler:
    """Snakemake's JobScheduler as far as the hook goes: a semaphore the scheduling loop
    waits on, and the hook that starts a timer releasing it (as Snakemake 9 writes it)."""

    def __init__(self):
        self._open_jobs = threading.Semaphore(0)

    def _schedule_reevalutation(self, delay):
        threading.Timer(delay, lambda: self._open_jobs.release()).start()


def _releases(sched, within):
    """How many releases arrive within `within` seconds."""
    n, end = 0, time.monotonic() + within
    while sched._open_jobs.acquire(timeout=max(0.0, end - time.monotonic())):
        n += 1
    return n


def test_unpatched_hook_starts_a_timer_per_call():
    """The behaviour the patch exists for: every pass's call is another release (and
    another pass), so the passes multiply."""
    sched = _Scheduler()
    for _ in range(5):
        sched._schedule_reevalutation(0.05)
    assert _releases(sched, 0.5) == 5


def test_one_timer_pending_at_a_time():
    cls = type("Sched", (_Scheduler,), {})
    assert coalesce_reevaluations(cls)
    sched = cls()
    for _ in range(20):
        sched._schedule_reevalutation(0.05)
    assert _releases(sched, 0.5) == 1
    # once it has fired, the next pass schedules the next one: the chain goes on
    sched._schedule_reevalutation(0.05)
    sched._schedule_reevalutation(0.05)
    assert _releases(sched, 0.5) == 1
    # schedulers do not share the pending timer
    a, b = cls(), cls()
    a._schedule_reevalutation(0.05)
    b._schedule_reevalutation(0.05)
    assert _releases(a, 0.5) == 1 and _releases(b, 0.5) == 1


def test_a_pending_timer_does_not_hold_up_exit():
    cls = type("Sched", (_Scheduler,), {})
    coalesce_reevaluations(cls)
    cls()._schedule_reevalutation(3600.5)
    (timer,) = [t for t in threading.enumerate()
                if isinstance(t, threading.Timer) and t.interval == 3600.5]
    assert timer.daemon
    timer.cancel()


def test_a_class_without_the_hook_is_left_alone():
    cls = type("Other", (), {})
    assert not coalesce_reevaluations(cls)
    assert not hasattr(cls, "_schedule_reevalutation")


def test_the_installed_snakemake_has_the_hook():
    """The Snakefile's patch takes on the Snakemake this project installs (a version
    without the hook would silently run unpatched). Patching twice is harmless: a workflow
    run in this process may have patched it already."""
    from snakemake.scheduling.job_scheduler import JobScheduler

    from depthlab.scheduling import _schedule_one_reevaluation

    original = JobScheduler._schedule_reevalutation
    try:
        assert coalesce_reevaluations()
        assert JobScheduler._schedule_reevalutation is _schedule_one_reevaluation
    finally:
        JobScheduler._schedule_reevalutation = original
