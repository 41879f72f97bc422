"""The work every m9 sweeper shares: compose and check points, open the sweep's record, adopt points an earlier sweep
finished, launch the rest through Hydra's launcher, bring each back as a ``Launched`` point (a job that came back
without a result recorded as a failed point), and close the sweep with its answer.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from m9.compose import Composer, check_point, compose_point, flat_params
from m9.config import ConfigError, M9Config, TrackingConfig
from m9.record import tracking
from m9.record.answer import Answer
from m9.record.journal import PointRecord, read_sweep
from m9.record.recorder import record_lost, record_refused
from m9.record.provenance import JobInfo, measured, point_key
from m9.record.redact import redact
from m9.record.sweep_record import SweepRecord
from m9.report.closing import close_sweep
from m9.report.plots import import_in_background
from m9.report.summary import point_summary
from m9.plan import Plan
from m9.plan.edge import plan_point
from m9.point import run_point
from m9.session import Session
from m9.sweep.launched import Launched, LostJob, placement_of
from m9.sweep.resume import FinishedPoints, adopt


def exit_status(exc: BaseException) -> str:
    """How an exception ends a sweep's record: KILLED when interrupted (Ctrl-C, SIGTERM), else FAILED."""
    interrupted = isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, SystemExit) and isinstance(exc.code, int) and exc.code >= 128)
    return "KILLED" if interrupted else "FAILED"


