"""Integration: the tiny Slurm config through the user's own `snakemake --profile slurm`, on a
real single-node Slurm cluster started on this machine by tests/slurm/cluster.sh.

Runs in the default `pytest` run (deselect with `-m "not slurm"`). Skipped, with the reason,
only where this machine cannot run Slurm at all (not root, no apt-get, packages not
installable); a cluster that should start but does not is a failure. The daemons this test
starts are stopped again, also when it fails.
"""

import fcntl
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import REPO, SNAKEMAKE

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
CONFIG = REPO / "tests" / "slurm" / "tiny.yaml"
STATE = Path(os.environ.get("DEPTHLAB_SLURM_STATE", "/tmp/depthlab-slurm"))
DAEMONS = {"munged", "slurmctld", "slurmd"}
CANNOT_RUN = 77  # cluster.sh: this machine cannot run the local cluster

# Test-only settings layered on top of profiles/slurm; everything else is the user's profile.
# The local cluster has no slurmdbd (so `squeue` answers status queries, not `sacct`) and no
# accounts; polling starts after 1 s instead of 40 s; logs of successful jobs are kept so the
# test can read them.
TEST_OVERRIDES = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "1",
    "--seconds-between-status-checks", "1",
    "--slurm-no-account",
    "--slurm-keep-successful-logs",
]


def cluster(command: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(CLUSTER), command], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "DEPTHLAB_SLURM_STATE": str(STATE)},
    )


def our_daemons() -> dict[str, str]:
    """Daemons that cluster.sh started and that still run: name -> pid."""
    if not CLUSTER.exists():
        return {}
    return dict(re.findall(r"^(\w+): running \(pid (\d+)\)", cluster("status").stdout, re.M))


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("local Slurm cluster needs root (writes /etc/slurm, runs slurmd)")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("Slurm is not installed and there is no apt-get to install it")
    STATE.mkdir(parents=True, exist_ok=True)
    # One user of the cluster at a time on this machine (two pytest runs would share it).
    with open(f"{STATE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        already_running = set(our_daemons()) == DAEMONS
        try:
            proc = cluster("start")
            if proc.returncode == CANNOT_RUN:
                reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
                pytest.skip(f"cannot run a local Slurm cluster: {reason}")
            assert proc.returncode == 0, f"cluster.sh start failed:\n{proc.stderr}"
            yield our_daemons()
        finally:
            if not already_running:  # leave a cluster someone else started as it was
                cluster("stop")


def cancel_jobs_in(workdir: Path) -> None:
    """Cancel this test's Slurm jobs (those running in `workdir`), e.g. after a timeout."""
    out = subprocess.run(["squeue", "-h", "-o", "%i|%Z"], capture_output=True, text=True).stdout
    ids = [i for i, wd in (line.split("|", 1) for line in out.splitlines() if "|" in line)
           if wd == str(workdir)]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)


def show_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True,
                         text=True, check=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def test_start_is_idempotent(slurm_cluster):
    assert set(slurm_cluster) == DAEMONS
    again = cluster("start")
    assert again.returncode == 0, again.stderr
    assert our_daemons() == slurm_cluster, "a second start replaced running daemons"
    state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout
    assert state.split()[0] in {"idle", "mixed", "allocated"}


def test_tiny_config_through_slurm_profile(slurm_cluster, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "tiny.yaml"
    shutil.copy(CONFIG, config)
    # The user's command, from the repository root where ./slurm is the profile.
    cmd = [SNAKEMAKE, "--profile", "slurm", "--directory", str(work), "--configfile",
           str(config), *TEST_OVERRIDES]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        out, _ = proc.communicate(timeout=360)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # snakemake cancels its Slurm jobs on SIGINT
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        cancel_jobs_in(work)
        pytest.fail(f"snakemake --profile slurm timed out:\n{out[-6000:]}")
    assert proc.returncode == 0, f"snakemake --profile slurm failed:\n{out[-8000:]}"

    # Every job went through Slurm, cheap ones bundled: one datasets group job, the two
    # training jobs (one GPU each), one kernels group job (Gram + regression), one
    # summaries group job (cube + figure + ...).
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", out)
    rules_run = set(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", out)) - {"all"}
    n_rule_jobs = len(re.findall(r"Finished jobid: \d+ \(Rule: (?!all\))", out))
    jobs = {job_id: show_job(job_id) for job_id in job_ids}  # kept for MinJobAge = 600 s
    comments = sorted(job["Comment"] for job in jobs.values())
    assert sum(c.startswith("rule_mori_ueda_train_") for c in comments) == 2, comments
    for group in ("datasets", "kernels", "summaries"):
        assert sum(c.startswith(f"rule_{group}_") for c in comments) == 1, comments
    assert len(job_ids) < n_rule_jobs, "grouping bundled nothing"
    logs = work / ".snakemake" / "slurm_logs"
    completion_log = (STATE / "jobcomp.log").read_text()
    slurm_log_text = ""
    for job_id, job in jobs.items():
        assert job["JobState"] == "COMPLETED", job
        assert job["WorkDir"] == str(work)
        assert re.search(rf"^JobId={job_id} .*JobState=COMPLETED", completion_log, re.M)
        (log,) = logs.rglob(f"{job_id}.log")
        slurm_log_text += log.read_text()
        # The GPU rule's submission asked for a GPU (--gpus=1); nothing else did.
        asked_gpu = "gpu:1" in job.get("TresPerJob", "") + job.get("TresPerNode", "")
        assert asked_gpu == job["Comment"].startswith("rule_mori_ueda_train_"), job
    for rule in rules_run:  # each rule ran inside a Slurm job
        assert f"rule {rule}:" in slurm_log_text, rule
    assert {"make_dataset", "mori_ueda_train", "gram", "kernel_regression",
            "mori_ueda_cube"} <= rules_run

    # The results are right.
    res = work / "results"
    cube = xr.open_dataset(res / "tiny" / "cube.nc", engine="h5netcdf").load()
    assert dict(cube.sizes) == {"dataset": 1, "n_train": 1, "depth": 2, "width": 1, "lr": 1,
                                "seed": 2, "kernel_depth": 1}
    assert set(np.unique(cube["status"].values)) <= {"converged", "max_epochs"}
    assert np.all(np.isfinite(cube["test_error"].values))
    # The 1-local label is learnt far better than chance by the nets and the NTK.
    assert float(cube["test_error"].max()) < 0.4
    assert float(cube["ntk_test_error"].max()) < 0.4
    np.testing.assert_array_equal(cube["ntk_train_error"].values, 0.0)
    for ext in ("pdf", "png"):
        assert (res / "tiny" / "figures" / f"fig2.{ext}").stat().st_size > 5000
    assert not list(res.rglob("*.tmp")), "temporary files left behind"
