"""The processes of a multi-process point: who each is, how they watch each other, and how the other processes'
outcomes decide the point."""

from __future__ import annotations

import os
import threading
import time

from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.run import multihost
from m9.protocol import INIT_TIMEOUT_S, SILENCE_S
from m9.run.files import PointDir


def _ok(tok_s: float) -> Outcome:
    return Outcome(Status.PASS, metrics={"round_avg_tok_s": tok_s})


def test_rank_and_count_come_from_a_multi_task_slurm_step(monkeypatch):
    """The SLURM launcher says which process this is; the entry point asks the launcher a job names."""
    from hydra_plugins.m9_launchers.submitit import M9LocalLauncher, M9SlurmLauncher

    from m9.__main__ import _process

    slurm = "hydra_plugins.m9_launchers.submitit.M9SlurmLauncher"
    for var in ("SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    assert M9SlurmLauncher.process() == _process(slurm) == (0, 1)
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert M9SlurmLauncher.process() == _process(slurm) == (0, 1)  # the batch script itself, outside any srun step
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    assert M9SlurmLauncher.process() == _process(slurm) == (1, 2)
    # a launcher of one process per point, and one that says nothing of it (Hydra's basic launcher): one process
    assert M9LocalLauncher.process() == (0, 1)
    assert _process("hydra._internal.core_plugins.basic_launcher.BasicLauncher") == _process(None) == (0, 1)


def test_the_point_passes_only_if_every_process_did_and_names_the_first_that_failed(tmp_path):
    point = PointDir(tmp_path)
    multihost.leave(point, 1, _ok(10.0))
    multihost.leave(point, 2, Outcome(Status.FAIL, FailureKind.OUT_OF_PAGES, "Out of free pages"))
    peers = multihost.gather(point, 3, wait_s=5)
    combined = multihost.combine(_ok(12.0), peers)
    assert (combined.status, combined.failure_kind, combined.signature) == (
        Status.FAIL, FailureKind.OUT_OF_PAGES, "rank 2: Out of free pages")
    assert combined.metrics["process_count"] == 3

    both = multihost.combine(_ok(12.0), {1: _ok(10.0)})
    assert both.status == "pass" and both.metrics["all_processes_round_avg_tok_s"] == 22.0


def test_a_process_that_never_reports_fails_the_point_after_a_bounded_wait(tmp_path):
    peers = multihost.gather(PointDir(tmp_path), 2, wait_s=0.6)
    assert peers == {1: None}
    point = multihost.combine(_ok(12.0), peers)
    assert (point.status, point.failure_kind, point.signature) == (
        "fail", "timeout", "rank 1: left no outcome (stopped, hung or gone)")


def _beat(point: PointDir, rank: int, age_s: float, what: str = "heartbeat") -> None:
    """Rank ``rank``'s engine beat (or ended its trial) ``age_s`` ago."""
    path = getattr(point.for_rank(rank).trials(1)[0], what)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (time.time() - age_s,) * 2)


def test_a_peer_is_given_up_on_when_its_engine_stops_beating_and_never_while_it_beats_or_has_ended(
        tmp_path, monkeypatch):
    clock = [1000.0]  # this host's monotonic clock, which silence is timed on
    monkeypatch.setattr(multihost.time, "monotonic", lambda: clock[0])
    point = PointDir(tmp_path)
    peers = multihost.Peers(point, 0, 5, 0, 1)
    assert peers.first_silent() is None  # nobody has started yet: they have INIT_TIMEOUT_S to
    _beat(point, 1, 30)  # rank 1 beat before this trial began, then stopped
    _beat(point, 3, 10)
    assert peers.first_silent() is None
    clock[0] += SILENCE_S + 1
    _beat(point, 3, 2)  # rank 3 beats on
    _beat(point, 2, 0, "result")  # rank 2 ended its trial
    assert peers.silent(1) == f"rank 1: its engine stopped answering (no heartbeat for {SILENCE_S + 1}s)"
    assert peers.silent(2) is None and peers.silent(3) is None
    assert peers.first_silent() == peers.silent(1)
    _beat(point, 4, 3 * INIT_TIMEOUT_S)  # left by an earlier attempt: this one's rank 4 never started
    assert peers.silent(4) is None
    clock[0] += INIT_TIMEOUT_S
    assert peers.silent(4) == f"rank 4: its engine did not start within {INIT_TIMEOUT_S}s"
    assert peers.last_beat(4) == float("-inf") and peers.last_beat(2) > peers.last_beat(3) > peers.last_beat(1)


def test_process_0_stops_waiting_for_a_peer_that_stopped_answering_and_waits_for_one_not_started(
        tmp_path, monkeypatch):
    ticks = iter(range(1000, 10**9, 10))  # this host's clock: 10 s a reading, so that a minute of silence is quick
    monkeypatch.setattr(multihost.time, "monotonic", lambda: float(next(ticks)))
    point = PointDir(tmp_path)
    peers = multihost.Peers(point, 0, 3, 0, 1)
    multihost.leave(point, 1, _ok(10.0))
    _beat(point, 2, 5)  # rank 2 beat once, then stopped
    got: dict = {}
    waiter = threading.Thread(target=lambda: got.update(multihost.gather(point, 3, wait_s=3600, peers=peers)))
    waiter.start()
    waiter.join(timeout=60)  # a few polls: far below the hour it was given
    assert not waiter.is_alive() and got[1].status == "pass" and got[2] is None
    # a peer that has not started yet is waited for (INIT_TIMEOUT_S), not taken for gone
    assert not multihost.Peers(point, 0, 3, 0, 1).given_up(1)


def test_on_a_global_mesh_the_process_whose_engine_stopped_first_fails_the_point():
    stopped = Outcome(Status.FAIL, FailureKind.TIMEOUT, "stopped waiting on a peer: rank 1: its engine stopped "
                      "answering (no heartbeat for 61s) (killed)")
    point = multihost.combine(stopped, {1: None}, last_beat={0: 100.0, 1: 39.0})
    assert (point.failure_kind, point.signature) == (
        "timeout", f"rank 1: left no outcome (stopped, hung or gone); rank 0: {stopped.signature}")
    # rank 0's engine was killed; rank 1's then failed in a collective: rank 0 is named
    killed = Outcome(Status.FAIL, FailureKind.CRASH, "killed by SIGKILL")
    collective = Outcome(Status.FAIL, FailureKind.ENGINE_ERROR, "XlaRuntimeError: Gloo connection closed")
    point = multihost.combine(killed, {1: collective}, last_beat={0: 50.0, 1: 51.0})
    assert (point.failure_kind, point.signature) == ("crash", "rank 0: killed by SIGKILL")
    point = multihost.combine(collective, {1: killed}, last_beat={0: 51.0, 1: 50.0})
    assert (point.failure_kind, point.signature) == ("crash", f"rank 1: killed by SIGKILL; rank 0: {collective.signature}")
    # a failure the config decides is the same on every process: rank 0's own, whoever ended first
    pages = Outcome(Status.FAIL, FailureKind.OUT_OF_PAGES, "Out of free pages")
    point = multihost.combine(pages, {1: pages}, last_beat={0: 51.0, 1: 50.0})
    assert point.signature == "rank 0: Out of free pages"
    # one model over the mesh: no per-replica throughput to add up
    assert "all_processes_round_avg_tok_s" not in multihost.combine(_ok(12.0), {1: _ok(12.0)}, {0: 1.0, 1: 1.0}, replicas=False).metrics
