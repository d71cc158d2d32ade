"""seed_offset (depthlab.seeds) and the verdict-agreement table (depthlab.seed_robustness):
every seed moves, counts do not, offset 0 is the identity; two real runs of a tiny study
under two offsets give other numbers and a table of agreeing verdicts."""

from __future__ import annotations

import copy
import os

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake

from depthlab import config as dlc
from depthlab.claims import FAILS, HOLDS, NOT_RESOLVED, read_claims
from depthlab.seed_robustness import agreement_table, main, results_dir
from depthlab.seeds import apply_seed_offset


@pytest.fixture(scope="module")
def laptop():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    dlc.check_config(cfg, missing_data="warn")
    return cfg


def test_offset_zero_is_the_identity(laptop):
    cfg = copy.deepcopy(laptop)
    assert apply_seed_offset(cfg) == []
    assert cfg == laptop


def test_every_seed_moves_and_counts_stay(laptop):
    cfg = copy.deepcopy(laptop)
    cfg["seed_offset"] = 1000
    changed = apply_seed_offset(cfg)
    for name, ds in laptop["datasets"].items():
        assert cfg["datasets"][name]["seed"] == ds["seed"] + 1000
        assert f"datasets.{name}.seed" in changed
    mori = laptop["studies"]["mori_ueda"]
    for i, grid in enumerate(mori["grids"]):
        assert cfg["studies"]["mori_ueda"]["grids"][i]["seeds"] == [s + 1000
                                                                   for s in grid["seeds"]]
    assert cfg["studies"]["mori_ueda"]["lr_selection"]["seed"] == \
        mori["lr_selection"]["seed"] + 1000
    # an integer `seeds` is a count of Monte-Carlo draws, not a seed
    for name, study in laptop["studies"].items():
        if study["kind"] == "lee" and isinstance(study.get("ntk_spread", {}).get("seeds"), int):
            assert cfg["studies"][name]["ntk_spread"]["seeds"] == study["ntk_spread"]["seeds"]
    # nothing that is not a seed changed
    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items()
                    if not (k in ("seed", "seeds") or k.endswith(("_seed", "_seeds")))}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node
    assert strip(cfg["studies"]) == strip(laptop["studies"])


def test_seed_offset_is_validated():
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["seed_offset"] = -1
    with pytest.raises(dlc.ConfigError, match="seed_offset"):
        dlc.check_config(cfg, missing_data="warn")


def _frame(verdicts):
    return pd.DataFrame({"study": "s", "claim_id": [f"c{i}" for i in range(len(verdicts))],
                         "kind": "k", "origin": "paper", "verdict": verdicts,
                         "measured": 0.0, "uncertainty": 0.0})


def test_agreement_classes():
    a = _frame([HOLDS, HOLDS, FAILS, NOT_RESOLVED])
    b = _frame([HOLDS, FAILS, NOT_RESOLVED, NOT_RESOLVED])
    table = agreement_table({0: a, 7: b}).set_index("claim_id")
    assert table.loc["c0", "agreement"] == "agrees"
    assert table.loc["c1", "agreement"] == "flips"
    assert table.loc["c2", "agreement"] == "unstable"
    assert table.loc["c3", "agreement"] == "agrees"
    assert table.loc["c1", "verdict_7"] == FAILS
    # the robust verdict: what every offset says, else not resolved
    assert table["robust_verdict"].to_dict() == {
        "c0": HOLDS, "c1": NOT_RESOLVED, "c2": NOT_RESOLVED, "c3": NOT_RESOLVED}


def test_two_offsets_end_to_end(tmp_path):
    """The real workflow, twice: offset 0 and 3 train other draws (other file names, other
    numbers), and the agreement table lists every claim of both scorecards."""
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    study = cfg["studies"]["tiny"]
    study["grids"] = study["grids"][:1]
    study["grids"][0]["datasets"] = ["local1"]
    study["grids"][0]["n_train"] = [120]
    del study["local_stability"], study["lr_selection"]
    cfg["datasets"] = {"local1": cfg["datasets"]["local1"]}
    study["figures"] = {"fig2": {"plot": "test_error_vs_n", "datasets": ["local1"],
                                 "lr": 0.1}}
    (tmp_path / "seeds.yaml").write_text(yaml.safe_dump(cfg))
    dry = run_snakemake("-n", "--configfile", "seeds.yaml", "--config", "seed_offset=3",
                        "results=results_seed_offset_3", cwd=tmp_path)
    assert "seed_offset 3: shifted datasets.local1.seed" in dry.stdout + dry.stderr

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["--offsets", "0", "3", "--cores", "2", "--configfile", "seeds.yaml",
                     "--results", "results"]) == 0
    finally:
        os.chdir(cwd)
    a = read_claims(tmp_path / results_dir("results", 0) / "claims.csv")
    b = read_claims(tmp_path / results_dir("results", 3) / "claims.csv")
    assert set(a.claim_id) == set(b.claim_id) and len(a)
    assert not a["measured"].equals(b["measured"])  # other draws, other numbers
    table = pd.read_csv(tmp_path / "results" / "seed_agreement.csv")
    assert set(table.claim_id) == set(a.claim_id)
    assert set(table.agreement) <= {"agrees", "flips", "unstable"}
    assert "Seed offsets 0, 3" in (tmp_path / "results" / "seed_agreement.md").read_text()
