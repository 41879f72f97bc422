"""Classification of what a child left behind (no engine: results built from the protocol's own types)."""

from __future__ import annotations

import pytest
from conftest import compose_m9

from m9.outcome.classify import classify
from m9.outcome.outcome import Outcome, rejected
from m9.outcome.repeats import combine
from m9.outcome.status import FailureKind, Status
from m9.plan.edge import plan_point
from m9.protocol import ChildExit
from m9.protocol import ChildError, RoundStats, Runtime, TrialResult

CFG = compose_m9(["engine.max_seqs=2", "workload.max_new_tokens=4", "workload.prompt_len=4", "engine.page_size=4"])
PLAN = plan_point(CFG)
RUNTIME = Runtime("cpu", "cpu", 1, 1, 1, "0.10.2", "0.2.20")


def _round(seq_lens=(4, 4), nonfinite=0, pages=4) -> RoundStats:
    return RoundStats(round_total_s=0.5, prefill_s=0.1, iter_s=(0.2, 0.2), seq_lens=tuple(seq_lens),
                      pages_in_use_after_prefill=2, pages_in_use_after_decode=pages, max_pages=PLAN.max_pages,
                      nonfinite_logprobs=nonfinite)


def _result(*rounds: RoundStats, error: ChildError | None = None, complete: bool | None = None) -> TrialResult:
    return TrialResult(worker_pid=1, worker_trial=1, fixed_costs={"process_start_s": 0.1}, rounds=rounds,
                       runtime=RUNTIME, error=error, complete=error is None if complete is None else complete)


def _classify(result, end=ChildExit(0), length_fixed=False):
    cfg = compose_m9(["engine.max_seqs=2", "workload.max_new_tokens=4", "workload.prompt_len=4",
                      "engine.page_size=4", f"workload.length_fixed={length_fixed}"])
    return classify(cfg, PLAN, result, end)


def test_a_clean_result_passes_with_the_logs_notes():
    out = _classify(_result(_round()))
    assert out.status == Status.PASS and out.failure_kind is None
    assert out.notes[:2] == (f"pages_in_use=4 free={PLAN.max_pages - 4}", "round_total_generated=8")
    assert out.metrics["round_avg_tok_s"] == 16.0 and out.metrics["decode_avg_tok_s"] == 6 / 0.4
    assert out.runtime["backend"] == "cpu" and out.metrics["worker_trial"] == 1


def test_a_prediction_mismatch_is_noted():
    out = _classify(_result(_round(pages=3)))
    assert any("differs from predicted" in n for n in out.notes)


@pytest.mark.parametrize(
    "error,kind,signature",
    [
        (ChildError("JaxRuntimeError", "INTERNAL: CpuCallback error\nTraceback...\n"
                    "equinox._errors._EquinoxRuntimeError: Out of free pages during allocation\n----"),
         FailureKind.OUT_OF_PAGES, "JaxRuntimeError: Out of free pages during allocation"),
        (ChildError("XlaRuntimeError", "RESOURCE_EXHAUSTED: Out of memory allocating 17 GiB"),
         FailureKind.OOM, "XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 17 GiB"),
        (ChildError("ValueError", "something odd\nmore"), FailureKind.ENGINE_ERROR, "ValueError: something odd"),
    ],
)
def test_exceptions_become_kinds_with_their_informative_line(error, kind, signature):
    out = _classify(_result(error=error), ChildExit(1))
    assert (out.status, out.failure_kind, out.signature) == (Status.FAIL, kind, signature)


def test_how_the_child_ended_decides_when_it_left_no_result():
    assert _classify(None, ChildExit(-9)).signature == "killed by SIGKILL"
    assert _classify(None, ChildExit(-11)).failure_kind == FailureKind.CRASH
    assert _classify(None, ChildExit(3)).signature == "exit status 3 without a result"
    assert _classify(None, ChildExit(-9, timed_out_s=5)).failure_kind == FailureKind.TIMEOUT
    assert _classify(None, ChildExit(-9, memory_kill="resident memory 2 GiB > x")).failure_kind == FailureKind.OOM


