"""The project's error types that every layer raises: a leaf module (imports nothing of
depthlab), so config checks, activations, studies and kernels can all raise them without
importing each other."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A config value is invalid; the message names its key path."""
