"""What every workflow script does first: route logging to the rule's log file and give the
job exactly its rule's ``threads``.

Scripts import the library plainly (``from depthlab.<module> import <name>``):
the Snakefile puts this checkout's ``src/`` on ``PYTHONPATH`` once, for every job it runs,
so no script edits ``sys.path`` and grep, IDEs and ruff can follow each import."""

from __future__ import annotations

import logging
import sys


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

