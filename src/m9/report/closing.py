"""Closing a sweep: what the store did not take while it was away written now, the report and its plots, the sweep's
record closed with its summary and answer whatever happened to the report, and, when it finished, the matrix and its
answer on the terminal. Any sweeper's sweep closes here the same way (``m9.record.answer.Answer``)."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, Optional

from m9.outcome.status import Status
from m9.record import sync
from m9.record.answer import Answer
from m9.record.journal import PointRecord, read_sweep
from m9.record.sweep_record import SweepRecord
from m9.report import matrix
from m9.report.document import Report, write
from m9.run.files import write_failure


def close_sweep(record: SweepRecord, status: str, answer: Optional[Answer] = None, reason: str = "",
                reused: int = 0) -> list[PointRecord]:
    """Close the sweep's record (``reason``: why it ended early, on its run); on FINISHED print the matrix and the
    answer. Returns the sweep's points. A report the disk refused closes the record FAILED with the reason, and
    raises."""
    summary: dict[str, Any] = {"ended_by": reason} if reason else {}
    missing = _catch_up(record)
    if missing:
        summary["store_pending"] = missing
    records = read_sweep(record.sweep_dir)
    files = []
    try:
        if records:
            report = Report(record.sweep_dir.name, records, record.meta["command"], record.parent_run_id,
                            record.sweep_dir, answer)
            summary = {**report.summary(), **summary}
            files = write(report, record.sweep_dir)
    except Exception as exc:  # a full disk: the points are recorded, the sweep did not end as it should
        failed = write_failure(exc, record.sweep_dir)
        status = "FAILED"
        summary["ended_by"] = failed[0] if failed else f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        raise
    finally:  # the summary lands whatever happened to the report
        record.close(status, summary, files, answer)
    if status == "FINISHED":
        print(ending(record, records, summary, answer, reused), flush=True)
    return records


def _catch_up(record: SweepRecord) -> int:
    """Write the points the store did not take while it was down (their journals say so); returns how many it still
    lacks, said in one line with how they will get there."""
    if not record.track:
        return 0
    done = sync.sync_sweep(record.store, record.sweep_dir, only_pending=True, parent_run_id=record.parent_run_id)
    if done.written:
        print(f"[m9] tracking store caught up: {len(done.written)} points it did not take before", flush=True)
    if done.failed:
        print(f"[m9] warning: {len(done.failed)} points are not in the tracking store yet (it does not answer); "
              f"their journals are in {record.sweep_dir}: the next m9 command on this store writes them, or "
              f"m9 sync {record.sweep_dir}", file=sys.stderr, flush=True)
    return len(done.failed)


def ending(record: SweepRecord, records: list[PointRecord], summary: dict[str, Any], answer: Optional[Answer],
           reused: int) -> str:
    """What the terminal shows when a sweep finishes: the tally, the matrix (also kept as ``matrix.md``), the
    answer's own tables and headline (a grid's: the boundary its points show), the report and the UI's link."""
    sla = Report("", records, answer=answer).sla
    table = matrix.render(records, sla)
    (record.sweep_dir / "matrix.md").write_text(table + "\n")
    counts = Counter(e.status for e in records)
    tally = ", ".join(f"{counts[s]} {s}" for s in Status if s != Status.PLANNED or s in counts)
    again = f" ({reused} reused from earlier sweeps)" if reused else ""
    tables = answer.tables() if answer is not None else ""
    headline = (answer.headline() if answer is not None
                else f"boundary: {summary.get('boundary', 'no point ran or was rejected')}")
    link = f"\n[m9] MLflow runs: {record.store.ui_hint(record.sweep_dir.name)}" if record.track else ""
    return (f"\n[m9] sweep {record.sweep_dir}: {len(records)} points, {tally}{again}\n\n{table}"
            + (f"\n\n{tables}" if tables else "")
            + f"\n\n[m9] {headline}\n[m9] report: {record.sweep_dir / 'report.md'}{link}")
