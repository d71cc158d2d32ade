"""Config validation shared by the Snakefile, the scripts and the tests.

One entry point, :func:`check_config`, turns a loaded config into a validated one, in place:

1. the top-level schema (``workflow/schemas/config.schema.yaml``: results, threads, datasets,
   kernels, and that every study names a ``kind``);
2. each study against its plug-in's schema (``workflow/schemas/studies/<kind>.schema.yaml``);
   an unknown kind is an error naming ``studies.<name>.kind``;
3. cross-field checks a schema cannot express: the results path and datasets here (MNIST
   files included), each study's in its plug-in (``depthlab.studies.<kind>.check``: grids,
   figures, summaries and tables checked against what is trained).

Before any schema, one walk over the whole merged config (:func:`check_plain_values`)
refuses what no schema should have to say: NaN and +-inf anywhere (``.nan`` passes JSON
Schema's ``exclusiveMinimum``), mapping keys that are not strings (YAML reads an unquoted
``on``/``off``/``yes``/``no`` key as a boolean), and a config that expands to more than
:data:`MAX_CONFIG_VALUES` values (a YAML alias bomb). Every user-given name that becomes a
file name, a rule name or a wildcard (studies, datasets, kernels, figures of every kind, kernel
variants, linear tasks, ResNet grids) is checked by one rule, :data:`NAME_PATTERN` (schemas
say ``format: name``). Plans are bounded (:func:`check_limits`, the top-level ``limits:``
block): cells per grid, runs per config and a per-job memory estimate from shapes.

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
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

# ConfigError lives in the leaf module depthlab.errors (no import cycle through this module);
# re-exported here, where plug-ins and scripts have always imported it from.
from depthlab.activations import check_activation
from depthlab.errors import ConfigError
from depthlab.studies import plugin, schema_path

__all__ = ["MAX_CONFIG_VALUES", "NAME_PATTERN", "ConfigError", "ConfigWarning",
           "check_config", "check_limits", "check_plain_values", "is_name",
           "load_yaml_strict", "validate_against", "warn"]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"

# The one rule for every user-given name that becomes a path component, a rule name or a
# wildcard value: a letter, then letters, digits or '_' (at most 64 characters). No '/', '.',
# '..', whitespace or newline, no wildcard braces or glob characters, no regex metacharacter
# (names are joined into wildcard_constraints alternatives). Schemas use it as
# ``format: name`` (or ``propertyNames: {format: name}``); matched with re.fullmatch, so a
# trailing newline (which `$` would let through) is refused too.
NAME_PATTERN = r"[A-Za-z][A-Za-z0-9_]{0,63}"
_NAME_RE = re.compile(NAME_PATTERN)
NAME_RULE = ("a name is a letter, then letters, digits or '_' (at most 64 characters): it "
             "becomes a file name and a wildcard value")
# A config (or one YAML file) expanding to more values than this is refused before anything
# walks it: a 1 KB YAML alias bomb expands to billions; config/paper.yaml has about 3 000.
MAX_CONFIG_VALUES = 200_000
# Error messages quote at most this many characters of a value.
_MAX_MESSAGE = 400


class ConfigWarning(UserWarning):
    """A config value is valid but changes what runs in a way the user may not expect; the
    message names its key path.  :func:`check_config` collects these and returns them."""


def is_name(value: Any) -> bool:
    """Whether ``value`` is a valid user-given name (:data:`NAME_PATTERN`)."""
    return isinstance(value, str) and _NAME_RE.fullmatch(value) is not None


def _short(text: str, limit: int = _MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters (error messages never print a huge value)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def warn(message: str) -> None:
    """Raise a :class:`ConfigWarning` (study plug-ins' checks call this)."""
    warnings.warn(message, ConfigWarning, stacklevel=2)


def load_yaml_strict(path: str | os.PathLike) -> Any:
    """Load a YAML config file like ``yaml.safe_load``, but a key given twice in one mapping
    is a :class:`ConfigError` naming the file, line and key path (PyYAML and Snakemake keep
    the last one silently).  Merge keys (``<<: *anchor``) may be overridden as usual.

    Aliases are bounded: the document's node graph is measured before anything is built, and
    one expanding to more than :data:`MAX_CONFIG_VALUES` values (a YAML "billion laughs"
    alias bomb: a kilobyte that expands to gigabytes) is a :class:`ConfigError` naming the
    file, in milliseconds."""
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
                    f"{path}: line {key_node.start_mark.line + 1}: duplicate key "
                    f"{_short(repr(key), 80)} (first given on line {seen[key] + 1}); YAML "
                    "would silently keep the last")
            seen[key] = key_node.start_mark.line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 construct_mapping)
    with open(path) as fh:
        loader = StrictLoader(fh)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_yaml_size(path, node)
            return loader.construct_document(node)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {_short(str(err))}") from None
        finally:
            loader.dispose()


