"""The Nichani study's jobs and config checks (free of torch).

Jobs: one ``nichani_data`` file per study; one kernel job per CNTK variant (every depth
from one recursion) and one for the FC NTK (``fc_ntk``); one training job per Fully-Conv
depth (``fc_d{depth}``, every seed) and for the FC baseline (``mlp``); one job per linear task
(all depths and seeds).
"""

from __future__ import annotations

from typing import Any

from depthlab.config import ConfigError, check_input_files
from depthlab.data.cifar import find_cifar10_files

DIGITS_PER_CLASS_MIN = 174  # the smallest digits class (scikit-learn's 1 797 images)
FC_NTK = "fc_ntk"


def kernel_variants(study: dict[str, Any]) -> list[dict[str, Any]]:
    k = study.get("kernels")
    if not k:
        return []
    out = [{**v, "depths": sorted(set(v.get("depths") or k["depths"]))} for v in k["variants"]]
    if k["fc_ntk_depths"]:
        out.append({"name": FC_NTK, "readout": "fc", "fix": False,
                    "depths": sorted(set(k["fc_ntk_depths"]))})
    return out


def train_jobs(study: dict[str, Any]) -> dict[str, dict[str, Any]]:
    fc = study.get("fully_conv")
    if not fc:
        return {}
    seeds = [int(s) for s in fc["seeds"]]
    out = {f"fc_d{d}": {"model": "fully_conv", "depth": int(d), "seeds": seeds}
           for d in sorted(set(fc["depths"]))}
    if fc["fc_width"]:
        out["mlp"] = {"model": "mlp", "depth": 1, "seeds": seeds}
    return out


def linear_tasks(study: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in study.get("linear") or []}


def check(key: str, study: dict[str, Any], config: dict[str, Any]) -> None:
    data = study["data"]
    if data["source"] == "cifar10":
        check_input_files(f"{key}.data.cifar_dir", data.get("cifar_dir"),
                          lambda d: find_cifar10_files(d, data["cifar_format"]),
                          "source cifar10 needs the directory of the CIFAR-10 batches")
    if len(set(data["classes"])) != len(data["classes"]):
        raise ConfigError(f"{key}.data.classes: classes repeat")
    if data["source"] == "digits":
        n = data["n_train_per_class"] + data["n_test_per_class"]
        if n > DIGITS_PER_CLASS_MIN:
            raise ConfigError(f"{key}.data: n_train_per_class + n_test_per_class = {n} exceeds "
                              f"the {DIGITS_PER_CLASS_MIN} images of the smallest digits class")
    variants = kernel_variants(study)
    names = [v["name"] for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError(f"{key}.kernels.variants: names repeat (or one is {FC_NTK!r}, the "
                          "FC NTK's)")
    tasks = [t["name"] for t in study.get("linear") or []]
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"{key}.linear: task names repeat")
    for i, t in enumerate(study.get("linear") or []):
        if t["task"] == "toy" and t["placement"] == "corner" and t["n_per_class"] != 1:
            raise ConfigError(f"{key}.linear[{i}].n_per_class: the corner toy (Fig. 7) has "
                              "one image per class; use placement: random (Fig. 19)")
        if t["task"] == "toy" and t["n_test"] % 2:
            raise ConfigError(f"{key}.linear[{i}].n_test: must be even (half red, half blue)")
    for i, v in enumerate((study.get("kernels") or {}).get("variants", [])):
        if v["fix"] and min(v.get("depths") or study["kernels"]["depths"]) < 2:
            raise ConfigError(f"{key}.kernels.variants[{i}].depths: with fix (first conv and "
                              "readout not trained) one conv layer has a zero NTK; start at 2")
        tpc = v.get("test_per_class") or study["kernels"]["test_per_class"]
        if tpc and tpc > data["n_test_per_class"]:
            raise ConfigError(f"{key}.kernels.variants[{i}].test_per_class: {tpc} > "
                              f"data.n_test_per_class = {data['n_test_per_class']}")
    trpc = (study.get("kernels") or {}).get("train_per_class")
    if trpc and trpc > data["n_train_per_class"]:
        raise ConfigError(f"{key}.kernels.train_per_class: {trpc} > data.n_train_per_class = "
                          f"{data['n_train_per_class']}")
    for name, fig in study["figures"].items():
        fk = f"{key}.figures.{name}"
        plot = fig["plot"]
        if plot == "nichani_fully_conv" and not study.get("fully_conv"):
            raise ConfigError(f"{fk}: nichani_fully_conv needs a fully_conv block")
        if plot == "nichani_cntk" and not variants:
            raise ConfigError(f"{fk}: nichani_cntk needs a kernels block")
        if plot in ("nichani_linear_toy", "nichani_autoencoder"):
            want = "toy" if plot == "nichani_linear_toy" else ("conv_ae", "toeplitz_ae")
            ok = [t["name"] for t in study.get("linear") or [] if t["task"] in want]
            if fig.get("task") not in ok:
                raise ConfigError(f"{fk}.task: {fig.get('task')!r} is not a linear task of "
                                  f"this kind (have {ok})")
