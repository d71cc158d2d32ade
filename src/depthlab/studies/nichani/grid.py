"""The Nichani study's jobs and config checks (free of torch).

Jobs (on the dataset ``data.dataset`` names, a shared make_dataset file): one kernel job
per CNTK variant (every depth from one recursion) and one for the FC NTK (``fc_ntk``); one
training job per Fully-Conv depth (``fc_d{depth}``, every seed) and for the FC baseline
(``mlp``); one job per linear task (all depths and seeds); one job per ResNet
(``rn_{n1}-{n2}-{n3}-{n4}_w{width}_k{kernel}_s{seed}``).
"""

from __future__ import annotations

from typing import Any

from depthlab.config import ConfigError, check_input_files, gram_estimate, warn
from depthlab.data.cifar import find_cifar10_files

DIGITS_PER_CLASS_MIN = 174  # the smallest digits class (scikit-learn's 1 797 images)
FC_NTK = "fc_ntk"
# Nichani et al., Table 1 (depth -> blocks per stage); the same as
# depthlab.studies.nichani.resnet.TABLE1 (a test checks), kept here so the grid needs no torch
TABLE1 = {10: (1, 1, 1, 1), 12: (1, 1, 2, 1), 14: (1, 2, 2, 1), 16: (2, 2, 2, 1),
          18: (2, 2, 2, 2), 20: (2, 2, 3, 2), 22: (2, 3, 3, 2), 26: (3, 3, 3, 3),
          30: (3, 4, 4, 3), 34: (3, 4, 6, 3), 38: (3, 4, 8, 3), 42: (3, 4, 10, 3),
          46: (3, 4, 12, 3), 50: (3, 4, 14, 3)}
RESNET_JOB = r"rn_\d+-\d+-\d+-\d+_w\d+_k\d+_s\d+"  # the rule's wildcard constraint


def grid_blocks(g: dict[str, Any]) -> list[tuple[int, int, int, int]]:
    """Blocks per stage of one resnets grid, in the order given (Table 1 depths resolved)."""
    if g.get("depths"):
        return [TABLE1[int(d)] for d in g["depths"]]
    return [tuple(int(n) for n in b) for b in g.get("blocks") or []]


def resnet_job_name(blocks, width: int, kernel_size: int, seed: int) -> str:
    b = "-".join(str(int(n)) for n in blocks)
    return f"rn_{b}_w{int(width)}_k{int(kernel_size)}_s{int(seed)}"


