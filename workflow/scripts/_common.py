"""Shared set-up for workflow scripts: route logging to the rule's log file, limit threads,
find the calling study's plug-in modules."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

# Import depthlab from this checkout, whether or not it is pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))


def setup_logging(log_path: str) -> logging.Logger:
    logging.basicConfig(
        filename=log_path,
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    logger = logging.getLogger("depthlab")

    def excepthook(exc_type, exc, tb):
        logger.error("failed", exc_info=(exc_type, exc, tb))
        sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = excepthook
    return logger


def limit_threads(n: int) -> None:
    """Give the job exactly its rule's `threads` for BLAS/OpenMP (numpy, scipy) and torch.

    Library defaults take every core; with two jobs on a 2-core machine that oversubscribes
    and stalls every op (a multithreaded OpenBLAS eigh(256) was seen ~100x slower than one
    thread there; `python benchmarks/threads.py` measures it on the machine at hand)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(n))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n))


def study_import(scriptdir: str, module: str, *names: str):
    """``from depthlab.studies.<kind>.<module> import <names>`` for the study kind whose folder
    (``workflow/scripts/<kind>/``) holds the calling script: the plug-in is found by name, so
    a study's scripts read like any other kind's (README, "Adding a study"). One name gives
    the object, several a tuple."""
    found = importlib.import_module(f"depthlab.studies.{Path(scriptdir).name}.{module}")
    values = tuple(getattr(found, name) for name in names)
    return values[0] if len(values) == 1 else values
