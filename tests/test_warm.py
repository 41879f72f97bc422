"""The warm worker: consecutive points in one engine child, the same tokens and pages as a fresh child, kept after
a failure its process survives (out of pages) and replaced by a fresh child after a real fault."""

from __future__ import annotations

import pytest
from conftest import compose_m9

from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.plan.edge import plan_point
from m9.run.workers import Workers, keeps
from m9.run.files import TrialDir
from m9.run.gate import FAULT_ENV
from m9.run.trial import run_trial

PASS, FAIL = Status.PASS, Status.FAIL

SHAPE = ["engine.max_seq_len=128", "workload.prompt_len=8", "workload.max_new_tokens=24", "workload.n_rounds=1",
         "accelerator.platform=cpu", "workload.temperature=0.7"]  # sampled, so a leaked PRNG or cache would show


WORKERS = Workers()  # a session's warm worker, ended between tests


def _run(tmp_path, name, *overrides):
    cfg = compose_m9([*SHAPE, *overrides])
    trial = TrialDir(tmp_path / name)
    outcome = run_trial(cfg, plan_point(cfg), trial, WORKERS)
    return outcome, trial.read_result()


@pytest.fixture(autouse=True)
def _no_worker_between_tests():
    WORKERS.close()
    yield
    WORKERS.close()


def test_a_reused_worker_decodes_exactly_what_a_fresh_one_does(tmp_path):
    first, r1 = _run(tmp_path, "a", "engine.max_seqs=3")
    second, r2 = _run(tmp_path, "b", "engine.max_seqs=5")  # another engine in the same process
    again, r3 = _run(tmp_path, "c", "engine.max_seqs=3")  # the first shape again: compiled already
    fresh, rf = _run(tmp_path, "d", "engine.max_seqs=5", "trial.worker=fresh")
    assert all(o.status == PASS for o in (first, second, again, fresh))
    assert [r.worker_trial for r in (r1, r2, r3, rf)] == [1, 2, 3, 1]
    assert r1.worker_pid == r2.worker_pid == r3.worker_pid != rf.worker_pid
    assert r2.rounds[0].tokens_digest == rf.rounds[0].tokens_digest  # no state leaks between engines
    assert r3.rounds[0].tokens_digest == r1.rounds[0].tokens_digest
    assert second.metrics["pages_in_use"] == fresh.metrics["pages_in_use"]
    assert second.metrics["round_total_generated"] == fresh.metrics["round_total_generated"]
    # paid once: imports and the model; the repeated shape runs from JAX's in-memory cache, compiling nothing
    assert [(r.jax_imported, r.model_built) for r in (r1, r2, r3, rf)] == [(True, True), (False, False),
                                                                             (False, False), (True, True)]
    assert r1.rounds[0].compiles > 0 and r3.rounds[0].compiles == 0
    assert "trial 3 of this process" in (tmp_path / "c" / "trial.log").read_text()  # each trial its own log
    assert "trial 2 of this process" not in (tmp_path / "c" / "trial.log").read_text()
    _, r5 = _run(tmp_path, "e", "engine.max_seqs=3", "model.seed=1")  # another model: another worker
    assert r5.worker_trial == 1 and r5.worker_pid != r1.worker_pid


def test_the_worker_survives_running_out_of_pages_and_goes_after_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "1")
    # 3 sequences need 2 pages each: with 3 pages the first decode allocation past the prompts' pages fails
    short, r1 = _run(tmp_path, "a", "engine.max_seqs=3", "engine.max_pages=3", "trial.enforce_plan=false")
    assert (short.status, short.failure_kind, r1.worker_trial) == (FAIL, FailureKind.OUT_OF_PAGES, 1)
    after, r2 = _run(tmp_path, "b", "engine.max_seqs=3")  # the same process, a fresh engine of the planned size
    assert after.status == PASS and r2.worker_trial == 2 and r2.worker_pid == r1.worker_pid
    assert (r2.jax_imported, r2.model_built) == (False, False)  # imports and model paid once, before the failure
    fresh, rf = _run(tmp_path, "c", "engine.max_seqs=3", "trial.worker=fresh")
    assert fresh.status == PASS and rf.worker_pid != r2.worker_pid
    assert r2.rounds[0].tokens_digest == rf.rounds[0].tokens_digest  # nothing of the failed engine leaked
    assert after.metrics["pages_in_use"] == fresh.metrics["pages_in_use"]
    crashed, _ = _run(tmp_path, "d", "engine.max_seqs=3", "trial.inject_fault=sigkill")  # in the kept worker
    assert (crashed.status, crashed.failure_kind, crashed.signature) == (FAIL, FailureKind.CRASH, "killed by SIGKILL")
    after_crash, r5 = _run(tmp_path, "e", "engine.max_seqs=3")
    assert after_crash.status == PASS and r5.worker_trial == 1 and r5.worker_pid not in (r1.worker_pid, rf.worker_pid)


def test_only_failures_that_spare_the_worker_of_a_single_process_point_keep_it():
    assert keeps(Outcome(PASS)) and keeps(Outcome(PASS), processes=2)
    for kind in FailureKind:
        assert keeps(Outcome(FAIL, kind)) == kind.spares_worker, kind
        assert not keeps(Outcome(FAIL, kind), processes=2), kind  # a shared runtime: any failure discards
    assert {k for k in FailureKind if k.spares_worker} == {FailureKind.OUT_OF_PAGES, FailureKind.TRUNCATED,
                                                           FailureKind.UNSERVED}


@pytest.mark.slow
def test_after_a_real_fault_the_next_point_runs_on_a_fresh_worker(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "1")
    _, r1 = _run(tmp_path, "a", "engine.max_seqs=3")
    poisoned, rp = _run(tmp_path, "b", "engine.max_seqs=3", "trial.inject_fault=nan_weights")
    assert (poisoned.status, poisoned.failure_kind) == (FAIL, FailureKind.NAN) and rp.worker_trial == 2
    after_nan, r3 = _run(tmp_path, "c", "engine.max_seqs=3")  # the NaN trial's process survived, but is not reused
    assert after_nan.status == PASS and r3.worker_trial == 1 and r3.worker_pid != r1.worker_pid


def test_a_prepared_worker_builds_the_model_before_its_first_trial_and_reports_what_it_paid(tmp_path):
    cfg = compose_m9([*SHAPE, "engine.max_seqs=3"])
    proc = WORKERS.start(cfg, prepare=True)  # as a sweep does while it opens its record
    prepared = WORKERS.prepared
    outcome, result = _run(tmp_path, "a", "engine.max_seqs=3")
    assert outcome.status == PASS and result.worker_pid == proc.pid and result.worker_trial == 1
    assert (result.jax_imported, result.model_built) == (True, True)  # paid by this process, reported by its trial
    assert result.fixed_costs["import_s"] > 0 and result.fixed_costs["model_build_s"] > 0
    assert not prepared.exists()  # the worker read its config and removed the file
    again, second = _run(tmp_path, "b", "engine.max_seqs=3")
    assert second.worker_pid == proc.pid and (second.jax_imported, second.model_built) == (False, False)
    assert second.fixed_costs["import_s"] < result.fixed_costs["import_s"]  # nothing left over for a later trial
