"""Nichani et al.'s CIFAR ResNets (depthlab.studies.nichani.resnet): Table 1's block grid, depths,
shapes and parameter counts (against an independent count and the well-known ResNet-18 /
-34 numbers), the crop / flip augmentation, bitwise resume through the shared trainer with
the augmentation's stream in the checkpoint, the mean-vs-sum MSE conversion of Yang's
recipe, and the study's ResNet jobs and config checks."""

from __future__ import annotations

import copy
import re

import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import REPO
from torch import nn

from depthlab import config as dlc
from depthlab.studies.nichani import grid
from depthlab.studies.nichani.resnet import TABLE1, RandomCropFlip, cifar_resnet, resnet_depth
from depthlab.studies.nichani.runs import resnet_optimizer_settings
from depthlab.training.module import ModuleTrainConfig, train_module
from depthlab.training.packed_sgd import TrainingInterrupted

TINY = REPO / "tests" / "data" / "tiny_nichani.yaml"


def _count(blocks, w, k=3, c_in=3, n_classes=10):
    """Parameters of the net, counted from the architecture's description."""
    total = c_in * w * k * k + 2 * w  # stem conv (no bias) + BN
    c = w
    for i, n in enumerate(blocks):
        c_out = w * 2**i
        for _ in range(n):
            total += k * k * c * c_out + 2 * c_out + k * k * c_out * c_out + 2 * c_out
            if c != c_out:  # first block of stages 2-4: 1x1 conv + BN shortcut
                total += c * c_out + 2 * c_out
            c = c_out
    return total + c * n_classes + n_classes


def test_table1_is_the_papers_and_depth_counts_layers():
    assert TABLE1 == grid.TABLE1
    assert sorted(TABLE1) == [10, 12, 14, 16, 18, 20, 22, 26, 30, 34, 38, 42, 46, 50]
    for depth, blocks in TABLE1.items():
        assert resnet_depth(blocks) == depth
        net = cifar_resnet(blocks, 8)
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        assert len(convs) + len(linears) == depth  # shortcut 1x1 convs are not layers
        shortcuts = [m for m in net.modules() if isinstance(m, nn.Conv2d)
                     and m.kernel_size == (1, 1)]
        assert len(shortcuts) == 3  # stages 2-4 downsample once each


@pytest.mark.parametrize("width", [8, 16, 32, 64])
def test_parameter_counts(width):
    for blocks in TABLE1.values():
        n = sum(p.numel() for p in cifar_resnet(blocks, width).parameters())
        assert n == _count(blocks, width)
    # kuangliu/Yang's CIFAR ResNet18 / ResNet34 (width 64, 10 classes)
    if width == 64:
        assert _count(TABLE1[18], 64) == 11_173_962
        assert _count(TABLE1[34], 64) == 21_282_122


def test_shapes_softmax_kernel_size_and_other_inputs():
    net = cifar_resnet(TABLE1[10], 4, 10, kernel_size=5).eval()
    x = torch.randn(3, 3, 32, 32)
    feats = {}
    net.layer4.register_forward_hook(lambda m, i, o: feats.update(l4=o.shape))
    out = net(x)
    assert out.shape == (3, 10) and feats["l4"] == (3, 32, 4, 4)  # 8w channels, 4x4 maps
    torch.testing.assert_close(out.sum(1), torch.ones(3))
    assert all(m.kernel_size == (5, 5) for m in net.modules()
               if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1))
    logits = cifar_resnet(TABLE1[10], 4, 3, in_channels=1, softmax_output=False).eval()
    assert logits(torch.randn(2, 1, 8, 8)).shape == (2, 3)  # digits stand-in, 1 channel
    a, b = cifar_resnet(TABLE1[12], 4, seed=3), cifar_resnet(TABLE1[12], 4, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(ValueError, match="four stages"):
        cifar_resnet((1, 1, 1), 4)
    with pytest.raises(ValueError, match="odd"):
        cifar_resnet(TABLE1[10], 4, kernel_size=4)


def test_crop_flip_is_a_window_of_the_padded_image():
    aug = RandomCropFlip(padding=2, seed=5)
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6) + 1
    aug.eval()
    assert torch.equal(aug(x), x)
    aug.train()
    state = aug.rng_state.clone()
    out = aug(x)
    assert not torch.equal(aug.rng_state, state)  # the stream advanced
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(2):
        windows = [padded[i, :, r:r + 6, c:c + 6] for r in range(5) for c in range(5)]
        windows += [w.flip(-1) for w in windows]
        assert any(torch.equal(out[i], w) for w in windows)
    again = RandomCropFlip(padding=2, seed=5).train()
    assert torch.equal(again(x), out)  # seeded


