"""The one checkpoint mechanism of every trainer: atomic writes, a loader that cannot run code,
and a fingerprint that ties a checkpoint to the settings *and data* that made it.

A checkpoint lives under ``results/``, which on a shared cluster project anyone with write
access can replace. ``torch.load(..., weights_only=False)`` unpickles arbitrary objects, so a
planted file would run code as the next job's user. Here every checkpoint is read with
``weights_only=True`` (PyTorch's restricted unpickler: tensors, plain containers, numbers,
strings, None), so a crafted file can at worst fail to load. Trainers therefore save only
tensors and plain types (:func:`plain_state` converts the few non-plain objects PyTorch's own
state dicts hold, such as the ``Counter`` of a ``MultiStepLR``).

A checkpoint that cannot be read, is not a dict, or carries another fingerprint is ignored
with a warning in the job log and training starts over: the job never trusts it and never
crashes on it. The fingerprint hashes the trainer's settings together with the content hash
of the training and test arrays (:func:`array_digest`), so a checkpoint written before a
config change that alters the data (other classes, other N) is never resumed.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from depthlab.provenance import atomic_output, config_hash
from depthlab.training.device import Log, emit

__all__ = ["array_digest", "checkpoint_fingerprint", "load_checkpoint", "plain_state",
           "remove_checkpoint", "save_checkpoint"]


def array_digest(*arrays: Any) -> str:
    """SHA-256 over the dtype, shape and bytes of each array (tensors or numpy), in order."""
    h = hashlib.sha256()
    for a in arrays:
        arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def checkpoint_fingerprint(settings: Mapping[str, Any], *arrays: Any) -> str:
    """The fingerprint of one training job: its settings and the content of its data."""
    return config_hash({"settings": dict(settings), "data": array_digest(*arrays)})


def plain_state(obj: Any) -> Any:
    """``obj`` with every container turned into a plain dict / list / tuple (``Counter``,
    ``OrderedDict`` and other mapping subclasses become dicts), so that it loads under
    ``weights_only=True``. Tensors, numbers, strings and None pass through."""
    if isinstance(obj, Mapping):
        return {k: plain_state(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain_state(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(plain_state(v) for v in obj)
    return obj


def save_checkpoint(path: str | Path, state: Mapping[str, Any], fingerprint: str) -> None:
    """Write ``state`` (tensors and plain types only) with its fingerprint, atomically."""
    payload = {"fingerprint": fingerprint, **plain_state(state)}
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path | None, fingerprint: str, log: Log = None
                    ) -> dict[str, Any] | None:
    """The state saved at ``path`` if it exists, loads without running code and carries
    ``fingerprint``; None otherwise (a warning names the file and why it was not used)."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a planted, corrupt or foreign file: never trusted, never fatal
        emit(log, f"checkpoint {path} refused, unreadable as a plain tensor checkpoint ("
                  f"{type(err).__name__}: {str(err).splitlines()[0][:200]}); starting fresh",
             logging.WARNING)
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        emit(log, f"checkpoint {path} belongs to another run (fingerprint mismatch: settings "
                  "or data differ); starting fresh", logging.WARNING)
        return None
    return state


def remove_checkpoint(path: str | Path | None) -> None:
    """Delete a finished job's checkpoint (a missing one is fine)."""
    if path is not None:
        Path(path).unlink(missing_ok=True)


def multistep_from_plain(state: Mapping[str, Any]) -> dict[str, Any]:
    """A ``MultiStepLR`` state dict back from :func:`plain_state` (its milestones are a
    ``Counter``, which PyTorch's scheduler indexes as one)."""
    out = dict(state)
    if "milestones" in out:
        out["milestones"] = Counter(out["milestones"])
    return out