class Driver:
    """One multirun, as m9's sweepers run it."""

    def __init__(self, hydra_context: Any, config: DictConfig, launcher: Any, session: Session, resume: bool):
        self.loader, self.launcher, self.session = hydra_context.config_loader, launcher, session
        self.composer = Composer(self.loader, config)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.store = session.store(TrackingConfig(**OmegaConf.to_container(config.tracking, resolve=True)))
        self.plan_only = bool(config.trial.plan_only)
        self.placement = placement_of(launcher)
        self.finished = FinishedPoints(self.store, self.sweep_dir.parent, enabled=resume and not self.plan_only)
        self.job_idx = 0
        self.attempts: Counter[str] = Counter()
        self.record: Optional[SweepRecord] = None
        self.shared: tuple[str, ...] = ()
        self.n_points: Optional[int] = None
        self.n_reused = 0
        self.warming = False

    # --- points ----------------------------------------------------------------------------------------------

    def check(self, overrides: Sequence[str]) -> M9Config:
        """Compose and check one point; bad input raises ``compose.BadInput`` (one line naming the key). The first
        point that will run in this process starts the warm worker: it imports JAX and builds the model while this
        process checks the other points and opens the sweep's record."""
        cfg = check_point(self.composer, list(overrides), self.session.prompts)
        if not self.warming and self.placement.here and not self.plan_only and cfg.trial.worker == "warm":
            if self.plan(cfg).accepted:
                self.session.workers.start(cfg, prepare=True)
                self.warming = True
        return cfg

    def plan(self, cfg: M9Config) -> Plan:
        """The point's plan as its job will make it: as many processes as the launcher gives a point (none checked
        with ``trial.plan_only``, which plans a slice's points from anywhere)."""
        return plan_point(cfg, None if self.plan_only else self.placement.processes, self.session.prompts)

    def compose(self, overrides: Sequence[str]) -> M9Config:
        """Compose one point; a value the schema refuses raises ``ConfigError`` (a search's probe: rejected)."""
        return compose_point(self.composer, list(overrides))

    # --- the record -------------------------------------------------------------------------------------------

    def open(self, grid: Optional[list[list[str]]], n_points: Optional[int], mode: str) -> None:
        """Create the store (once, before any job: parallel writers race on a fresh sqlite schema) and open the
        sweep's record. An unreachable store stops the sweep here, with one line, before any point starts. What
        every point shares is said once."""
        command = " ".join(["m9", *sys.argv[1:]])
        self.n_points = n_points
        try:
            if not self.plan_only:
                self.store.init()
            self.record = SweepRecord(self.store, self.sweep_dir, command, grid, n_points,
                                      track=not self.plan_only, mode=mode)  # a plan measures nothing: no runs
        except Exception as exc:
            print(f"[m9] error: {self.store.error(exc)}", file=sys.stderr, flush=True)
            raise SystemExit(3) from exc
        if self.record.track:
            print(f"[m9] MLflow runs: {self.store.ui_hint(self.sweep_dir.name)}", flush=True)
        if grid and (len(grid) > 1 or mode != "grid"):  # a search's probes all share their row's overrides
            self.shared = tuple(o for o in grid[0] if all(o in point for point in grid[1:]))
            if self.shared:
                print(f"[m9] every point: {redact(' '.join(self.shared))}", flush=True)
        self.session.show(n_points)
        import_in_background()  # the report's plotting library, while the points run

    def recorded(self) -> int:
        """Points of this sweep recorded so far: in its journals or in the store (a point whose journal a full
        disk refused is in the store alone)."""
        jobs: set[int] = set()
        try:
            jobs |= {r.job_num for r in read_sweep(self.sweep_dir)}
        except OSError:
            pass
        if self.record is not None and self.record.parent_run_id:
            try:
                parent = tracking.find_sweep(self.store, self.record.parent_run_id)
                jobs |= {r.job_num for r in tracking.load_points(self.store, parent)} if parent else set()
            except Exception:  # noqa: BLE001 - a store that does not answer counts nothing
                pass
        return len(jobs)

    def close(self, status: str, answer: Optional[Answer] = None, reason: str = "") -> list[PointRecord]:
        """The sweep is over: its warm worker goes now, not at exit, and its record is closed with its summary,
        report and answer (``m9.report.closing``). Returns the sweep's points."""
        self.session.close()
        if self.record is None or self.record.closed:
            return []
        return close_sweep(self.record, status, answer, reason, self.n_reused)

    # --- running ----------------------------------------------------------------------------------------------

    def _job(self, overrides: Sequence[str], key: str) -> JobInfo:
        """The point's identity, made here once and left in its directory for the job that runs it."""
        job = JobInfo(sweep_id=self.sweep_dir.name, job_num=self.job_idx, overrides=tuple(overrides),
                      output_dir=(self.sweep_dir / str(self.job_idx)).absolute(),  # as Hydra gives the job
                      parent_run_id=self.record.parent_run_id if self.record else None, point_key=key,
                      shared=self.shared)
        self.job_idx += 1
        job.write()
        return job

    def settle(self, overrides: Sequence[str]) -> Launched:
        """Record a point the planner settles (it starts no engine) in this process; a value the schema refuses
        is recorded as rejected with the schema's reason."""
        try:
            cfg = self.compose(overrides)
        except ConfigError as exc:
            composed = self.composer(list(overrides))
            job = self._job(overrides, point_key(OmegaConf.to_container(composed, resolve=True),
                                                 self.placement.device))
            record = record_refused(self.store, job, flat_params(composed), str(exc), tracked=not self.plan_only)
            print(point_summary(job, record), flush=True)
            self.session.display.end_point(record.status)
            return Launched(job.job_num, record.outcome)
        return self.run([(list(overrides), cfg)], here=True)[0]

    def _found(self, cfg: M9Config, bump: bool) -> tuple[str, Optional[PointRecord]]:
        """The point's key (its attempt: how many times this sweep measured the same config before) and the
        earlier sweep's record of it, if any. ``bump``: count this attempt (it is measured or adopted now)."""
        config = measured(cfg)
        base = point_key(config, self.placement.device)
        key = point_key(config, self.placement.device, self.attempts[base])
        found = self.finished.find(key)
        if bump or found is not None:
            self.attempts[base] += 1
        return key, found

    def _adopt(self, overrides: Sequence[str], key: str, found: PointRecord) -> Launched:
        job = self._job(overrides, key)
        _, outcome = adopt(found, job)
        self.n_reused += 1
        print(f"[m9] point {job.job_num} ({job.label}): {outcome.status.upper()}, reused from sweep "
              f"{found.sweep_id} job {found.job_num} (hydra.sweeper.resume=false measures it again)", flush=True)
        self.session.display.end_point(outcome.status)
        return Launched(job.job_num, outcome, adopted=True)

    def reuse(self, points: list[tuple[list[str], M9Config]]) -> list[Optional[Launched]]:
        """Adopt the points an earlier sweep finished (resume), launching nothing; None for the others."""
        found = [(overrides, *self._found(cfg, bump=False)) for overrides, cfg in points]
        return [self._adopt(overrides, key, record) if record is not None else None
                for overrides, key, record in found]

    def run(self, points: list[tuple[list[str], M9Config]], here: bool = False) -> list[Launched]:
        """Run points; returns them in order. A point an earlier sweep finished is adopted instead (resume); the rest
        go to the launcher as one batch, or run in this process when ``here`` (points the planner settles, which
        start no engine)."""
        launched: list[Optional[Launched]] = [None] * len(points)
        waiting: list[tuple[int, list[str], M9Config, str]] = []
        for i, (overrides, cfg) in enumerate(points):
            key, found = self._found(cfg, bump=True)
            if found is None:
                waiting.append((i, overrides, cfg, key))
            else:
                launched[i] = self._adopt(overrides, key, found)
        pending = [(i, cfg, self._job(overrides, key)) for i, overrides, cfg, key in waiting]  # numbered in a row
        if here:
            for i, cfg, job in pending:
                launched[i] = Launched(job.job_num, run_point(cfg, job, self.session))
        elif pending:
            returns = self.launcher.launch([list(job.overrides) for _, _, job in pending],
                                           initial_job_idx=pending[0][2].job_num)
            for (i, cfg, job), ret in zip(pending, returns):
                value = ret.return_value  # a job that raised is a bug in m9: this re-raises it, loudly
                if isinstance(value, LostJob):  # killed from outside, past its time limit, node lost: data
                    record = record_lost(self.store, cfg, job, value.signature, value.kind, value.logs)
                    print(point_summary(job, record), flush=True)
                    self.session.display.end_point(record.status)
                    value = record.outcome
                launched[i] = Launched(job.job_num, value)
        return launched  # type: ignore[return-value]
