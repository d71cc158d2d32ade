"""Run one probe in a forked child: wall-clock limit, address-space cap, peak memory.

A fork shares the parent's imported modules (no second torch import per probe) and gives each
probe its own peak-RSS counter: ``ru_maxrss`` of the child minus its RSS at the fork is the
memory the probe itself added, so a probe of a big shape is not hidden by an earlier one.
A probe that runs past its time or memory cap is killed and reported as such (the caller then
measures a smaller shape and extrapolates).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time
import traceback
from collections.abc import Callable
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Current resident set size of this process, MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def _child(conn, fn, args, mem_cap_mb):
    try:
        if mem_cap_mb:
            cap = int(mem_cap_mb * 2**20)
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            # the cap is on top of what the process already maps (libraries, the parent's heap)
            vm = _vm_mb() * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (int(vm + cap), hard))
        base = rss_mb()
        out = fn(*args)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        conn.send({"ok": True, "result": out, "peak_delta_mb": max(0.0, peak - base)})
    except MemoryError:
        conn.send({"ok": False, "error": "memory cap", "trace": traceback.format_exc(limit=3)})
    except BaseException as err:  # reported to the parent, which decides
        conn.send({"ok": False, "error": f"{type(err).__name__}: {err}",
                   "trace": traceback.format_exc(limit=6)})
    finally:
        conn.close()


def _vm_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * PAGE / 2**20


def run_forked(fn: Callable[..., Any], *args: Any, timeout_s: float,
               mem_cap_mb: float | None = None) -> dict[str, Any]:
    """``fn(*args)`` in a forked child. Returns {"ok", "result" | "error", "peak_delta_mb",
    "wall_s"}; on timeout {"ok": False, "error": "timeout"}."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    proc = ctx.Process(target=_child, args=(child, fn, args, mem_cap_mb), daemon=True)
    proc.start()
    child.close()
    out: dict[str, Any]
    if parent.poll(timeout_s):
        try:
            out = parent.recv()
        except EOFError:
            out = {"ok": False, "error": "child died (killed for memory?)"}
    else:
        out = {"ok": False, "error": "timeout"}
    if proc.is_alive():
        proc.kill()
    proc.join(5)
    if out.get("ok") is False and proc.exitcode not in (0, None) and "error" not in out:
        out["error"] = f"exit code {proc.exitcode}"
    out["wall_s"] = time.perf_counter() - t0
    return out
