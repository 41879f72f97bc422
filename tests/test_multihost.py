"""Process 0 of a multi-process point: who it is, and how the other processes' outcomes decide the point."""

from __future__ import annotations

from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.run import multihost
from m9.run.files import PointDir


def _ok(tok_s: float) -> Outcome:
    return Outcome(Status.PASS, metrics={"round_avg_tok_s": tok_s})


def test_rank_and_count_come_from_a_multi_task_slurm_step(monkeypatch):
    for var in ("SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    assert multihost.processes() == (0, 1)
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert multihost.processes() == (0, 1)  # the batch script itself, outside any srun step
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    assert multihost.processes() == (1, 2)


def test_the_point_passes_only_if_every_process_did_and_names_the_first_that_failed(tmp_path):
    point = PointDir(tmp_path)
    multihost.leave(point, 1, _ok(10.0))
    multihost.leave(point, 2, Outcome(Status.FAIL, FailureKind.OUT_OF_PAGES, "Out of free pages"))
    peers = multihost.gather(point, 3, wait_s=5)
    combined = multihost.combine(_ok(12.0), peers, 5)
    assert (combined.status, combined.failure_kind, combined.signature) == (
        Status.FAIL, FailureKind.OUT_OF_PAGES, "rank 2: Out of free pages")
    assert combined.metrics["process_count"] == 3

    both = multihost.combine(_ok(12.0), {1: _ok(10.0)}, 5)
    assert both.status == "pass" and both.metrics["all_processes_round_avg_tok_s"] == 22.0


def test_a_process_that_never_reports_fails_the_point_after_a_bounded_wait(tmp_path):
    peers = multihost.gather(PointDir(tmp_path), 2, wait_s=0.6)
    assert peers == {1: None}
    point = multihost.combine(_ok(12.0), peers, 0.6)
    assert (point.status, point.failure_kind, point.signature) == ("fail", "crash", "rank 1: no outcome within 0.6s")
