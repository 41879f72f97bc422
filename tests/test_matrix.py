"""The matrix, the report and its plots from point records alone (no engine, no store)."""

from __future__ import annotations

from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.record.journal import PointRecord
from m9.report import matrix
from m9.report.document import Report, write

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _record(job: int, max_seqs: int, status: Status, max_pages, kind=None, signature="", **metrics) -> PointRecord:
    return PointRecord("s", job, (f"engine.max_seqs={max_seqs}", "tracking=none"), f"s/{job}", f"k{job}",
                       Outcome(status, kind, signature, metrics),
                       {"engine.max_seqs": max_seqs, "engine.max_pages": max_pages, "workload.num_prompts": max_seqs,
                        "resolved.prompt_tokens": "16", "resolved.mesh": "1x1"})


RECORDS = [
    _record(0, 2, Status.PASS, 6, round_total_s=0.5, round_avg_tok_s=100.0, decode_avg_tok_s=150.0,
            round_total_generated=50, pages_in_use=6, free_pages=0, predicted_pages_in_use=6,
            predicted_round_total_generated=50, per_seq_tok_s=75.0),
    _record(1, 4, Status.FAIL, 12, FailureKind.OUT_OF_PAGES, "Out of free pages during allocation"),
    # refused by arithmetic before its prompts were built: no pages were ever sized for it
    _record(2, 1_000_000_000, Status.REJECTED, None, signature="engine.max_pages (unset: ...): engine state ..."),
]


def test_a_point_refused_before_it_was_sized_shows_a_dash_and_the_report_still_draws(tmp_path):
    rows = {r[0]: r for r in (matrix.row(e, common=("tracking=none",)) for e in RECORDS)}
    assert rows["2"][2:6] == ("1000000000", "1x1", "-", "1000000000") and rows["2"][7] == "REJECTED"
    assert rows["1"][7] == "FAIL (out_of_pages)" and rows["0"][1] == "`engine.max_seqs=2`"
    files = write(Report("s", RECORDS), tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "stable through engine.max_seqs=2; engine.max_seqs=4+ fails at runtime (1 out_of_pages" in text
    assert "engine.max_seqs=1000000000 is rejected by the planner" in text
    assert all(f.read_bytes().startswith(PNG_MAGIC) for f in files if f.suffix == ".png")


def test_a_note_every_point_has_is_said_once_above_the_table():
    shared = "workload.n_rounds=1: the only round includes compilation"
    planned = [PointRecord("s", i, (f"engine.max_seqs={n}",), f"s/{i}", f"k{i}",
                           Outcome(Status.PLANNED, metrics={"predicted_pages_in_use": n,
                                                            "predicted_round_total_generated": n},
                                   notes=(shared, *(("its own",) if i else ()))),
                           {"engine.max_seqs": n}) for i, n in enumerate((2, 4, 8))]
    table = matrix.render(planned)
    assert table.count(shared) == 1 and table.startswith(f"Note on every point: {shared}\n")
    assert table.count("its own") == 2  # a note only some points have stays in their rows
    assert matrix.render(planned[:1]).count(shared) == 1  # one point: in its row
