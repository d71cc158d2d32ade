"""Config validation shared by the Snakefile, the scripts and the tests.

One entry point, :func:`check_config`, turns a loaded config into a validated one, in place:

1. the top-level schema (``workflow/schemas/config.schema.yaml``: results, threads, datasets,
   kernels, and that every study names a ``kind``);
2. each study against its plug-in's schema (``workflow/schemas/studies/<kind>.schema.yaml``);
   an unknown kind is an error naming ``studies.<name>.kind``;
3. cross-field checks a schema cannot express: the results path and datasets here (MNIST
   files included), each study's in its plug-in (``depthlab.studies.<kind>.check``: grids,
   figures, summaries and tables checked against what is trained).

Types are strict: ``integer`` means a real integer (``32.0`` and ``true`` are refused, where
JSON Schema would accept the float), and :func:`load_yaml_strict` refuses duplicate keys in a
YAML file (``rules/common.smk`` re-reads every ``--configfile`` with it).  A value that is
valid but silently changes what runs (e.g. a batch larger than N) is a
:class:`ConfigWarning`: :func:`check_config` returns the messages and the Snakefile logs them.

The schemas are the one home of every default: validation fills them in, and code reads
the filled-in values (no second table of defaults in Python).  Every error is a
:class:`ConfigError` whose message starts with the key path of the offending value, e.g.
``studies.<name>.grids[0].width``.
"""

from __future__ import annotations

import contextvars
import functools
import os
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "ConfigWarning", "check_config", "load_yaml_strict",
           "validate_against", "warn"]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"


class ConfigError(ValueError):
    """A config value is invalid; the message names its key path."""


class ConfigWarning(UserWarning):
    """A config value is valid but changes what runs in a way the user may not expect; the
    message names its key path.  :func:`check_config` collects these and returns them."""


def warn(message: str) -> None:
    """Raise a :class:`ConfigWarning` (study plug-ins' checks call this)."""
    warnings.warn(message, ConfigWarning, stacklevel=2)


def load_yaml_strict(path: str | os.PathLike) -> Any:
    """Load a YAML config file like ``yaml.safe_load``, but a key given twice in one mapping
    is a :class:`ConfigError` naming the file, line and key path (PyYAML and Snakemake keep
    the last one silently).  Merge keys (``<<: *anchor``) may be overridden as usual."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # safe_load refuses it with its own message
            if key in seen:
                raise ConfigError(
                    f"{path}: line {key_node.start_mark.line + 1}: duplicate key {key!r} "
                    f"(first given on line {seen[key] + 1}); YAML would silently keep the last")
            seen[key] = key_node.start_mark.line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 construct_mapping)
    with open(path) as fh:
        try:
            return yaml.load(fh, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None


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

    # JSON Schema counts 32.0 as an integer; a width or N written as a float would then
    # become an `H32.0` path naming no key. Here `integer` is a Python int (not a bool).
    def is_integer(checker, instance):
        return isinstance(instance, int) and not isinstance(instance, bool)

    type_checker = base.TYPE_CHECKER.redefine("integer", is_integer)

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = _copy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults},
                                        type_checker=type_checker)


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


# How check_config treats an input file or directory the config names but that is absent:
# "error" on a real run, "warn" in a dry run (study plug-ins report it by missing_input).
_MISSING_DATA: contextvars.ContextVar[str] = contextvars.ContextVar("missing_data",
                                                                     default="error")


def missing_input(message: str) -> None:
    """An input file or directory the config names is absent (``message`` starts with its
    key): a :class:`ConfigError` on a real run, a :class:`ConfigWarning` in a dry run, as
    :func:`check_config`'s ``missing_data`` says; for plug-in checks of their own inputs."""
    if _MISSING_DATA.get() == "error":
        raise ConfigError(message)
    warn(message)


def check_input_files(key: str, directory: str | None, find: Callable[[str], Any],
                      required: str) -> None:
    """A directory of input files the config names at ``key``: it must be given (else a
    :class:`ConfigError` ending in ``required``), and ``find(directory)`` must find its files
    (a ``FileNotFoundError`` is :func:`missing_input`: an error on a run, a warning in a dry
    run)."""
    if not directory:
        raise ConfigError(f"{key}: {required}")
    try:
        find(directory)
    except FileNotFoundError as err:
        missing_input(f"{key}: {err}")


