"""Bad configs fail before any job runs, with a message naming the key."""

import copy

import pytest
import yaml
from conftest import REPO, run_snakemake

from depthlab.studies.mori_ueda import grid


@pytest.fixture(scope="module")
def base():
    return yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())


def _mutate(cfg, path, value):
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return cfg


BAD = [
    (("studies", "tiny", "grids", 0, "width"), [-4], "width"),
    (("datasets", "local1", "k"), 9, "datasets.local1.k"),
    (("datasets", "local1", "generator"), "k_mystery", "generator"),
    (("studies", "tiny", "grids", 0, "lr"), [0.0], "lr"),
    (("studies", "tiny", "grids", 0, "n_train"), [500], "n_train"),
    (("studies", "tiny", "kernel_baseline", "kernel"), "nope", "kernel_baseline.kernel"),
    (("studies", "tiny", "grids", 0, "datasets"), ["local1", "missing"], "missing"),
]


@pytest.mark.parametrize("path,value,needle", BAD, ids=[b[2] for b in BAD])
def test_bad_config_fails_before_any_job(tmp_path, base, path, value, needle):
    cfg = _mutate(copy.deepcopy(base), path, value)
    cfg_path = tmp_path / "bad.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake("--cores", "1", "--configfile", str(cfg_path), cwd=tmp_path, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert needle in out, out[-3000:]
    assert not (tmp_path / "results").exists(), "a job ran despite the bad config"


def test_jobs_pack_axes(base):
    study = copy.deepcopy(base["studies"]["tiny"])
    study["grids"] = study["grids"][:1]
    study["grids"][0]["lr"] = [0.1, 0.05]
    per_seed_pack = grid.jobs(study)
    assert len(per_seed_pack) == 2 * 2 * 2 * 1 * 2  # datasets, N, depth, width, lr
    assert all(len(m) == 2 for m in per_seed_pack.values())
    study["training"]["pack"] = ["seed", "lr"]
    packed = grid.jobs(study)
    assert {k.member_set for k in packed} == {"all"} and all(len(m) == 4 for m in packed.values())
    study["training"]["pack"] = []
    single = grid.jobs(study)
    assert len(single) == 32 and {k.member_set for k in single} >= {"lr0.1_seed0", "lr0.05_seed1"}
    # The union of members does not depend on packing.
    flat = sorted(m for ms in single.values() for m in ms)
    assert flat == sorted(m for ms in packed.values() for m in ms) == grid.members(study)


def test_grid_union_deduplicates(base):
    study = copy.deepcopy(base["studies"]["tiny"])
    study["grids"] = study["grids"][:1]
    study["grids"].append(dict(study["grids"][0], depth=[2, 5]))
    depths = {m.depth for m in grid.members(study)}
    assert depths == {0, 2, 5}
    assert len(grid.members(study)) == 2 * 2 * 3 * 2


def test_cv_learning_rate_is_its_own_job_and_search(base):
    study = copy.deepcopy(base["studies"]["tiny"])
    cv = [k for k in grid.jobs(study) if k.member_set == "lrcv"]
    assert [(k.dataset, k.n_train, k.depth, k.width) for k in cv] == [("local1", 60, 2, 32)]
    assert grid.lr_searches(study) == [("local1", 60, 2, 32)]
    assert grid.fmt_lr(grid.parse_lr("cv")) == "cv" and grid.fmt_lr(0.3) == "0.3"
