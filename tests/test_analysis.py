"""Boundary, knob and trend analysis on synthetic point records."""

from __future__ import annotations

from m9.outcome.ceiling import Boundary
from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.record.journal import PointRecord
from m9.report import analysis


def _entry(job, max_seqs, status, kind=None, sig="", tok_s=100.0, overrides=None, **params):
    metrics = {"round_avg_tok_s": tok_s, "round_total_s": 1.0, "decode_avg_tok_s": tok_s * 2,
               "round_total_generated": 10} if status == "pass" else {}
    return PointRecord(sweep_id="s", job_num=job, overrides=tuple(overrides or [f"engine.max_seqs={max_seqs}"]),
                       output_dir=f"s/{job}", point_key="",
                       outcome=Outcome(Status(status), FailureKind(kind) if kind else None, sig, metrics),
                       params={"engine.max_seqs": max_seqs, "engine.max_pages": 36 * max_seqs,
                               "workload.num_prompts": max_seqs, **params})


LOG_D = [
    _entry(0, 52, "pass", tok_s=300), _entry(1, 56, "pass", tok_s=310),
    _entry(2, 57, "fail", "nan", "12 non-finite logprobs"), _entry(3, 58, "fail", "nan", "12 non-finite logprobs"),
    _entry(4, 60, "fail", "crash", "killed by SIGKILL"), _entry(5, 64, "rejected", sig="engine.max_pages=... (est. 99)"),
]


def test_the_logs_phase_d_boundary():
    knob = analysis.swept_knob(LOG_D)
    assert knob == "engine.max_seqs"  # max_pages varies too, but max_seqs was typed and ranks first
    b = analysis.boundary(LOG_D, knob)
    assert (b.ceiling, b.first_failure, b.first_rejection) == (56, 57, 64)
    assert b.failure_kinds == {"nan": 2, "crash": 1}
    assert b.statement() == (
        "stable through engine.max_seqs=56; engine.max_seqs=57+ fails at runtime (1 crash, 2 nan; "
        "signature: 12 non-finite logprobs); engine.max_seqs=64 is rejected by the planner "
        "(engine.max_pages=... (est. 99))"
    )


def test_summary_names_ceiling_first_failure_and_best_point():
    s = {**analysis.summary(LOG_D), **analysis.boundary(LOG_D, "engine.max_seqs").facts()}
    assert s["ceiling"] == 56 and s["first_failure"] == "engine.max_seqs=57" and s["failure_kind"] == "crash/nan"
    assert s["first_rejection"] == "engine.max_seqs=64"
    assert s["best_point"] == "job 1: engine.max_seqs=56" and s["best_round_avg_tok_s"] == 310
    assert (s["n_pass"], s["n_fail"], s["n_rejected"]) == (2, 3, 1)


def test_non_monotonic_and_all_pass_and_first_fails():
    odd = LOG_D[:3] + [_entry(6, 70, "pass")]
    assert ("non-monotone: engine.max_seqs=70 passed above the first failure"
            in analysis.boundary(odd, "engine.max_seqs").statement())
    ok = [_entry(0, 2, "pass"), _entry(1, 4, "pass")]
    assert analysis.boundary(ok, "engine.max_seqs").statement().startswith("all points pass (engine.max_seqs 2..4)")
    bad = [_entry(0, 2, "fail", "oom", "x"), _entry(1, 4, "pass")]
    assert analysis.boundary(bad, "engine.max_seqs").statement().startswith("no stable point: engine.max_seqs=2")


def test_a_value_with_any_failing_point_is_not_stable():
    reps = [_entry(0, 8, "pass"), _entry(1, 8, "fail", "crash", "killed by SIGKILL"), _entry(2, 4, "pass")]
    b = analysis.boundary(reps, "engine.max_seqs")
    assert b.ceiling == 4 and b.first_failure == 8


def test_knob_prefers_what_was_typed_then_priority():
    probes = [_entry(i, 128, "pass", overrides=[f"+probe=f{i}"], **{"scheduler.max_tokens_per_round": t})
              for i, t in enumerate((64, 256, 384))]
    assert analysis.swept_knob(probes) == "scheduler.max_tokens_per_round"
    assert "best 100.0" in analysis.trend_statement(probes, "scheduler.max_tokens_per_round")


def test_a_derived_value_that_follows_the_knob_is_never_the_knob():
    # workload=short,long varies max_new_tokens; the pages m9 sized to it vary too, and rank higher, but were derived
    points = [_entry(i, 8, "pass", overrides=[f"workload={w}"], derived="engine.max_pages",
                     **{"engine.max_pages": pages, "workload.max_new_tokens": new})
              for i, (w, pages, new) in enumerate((("short", 16, 20), ("long", 40, 300)))]
    assert analysis.swept_knob(points) == "workload.max_new_tokens"
    typed = [p.replace(overrides=(f"engine.max_pages={p.max_pages}",)) for p in points]
    assert analysis.swept_knob(typed) == "engine.max_pages"


def test_a_plan_only_sweep_states_the_planners_boundary():
    planned = [_entry(0, 114, "planned"), _entry(1, 124, "planned"), _entry(2, 125, "rejected", sig="est. 4125")]
    b = analysis.boundary(planned, "engine.max_seqs")
    assert b.statement() == ("the planner accepts through engine.max_seqs=124 (plan only: nothing ran); "
                             "engine.max_seqs=125 is rejected by the planner (est. 4125)")


def test_the_boundary_round_trips_through_json():
    b = analysis.boundary(LOG_D, "engine.max_seqs")
    assert isinstance(b, Boundary) and Boundary.from_json(__import__("json").loads(
        __import__("json").dumps(b.to_json()))) == b