def check_config(config: MutableMapping[str, Any], *, missing_data: str = "error") -> list[str]:
    """Validate the whole config in place (schemas with defaults, then cross-field checks).
    Raises :class:`ConfigError` naming the offending key; returns the :class:`ConfigWarning`
    messages (each names its key), which the caller logs.

    ``missing_data``: what an input directory the config names but that is absent (MNIST's
    ``mnist_dir``, for a dataset file not yet built) is: ``"error"`` (a run) or ``"warn"``
    (a dry-run, or checking a config on a machine without the data)."""
    if missing_data not in ("error", "warn"):
        raise ValueError(f"missing_data must be 'error' or 'warn', not {missing_data!r}")
    token = _MISSING_DATA.set(missing_data)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConfigWarning)
            _check_config(config, missing_data)
    finally:
        _MISSING_DATA.reset(token)
    messages = []
    for w in caught:
        if issubclass(w.category, ConfigWarning):
            messages.append(str(w.message))
        else:  # not ours: pass it on unchanged
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return list(dict.fromkeys(messages))


def _check_config(config: MutableMapping[str, Any], missing_data: str) -> None:
    from depthlab.activations import check_activation
    from depthlab.studies import plugin, schema_path

    validate_against(config, SCHEMA_DIR / "config.schema.yaml")
    _check_results(config["results"])
    _check_datasets(config["datasets"])
    _check_data_files(config["datasets"], config["results"], missing_data)
    for name, spec in config["kernels"].items():
        if "activation" in spec:
            check_activation(spec["activation"], "kernel", f"kernels.{name}.activation")
    for name, study in config["studies"].items():
        key = f"studies.{name}"
        module = plugin(study["kind"], f"{key}.kind")
        validate_against(study, schema_path(study["kind"]), key)
        module.check(key, study, config)


def _check_results(results: str) -> None:
    """Every output lands under `results`: a relative sub-directory of the working directory
    (Snakemake's ``--directory``), so '' or '.' (outputs mixed into the working directory),
    an absolute path, or one climbing out with '..' are refused."""
    norm = os.path.normpath(results) if results else ""
    if norm in ("", "."):
        raise ConfigError(f"results: {results!r} names no directory; give a sub-directory of "
                          "the working directory such as 'results'")
    if os.path.isabs(results) or norm == ".." or norm.startswith(".." + os.sep):
        raise ConfigError(
            f"results: {results!r} is outside the working directory; give a relative "
            "sub-directory, and choose where the working directory is with "
            "`snakemake --directory DIR`")


def _check_data_files(datasets: Mapping[str, Any], results: str, missing_data: str) -> None:
    """Input files a dataset's generator reads (MNIST IDX files), checked before any job,
    unless the dataset file is already built (then nothing reads them again)."""
    from depthlab.data.mnist import MnistNotFoundError, find_mnist_files

    for name, ds in datasets.items():
        if ds["generator"] != "mnist_parity":
            continue
        if Path(results, "datasets", f"{name}.h5").exists():
            continue
        try:
            find_mnist_files(ds["mnist_dir"])
        except MnistNotFoundError as err:
            missing_input(f"datasets.{name}.mnist_dir: {err}")


def _check_datasets(datasets: Mapping[str, Any]) -> None:
    for name, ds in datasets.items():
        key = f"datasets.{name}"
        if ds["generator"] == "mnist_parity" and not ds.get("mnist_dir"):
            raise ConfigError(f"{key}.mnist_dir is required for generator 'mnist_parity' "
                              "(the directory holding the four MNIST IDX files)")
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
        if ds["generator"] in ("mnist_parity", "digits_parity"):
            _check_parity_dataset(key, ds)


def _check_parity_dataset(key: str, ds: Mapping[str, Any]) -> None:
    """Sizes and input dimension of an (MNIST or digits) parity dataset, which the generator
    would otherwise find wrong only when its job runs."""
    from depthlab.data.mnist import DIGITS_SIZE

    pixels = {"mnist_parity": 28 * 28, "digits_parity": 8 * 8}[ds["generator"]]
    pca = ds.get("pca_components", 10)
    dim = pixels if pca is None else pca
    if pca is not None and not pca < min(ds["n_train"], pixels + 1):
        raise ConfigError(f"{key}.pca_components = {pca} must be below n_train = "
                          f"{ds['n_train']} and at most the {pixels} pixels")
    if ds["d"] != dim:
        raise ConfigError(f"{key}.d = {ds['d']} but generator {ds['generator']!r} with "
                          f"pca_components = {pca} makes {dim}-dimensional inputs; set d = {dim}")
    if ds["generator"] == "digits_parity" and ds["n_train"] + ds["n_test"] > DIGITS_SIZE:
        raise ConfigError(f"{key}: n_train + n_test = {ds['n_train'] + ds['n_test']} exceeds "
                          f"the {DIGITS_SIZE} images of scikit-learn's digits")
    if ds["generator"] == "mnist_parity" and (ds["n_train"] > 60000 or ds["n_test"] > 10000):
        raise ConfigError(f"{key}: n_train = {ds['n_train']} / n_test = {ds['n_test']} exceed "
                          "MNIST's 60000 training / 10000 test images")