def _data(n=24, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.arange(n) % k


def test_resume_is_bitwise_with_augmentation(tmp_path):
    x, y = _data()
    xt, yt = _data(12, seed=1)
    cfg = ModuleTrainConfig(lr=0.05, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                            batch_size=8, max_epochs=4, loss="mse", lr_decay_epochs=(2,),
                            seed=0)
    build = lambda: cifar_resnet(TABLE1[10], 2, 3, augment=True, crop_padding=2,  # noqa: E731
                                 seed=0)
    ref_net = build()
    ref = train_module(ref_net, x, y, xt, yt, cfg)
    ckpt = tmp_path / "ck.pt"
    net = build()
    with pytest.raises(TrainingInterrupted):
        train_module(net, x, y, xt, yt, cfg, checkpoint_path=ckpt, checkpoint_every=1,
                     _stop_after_epoch=2)
    net = build()  # a fresh process: rebuilt from the seed, then the checkpoint
    res = train_module(net, x, y, xt, yt, cfg, checkpoint_path=ckpt, checkpoint_every=1)
    assert res["history"] == ref["history"]
    for (ka, a), (kb, b) in zip(ref_net.state_dict().items(), net.state_dict().items(),
                                strict=True):
        assert ka == kb and torch.equal(a, b), ka


def test_mean_mse_recipe_gives_the_same_sgd_steps():
    """Yang's SGD on MSELoss(mean) == the trainer's MSE (sum over classes) with the
    converted lr and weight decay."""
    tr = {"optimizer": "sgd", "lr": 0.1, "weight_decay": 5e-4, "loss": "mse",
          "mse_reduction": "mean"}
    k = 4
    lr, wd, used = resnet_optimizer_settings(tr, k)
    assert (lr, wd) == pytest.approx((0.1 / k, 5e-4 * k)) and used["lr_used"] == lr
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, k), nn.Softmax(1)).double()
    b = copy.deepcopy(a)
    x = torch.randn(16, 5, dtype=torch.float64)
    t = F.one_hot(torch.arange(16) % k, k).double()
    oa = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    ob = torch.optim.SGD(b.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    for _ in range(5):
        oa.zero_grad()
        F.mse_loss(a(x), t).backward()
        oa.step()
        ob.zero_grad()
        (F.mse_loss(b(x), t, reduction="sum") / len(x)).backward()
        ob.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)
    assert resnet_optimizer_settings({**tr, "mse_reduction": "sum"}, k)[:2] == (0.1, 5e-4)
    assert resnet_optimizer_settings({**tr, "optimizer": "adam"}, k)[:2] == \
        pytest.approx((0.1, 5e-4 * k))


def test_resnet_jobs_and_config_checks():
    tiny = yaml.safe_load(TINY.read_text())
    cfg = copy.deepcopy(tiny)
    study = cfg["studies"]["nichani"]
    study["resnets"]["grids"] = [
        {"name": "table1", "depths": [10, 18], "widths": [8, 16], "seeds": [0, 1]},
        {"name": "kernel", "blocks": [[1, 1, 1, 1], [2, 2, 2, 2]], "widths": [8],
         "kernel_sizes": [3, 5], "seeds": [0]}]
    study["figures"]["fig17"] = {"plot": "nichani_resnet", "x": "kernel_size",
                                 "grids": ["kernel"], "metrics": ["train_loss", "test_loss"]}
    dlc.check_config(cfg)
    jobs = grid.resnet_jobs(study)
    # 2 depths x 2 widths x 2 seeds, plus the kernel grid's k = 5 nets (k = 3 at width 8,
    # seed 0 are already in the Table 1 grid)
    assert len(jobs) == 8 + 2
    j = jobs["rn_2-2-2-2_w8_k5_s0"]
    assert j["model"] == "resnet" and j["depth"] == 18 and j["seeds"] == [0]
    assert j["blocks"] == [2, 2, 2, 2] and j["kernel_size"] == 5 and j["width"] == 8
    assert all(re.fullmatch(grid.RESNET_JOB, name) for name in jobs)

    def bad(mutate, match):
        c = copy.deepcopy(cfg)
        mutate(c["studies"]["nichani"])
        with pytest.raises(dlc.ConfigError, match=match):
            dlc.check_config(c)

    bad(lambda s: s["resnets"]["grids"][0].update(blocks=[[1, 1, 1, 1]]),
        r"studies\.nichani\.resnets\.grids\[0\]")
    bad(lambda s: s["resnets"]["grids"][0].update(depths=[11]),
        r"studies\.nichani\.resnets\.grids\[0\]\.depths")
    bad(lambda s: s["resnets"]["grids"][1].update(kernel_sizes=[4]),
        r"studies\.nichani\.resnets\.grids\[1\]\.kernel_sizes")
    bad(lambda s: s["resnets"]["training"].update(loss="cross_entropy"),
        r"studies\.nichani\.resnets\.training\.loss")
    bad(lambda s: s["figures"]["fig17"].update(grids=["nope"]),
        r"studies\.nichani\.figures\.fig17\.grids")
    bad(lambda s: s["figures"]["fig17"].update(widths=[64]),
        r"studies\.nichani\.figures\.fig17\.widths")
    bad(lambda s: s["figures"]["fig2"].update(widths=[8]),
        r"studies\.nichani\.figures\.fig2\.widths")
    bad(lambda s: s.pop("resnets"), r"studies\.nichani\.figures\.fig1")