def _expanded_size(root: Any, *, children: Callable[[Any], list], is_leaf: Callable[[Any], bool],
                   cycle: Callable[[Any, bool], ConfigError],
                   too_big: Callable[[Any], ConfigError]) -> None:
    """Refuse a graph (a YAML node graph, or the objects built from it) whose expansion, every
    shared node counted at each use, exceeds :data:`MAX_CONFIG_VALUES`, measuring each shared
    node once (an alias bomb costs nothing to measure). Iterative post-order: aliases make the
    graph a DAG, or a cycle, which raises ``cycle(node, reached_as_child)``; a node whose
    expansion is too big raises ``too_big(node)``. A leaf counts 1."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        if is_leaf(node):
            sizes[id(node)] = 1
            continue
        kids = children(node)
        if not done:
            if id(node) in open_nodes:
                raise cycle(node, False)
            open_nodes.add(id(node))
            stack.append((node, True))
            for child in kids:
                if id(child) in open_nodes:
                    raise cycle(child, True)
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        open_nodes.discard(id(node))
        sizes[id(node)] = total = 1 + sum(sizes[id(c)] for c in kids)
        if total > MAX_CONFIG_VALUES:
            raise too_big(node)


def _check_yaml_size(path, root) -> None:
    """Refuse a YAML node graph whose expansion (every alias counted as a copy of its
    anchor) exceeds :data:`MAX_CONFIG_VALUES`; shared nodes are measured once."""
    import yaml

    def line(node) -> str:
        return f"{path}: line {node.start_mark.line + 1}"

    _expanded_size(
        root,
        children=lambda node: ([c for pair in node.value for c in pair]
                               if isinstance(node, yaml.MappingNode) else list(node.value)),
        is_leaf=lambda node: isinstance(node, yaml.ScalarNode),
        cycle=lambda node, _child: ConfigError(
            f"{line(node)}: this value contains itself through a YAML alias (*name)"),
        too_big=lambda node: ConfigError(
            f"{line(node)}: this value expands to more than {MAX_CONFIG_VALUES} values "
            "through YAML aliases (*name) (an alias bomb?); a config is far smaller: write "
            "the values out, or use fewer aliases"))


def check_plain_values(config: Any, prefix: str = "") -> None:
    """One rule over the whole merged config, before any schema: every mapping key is a
    string, every number finite, and the whole expands to at most :data:`MAX_CONFIG_VALUES`
    values. A :class:`ConfigError` names the key path, e.g.
    ``studies.mori_ueda.grids[0].lr[1]: nan is not a finite number``.

    JSON Schema lets NaN through ``minimum``/``exclusiveMinimum`` (every comparison with NaN
    is false) and +-inf through any open bound; YAML reads ``.nan``, ``.inf``, ``-.inf``. A
    non-string key is what YAML 1.1 makes of an unquoted ``on``, ``off``, ``yes``, ``no``,
    ``true`` (booleans) or ``1`` (a number): it would silently name no key."""
    _check_config_size(config, prefix)
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [(prefix, config)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, str) and (key == "results" or key.endswith("_dir")):
            _check_path_text(key, value)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key or 'config'}: {value} is not a finite number (NaN and "
                              "+-inf are refused everywhere in a config)")
        if isinstance(value, (dict, list, tuple)):
            if id(value) in seen:  # shared through a YAML alias: checked where first seen
                continue
            seen.add(id(value))
        if isinstance(value, dict):
            children = []
            for k, v in value.items():
                if not isinstance(k, str):
                    hint = (" (YAML 1.1 reads an unquoted on/off/yes/no/true/false as a "
                            "boolean: quote it)" if isinstance(k, bool) else "")
                    raise ConfigError(f"{key or 'config'}: key {_short(repr(k), 80)} is not a "
                                      f"string{hint}")
                children.append((f"{key}.{k}" if key else k, v))
            stack.extend(reversed(children))
        elif isinstance(value, (list, tuple)):
            stack.extend(reversed([(f"{key}[{i}]", v) for i, v in enumerate(value)]))


# Characters a path the config names (``results``, an input ``*_dir``) may not hold: Snakemake
# reads braces in a rule's input and output paths as wildcards, glob characters are expanded
# by tools and shells, and control characters (a newline) make a path no log can show.
_BAD_PATH_CHARS = re.compile(r"[{}*?\[\]\x00-\x1f\x7f]")


def _check_path_text(key: str, value: str) -> None:
    bad = _BAD_PATH_CHARS.search(value)
    if bad:
        raise ConfigError(f"{key}: {_short(repr(value), 120)} holds {bad.group()!r}; a path "
                          "the config names may not hold wildcard braces, glob characters "
                          "(* ? [ ]) or control characters such as a newline")


def _check_config_size(config: Any, prefix: str) -> None:
    """Refuse a config whose expansion (shared sub-objects counted at every use) exceeds
    :data:`MAX_CONFIG_VALUES`, measuring each shared object once (so a bomb costs nothing)."""
    where = prefix or "config"
    _expanded_size(
        config,
        children=lambda v: list(v.values() if isinstance(v, dict) else v),
        is_leaf=lambda v: not isinstance(v, (dict, list, tuple)),
        cycle=lambda _v, child: ConfigError(
            f"{where}: a value contains itself"
            + (" (a recursive YAML alias?)" if child else "")),
        too_big=lambda _v: ConfigError(
            f"{where}: the config expands to more than {MAX_CONFIG_VALUES} values (YAML "
            "aliases repeating a value many times, an alias bomb?); a config is far smaller"))


@functools.cache
def _load_schema(path: str) -> dict[str, Any]:
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


@functools.cache
def _schema_registry():
    """Resolves a `$ref` to another schema file under workflow/schemas (by its file URI);
    nothing outside that directory is read."""
    from urllib.parse import unquote, urlparse

    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import DRAFT202012

    def retrieve(uri: str) -> Resource:
        parsed = urlparse(uri)
        path = Path(unquote(parsed.path)).resolve()
        if parsed.scheme != "file" or not path.is_relative_to(SCHEMA_DIR.resolve()) \
                or not path.is_file():
            raise NoSuchResource(ref=uri)
        return Resource.from_contents(_load_schema(str(path)),
                                      default_specification=DRAFT202012)

    return Registry(retrieve=retrieve)


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


@functools.cache
def _format_checker():
    """The schemas' one custom format, ``name`` (:data:`NAME_PATTERN`)."""
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    checker.checks("name")(lambda instance: not isinstance(instance, str) or is_name(instance))
    return checker


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
    # Its URI is its file, so a `$ref` to a shared schema file (a study schema's
    # "../claims.schema.yaml") resolves relative to it (_schema_registry).
    if "$id" not in schema:
        schema = {"$id": Path(schema_path).resolve().as_uri(), **schema}
    validator = _validator_class()(schema, format_checker=_format_checker(),
                                   registry=_schema_registry())
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path),
                                                                    list(map(str, e.path))))
    if errors:
        err = errors[0]
        # The deepest relevant error of a oneOf/anyOf names the real culprit.
        while err.context:
            err = sorted(err.context, key=lambda e: -len(e.absolute_path))[0]
        key = _key_path(prefix, err.absolute_path) or "config"
        if err.validator == "format" and err.validator_value == "name":
            message = f"{_short(repr(err.instance), 80)} is not a valid name: {NAME_RULE}"
        else:
            message = _short(err.message)
        raise ConfigError(f"{key}: {message}")


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
    from depthlab.data.refs import fill_dataset_refs

    check_plain_values(config)
    validate_against(config, SCHEMA_DIR / "config.schema.yaml")
    _check_results(config["results"])
    _check_datasets(config["datasets"])
    _check_dataset_sizes(config)
    _check_data_files(config["datasets"], config["results"], missing_data)
    for name, spec in config["kernels"].items():
        if "activation" in spec:
            check_activation(spec["activation"], "kernel", f"kernels.{name}.activation")
    for name, study in config["studies"].items():
        key = f"studies.{name}"
        module = plugin(study["kind"], f"{key}.kind")
        # a study's `dataset: NAME` blocks get the dataset's parameters (depthlab.data.refs)
        fill_dataset_refs(key, study, config["datasets"])
        validate_against(study, schema_path(study["kind"]), key)
        check_limits(key, study, config)
        module.check(key, study, config)
        _check_claim_keys(key, study)
    _check_total_runs(config)


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
    from depthlab.data.refs import check_image_dataset

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
        check_image_dataset(f"datasets.{name}", ds)


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


