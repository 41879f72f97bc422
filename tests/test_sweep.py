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
from conftest import store_at

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

    uri = store_at(tmp_path)
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


def _fill(disk) -> None:
    """Take every byte left on the file system at ``disk``."""
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_a_full_disk_stops_the_sweep_in_one_line_and_the_same_command_runs_only_what_is_missing(tmp_path):
    """The disk fills after point 0 of 3; then again, once the points are done, under the sweep's own report."""
    from mlflow.tracking import MlflowClient

    if os.geteuid() != 0:
        pytest.skip("mounts a tmpfs: needs root (as CI runs)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    uri = store_at(tmp_path)  # the store is elsewhere: only the sweep folder fills
    args = [sys.executable, "-m", "m9", "-m", "engine.max_seqs=2,3,4", "engine.max_seq_len=64", "workload.prompt_len=8",
            "workload.max_new_tokens=8", "workload.n_rounds=1", f"tracking.uri={uri}", f"hydra.sweep.dir={disk}/s"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    try:
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 600  # point 0 with its imports and compilation, many times over
        while not (disk / "s" / "0" / "record.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        _fill(disk)  # the disk fills while point 0 is recorded or point 1 starts
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 1, (out[-2000:], err[-3000:])
        assert "Traceback" not in err, err[-3000:]
        (line,) = [x for x in err.splitlines() if x.startswith("m9: error")]
        assert line.startswith(f"m9: error: no space left on device writing {disk}/s/"), line
        assert line.endswith(f": 1 of 3 points recorded in {disk}/s; free space and run the same command to resume")

        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("m9").experiment_id
        (parent,) = client.search_runs([exp], "tags.kind = 'sweep'")
        assert parent.info.status == "FAILED" and parent.data.tags["ended_by"].startswith("no space left on device")
        points = client.search_runs([exp], "tags.kind = 'point'")
        assert [r.data.params["engine.max_seqs"] for r in points if "status" in r.data.tags] == ["2"]
        assert all(r.info.status != "RUNNING" for r in points)  # a point the full disk cut off is closed, KILLED

        # space again, but the sweep's own report lands on a disk that is full: its points are all recorded
        (disk / "filler").unlink()
        full = tmp_path / "full"
        full.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], check=True)
        _fill(full)
        (disk / "s2").mkdir()
        (disk / "s2" / "report.md").symlink_to(full / "report.md")
        again = subprocess.run([*args[:-1], f"hydra.sweep.dir={disk}/s2"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=600)
        assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr[-3000:]
        assert again.stdout.count(": running, log") == 2  # points 1 and 2 only
        (line,) = [x for x in again.stderr.splitlines() if x.startswith("m9: error")]
        assert line == (f"m9: error: no space left on device writing {disk}/s2/report.md: 3 of 3 points recorded in "
                        f"{disk}/s2; free space and run the same command to resume"), line
        (_, second) = client.search_runs([exp], "tags.kind = 'sweep'", order_by=["attributes.start_time ASC"])
        assert second.info.status == "FAILED" and second.data.tags["ended_by"].startswith("no space left on device")
        points = client.search_runs([exp], "tags.kind = 'point' and tags.sweep_id = 's2'")
        assert sorted(r.data.tags["status"] for r in points) == ["pass", "pass"]  # point 0 is reused, not run
        assert all(r.info.status == "FINISHED" for r in points)

        last = subprocess.run([*args[:-1], f"hydra.sweep.dir={disk}/s3"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert last.returncode == 0, last.stderr[-3000:]
        assert "3 points, 3 pass, 0 fail, 0 rejected (3 reused from earlier sweeps)" in last.stdout
        assert ": running, log" not in last.stdout and (disk / "s3" / "report.md").exists()
    finally:
        subprocess.run(["umount", "-l", str(tmp_path / "full")], check=False)
        subprocess.run(["umount", "-l", str(disk)], check=False)
