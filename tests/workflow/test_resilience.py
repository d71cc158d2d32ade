"""Crashes and preemption: real Snakemake runs killed with SIGKILL mid-training, and a
truncated HDF5 input.

* A killed run leaves no half-written output; the rerun resumes training from its last
  checkpoint and ends with numbers identical to an uninterrupted run (CPU).
* A training job killed under `--retries` (what the Slurm profile does for preempted or
  failed jobs) is retried in the same invocation and resumes the same way.
* A truncated dataset gives an error naming the file, and the job leaves no output behind.
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from conftest import REPO, SNAKEMAKE, run_snakemake

from depthlab.studies.mori_ueda.records import read_run

pytestmark = pytest.mark.slow

# Random labels: nothing to learn quickly, so training runs for a few seconds (~300 epochs
# of 20 mini-batches) and checkpoints every 10 epochs.
CONFIG = {
    "results": "results",
    "threads": {"train": 1},
    "datasets": {
        "noise": {"generator": "random", "d": 16, "n_train": 1000, "n_test": 100, "seed": 5},
    },
    "studies": {
        "resume": {
            "kind": "mori_ueda",
            "grids": [{"datasets": ["noise"], "n_train": [1000], "depth": [2], "width": [64],
                       "lr": [0.02], "seeds": [0, 1]}],
            "training": {"check_every": 10, "max_epochs": 300, "checkpoint_every": 10,
                         "pack": ["seed"], "device": "cpu"},
            "figures": {"fig2": {"plot": "test_error_vs_n", "datasets": ["noise"]}},
        },
    },
}
CELL = "noise/N1000/L2_H64/lr0.02"
DATASET = "results/datasets/noise.h5"
RUN = f"results/resume/runs/{CELL}.h5"
CHECKPOINT = f"results/resume/checkpoints/{CELL}.pt"
TRAIN_LOG = f"results/logs/resume/train/{CELL}.log"
KILL_AFTER_EPOCH = 60


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "resume.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def smk(work: Path, config: Path, *args, check=True):
    return run_snakemake(RUN, "--cores", "1", *args, "--configfile", str(config), cwd=work,
                         check=check, timeout=300)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, config_file):
    """The same training, uninterrupted."""
    work = tmp_path_factory.mktemp("reference")
    smk(work, config_file)
    return read_run(work / RUN)


def start(work: Path, config: Path, *args) -> subprocess.Popen:
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), RUN,
           "--cores", "1", *args, "--configfile", str(config)]
    return subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True,
                            env={**os.environ, "PYTHONHASHSEED": "0"})


def last_checkpoint_epoch(work: Path) -> int:
    """The newest checkpoint's epoch, from the training log (written after the file is).

    The progress line of an epoch comes before its checkpoint, so watching progress lines
    alone races the checkpoint write and can kill the job one checkpoint too early.
    """
    log = work / TRAIN_LOG
    text = log.read_text() if log.exists() else ""
    epochs = re.findall(r"checkpoint written at epoch (\d+)", text)
    return int(epochs[-1]) if epochs else 0


def wait_mid_training(proc: subprocess.Popen, work: Path, timeout: float = 240) -> None:
    """Until a checkpoint of epoch KILL_AFTER_EPOCH or later is on disk."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (work / CHECKPOINT).exists() and last_checkpoint_epoch(work) >= KILL_AFTER_EPOCH:
            return
        if proc.poll() is not None:
            pytest.fail(f"snakemake ended before it could be killed:\n{proc.stdout.read()}")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("training never got past the first checkpoint")


def train_pid(session: int) -> int:
    """The process running the training script in that session (Snakemake's child)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session:
                continue
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        if any(part.endswith(b"train.py") for part in cmdline):
            return int(entry.name)
    raise AssertionError("no training process found")


def assert_same_numbers(rows, reference):
    assert len(rows) == len(reference) == 2
    for row, ref in zip(rows, reference, strict=True):
        for key in ("seed", "lr", "status", "epochs", "train_error", "test_error",
                    "final_loss", "n_params", "device"):
            assert row[key] == ref[key], (key, row[key], ref[key])
    assert {r["status"] for r in rows} <= {"converged", "max_epochs"}
    assert max(r["epochs"] for r in rows) > KILL_AFTER_EPOCH + 10  # the kill was mid-run


def test_sigkill_whole_run_then_rerun_resumes_identically(tmp_path, config_file, reference):
    work = tmp_path / "killed"
    work.mkdir()
    proc = start(work, config_file)
    wait_mid_training(proc, work)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, as a node crash would
    proc.wait(timeout=30)

    assert not (work / RUN).exists(), "a killed job left its output"
    assert (work / CHECKPOINT).exists()
    # A killed Snakemake leaves its lock (as after any crash): unlock, then rerun as usual.
    smk(work, config_file, "--unlock")
    smk(work, config_file)
    log = (work / TRAIN_LOG).read_text()
    resumed = re.search(r"resumed from \S+ at epoch (\d+)", log)
    assert resumed and int(resumed.group(1)) >= KILL_AFTER_EPOCH, log[:2000]
    assert_same_numbers(read_run(work / RUN), reference)
    assert not (work / CHECKPOINT).exists(), "checkpoint not removed after training"


def test_killed_training_job_is_retried_and_resumes(tmp_path, config_file, reference):
    work = tmp_path / "retried"
    work.mkdir()
    proc = start(work, config_file, "--retries", "1")
    wait_mid_training(proc, work)
    os.kill(train_pid(proc.pid), signal.SIGKILL)  # only the job, as preemption would
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-6000:]
    assert "Trying to restart job" in out, out[-6000:]
    log = (work / TRAIN_LOG).read_text()
    resumed = re.search(r"resumed from \S+ at epoch (\d+)", log)
    assert resumed and int(resumed.group(1)) >= KILL_AFTER_EPOCH, log[:2000]
    assert_same_numbers(read_run(work / RUN), reference)


def test_truncated_hdf5_input_names_the_file(tmp_path, config_file):
    work = tmp_path / "truncated"
    work.mkdir()
    run_snakemake(DATASET, "--cores", "1", "--configfile", str(config_file), cwd=work)
    dataset = work / DATASET
    with h5py.File(dataset) as f:  # a sound file first
        assert f["train/x"].shape[0] == 1000
    size = dataset.stat().st_size
    with open(dataset, "r+b") as f:  # as if the job writing it had been killed
        f.truncate(size // 2)

    proc = smk(work, config_file, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "InputFileError" in out and DATASET in out, out[-6000:]
    assert "truncated or corrupt" in out
    assert not (work / RUN).exists()
    assert not list((work / "results" / "resume").rglob("*.tmp")), "temporary file left"
    assert not list((work / "results" / "resume").rglob("*.h5")), "output left behind"
    assert np.isclose(dataset.stat().st_size, size // 2)  # the input itself is left alone
