"""Resume without duplicates: point keys, and a sweep killed twice (SIGINT, then SIGKILL of the launching process)
whose same command, run again, measures only what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import compose_m9, store_at

from m9.record.provenance import measured, point_key


def _key(overrides: list[str], attempt: int = 0, device: str = "cpu:test") -> str:
    return point_key(measured(compose_m9(overrides)), device, attempt)


def test_the_key_follows_what_is_measured_not_where_it_is_recorded():
    base = _key(["engine.max_seqs=4"])
    assert base == _key(["engine.max_seqs=4", "tracking.uri=sqlite:////elsewhere.db", "tracking.experiment=x"])
    assert base == _key(["engine.max_seqs=4", "trial.plan_only=true"])
    assert base != _key(["engine.max_seqs=5"])
    assert base != _key(["engine.max_seqs=4", "workload.seed=1"])
    assert base != _key(["engine.max_seqs=4", "trial.repeats=3"])
    assert base != _key(["engine.max_seqs=4"], attempt=1)  # a confirmation is its own measurement
    assert base != _key(["engine.max_seqs=4"], device="gpu:NVIDIA H100 80GB HBM3 x8")


def test_a_file_edited_in_place_is_a_new_measurement(tmp_path):
    from hf_files import write_tokenizer

    tok = write_tokenizer(tmp_path / "tok")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Prompt 1: Provide a concise overview of topic 1.\n")
    point = [f"model.tokenizer={tok}", f"workload.prompt_file={prompts}"]
    before = _key(point)
    assert before == _key(point)
    prompts.write_text("The quick brown fox jumps over the lazy dog.\n")
    os.utime(prompts, ns=(time.time_ns() + 10**9,) * 2)  # a new version even within the file system's resolution
    assert _key(point) != before


ARGS = ["-m", "engine.max_seqs=2,3,4", "engine.max_seq_len=64", "workload.prompt_len=8", "workload.max_new_tokens=8",
        "workload.n_rounds=1"]


def _env():
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def _default_sigint() -> None:
    # A process started from a background shell inherits SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler: the sweep is given Ctrl-C's default disposition, as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tmp_path, name):
    return subprocess.Popen([sys.executable, "-m", "m9", *ARGS, f"tracking.uri={store_at(tmp_path)}",
                             f"hydra.sweep.dir={tmp_path}/{name}"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_default_sigint)


def _kill_during(proc, tmp_path, name, job: int, sig: int) -> str:
    deadline = time.monotonic() + 300
    while not (tmp_path / name / str(job) / "request.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == (130 if sig == signal.SIGINT else -sig), out[-3000:]
    return out


def _said(output: str, point: str, what: str) -> bool:
    """Some line of the output reports ``what`` about the point with override ``point``."""
    return any(f"({point})" in line and what in line for line in output.splitlines())


@pytest.mark.slow
def test_killed_sweeps_resume_with_only_the_missing_points(tmp_path):
    from mlflow.tracking import MlflowClient

    first = _kill_during(_start(tmp_path, "a"), tmp_path, "a", 1, signal.SIGINT)  # Ctrl-C during point 1
    assert _said(first, "engine.max_seqs=2", "): PASS")
    # one line says what was recorded and how to go on; no traceback
    assert f"m9: interrupted: 1 of 3 points recorded in {tmp_path}/a; run the same command to resume" in first
    assert "Traceback" not in first and "KeyboardInterrupt" not in first, first[-3000:]
    second = _kill_during(_start(tmp_path, "b"), tmp_path, "b", 2, signal.SIGKILL)  # no chance to clean up
    assert _said(second, "engine.max_seqs=2", "): PASS, reused from sweep a job 0")
    assert _said(second, "engine.max_seqs=3", "): PASS")
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-f", f"m9.engine.worker {tmp_path}/b"], capture_output=True).returncode == 1

    third = _start(tmp_path, "c")
    out, _ = third.communicate(timeout=600)
    assert third.returncode == 0, out[-3000:]
    assert "3 points, 3 pass, 0 fail, 0 rejected (2 reused from earlier sweeps)" in out
    assert out.count(": running, log") == 1 and _said(out, "engine.max_seqs=4", "): running")

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("m9").experiment_id
    points = client.search_runs([exp], "tags.kind = 'point'")
    measured = sorted(r.data.params["engine.max_seqs"] for r in points if "status" in r.data.tags)
    assert measured == ["2", "3", "4"]  # each point measured and recorded once, across three sweeps
    cut_off = sorted(r.data.params["engine.max_seqs"] for r in points if "status" not in r.data.tags)
    assert cut_off == ["3", "4"]  # the trials each kill interrupted: live runs, closed KILLED, no outcome
    assert all(r.info.status == "KILLED" for r in points if "status" not in r.data.tags)
    parents = {r.data.tags["sweep_id"]: r for r in client.search_runs([exp], "tags.kind = 'sweep'")}
    assert parents["a"].info.status == "KILLED"  # closed by its own Ctrl-C handler
    assert parents["b"].info.status == "KILLED"  # SIGKILLed: closed by the next sweep
    assert "its launching process" in parents["b"].data.tags["ended_by"]
    assert parents["c"].info.status == "FINISHED"
    assert json.loads((tmp_path / "b" / "m9_sweep.json").read_text())["status"] == "KILLED"
    reused = json.loads((tmp_path / "c" / "0" / "record.json").read_text())
    assert reused["reused_from"]["sweep_id"] == "a" and reused["run_id"] == reused["reused_from"]["run_id"]
    assert "reused from sweep a job 0" in (tmp_path / "c" / "report.md").read_text()

    again = subprocess.run([sys.executable, "-m", "m9", *ARGS, f"tracking.uri={store_at(tmp_path)}",
                            "hydra.sweeper.resume=false", "engine.max_seqs=2", f"hydra.sweep.dir={tmp_path}/d"],
                           cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and ": running, log" in again.stdout  # resume off: measured again
