"""Studies name their datasets; the ``datasets:`` block defines them.

A mapping inside a study block (below its top level) that holds ``dataset: NAME`` -- Lee's
and Nichani's ``data``, Xiao's ``plane`` / ``pool`` / ``cliff`` / ``plane_nets`` and each of
its ``phase.images`` -- is filled, when the config is checked, with the parameters of
``datasets.NAME`` (generator, source, sizes, seed, preprocessing), so a study's code reads
``study["data"]["classes"]`` as before while the one ``make_dataset`` rule writes the one
file ``{results}/datasets/NAME.h5`` every study naming it shares.  A key the study block
sets itself must agree with the dataset (else a :class:`ConfigError` naming both keys): the
dataset is defined in one place.  Filling again gives the same block (idempotent).

A *seed draw* of a dataset (``NAME@seedS``) is the same generator and settings with its own
seed, derived from the dataset's seed and a net's seed S: a study that redraws its data per
net (Mori-Ueda's ``data_draws``) trains and tests seed S on it, so the spread over seeds holds
the data draw's share of the noise as well as the init's. The draws are entries of the
``datasets`` block like any other, added by :func:`add_seed_draws` after ``seed_offset``
(which therefore moves them too): one make_dataset rule, one file each, hashed and checked.

Also the checks of the image datasets (:mod:`depthlab.data.images`) a schema cannot
express: the directory a source needs, sizes against digits' 1797 images, pooling.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np

from depthlab.data.digits import DIGITS_SIZE
from depthlab.errors import ConfigError

__all__ = ["PRESENTATION_KEYS", "add_seed_draws", "check_image_dataset", "dataset_file",
           "dataset_names", "dataset_settings", "fill_dataset_refs", "seed_draw_name",
           "seed_draw_spec", "study_dataset_input"]

# Keys of a `datasets:` entry that describe it without shaping its arrays: a dataset file
# records and is checked against its settings without them, so editing one remakes nothing
# (a prose edit must not retrain every net that reads the data).
PRESENTATION_KEYS: tuple[str, ...] = ("description",)


def dataset_settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What makes a dataset's arrays: its `datasets:` entry without the presentation keys
    (the make_dataset rule's params, the config a dataset file stores and is checked by)."""
    return {k: v for k, v in spec.items() if k not in PRESENTATION_KEYS}


_DIRS = {("pixels", "mnist"): "mnist_dir", ("centred_images", "cifar10"): "cifar_dir",
         ("class_images", "cifar10"): "cifar_dir",
         ("class_images", "imagenet32"): "imagenet32_dir",
         ("image_sample", "cifar10"): "cifar_dir"}


def _refs(value: Any, path: str, top: bool = True) -> Iterator[tuple[str, MutableMapping]]:
    if isinstance(value, MutableMapping):
        if not top and isinstance(value.get("dataset"), str):
            yield path, value
        for k, v in value.items():
            yield from _refs(v, f"{path}.{k}", top=False)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _refs(v, f"{path}[{i}]", top=False)


def fill_dataset_refs(key: str, study: MutableMapping[str, Any],
                      datasets: Mapping[str, Any]) -> None:
    """Fill every ``dataset: NAME`` mapping of the study block ``key`` (module doc)."""
    for path, block in _refs(study, key):
        name = block["dataset"]
        if name not in datasets:
            raise ConfigError(f"{path}.dataset: no dataset {name!r} in the config's datasets "
                              f"(it has {', '.join(sorted(datasets))})")
        for k, v in dataset_settings(datasets[name]).items():
            if k in block and block[k] != v:
                raise ConfigError(
                    f"{path}.{k} = {block[k]!r}, but dataset {name!r} has {k} = {v!r}: a "
                    f"study names its dataset and datasets.{name} defines it; set {k} "
                    f"there (or name another dataset)")
            block[k] = copy.deepcopy(v)


_DRAW_STREAM = 0xD4A3  # keeps draw seeds apart from every other use of the same two seeds


def seed_draw_name(dataset: str, seed: int) -> str:
    """The name (and file stem) of the draw of ``dataset`` the net of ``seed`` trains on."""
    return f"{dataset}@seed{int(seed)}"


