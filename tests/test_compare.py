"""``m9 report --compare`` of two stacks (an engine upgrade), on records as the journal holds them."""

from __future__ import annotations

from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.record.journal import PointRecord
from m9.report.compare import compare
from m9.report.document import Report

OLD = {"stack.python": "3.11.7", "stack.levanter": "0.2.20.dev202606180959", "stack.jax": "0.10.2"}
NEW = {"stack.python": "3.12.1", "stack.levanter": "0.2.227.dev40316220070", "stack.jax": "0.11.2"}


def _point(sweep, n, max_seqs, stack, tok=None, spread=None, kind=None):
    metrics = {"pages_in_use": 3.0 * max_seqs} if kind is None else {}
    if tok is not None:
        metrics["round_avg_tok_s"] = tok
    if spread is not None:
        metrics["round_avg_tok_s_min"], metrics["round_avg_tok_s_max"] = spread
    outcome = (Outcome(Status.PASS, metrics=metrics) if kind is None
               else Outcome(Status.FAIL, FailureKind(kind), "out of free pages", metrics))
    return PointRecord(sweep, n, (f"engine.max_seqs={max_seqs}",), f"/tmp/{sweep}/{n}", f"{sweep}{n}", outcome,
                       {"engine.max_seqs": max_seqs, "engine.max_pages": 3 * max_seqs, **stack})


def test_two_stacks_are_named_and_each_difference_is_judged_against_its_repeats(tmp_path):
    a = Report("old", [_point("old", 0, 2, OLD, 100.0, (95.0, 104.0)), _point("old", 1, 4, OLD, 180.0, (170, 190)),
                       _point("old", 2, 8, OLD, kind="out_of_pages")])
    b = Report("new", [_point("new", 0, 2, NEW, 102.0, (99.0, 106.0)), _point("new", 1, 4, NEW, 240.0, (230, 250)),
                       _point("new", 2, 8, NEW, 300.0, (290, 310))])
    md = compare(a, b, tmp_path)[0].read_text()
    assert "| levanter | 0.2.20.dev202606180959 | 0.2.227.dev40316220070 | changed |" in md
    assert "| python | 3.11.7 | 3.12.1 | changed |" in md
    assert "| 2 | PASS | 100.0 | 6/6 | PASS | 102.0 | 6/6 | 1.020 (inside the repeats' spread) |" in md
    assert "| 4 | PASS | 180.0 | 12/12 | PASS | 240.0 | 12/12 | 1.333 (outside the repeats' spread) |" in md
    assert "| 8 | FAIL (out_of_pages) | - | 24 | PASS | 300.0 | 24/24 | - |" in md
    assert ("From A to B (python 3.11.7 -> 3.12.1, levanter 0.2.20.dev202606180959 -> 0.2.227.dev40316220070, jax "
            "0.10.2 -> 0.11.2): the ceiling moved from engine.max_seqs=4 to 8, the best throughput went from 180.0 "
            "to 300.0 tok/s (x1.667, outside the repeats' spread), the failure kinds went from {'out_of_pages': 1} "
            "to none.") in md


def test_one_stack_is_said_once_and_a_difference_without_repeats_is_not_judged(tmp_path):
    by_name = dict(sorted(OLD.items()))  # as the store hands params back: sorted by name
    a = Report("a", [_point("a", 0, 2, by_name, 100.0), _point("a", 1, 4, by_name, 180.0)])
    b = Report("b", [_point("b", 0, 2, OLD, 90.0), _point("b", 1, 4, OLD, 200.0)])
    md = compare(a, b, tmp_path)[0].read_text()
    assert "Both sweeps ran on the same stack: python 3.11.7, levanter 0.2.20.dev202606180959, jax 0.10.2." in md
    assert "## Stacks" not in md and "| 4 | PASS | 180.0 | 12/12 | PASS | 200.0 | 12/12 | 1.111 |" in md
    assert ("From A to B (the same stack): the ceiling stayed at engine.max_seqs=4, the best throughput went from "
            "180.0 to 200.0 tok/s (x1.111, no repeats to judge it by), the failure kinds stayed none.") in md
