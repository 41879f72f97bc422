"""m9 installed from a wheel, outside the checkout, as on a cluster node: its configs and cluster profiles come
with it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of the checkout on the path


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A fresh venv holding m9's wheel. The dependencies (GBs of JAX and friends) are this interpreter's, reached
    through a .pth line rather than downloaded again; m9 itself comes only from the wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    wheel = next((tmp / "dist").glob("m9-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], env=CLEAN_ENV, check=True, capture_output=True, text=True).stdout.strip())
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                   env=CLEAN_ENV, check=True, capture_output=True, timeout=600)
    return venv


def test_the_wheel_runs_from_another_directory_with_its_own_configs(wheel_venv, tmp_path, slurm):
    py = str(wheel_venv / "bin" / "python")
    where = subprocess.run([py, "-c", "import m9; print(m9.__file__); print(m9.CONF_DIR); print(m9.LAUNCHERS_DIR)"],
                           cwd=tmp_path, env=CLEAN_ENV, check=True, capture_output=True, text=True).stdout.split()
    assert all(p.startswith(str(wheel_venv)) for p in where), where  # not the checkout
    job = subprocess.run([str(wheel_venv / "bin" / "m9"), "--cfg", "job"], cwd=tmp_path, env=CLEAN_ENV,
                         capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stderr[-2000:]
    assert "max_seqs: 8" in job.stdout and "max_tokens_per_round" in job.stdout

    # a one-point sweep on the local SLURM, through the cluster profile that ships in the wheel
    sweep = subprocess.run([py, "-m", "m9", "-m", "hydra/launcher=slurm", f"hydra.launcher.partition={slurm}",
                            "engine.max_seqs=2", "engine.max_seq_len=64",
                            "workload.max_new_tokens=8", "workload.n_rounds=1", f"hydra.sweep.dir={tmp_path}/sweep"],
                           cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True, timeout=600)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert "1 points, 1 pass" in sweep.stdout and "submitted as slurm job" in sweep.stdout
    assert (tmp_path / "outputs" / "mlflow.db").exists()  # the store lands in the cwd, as documented