# --------------------------------------------------------------------------- bounded plans

# Blocks of a study that span no grid (their lists are figure settings, claim settings,
# training schedules, or ranges).
_NOT_GRIDS = frozenset({"figures", "claims", "table41", "table1", "summary", "training",
                        "description", "data"})
_NOT_AXES = frozenset({"bounds", "fit_range", "image_shape", "strides", "pack",
                       "lr_decay_epochs", "accumulation_gammas"})
_GB = 1e9


def study_grids(key: str, study: Mapping[str, Any]) -> list[tuple[str, dict[str, int]]]:
    """Every block of a study that spans a grid, as (key path, {axis: length}): a mapping
    whose list-valued entries are the axes it crosses (``grids[i]`` of every kind, Nichani's
    ``fully_conv`` and ``linear[i]``, Xiao's ``plane``, ``pool``, ``cliff``, ...). The product
    of the lengths is the number of cells: an upper bound on the runs it trains."""
    out = []
    stack: list[tuple[str, Any]] = [(key, study)]
    while stack:
        k, value = stack.pop()
        if isinstance(value, dict):
            axes = {name: len(x) for name, x in value.items()
                    if isinstance(x, list) and x and name not in _NOT_AXES
                    and name not in _NOT_GRIDS}
            if axes and k != key:
                out.append((k, axes))
            stack.extend(reversed([(f"{k}.{name}", x) for name, x in value.items()
                                   if name not in _NOT_GRIDS]))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{k}[{i}]", x) for i, x in enumerate(value)
                                   if isinstance(x, dict)]))
    return out


