"""One knob that moves every random draw of a config: ``seed_offset``.

A claim whose verdict changes when only the seeds change is noise, not a result. To ask that
question of any config, ``seed_offset: K`` (top level; ``--config seed_offset=K``) adds K to
every seed the config holds, after validation and defaults: the keys ``seed``, ``seeds`` and
``*_seed`` / ``*_seeds`` whose value is an integer or a list of integers, in every dataset
and study block (nets' inits and mini-batch orders, dataset draws, cross-validation splits
and Bayesian-optimisation draws). An integer ``seeds`` is a *count* of Monte-Carlo draws
(Lee's init-kernel spread), not a seed, and is left as it is.

Offset runs give other file names where a path holds a seed, and should write under their
own ``results`` directory (``make seeds-check`` does) so that no cache mixes draws.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

__all__ = ["apply_seed_offset", "is_seed_key"]


def is_seed_key(key: Any) -> bool:
    return isinstance(key, str) and (key in ("seed", "seeds") or key.endswith(("_seed", "_seeds")))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def apply_seed_offset(config: MutableMapping[str, Any]) -> list[str]:
    """Shift every seed of ``config`` in place by ``config["seed_offset"]``; returns the key
    paths changed (for the log). An offset of 0 changes nothing."""
    offset = int(config.get("seed_offset") or 0)
    changed: list[str] = []
    if offset == 0:
        return changed

    def walk(node: Any, path: str, seed_list: bool = False) -> None:
        if isinstance(node, MutableMapping):
            for key, value in node.items():
                sub = f"{path}.{key}" if path else str(key)
                if is_seed_key(key) and key.endswith("seed") and _is_int(value):
                    node[key] = value + offset
                    changed.append(sub)
                elif is_seed_key(key) and isinstance(value, list) and value \
                        and all(_is_int(v) for v in value):
                    node[key] = [v + offset for v in value]
                    changed.append(sub)
                else:
                    walk(value, sub)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")

    for block in ("datasets", "studies"):
        walk(config.get(block) or {}, block)
    return changed
