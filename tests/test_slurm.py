"""Sweeps on a real (local, single-node) SLURM through ``hydra/launcher=slurm``: every job comes back, even one
killed from outside or past its time limit, and is recorded once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import compose_m9, store_at
from m9.plan.edge import plan_point
from m9.run.files import TrialDir
from m9.run.trial import run_trial
from m9.run.workers import Workers
from m9.protocol import HEARTBEAT_TIMEOUT_S, SHUTDOWN_TIMEOUT_S

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]  # one SLURM node: one test at a time


def _sweep_on_slurm(tmp_path: Path, partition: str, *overrides: str, faults: bool = False) -> subprocess.Popen:
    """``python -m m9 -m`` through the slurm profile, recording to a store and a sweep folder under ``tmp_path``."""
    env = {**os.environ, **({"M9_ALLOW_FAULT_INJECTION": "1"} if faults else {})}
    return subprocess.Popen(
        [sys.executable, "-m", "m9", "-m", "hydra/launcher=slurm", f"hydra.launcher.partition={partition}",
         *overrides, f"tracking.uri={store_at(tmp_path)}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(what: str, check, timeout_s: float, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        assert proc.poll() is None, f"the sweep ended before {what}: {proc.stdout.read()[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout_s:g}s")


def test_a_killed_job_and_a_timed_out_job_are_recorded_and_the_sweep_goes_on(tmp_path, slurm):
    sweep, db = tmp_path / "sweep", tmp_path / "mlflow.db"
    # points: 0 healthy, 1 hangs (SIGKILLed below with scancel), 2 healthy, 3 hangs past the 2-minute time limit
    # (the array's four jobs start together: a healthy one on a busy node has taken over a minute)
    proc = _sweep_on_slurm(tmp_path, slurm, "hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=0",
                           "engine.max_seqs=2,3", "trial.inject_fault=null,hang", "trial.timeout_s=600",
                           "engine.max_seq_len=64", "workload.max_new_tokens=8", "workload.n_rounds=1", faults=True)
    try:
        _wait_for("hang in point 1", lambda: (sweep / "1" / "trial.log").exists() and
                  "injecting fault hang" in (sweep / "1" / "trial.log").read_text(), 240, proc)
        job_dir = _wait_for("point 1's job", lambda: next((sweep / ".submitit").glob("*_1"), None), 30, proc)
        subprocess.run(["scancel", "--signal=KILL", job_dir.name], check=True)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-4000:]

    records = {int(p.parent.name): json.loads(p.read_text()) for p in sweep.glob("*/record.json")}
    kinds = {n: (r["outcome"]["status"], r["outcome"]["failure_kind"]) for n, r in records.items()}
    assert kinds == {0: ("pass", None), 1: ("fail", "job_killed"), 2: ("pass", None), 3: ("fail", "job_timeout")}, out
    assert f"job {job_dir.name} ended" in records[1]["outcome"]["signature"]
    assert "ended TIMEOUT" in records[3]["outcome"]["signature"] and "DUE TO TIME LIMIT" in records[3]["outcome"]["signature"]

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("m9")
    points = client.search_runs([experiment.experiment_id], "tags.kind = 'point'")
    assert sorted(r.data.tags["job_num"] for r in points) == ["0", "1", "2", "3"]  # each point recorded once
    by_job = {r.data.tags["job_num"]: r for r in points}
    assert by_job["1"].info.status == "FAILED" and by_job["1"].data.tags["failure_kind"] == "job_killed"
    assert by_job["3"].info.status == "FAILED" and by_job["3"].data.tags["failure_kind"] == "job_timeout"
    assert by_job["0"].info.status == by_job["2"].info.status == "FINISHED"

    report = (sweep / "report.md").read_text()
    assert "FAIL (job_killed)" in report and "FAIL (job_timeout)" in report and report.count("| PASS |") == 2


def _task_pid(array_task: str, rank: int) -> int | None:
    """The pid of a running SLURM task (submitit's runner) of array element ``array_task`` with this rank."""
    for proc in Path("/proc").iterdir():
        try:
            env = dict(kv.split("=", 1) for kv in (proc / "environ").read_bytes().decode(errors="replace")
                       .split("\0") if "=" in kv)
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            continue
        if ("submitit.core._submit" in cmd and env.get("SLURM_ARRAY_TASK_ID") == array_task
                and env.get("SLURM_PROCID") == str(rank)):
            return int(proc.name)
    return None


def test_a_point_as_two_slurm_tasks_is_one_runtime_recorded_once_and_a_dead_task_fails_it(tmp_path, slurm):
    sweep, db = tmp_path / "sweep", tmp_path / "mlflow.db"
    # point 0: two healthy processes; point 1: both hang, then task 1 is SIGKILLed from outside
    proc = _sweep_on_slurm(tmp_path, slurm, "hydra.launcher.tasks_per_node=2", "hydra.launcher.cpus_per_task=1",
                           "hydra.launcher.timeout_min=10", "trial.inject_fault=null,hang", "trial.timeout_s=300",
                           "engine.max_seqs=2", "engine.max_seq_len=64", "workload.max_new_tokens=8",
                           "workload.n_rounds=1", faults=True)
    try:
        hanging = [sweep / "1" / "trial.log", sweep / "1" / "rank_1" / "trial.log"]
        _wait_for("both processes of point 1 hanging", lambda: all(
            p.exists() and "injecting fault hang" in p.read_text() for p in hanging), 400, proc)
        pid = _wait_for("task 1's process", lambda: _task_pid("1", 1), 30, proc)
        survivor = _wait_for("task 0's process", lambda: _task_pid("1", 0), 30, proc)
        os.kill(pid, 9)
        # The survivor does not wait for its dead peer: SLURM ends the step (srun --kill-on-bad-exit), and failing
        # that, JAX's heartbeat and shutdown timeouts as m9 sets them end it: never its own trial.timeout_s.
        _wait_for("the surviving task to end", lambda: not Path(f"/proc/{survivor}").exists(),
                  HEARTBEAT_TIMEOUT_S + SHUTDOWN_TIMEOUT_S, proc)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-4000:]

    records = {int(p.parent.name): json.loads(p.read_text()) for p in sweep.glob("*/record.json")}
    assert sorted(records) == [0, 1]  # the peers' directories hold no record of their own
    healthy, dead = records[0]["outcome"], records[1]["outcome"]
    assert healthy["status"] == "pass" and healthy["metrics"]["process_count"] == 2, healthy
    runtime = TrialDir(sweep / "0").read_result().runtime
    assert runtime.process_count == 2  # one JAX distributed runtime across the two tasks
    assert (dead["status"], dead["failure_kind"]) == ("fail", "job_killed") and "task 1" in dead["signature"], dead

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    points = client.search_runs([client.get_experiment_by_name("m9").experiment_id], "tags.kind = 'point'")
    assert sorted(r.data.tags["job_num"] for r in points) == ["0", "1"]  # each point recorded once, by rank 0
    by_job = {r.data.tags["job_num"]: r for r in points}
    assert by_job["0"].data.metrics["process_count"] == 2 and by_job["1"].info.status == "FAILED"