def _cells(axes: Mapping[str, int]) -> int:
    return math.prod(axes.values())


def check_limits(key: str, study: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Bounded plans for one (schema-validated) study, before its plug-in's checks or any
    DAG: no grid block spans more than ``limits.max_cells`` cells, and no job's memory
    estimated from shapes (:func:`memory_estimates`) exceeds ``limits.max_job_memory_gb``.
    Each error names the key and the count or estimate, and how to override it."""
    limits = config["limits"]
    for grid, axes in study_grids(key, study):
        cells = _cells(axes)
        if cells > limits["max_cells"]:
            shape = " x ".join(f"{name} {n}" for name, n in axes.items())
            raise ConfigError(
                f"{grid}: {cells} grid cells ({shape}) exceed limits.max_cells = "
                f"{limits['max_cells']}; a plan this large takes minutes and gigabytes to "
                "build before any job runs. Shrink the grid, or raise limits.max_cells")
    cap = limits["max_job_memory_gb"]
    for where, nbytes, what in memory_estimates(key, study, config):
        if nbytes > cap * _GB:
            raise ConfigError(
                f"{where}: {what}: about {nbytes / _GB:,.1f} GB in one job, over "
                f"limits.max_job_memory_gb = {cap:g}; shrink it, or raise "
                "limits.max_job_memory_gb if the machines that run it have that memory")


def _check_total_runs(config: Mapping[str, Any]) -> None:
    """The whole config's grids together: at most ``limits.max_runs`` cells (each a run, or
    a few)."""
    limits = config["limits"]
    per_study = {name: sum(_cells(axes) for _, axes in study_grids(f"studies.{name}", study))
                 for name, study in config["studies"].items()}
    total = sum(per_study.values())
    if total > limits["max_runs"]:
        biggest = sorted(per_study.items(), key=lambda kv: -kv[1])[:3]
        listing = ", ".join(f"studies.{name}: {n}" for name, n in biggest)
        raise ConfigError(f"studies: {total} grid cells in all ({listing}) exceed "
                          f"limits.max_runs = {limits['max_runs']}; shrink the grids, or "
                          "raise limits.max_runs")


def _check_dataset_sizes(config: Mapping[str, Any]) -> None:
    """A dataset's arrays must fit one job: (n_train + n_test) x d float64 values."""
    from depthlab.data.images import dataset_rows, image_input_dim

    cap = config["limits"]["max_job_memory_gb"]
    for name, ds in config["datasets"].items():
        (n_train, n_test), d = dataset_rows(ds), image_input_dim(ds)
        nbytes = 8 * (n_train + n_test) * d
        if nbytes > cap * _GB:
            raise ConfigError(
                f"datasets.{name}: (n_train + n_test) x d = ({n_train} + "
                f"{n_test}) x {d} float64 inputs: about {nbytes / _GB:,.1f} "
                f"GB in one job, over limits.max_job_memory_gb = {cap:g}; shrink it, or "
                "raise limits.max_job_memory_gb")