def resnet_jobs(study: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One job per (blocks, width, kernel size, seed), the union over the grids."""
    rn = study.get("resnets")
    if not rn:
        return {}
    out = {}
    for g in rn["grids"]:
        for b in grid_blocks(g):
            for w in g["widths"]:
                for k in g["kernel_sizes"]:
                    for s in g["seeds"]:
                        out[resnet_job_name(b, w, k, s)] = {
                            "model": "resnet", "blocks": list(b), "depth": 2 + 2 * sum(b),
                            "width": int(w), "kernel_size": int(k), "seeds": [int(s)]}
    return dict(sorted(out.items()))


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
    # in ascending order whatever the config's: listing the seeds in another order renames
    # nothing and changes no job's params (a job trains and stores its seeds in this order)
    seeds = sorted({int(s) for s in fc["seeds"]})
    out = {f"fc_d{d}": {"model": "fully_conv", "depth": int(d), "seeds": seeds}
           for d in sorted(set(fc["depths"]))}
    if fc["fc_width"]:
        out["mlp"] = {"model": "mlp", "depth": 1, "seeds": seeds}
    return out


def linear_tasks(study: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each task by name (conv_ae's carry their dataset's parameters, depthlab.data.refs)."""
    return {t["name"]: t for t in study.get("linear") or []}


def check(key: str, study: dict[str, Any], config: dict[str, Any]) -> None:
    data = study["data"]
    if data["source"] == "cifar10":
        check_input_files(f"{key}.data.cifar_dir", data.get("cifar_dir"),
                          lambda d: find_cifar10_files(d, data["cifar_format"]),
                          "source cifar10 needs the directory of the CIFAR-10 batches")
    for i, t in enumerate(study.get("linear") or []):
        if t.get("source") == "cifar10":  # a conv_ae's image_sample dataset
            check_input_files(f"datasets.{t['dataset']}.cifar_dir (named by "
                              f"{key}.linear[{i}].dataset)", t.get("cifar_dir"),
                              lambda d, t=t: find_cifar10_files(d, t["cifar_format"]),
                              "source cifar10 needs the directory of the CIFAR-10 batches")
    if data["source"] == "imagenet32":
        from depthlab.data.imagenet32 import find_imagenet32_files

        check_input_files(f"{key}.data.imagenet32_dir", data.get("imagenet32_dir"),
                          find_imagenet32_files,
                          "source imagenet32 needs the directory of the pickled ImageNet32 "
                          "batches (train_data_batch_1..10, val_data)")
        if min(data["classes"]) < 1:
            raise ConfigError(f"{key}.data.classes: ImageNet32 labels are 1-based (1..1000)")
    elif max(data["classes"]) > 9:
        raise ConfigError(f"{key}.data.classes: {data['source']} classes are 0..9")
    if len(set(data["classes"])) != len(data["classes"]):
        raise ConfigError(f"{key}.data.classes: classes repeat")
    if data.get("normalize") == "yang" and data["source"] != "cifar10":
        raise ConfigError(f"{key}.data.normalize: yang is CIFAR-10's normalisation")
    _check_resnets(key, study)
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
    for name, fig in (study.get("figures") or {}).items():
        fk = f"{key}.figures.{name}"
        plot = fig["plot"]
        if plot == "nichani_fully_conv" and not study.get("fully_conv"):
            raise ConfigError(f"{fk}: nichani_fully_conv needs a fully_conv block")
        if plot == "nichani_cntk" and not variants:
            raise ConfigError(f"{fk}: nichani_cntk needs a kernels block")
        if plot != "nichani_resnet":
            extra = sorted(set(fig) & {"x", "metrics", "grids", "widths", "depths",
                                       "kernel_sizes", "selection"})
            if extra:
                raise ConfigError(f"{fk}.{extra[0]}: only nichani_resnet figures take it")
        else:
            _check_resnet_figure(fk, fig, study)
        if plot in ("nichani_linear_toy", "nichani_autoencoder"):
            want = "toy" if plot == "nichani_linear_toy" else ("conv_ae", "toeplitz_ae")
            ok = [t["name"] for t in study.get("linear") or [] if t["task"] in want]
            if fig.get("task") not in ok:
                raise ConfigError(f"{fk}.task: {fig.get('task')!r} is not a linear task of "
                                  f"this kind (have {ok})")


def _check_resnets(key: str, study: dict[str, Any]) -> None:
    rn = study.get("resnets")
    if not rn:
        return
    names = [g["name"] for g in rn["grids"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"{key}.resnets.grids: names repeat")
    for i, g in enumerate(rn["grids"]):
        if bool(g.get("depths")) == bool(g.get("blocks")):
            raise ConfigError(f"{key}.resnets.grids[{i}]: give depths (Table 1) or blocks, "
                              "not both")
        for k in g["kernel_sizes"]:
            if k % 2 == 0:
                raise ConfigError(f"{key}.resnets.grids[{i}].kernel_sizes: {k} is even (same "
                                  "padding needs an odd kernel)")
    tr = rn["training"]
    if rn["softmax_output"] and tr["loss"] != "mse":
        raise ConfigError(f"{key}.resnets.training.loss: softmax_output (Yang's net) is "
                          "trained with mse; cross_entropy needs softmax_output: false")
    if tr["checkpoint_every"] > tr["max_epochs"]:
        warn(f"{key}.resnets.training.checkpoint_every > max_epochs: no checkpoint "
                       "is ever written")


def _check_resnet_figure(fk: str, fig: dict[str, Any], study: dict[str, Any]) -> None:
    rn = study.get("resnets")
    if not rn:
        raise ConfigError(f"{fk}: nichani_resnet needs a resnets block")
    if "metric" in fig or "task" in fig:
        raise ConfigError(f"{fk}: nichani_resnet takes metrics, not metric / task")
    grids = {g["name"]: g for g in rn["grids"]}
    for name in fig.get("grids") or []:
        if name not in grids:
            raise ConfigError(f"{fk}.grids: {name!r} is not a resnets grid (have "
                              f"{sorted(grids)})")
    chosen = [grids[n] for n in fig.get("grids") or grids]
    have = {"widths": {w for g in chosen for w in g["widths"]},
            "kernel_sizes": {k for g in chosen for k in g["kernel_sizes"]},
            "depths": {2 + 2 * sum(b) for g in chosen for b in grid_blocks(g)}}
    for axis, values in have.items():
        for v in fig.get(axis) or []:
            if v not in values:
                raise ConfigError(f"{fk}.{axis}: {v} is not trained by the grids shown "
                                  f"(have {sorted(values)})")


def memory_estimates(key: str, study: dict[str, Any], config: dict[str, Any]) -> list:
    """Per-job memory from shapes (depthlab.config.check_limits): the kernels' Gram of the
    training images (classes x images per class)."""
    if not isinstance(study.get("kernels"), dict):
        return []
    data = study.get("data", {})
    per_class = study["kernels"].get("train_per_class") or data.get("n_train_per_class")
    if isinstance(per_class, int) and data.get("classes"):
        return [gram_estimate(f"{key}.data.n_train_per_class", per_class * len(data["classes"]),
                              why=" (classes x training images per class)")]
    return []