def _tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(proc.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


# one model over 2 processes x 2 CPU devices: a 4-way model axis across the two tasks (4 KV heads, one per device)
GLOBAL = ["accelerator.chips_per_host=2", "accelerator.hosts=2", "mesh.hosts=global", "mesh.model=4",
          "model.num_kv_heads=4", "engine.max_seqs=4", "engine.max_seq_len=128", "workload.prompt_len=8",
          "workload.n_rounds=1"]


def test_a_global_mesh_over_two_slurm_tasks_decodes_as_one_process_and_a_stopped_or_killed_task_fails_it(
        tmp_path, slurm):
    sweep, db = tmp_path / "sweep", tmp_path / "mlflow.db"
    # point 0: healthy; point 1: task 1 SIGSTOPped (host frozen: its process and its engine); point 2: task 1 SIGKILLed
    proc = _sweep_on_slurm(tmp_path, slurm, "hydra.launcher.tasks_per_node=2", "hydra.launcher.cpus_per_task=1",
                           "hydra.launcher.timeout_min=20", "trial.timeout_s=900", *GLOBAL,
                           "workload.max_new_tokens=24,20,16")
    stopped: list[int] = []
    try:
        _wait_for("point 1's task 1 decoding", lambda: (sweep / "1" / "rank_1" / "heartbeat").exists(), 900, proc)
        stopped = _tree(_wait_for("task 1's process", lambda: _task_pid("1", 1), 30, proc))
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        _wait_for("point 2's task 1 decoding", lambda: (sweep / "2" / "rank_1" / "heartbeat").exists(), 900, proc)
        os.kill(_wait_for("task 1's process", lambda: _task_pid("2", 1), 30, proc), signal.SIGKILL)
        out, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in stopped:  # whatever SLURM left of them
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-4000:]

    records = {int(p.parent.name): json.loads(p.read_text()) for p in sweep.glob("*/record.json")}
    assert sorted(records) == [0, 1, 2], out[-4000:]
    healthy, frozen, dead = (records[n]["outcome"] for n in range(3))
    assert healthy["status"] == "pass" and healthy["metrics"]["process_count"] == 2, healthy
    result = TrialDir(sweep / "0").read_result()
    assert result.runtime.process_count == 2 and result.runtime.device_count == 4  # one runtime, every device
    got = result.sharding
    assert got.mesh == (1, 4) and got.devices == 4 and got.kv_cache_bytes_per_chip * 4 == got.kv_cache_bytes
    alone = compose_m9([*GLOBAL[4:], "workload.max_new_tokens=24", "trial.worker=fresh"])  # one process, one device
    one = run_trial(alone, plan_point(alone), TrialDir(tmp_path / "one"), Workers())
    assert one.status == "pass", one.signature
    reference = TrialDir(tmp_path / "one").read_result()
    assert reference.runtime.process_count == 1 and reference.sharding.mesh == (1, 1)
    assert result.rounds[0].tokens_digest == reference.rounds[0].tokens_digest  # greedy tokens, exactly
    assert result.rounds[0].seq_lens == reference.rounds[0].seq_lens
    # the frozen task is named, from the heartbeats, long before trial.timeout_s would have ended it
    assert (frozen["status"], frozen["failure_kind"]) == ("fail", "timeout"), frozen
    assert frozen["signature"].startswith("rank 1: left no outcome") and "no heartbeat for" in frozen["signature"]
    assert "trial.timeout_s" not in frozen["signature"]  # it did not wait for the trial's 900 s
    assert (dead["status"], dead["failure_kind"]) == ("fail", "job_killed") and "task 1" in dead["signature"], dead

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    points = client.search_runs([client.get_experiment_by_name("m9").experiment_id], "tags.kind = 'point'")
    assert sorted(r.data.tags["job_num"] for r in points) == ["0", "1", "2"]  # each point recorded once, by rank 0
    by_job = {r.data.tags["job_num"]: r for r in points}
    assert by_job["0"].data.params["resolved.mesh"] == "1x4 over 2 hosts" and by_job["0"].data.tags["mesh"] == "1x4"
    assert by_job["1"].info.status == by_job["2"].info.status == "FAILED"


