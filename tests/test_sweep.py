"""The sweep's record outlives a dying sweep: SIGTERM mid-trial closes the parent run as KILLED and takes the
engine child down with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def _running(pid: str) -> bool:
    """The process exists and is not a zombie (a killed child whose parent exited first waits for PID 1 to reap
    it; it runs nothing and holds no memory)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_sigterm_mid_sweep_closes_the_parent_as_killed_and_kills_the_engine(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "m9", "-m", "engine.max_seqs=2,4", f"tracking.uri={uri}", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (sweep / "0" / "request.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    pids: list[str] = []
    while not pids and time.monotonic() < deadline:  # the request is written just before the child is started
        pids = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "m9.engine.worker"], capture_output=True,
                              text=True).stdout.split()
        time.sleep(0.1)
    assert pids, "the engine child should be running"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out[-2000:]

    time.sleep(0.5)
    assert not any(_running(pid) for pid in pids), "the engine child outlived the sweep"
    assert json.loads((sweep / "m9_sweep.json").read_text())["status"] == "KILLED"
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("m9").experiment_id
    (parent,) = client.search_runs([exp], "tags.kind = 'sweep'")
    assert parent.info.status == "KILLED"
    (point,) = client.search_runs([exp], "tags.kind = 'point'")  # live since its trial started
    assert point.info.status == "KILLED" and "status" not in point.data.tags
