"""Claims over several studies of one kind (a plug-in's ``claims_across``) run as their own
job on every cube of the kind and reach the scorecard: Mori & Ueda's Supp. B comparison of
the cross-entropy and mean-square losses, on a tiny real run of two studies that share their
cells. A config with one study of the kind plans no such job."""

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake

pytestmark = pytest.mark.slow


def _two_losses(tmp_path):
    config = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    base = config["studies"]["tiny"]
    grid = {"datasets": ["global2"], "n_train": [120], "depth": [0, 2], "width": [32],
            "lr": [0.1], "seeds": [0, 1]}
    common = {"kind": "mori_ueda", "grids": [grid], "summary": base["summary"],
              "kernel_baseline": base["kernel_baseline"],
              "training": dict(base["training"]),
              "figures": {"fig2": {"plot": "test_error_vs_n", "datasets": ["global2"],
                                   "lr": 0.1}}}
    config["studies"] = {
        "ce": dict(common),
        "mse": {**common, "training": {**common["training"], "loss": "mse"}},
    }
    path = tmp_path / "two_losses.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_loss_comparison_runs_across_studies_and_reaches_the_scorecard(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    config = _two_losses(tmp_path)

    def smk(*args):
        return run_snakemake("results/claims.csv", *args, "--configfile", str(config),
                             cwd=work)

    smk("--cores", "2")
    across = pd.read_csv(work / "results" / "claims_across" / "mori_ueda.csv")
    row = across.set_index("claim_id").loc["loss_ce_better"]
    assert row["study"] == "ce+mse" and row["verdict"] in (
        "holds", "fails", "not resolved at this scale")
    assert "cross-entropy loss yields better generalization" in row["quote"]
    assert "matched cell" in row["notes"] and row["n_members"] > 0
    scorecard = pd.read_csv(work / "results" / "claims.csv")
    assert "loss_ce_better" in set(scorecard.loc[scorecard["study"] == "ce+mse", "claim_id"])
    # a claims setting of the comparison reruns the judging, never the training
    edited = yaml.safe_load(config.read_text())
    edited["studies"]["mse"]["claims"] = {"loss_ce_better": {"separation": 3.0}}
    config.write_text(yaml.safe_dump(edited, sort_keys=False))
    planned = smk("-n", "--rerun-triggers", "mtime", "params", "--quiet", "rules").stdout
    assert "claims_across" in planned and "mori_ueda_train" not in planned


def test_one_study_of_a_kind_plans_no_comparison(tmp_path, tiny_config):
    dry = run_snakemake("-n", "--configfile", str(tiny_config), cwd=tmp_path)
    assert "claims_across" not in dry.stdout
