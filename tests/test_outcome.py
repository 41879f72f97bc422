"""Classification of what a child left behind (no engine: synthetic results)."""

from __future__ import annotations

import pytest

from conftest import compose_m9
from m9.outcome.outcome import FAIL, PASS, ChildExit, Outcome, Status, classify, rejected
from m9.plan import make_plan

PLAN = make_plan(compose_m9(["engine.max_seqs=2", "workload.max_new_tokens=4", "workload.prompt_len=4",
                             "engine.page_size=4"]))


def _round(seq_lens=(4, 4), nonfinite=0, pages=4):
    return {"round_total_s": 0.5, "prefill_s": 0.1, "iter_s": [0.2, 0.2], "seq_lens": list(seq_lens),
            "pages_in_use_after_prefill": 2, "pages_in_use_after_decode": pages, "max_pages": PLAN.max_pages,
            "nonfinite_logprobs": nonfinite}


def _classify(result, end=ChildExit(0), length_fixed=False):
    if result and "error" not in result:
        result = {"complete": True, **result}
    return classify(PLAN, result, end, max_new_tokens=4, length_fixed=length_fixed)


def test_a_clean_result_passes_with_the_logs_notes():
    out = _classify({"rounds": [_round()], "runtime": {"backend": "cpu"}})
    assert out.status == PASS and out.failure_kind is None
    assert out.notes[:2] == (f"pages_in_use=4 free={PLAN.max_pages - 4}", "round_total_generated=8")
    assert out.metrics["round_avg_tok_s"] == 16.0 and out.metrics["decode_avg_tok_s"] == 6 / 0.4


def test_a_prediction_mismatch_is_noted():
    out = _classify({"rounds": [_round(pages=3)]})
    assert any("differs from predicted" in n for n in out.notes)


@pytest.mark.parametrize(
    "error,kind,signature",
    [
        ({"type": "JaxRuntimeError", "message": "INTERNAL: CpuCallback error\nTraceback...\n"
          "equinox._errors._EquinoxRuntimeError: Out of free pages during allocation\n----"},
         "out_of_pages", "JaxRuntimeError: Out of free pages during allocation"),
        ({"type": "XlaRuntimeError", "message": "RESOURCE_EXHAUSTED: Out of memory allocating 17 GiB"},
         "oom", "XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 17 GiB"),
        ({"type": "ValueError", "message": "something odd\nmore"}, "engine_error", "ValueError: something odd"),
    ],
)
def test_exceptions_become_kinds_with_their_informative_line(error, kind, signature):
    out = _classify({"rounds": [], "error": error}, ChildExit(1))
    assert (out.status, out.failure_kind, out.signature) == (FAIL, kind, signature)


def test_how_the_child_ended_decides_when_it_left_no_result():
    assert _classify(None, ChildExit(-9)).signature == "killed by SIGKILL"
    assert _classify(None, ChildExit(-11)).failure_kind == "crash"
    assert _classify(None, ChildExit(3)).signature == "exit status 3 without a result"
    assert _classify(None, ChildExit(-9, timed_out_s=5)).failure_kind == "timeout"
    assert _classify(None, ChildExit(-9, memory_kill="resident memory 2 GiB > x")).failure_kind == "oom"


def test_nan_and_truncation():
    assert _classify({"rounds": [_round(nonfinite=3)]}).failure_kind == "nan"
    short = {"rounds": [_round(seq_lens=(4, 2))]}
    assert _classify(short).status == PASS and "not length-fixed" in _classify(short).notes[-1]
    assert _classify(short, length_fixed=True).failure_kind == "truncated"
    empty = _classify({"rounds": [_round(seq_lens=(4, 0))]})
    assert (empty.failure_kind, empty.signature.split(" (")[0]) == (
        "unserved", "1 of 2 sequences came back empty or missing")
    assert _classify({"rounds": [_round(seq_lens=(4,))]}).failure_kind == "unserved"


def test_a_complete_result_wins_over_how_the_child_then_exited():
    stuck = _classify({"rounds": [_round()]}, ChildExit(-9, lingered_s=30.0))
    assert stuck.status == PASS and "did not exit cleanly" in stuck.notes[-1]
    partial = classify(PLAN, {"rounds": [_round()]}, ChildExit(-9, timed_out_s=5), max_new_tokens=4,
                       length_fixed=False)
    assert partial.failure_kind == "timeout"  # rounds but no complete result: the trial did not finish


def test_rejected_carries_the_reason_and_predictions():
    plan = make_plan(compose_m9(["engine.max_pages=3"]))
    out = rejected(plan)
    assert out.status == "rejected" and "engine.max_pages=3 is too small" in out.signature
    assert out.metrics["pages_required_est"] == plan.pages_required_est


def test_repeats_combine_into_median_min_max_and_fail_if_any_trial_failed():
    from m9.outcome.outcome import combine

    def trial(tok_s, status="pass", kind=None):
        return Outcome(Status(status), kind, "boom" if kind else "", {"round_avg_tok_s": tok_s, "round_total_s": 100 / tok_s,
                                                               "pages_in_use": 12}, ("pages_in_use=12 free=4",))

    ok = combine([trial(10.0), trial(14.0), trial(11.0)])
    m = ok.metrics
    assert ok.status == "pass" and len(ok.repeats) == 3
    assert (m["round_avg_tok_s"], m["round_avg_tok_s_min"], m["round_avg_tok_s_max"]) == (11.0, 10.0, 14.0)
    assert m["repeats"] == 3 and m["repeats_passed"] == 3 and m["pages_in_use"] == 12
    assert "pages_in_use_min" not in m  # spread only for throughput metrics
    assert ok.notes.count("pages_in_use=12 free=4") == 1
    bad = combine([trial(10.0), trial(12.0, "fail", "crash")])
    assert (bad.status, bad.failure_kind) == ("fail", "crash")
    assert bad.signature == "1 of 2 repeats failed; repeat 1: boom"
    assert Outcome.from_dict(__import__("dataclasses").asdict(ok)) == ok  # the journal round-trips it


def test_a_point_record_round_trips_through_its_journal_file(tmp_path):
    import json

    from m9.record.journal import PointRecord, read_record, write_record

    outcome = Outcome(Status.FAIL, "out_of_pages", "Out of free pages", {"max_pages": 12.0}, ("a note",),
                      {"backend": "cpu"}, ({"status": "fail", "round_total_s": 1.0},))
    record = PointRecord("s", 3, ("engine.max_seqs=8",), str(tmp_path / "3"), "k3", 8, 12, 8, outcome,
                         {"engine.max_seqs": 8, "resolved.max_pages": 12}, run_id="r", reused_from={"sweep_id": "a"})
    path = write_record(record)
    assert json.loads(path.read_text())["outcome"]["status"] == "fail"  # plain data on disk
    back = read_record(path)
    assert back == record and back.status is Status.FAIL and back.overrides == ("engine.max_seqs=8",)
    assert back.replace(run_id=None).run_id is None and record.run_id == "r"  # frozen: changes are copies
