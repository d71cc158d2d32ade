"""Config validation shared by the Snakefile, the scripts and the tests.

One entry point, :func:`check_config`, turns a loaded config into a validated one, in place:

1. the top-level schema (``workflow/schemas/config.schema.yaml``: results, threads, datasets,
   kernels, and that every study names a ``kind``);
2. each study against its plug-in's schema (``workflow/schemas/studies/<kind>.schema.yaml``);
   an unknown kind is an error naming ``studies.<name>.kind``;
3. cross-field checks a schema cannot express: datasets here, each study's in its plug-in
   (``depthlab.studies.<kind>.check``).

The schemas are the one home of every default: validation fills them in, and code reads
the filled-in values (no second table of defaults in Python).  Every error is a
:class:`ConfigError` whose message starts with the key path of the offending value, e.g.
``studies.mori_ueda.grids[0].width``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "check_config", "validate_against"]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"


class ConfigError(ValueError):
    """A config value is invalid; the message names its key path."""


@functools.cache
def _load_schema(path: str) -> dict[str, Any]:
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


@functools.cache
def _validator_class():
    """A Draft 2020-12 validator that fills each ``properties`` default in as it validates
    (the jsonschema FAQ recipe, as ``snakemake.utils.validate(set_default=True)`` does), so a
    default inside an ``if``/``else`` branch applies only where that branch does."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = _copy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def _copy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


def _key_path(prefix: str, path) -> str:
    key = prefix
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def validate_against(instance: MutableMapping[str, Any], schema_path: str | Path,
                     prefix: str = "") -> None:
    """Validate ``instance`` in place against a YAML JSON-schema, filling in defaults.
    The first error is a :class:`ConfigError` naming the offending key under ``prefix``."""
    schema = _load_schema(str(schema_path))
    validator = _validator_class()(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path),
                                                                    list(map(str, e.path))))
    if errors:
        err = errors[0]
        # The deepest relevant error of a oneOf/anyOf names the real culprit.
        while err.context:
            err = sorted(err.context, key=lambda e: -len(e.absolute_path))[0]
        key = _key_path(prefix, err.absolute_path) or "config"
        raise ConfigError(f"{key}: {err.message}")


def check_config(config: MutableMapping[str, Any]) -> None:
    """Validate the whole config in place (schemas with defaults, then cross-field checks).
    Raises :class:`ConfigError` naming the offending key."""
    from depthlab.activations import check_activation
    from depthlab.studies import plugin, schema_path

    validate_against(config, SCHEMA_DIR / "config.schema.yaml")
    _check_datasets(config["datasets"])
    for name, spec in config["kernels"].items():
        if "activation" in spec:
            check_activation(spec["activation"], "kernel", f"kernels.{name}.activation")
    for name, study in config["studies"].items():
        key = f"studies.{name}"
        module = plugin(study["kind"], f"{key}.kind")
        validate_against(study, schema_path(study["kind"]), key)
        module.check(key, study, config)


def _check_datasets(datasets: Mapping[str, Any]) -> None:
    for name, ds in datasets.items():
        key = f"datasets.{name}"
        if ds["generator"] in ("k_local", "k_global"):
            if "k" not in ds:
                raise ConfigError(f"{key}.k is required for generator {ds['generator']!r}")
            if ds["k"] > ds["d"]:
                raise ConfigError(f"{key}.k = {ds['k']} exceeds {key}.d = {ds['d']}")
            indices = ds.get("indices", "first")
            if isinstance(indices, list):
                if len(indices) != ds["k"]:
                    raise ConfigError(f"{key}.indices must list exactly k = {ds['k']} indices")
                if sorted(set(indices)) != indices or indices[-1] >= ds["d"]:
                    raise ConfigError(
                        f"{key}.indices must be distinct, increasing and < d = {ds['d']}"
                    )
        if ds["generator"] == "ising":
            for key in ("beta1", "beta2"):
                if key not in ds:
                    raise ConfigError(f"{key} is required: datasets.{name}.{key}")