def seed_draw_spec(spec: Mapping[str, Any], dataset: str, seed: int) -> dict[str, Any]:
    """The ``datasets`` entry of draw ``seed`` of ``dataset`` (entry ``spec``): the same
    settings, a seed drawn from (the dataset's seed, the net's seed)."""
    state = np.random.SeedSequence([int(spec["seed"]), int(seed), _DRAW_STREAM])
    out = copy.deepcopy(dict(spec))
    out["seed"] = int(state.generate_state(1, np.uint32)[0] >> 1)
    out["description"] = f"the draw of {dataset!r} the net of seed {seed} trains and is tested on"
    return out


def add_seed_draws(datasets: MutableMapping[str, Any],
                   draws: Iterable[tuple[str, int]]) -> list[str]:
    """Add the entry of every (dataset, seed) draw to the ``datasets`` block; returns the
    names added (idempotent: an entry already there is checked, not replaced)."""
    added = []
    for dataset, seed in sorted(set(draws)):
        name = seed_draw_name(dataset, seed)
        spec = seed_draw_spec(datasets[dataset], dataset, seed)
        if name in datasets:
            if dataset_settings(datasets[name]) != dataset_settings(spec):
                raise ConfigError(f"datasets.{name}: the name of a seed draw of {dataset!r}, "
                                  "defined otherwise; rename that entry")
            continue
        datasets[name] = spec
        added.append(name)
    return added


def dataset_file(results: str, name: str) -> str:
    """The one file of dataset ``name`` (the make_dataset rule's output)."""
    return f"{results}/datasets/{name}.h5"


def study_dataset_input(studies: Mapping[str, Any], results: str, block: str = "data"):
    """Snakemake input function: the dataset file that block ``block`` of the job's study
    (wildcard ``study``) names."""
    return lambda wc: dataset_file(results, studies[wc.study][block]["dataset"])


def dataset_names(study: Mapping[str, Any]) -> list[str]:
    """The datasets a study block names in its ``dataset: NAME`` mappings, in order."""
    return list(dict.fromkeys(block["dataset"] for _, block in _refs(study, "")))


def check_image_dataset(key: str, ds: Mapping[str, Any]) -> None:
    """What the schema cannot say of an image dataset ``ds`` (config key ``key``)."""
    gen, source = ds["generator"], ds.get("source")
    if gen == "gaussian_images":
        return
    need = _DIRS.get((gen, source))
    if need and not ds.get(need):
        raise ConfigError(f"{key}.{need} is required for generator {gen!r} with source "
                          f"{source!r}")
    if gen == "pixels" and ds.get("classes") is not None:
        bad = [c for c in ds["classes"] if not 0 <= c <= 9]
        if bad:
            raise ConfigError(f"{key}.classes: {bad} are not digits 0..9")
    if gen == "class_images" and source == "digits":
        bad = [c for c in ds["classes"] if not 0 <= c <= 9]
        if bad:
            raise ConfigError(f"{key}.classes: {bad} are not digits 0..9")
    if gen == "image_sample" and source == "digits" and ds["n_images"] > DIGITS_SIZE:
        raise ConfigError(f"{key}.n_images = {ds['n_images']} exceeds the {DIGITS_SIZE} "
                          "digits images")
    if gen == "pixels" and source == "digits" and ds["n_train"] + ds["n_test"] > DIGITS_SIZE:
        raise ConfigError(f"{key}: n_train + n_test = {ds['n_train'] + ds['n_test']} exceeds "
                          f"the {DIGITS_SIZE} digits images")
    if gen == "centred_images":
        side = 8 if source == "digits" else 32
        if side % ds["image_pool"]:
            raise ConfigError(f"{key}.image_pool = {ds['image_pool']} must divide the "
                              f"{side}x{side} {source} images")
        if source == "digits":
            half = DIGITS_SIZE // 2
            if ds["n_train"] > half or ds["n_test"] > DIGITS_SIZE - half:
                raise ConfigError(f"{key}: digits offers {half} training and "
                                  f"{DIGITS_SIZE - half} test candidates (its two halves)")