def _paper_resnet_study():
    cfg = dlc.load_yaml_strict(REPO / "config" / "paper.yaml")
    dlc.check_config(cfg, missing_data="warn")
    return cfg["studies"]["nichani_resnet"]


def _fake_cube(tmp_path, study):
    """Run files for every job of the study with a known loss curve (U-shaped in depth at
    widths >= 32, falling at width 8), read by the cube builder's ResNet part."""
    import json

    import numpy as np

    from depthlab.results import write_arrays
    from depthlab.studies.nichani.cube import RN_KEYS, _resnets

    files = []
    for name, job in grid.resnet_jobs(study).items():
        d, w, s = job["depth"], job["width"], job["seeds"][0]
        loss = 0.2 + (0.001 * (d - 20) ** 2 if w >= 32 else -0.002 * d) + 0.001 * s \
            + 0.01 * (job["kernel_size"] - 3)
        rec = {k: np.array([0.5]) for k in RN_KEYS}
        rec.update(test_loss_final=np.array([loss]), test_acc_final=np.array([1 - loss]),
                   seed=np.array([s]), status=np.array(["max_epochs"]))
        path = tmp_path / f"{name}.h5"
        write_arrays(path, rec, {"model": "resnet", "depth": d, "width": w,
                                 "kernel_size": job["kernel_size"],
                                 "blocks": "-".join(map(str, job["blocks"])), "job": name}, {})
        files.append(str(path))
    cube = _resnets(files)
    cube.attrs.update(study_json=json.dumps(study), data_source="synthetic", n_classes=10,
                      n_train=25000, n_test=10000, image_shape="[3, 32, 32]")
    return cube


def test_paper_resnet_figures_claims_and_table(tmp_path):
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from depthlab.studies.nichani.critical import critical_table
    from depthlab.studies.nichani.figures import PLOTS, resnet_lines
    from depthlab.studies.nichani.paper_claims import claims

    study = _paper_resnet_study()
    cube = _fake_cube(tmp_path, study)
    assert cube.sizes == {"rn_blocks": 14 + 5 + 4, "rn_width": 4, "rn_kernel": 5,
                          "rn_seed": 3}
    for name, fig in study["figures"].items():
        f = PLOTS[fig["plot"]](cube, fig)
        assert f is not None, name
        plt.close(f)
    # Fig. 1a: one line per depth (18, 34) over the four widths
    lines = resnet_lines(cube, study["figures"]["fig1a"])
    assert sorted(line["key"][1] for line in lines) == [18, 34]
    assert all(line["x"].tolist() == [8, 16, 32, 64] for line in lines)
    # Fig. 15: the stage-1 and stage-3 sequences, one seed each
    lines = resnet_lines(cube, study["figures"]["fig15"])
    assert [line["key"][0] for line in lines] == ["stage1", "stage3"]
    assert lines[1]["x"].tolist() == [10, 12, 14, 16, 20, 24]
    # Fig. 17: loss vs kernel size for ResNet-10 and -18
    lines = resnet_lines(cube, study["figures"]["fig17"])
    assert [line["x"].tolist() for line in lines] == [[1, 3, 5, 7, 9]] * 2
    # the depth rows (tests/unit/test_claims_nichani.py covers the width, stage, kernel rows)
    found = [r for r in claims(cube, study)
             if r.kind in ("resnet_loss_rises", "resnet_w8_loss_falls")]
    assert {r.claim_id: r.figure for r in found} == {
        "resnet_loss_rises_w32": "fig5a", "resnet_loss_rises_w64": "fig1b",
        "resnet_w8_loss_falls": "fig14"}
    verdicts = {r.claim_id: r.verdict for r in found}
    assert verdicts == {"resnet_loss_rises_w32": "holds", "resnet_loss_rises_w64": "holds",
                        "resnet_w8_loss_falls": "holds"}
    table = critical_table(cube, {"critical_depths": {"bootstrap": 100, "seed": 0,
                                                      "level": 0.9}})
    rows = table.set_index("panel")
    assert rows.loc["resnet, width 64, kernel 3", "d_star_loss"] == 20
    assert rows.loc["resnet, width 8, kernel 3", "d_star_loss"] == 50
    assert np.isnan(rows.loc["resnet, width 8, kernel 3", "d_interpolation"])  # train acc .5


@pytest.mark.parametrize("channels", [1, 3])
def test_crop_flip_output_has_canonical_strides(channels):
    """The augmented batch is a plain NCHW tensor: with one channel a permuted view already
    counts as contiguous while keeping NHWC strides, and oneDNN's conv backward corrupted
    the heap on such input (an AMD EPYC, ResNet widths 2 and 4: SIGABRT in the workflow)."""
    aug = RandomCropFlip(padding=2, flip=True, seed=0).train()
    out = aug(torch.randn(6, channels, 8, 8))
    assert out.stride() == torch.empty(out.shape).stride()