def test_nan_and_truncation():
    assert _classify(_result(_round(nonfinite=3))).failure_kind == FailureKind.NAN
    short = _result(_round(seq_lens=(4, 2)))
    assert _classify(short).status == Status.PASS and "not length-fixed" in _classify(short).notes[-1]
    assert _classify(short, length_fixed=True).failure_kind == FailureKind.TRUNCATED
    empty = _classify(_result(_round(seq_lens=(4, 0))))
    assert (empty.failure_kind, empty.signature.split(" (")[0]) == (
        FailureKind.UNSERVED, "1 of 2 sequences came back empty or missing")
    assert _classify(_result(_round(seq_lens=(4,)))).failure_kind == FailureKind.UNSERVED


def test_a_complete_result_wins_over_how_the_child_then_exited():
    stuck = _classify(_result(_round()), ChildExit(-9, lingered_s=30.0))
    assert stuck.status == Status.PASS and "did not exit cleanly" in stuck.notes[-1]
    partial = _classify(_result(_round(), complete=False), ChildExit(-9, timed_out_s=5))
    assert partial.failure_kind == FailureKind.TIMEOUT  # rounds but no complete result: the trial did not finish


def test_the_protocols_result_round_trips_through_json():
    result = _result(_round(), _round(pages=3), error=ChildError("ValueError", "x", "tb"))
    assert TrialResult.from_json(__import__("json").loads(__import__("json").dumps(result.to_json()))) == result


def test_rejected_carries_the_reason_and_predictions():
    plan = plan_point(compose_m9(["engine.max_pages=3"]))
    out = rejected(plan)
    assert out.status == Status.REJECTED and "engine.max_pages=3 is too small" in out.signature
    assert out.metrics["pages_required_est"] == plan.pages_required_est


def test_failure_kinds_know_whether_they_repeat():
    assert {k for k in FailureKind if k.deterministic} == {
        FailureKind.OUT_OF_PAGES, FailureKind.OOM, FailureKind.TRUNCATED, FailureKind.UNSERVED, FailureKind.JOB_OOM}
    assert not FailureKind.CRASH.deterministic and not FailureKind.NAN.deterministic


def test_repeats_combine_into_median_min_max_and_fail_if_any_trial_failed():
    def trial(tok_s, status="pass", kind=None):
        return Outcome(Status(status), kind, "boom" if kind else "", {"round_avg_tok_s": tok_s, "round_total_s": 100 / tok_s,
                                                               "pages_in_use": 12}, ("pages_in_use=12 free=4",))

    ok = combine([trial(10.0), trial(14.0), trial(11.0)])
    m = ok.metrics
    assert ok.status == Status.PASS and len(ok.repeats) == 3
    assert (m["round_avg_tok_s"], m["round_avg_tok_s_min"], m["round_avg_tok_s_max"]) == (11.0, 10.0, 14.0)
    assert m["repeats"] == 3 and m["repeats_passed"] == 3 and m["pages_in_use"] == 12
    assert "pages_in_use_min" not in m  # spread only for throughput metrics
    assert ok.notes.count("pages_in_use=12 free=4") == 1
    bad = combine([trial(10.0), trial(12.0, "fail", FailureKind.CRASH)])
    assert (bad.status, bad.failure_kind) == (Status.FAIL, FailureKind.CRASH)
    assert bad.signature == "1 of 2 repeats failed; repeat 1: boom"
    assert Outcome.from_json(ok.to_json()) == ok  # the journal round-trips it


def test_a_point_record_round_trips_through_its_journal_file(tmp_path):
    import json

    from m9.record.journal import PointRecord, read_record, write_record

    outcome = Outcome(Status.FAIL, FailureKind.OUT_OF_PAGES, "Out of free pages", {"pages_in_use": 12.0},
                      ("a note",), {"backend": "cpu"}, ({"status": "fail", "round_total_s": 1.0},))
    record = PointRecord("s", 3, ("engine.max_seqs=8",), str(tmp_path / "3"), "k3", outcome,
                         {"engine.max_seqs": 8, "engine.max_pages": 12}, run_id="r", reused_from={"sweep_id": "a"})
    path = write_record(record)
    assert json.loads(path.read_text())["outcome"]["status"] == "fail"  # plain data on disk
    back = read_record(path)
    assert back == record and back.status is Status.FAIL and back.outcome.failure_kind is FailureKind.OUT_OF_PAGES
    assert back.overrides == ("engine.max_seqs=8",) and (back.max_seqs, back.max_pages) == (8, 12)
    assert back.replace(run_id=None).run_id is None and record.run_id == "r"  # frozen: changes are copies
