import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def run_snakemake(*args, cwd, check=True, timeout=900, workflow=REPO):
    """Run the real snakemake CLI of this environment on a workflow's Snakefile."""
    cmd = [SNAKEMAKE, "--snakefile", str(Path(workflow) / "Snakefile"), "--directory", str(cwd),
           *args]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
            f"{proc.stderr[-6000:]}"
        )
    return proc


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow, for tests that edit its code."""
    dest.mkdir(parents=True)
    for name in ("Snakefile", "rules", "workflow", "src", "config", "report", "profiles", "envs"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)
    return dest


class _CodePayload:
    """Unpickling this calls ``pathlib.Path.touch`` on ``marker``: code execution."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def plant_checkpoint(path, marker) -> None:
    """Write at ``path`` the checkpoint an attacker could drop under a shared results/: a
    pickle that creates ``marker`` when unpickled (as ``torch.load(weights_only=False)``
    would), and a torch-format copy of it at ``path + ".zip"``."""
    import pickle

    import torch

    with open(path, "wb") as fh:
        pickle.dump({"fingerprint": "x", "model": _CodePayload(marker)}, fh, protocol=2)
    torch.save({"fingerprint": "x", "payload": _CodePayload(marker)}, str(path) + ".zip")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny nets run as fast on one intra-op thread, and are immune to the OpenMP stalls an
    oversubscribed 2-core machine (parallel test/workflow jobs) inflicts on every op."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.yaml"
    shutil.copy(REPO / "tests" / "data" / "tiny.yaml", path)
    return path
