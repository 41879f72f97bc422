"""Recording one point: its run opened when its trial starts (so the UI shows it while it decodes), its progress as
step series, and its outcome written to the journal first (the store may be down; the record must not be lost) and
then to the store. A store that fails costs the run, never the record: a warning, and the journal says why
(``tracking_error``), for the store to catch up later (``m9.record.sync``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from m9.config import M9Config, to_dict
from m9.outcome.outcome import Outcome, job_lost, refused
from m9.outcome.status import FailureKind
from m9.plan.edge import plan_point
from m9.protocol import ProgressEvent
from m9.record import tracking
from m9.record.journal import PointRecord, make_record, point_params, write_record
from m9.record.provenance import JobInfo
from m9.record.tracking import Store


class PointRecorder:
    """The record of one point as it happens, in the process that records it (process 0 of a point of several)."""

    def __init__(self, store: Store, job: JobInfo, params: Mapping[str, Any], tracked: bool = True):
        self.store, self.job, self.params = store, job, dict(params)
        self.tracked = tracked and store.enabled
        """A plan measures nothing: it is journaled, not tracked."""
        self.run_id: Optional[str] = None
        self.errors: list[str] = []
        self.live: Optional[tracking.LiveSeries] = None

    def write_config(self, cfg: M9Config) -> None:
        """The resolved config the point runs with, in its directory (made here)."""
        point = self.job.point_dir
        point.path.mkdir(parents=True, exist_ok=True)
        point.config.write_text(json.dumps(to_dict(cfg), indent=1))

    def start(self) -> Optional[Callable[[ProgressEvent], None]]:
        """Open the point's run, RUNNING, before its trial starts; returns what takes its progress events (None when
        it is not tracked, or the store did not answer)."""
        if not self.tracked:
            return None
        self.run_id = self._guarded(lambda: tracking.start_point(self.store, self.job, self.params))
        self.live = tracking.LiveSeries(self.store, self.run_id) if self.run_id else None
        return self.live

    def killed(self) -> None:
        """The point's trial was cut off (Ctrl-C, SIGTERM): its run must not stay RUNNING."""
        if self.run_id:
            self._guarded(lambda: tracking.kill_point(self.store, self.run_id))

    def finish(self, outcome: Outcome, artifacts: list[Path]) -> PointRecord:
        """Journal first, then the store: the outcome lands on the run opened by ``start`` or, for a point that had
        no trial, on a run of its own. A journal the disk refused raises once the store has the point."""
        if self.live is not None:
            self.live.flush()
        record = make_record(self.job, self.params, outcome)
        try:
            write_record(record)
            unjournaled = None
        except OSError as exc:  # a full disk, a read-only folder: the store still gets the point, then the sweep stops
            unjournaled = exc
        if self.tracked:
            run_id = self._guarded(lambda: (
                tracking.finish_point(self.store, self.run_id, record, artifacts, self.job.output_dir) if self.run_id
                else tracking.record_point(self.store, self.job, record, artifacts, self.job.output_dir)))
            record = record.replace(run_id=run_id, tracking_error=self.errors[-1] if self.errors else None)
            if unjournaled is None:
                write_record(record)
        if unjournaled is not None:
            raise unjournaled
        return record

    def _guarded(self, write):
        """A write to the store that must not end the sweep when the store is down or locked: a warning, the error
        kept for the journal, and None; the point's record is its journal entry either way."""
        try:
            return write()
        except Exception as exc:  # noqa: BLE001 - see above
            self.errors.append(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
            print(f"[m9] warning: point {self.job.job_num}: tracking store: {self.errors[-1]}; its record is "
                  f"{self.job.point_dir.record}", file=sys.stderr, flush=True)
            return None


def artifacts(cfg: M9Config, job: JobInfo) -> list[Path]:
    """What a point's run keeps beside its record: its config, and each trial's log and result."""
    point = job.point_dir
    return [point.config, *(p for t in point.trials(cfg.trial.repeats) for p in (t.log, t.result))]


def record_lost(store: Store, cfg: M9Config, job: JobInfo, signature: str, kind: FailureKind,
                logs: tuple[str, ...] = ()) -> PointRecord:
    """Record a point whose job ended without a result (by the sweeping process, not the job): the failure the
    scheduler saw, on the run the job had opened if it got that far, else on a new one."""
    plan = plan_point(cfg)
    recorder = PointRecorder(store, job, point_params(cfg, plan))
    recorder.run_id = recorder._guarded(lambda: tracking.job_run(store, job))
    files = [*map(Path, logs), *(t.log for t in job.point_dir.trials(cfg.trial.repeats))]
    return recorder.finish(job_lost(plan, kind, signature), files)


def record_refused(store: Store, job: JobInfo, params: Mapping[str, Any], reason: str, tracked: bool) -> PointRecord:
    """Record a search's probe whose value the schema refuses: a rejected point, with the values it was given."""
    return PointRecorder(store, job, params, tracked).finish(refused(reason), [])