def _ints(values: Any) -> list[int]:
    return [v for v in (values or []) if isinstance(v, int) and not isinstance(v, bool)]


def gram_estimate(where: str, n: int, m: int | None = None, why: str = ""
                  ) -> tuple[str, float, str]:
    """(key, bytes, what) of an n x m float64 Gram matrix, for a plug-in's
    ``memory_estimates``."""
    m = n if m is None else m
    return where, 8.0 * n * m, f"a {n} x {m} float64 Gram matrix{why}"


def weights_estimate(where: str, width: int, depth: int, members: int = 1
                     ) -> tuple[str, float, str]:
    """(key, bytes, what) of a net's width x width float64 weights x depth, x the nets one
    job packs, for a plug-in's ``memory_estimates``."""
    what = (f"width x width float64 weights x depth ({width} x {width} x {depth}"
            + (f", x {members} nets packed in one job" if members > 1 else "") + ")")
    return where, 8.0 * width * width * max(depth, 1) * members, what


def packed_weights_estimates(key: str, grids: Any, pack: Any) -> list[tuple[str, float, str]]:
    """:func:`weights_estimate` of each grid block whose jobs pack the axes ``pack`` (seed,
    lr, alpha) into one job: the widest, deepest net times the packed members."""
    out = []
    for i, grid in enumerate(grids or []):
        members = 1
        if "seed" in pack:
            members *= len(grid.get("seeds", []))
        if "lr" in pack:
            members *= len(grid.get("lr", []))
        if "alpha" in pack:
            members *= len(grid.get("alpha", grid.get("alpha_sqrt_h", [])))
        widths, depths = _ints(grid.get("width")), _ints(grid.get("depth"))
        if widths and depths:
            out.append(weights_estimate(f"{key}.grids[{i}].width", max(widths), max(depths),
                                        members))
    return out


def memory_estimates(key: str, study: Mapping[str, Any],
                     config: Mapping[str, Any]) -> list[tuple[str, float, str]]:
    """(key, bytes, what) for the obvious per-job memory of a study, from shapes alone (an
    n x n float64 Gram matrix, a net's weights x the nets one job packs): its plug-in's
    optional ``memory_estimates(key, study, config)``, built from :func:`gram_estimate` and
    :func:`weights_estimate`. Lower bounds (no activations, gradients or optimizer state),
    so a refusal is never a false alarm."""
    estimate = getattr(plugin(study["kind"], key=f"{key}.kind"), "memory_estimates", None)
    return list(estimate(key, study, config)) if estimate else []


def _check_claim_keys(key: str, study: Mapping[str, Any]) -> None:
    """Every key of a study's ``claims:`` block names a claim kind of its plug-in, or a claim
    id (ids start with their kind): a typo fails here, before any job, not at the claims step
    after all training. The plug-in's ``paper_claims.KINDS`` lists its kinds."""
    block = study.get("claims") or {}
    if not block:
        return
    import importlib

    try:
        module = importlib.import_module(f"depthlab.studies.{study['kind']}.paper_claims")
    except ModuleNotFoundError:
        return
    kinds = tuple(getattr(module, "KINDS", ()))
    if not kinds:
        return
    for name in block:
        if name not in kinds and not any(str(name).startswith(f"{k}_") for k in kinds):
            raise ConfigError(f"{key}.claims.{name}: names no claim of kind "
                              f"{study['kind']!r}; its claim kinds are {sorted(kinds)} (a claim "
                              "id starts with its kind)")
        from depthlab.claims import CLAIMS_SCHEMA

        known = CLAIMS_SCHEMA["additionalProperties"]["properties"]
        settings = block[name] or {}
        unknown = sorted(set(settings) - set(known)) if isinstance(settings, Mapping) else []
        if unknown:
            raise ConfigError(f"{key}.claims.{name}: unknown claim setting(s) {unknown}; "
                              f"claim settings are {sorted(known)}")