def test_a_requeued_job_is_recorded_once(tmp_path, slurm):
    """SLURM requeues a preempted job (here: scontrol requeue): it is the same point, run again, with one run."""
    sweep, db = tmp_path / "sweep", tmp_path / "mlflow.db"
    proc = _sweep_on_slurm(tmp_path, slurm, "engine.max_seqs=4", "engine.max_seq_len=64", "workload.prompt_len=8",
                           "workload.max_new_tokens=8", "workload.n_rounds=1")
    try:
        # requeued as soon as its trial starts: the engine child has JAX to import, the job is still running
        _wait_for("the first attempt's trial", lambda: (sweep / "0" / "trial.log").exists(), 240, proc)
        job_dir = _wait_for("the job", lambda: next((sweep / ".submitit").glob("[0-9]*"), None), 30, proc)
        subprocess.run(["scontrol", "requeue", job_dir.name], check=True)
        # SLURM holds a requeued job for two minutes (its begin time) once its first attempt has ended; m9 waits
        # for it either way, the test need not
        _wait_for("the job held to begin again", lambda: subprocess.run(
            ["squeue", "-h", "-j", job_dir.name, "-o", "%r"], capture_output=True, text=True).stdout.strip()
            == "BeginTime", 60, proc)
        subprocess.run(["scontrol", "update", f"JobId={job_dir.name}", "StartTime=now"], check=True)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-4000:]
    record = json.loads((sweep / "0" / "record.json").read_text())
    assert record["outcome"]["status"] == "pass", record["outcome"]
    restarts = subprocess.run(["sacct", "-j", job_dir.name, "-X", "-n", "-P", "-D", "-o", "State"],
                              capture_output=True, text=True).stdout.split()
    assert len(restarts) >= 2, restarts  # it did run twice
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    points = client.search_runs([client.get_experiment_by_name("m9").experiment_id], "tags.kind = 'point'")
    assert len(points) == 1 and points[0].info.status == "FINISHED" and points[0].info.run_id == record["run_id"]
