"""Where a job runs and how it reports: device choice and the progress-log sink."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["Log", "describe_device", "emit", "resolve_device"]

# A log sink: a logging.Logger, any callable taking a line, or None (silent).
Log = logging.Logger | Callable[[str], Any] | None


def resolve_device(device: str = "auto") -> torch.device:
    """"auto": the GPU where one is present, else the CPU.  Nets are initialised on the CPU
    (seeded generators) and then moved, so a seed gives the same initial net everywhere; on
    CPU the numbers are bitwise reproducible."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} {torch.cuda.get_device_name(index)}"
    return str(device)


def emit(log: Log, message: str, level: int = logging.INFO) -> None:
    if log is None:
        return
    if isinstance(log, logging.Logger):
        log.log(level, message)
    else:
        log(message)
