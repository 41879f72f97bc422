"""The work shared by m9's sweepers: compose and check points, open the sweep's record, reuse points an earlier
sweep finished, launch the rest through Hydra's launcher, read each point's ``Outcome`` from its job's return, and
close the sweep with its report.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from m9 import compose
from m9.config import ConfigError, M9Config, TrackingConfig
from m9.outcome.outcome import Outcome
from m9.outcome.sla import parse_sla
from m9.outcome.status import Status
from m9.record import sync, tracking
from m9.record.journal import PointRecord, read_sweep
from m9.record.provenance import JobInfo, local_device_kind, measured, point_key
from m9.record.redact import redact
from m9.record.sweep import SweepRecord
from m9.report import matrix
from m9.report.optimize import candidates_table
from m9.run import progress, warm
from m9.run.files import write_failure
from m9.sweep.answer import SearchAnswer
from m9.sweep.jobs import LostJob
from m9.sweep.optimum import OptimizeAnswer
from m9.sweep.resume import FinishedPoints, adopt

_HARDWARE_FIELDS = ("partition", "constraint", "gpus_per_node", "gres", "nodes", "tasks_per_node", "qos")


def runs_here(launcher: Any) -> bool:
    """True for Hydra's basic launcher: points one after another in this process (one at a time)."""
    return isinstance(launcher, BasicLauncher)


def target_device(launcher: Any, settings: DictConfig) -> str:
    """The device a sweep's points run on, as far as the launching process can tell: this host's accelerator for
    launchers that run here, else the cluster settings that choose the hardware."""
    if not isinstance(launcher, SlurmLauncher):
        return local_device_kind()
    fields = {k: settings.get(k) for k in _HARDWARE_FIELDS if settings.get(k) is not None}
    return f"slurm:{sorted(fields.items())}"


def exit_status(exc: BaseException) -> str:
    """How an exception ends a sweep's record: KILLED when interrupted (Ctrl-C, SIGTERM), else FAILED."""
    interrupted = isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, SystemExit) and isinstance(exc.code, int) and exc.code >= 128)
    return "KILLED" if interrupted else "FAILED"


class Driver:
    """One multirun, as m9's sweepers run it."""

    def __init__(self, hydra_context: Any, config: DictConfig, launcher: Any, resume: bool):
        self.loader, self.config, self.launcher = hydra_context.config_loader, config, launcher
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.tracking = TrackingConfig(**OmegaConf.to_container(config.tracking, resolve=True))
        self.plan_only = bool(config.trial.plan_only)
        self.device = target_device(launcher, config.hydra.launcher)
        self.finished = FinishedPoints(self.tracking, self.sweep_dir.parent, enabled=resume and not self.plan_only)
        self.job_idx = 0
        self.attempts: Counter[str] = Counter()
        self.record: Optional[SweepRecord] = None
        self.shared: tuple[str, ...] = ()
        self.n_points: Optional[int] = None
        self.n_reused = 0
        self.last_jobs: list[tuple[int, bool]] = []
        """The points of the last ``run`` or ``reuse``: (job number, adopted from an earlier sweep)."""

    # --- points ----------------------------------------------------------------------------------------------

    def _compose(self, overrides: list[str]) -> DictConfig:
        cfg = self.loader.load_sweep_config(self.config, list(overrides))
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
        return cfg

    def check(self, overrides: Sequence[str]) -> M9Config:
        """Compose and check one point; bad input raises ``compose.BadInput`` (one line naming the key)."""
        return compose.check_point(self._compose, list(overrides))

    def compose(self, overrides: Sequence[str]) -> M9Config:
        """Compose one point; a value the schema refuses raises ``ConfigError`` (a search's probe: rejected)."""
        return compose.compose_point(self._compose, list(overrides))

    # --- the record -------------------------------------------------------------------------------------------

    def open(self, grid: Optional[list[list[str]]], n_points: Optional[int], mode: str) -> None:
        """Create the store (once, before any job: parallel writers race on a fresh sqlite schema) and open the
        sweep's record. An unreachable store stops the sweep here, with one line, before any point starts. What
        every point shares is said once."""
        command = " ".join(["m9", *sys.argv[1:]])
        self.n_points = n_points
        try:
            if not self.plan_only:
                tracking.init_store(self.tracking)
            self.record = SweepRecord(self.tracking, self.sweep_dir, command, grid, n_points,
                                      track=not self.plan_only, mode=mode)  # a plan measures nothing: no runs
        except Exception as exc:
            print(f"[m9] error: {tracking.store_error(self.tracking, exc)}", file=sys.stderr, flush=True)
            raise SystemExit(3) from exc
        if self.record.track:
            print(f"[m9] MLflow runs: {tracking.ui_hint(self.tracking, self.sweep_dir.name)}", flush=True)
        if grid and (len(grid) > 1 or mode != "grid"):  # a search's probes all share their row's overrides
            self.shared = tuple(o for o in grid[0] if all(o in point for point in grid[1:]))
            if self.shared:
                print(f"[m9] every point: {redact(' '.join(self.shared))}", flush=True)
        progress.open_display(n_points)

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
                parent = tracking.find_sweep(self.tracking, self.record.parent_run_id)
                jobs |= {r.job_num for r in tracking.load_points(self.tracking, parent)} if parent else set()
            except Exception:  # noqa: BLE001 - a store that does not answer counts nothing
                pass
        return len(jobs)

    def close(self, status: str, answer: Optional[SearchAnswer | OptimizeAnswer] = None,
              reason: str = "") -> list[PointRecord]:
        """Close the record with the sweep's summary and report (and ``reason``, why it ended early, on its run);
        on FINISHED print the matrix and the boundary. Returns the sweep's points."""
        progress.close_display()
        warm.discard()  # the sweep's points are done: its warm engine child goes now, not at exit
        if self.record is None or self.record.closed:
            return []
        summary, files = ({"ended_by": reason} if reason else {}), []
        missing = self._catch_up()
        if missing:
            summary["store_pending"] = missing
        entries = read_sweep(self.sweep_dir)
        try:
            if entries:
                from m9.report import (
                    command as report,  # plots pull in matplotlib: only with something to plot
                )

                searched = answer if isinstance(answer, SearchAnswer) else None
                optimum = answer if isinstance(answer, OptimizeAnswer) else None
                sweep = report.Sweep(self.sweep_dir.name, entries, self.record.meta["command"],
                                     self.record.parent_run_id, self.sweep_dir, searched, optimum)
                summary = {**report.summary(sweep), **summary}
                files = report.write(sweep, self.sweep_dir)
        except Exception as exc:  # a full disk: the points are recorded, the sweep did not end as it should
            failed = write_failure(exc, self.sweep_dir)
            status, summary["ended_by"] = "FAILED", failed[0] if failed else compose.one_line(exc)
            raise
        finally:  # the summary lands whatever happened to the report
            self.record.close(status, summary, files, answer)
        if status == "FINISHED":
            self._print_end(entries, summary, answer)
        return entries

    def _catch_up(self) -> int:
        """Write the points the store did not take while it was down (their journals say so); returns how many
        it still lacks, said in one line with how they will get there."""
        if not self.record.track:
            return 0
        done = sync.sync_sweep(self.tracking, self.sweep_dir, only_pending=True,
                               parent_run_id=self.record.parent_run_id)
        if done.written:
            print(f"[m9] tracking store caught up: {len(done.written)} points it did not take before", flush=True)
        if done.failed:
            print(f"[m9] warning: {len(done.failed)} points are not in the tracking store yet (it does not answer); "
                  f"their journals are in {self.sweep_dir}: the next m9 command on this store writes them, or "
                  f"m9 sync {self.sweep_dir}", file=sys.stderr, flush=True)
        return len(done.failed)

    def _print_end(self, entries: list[PointRecord], summary: dict[str, Any],
                   answer: Optional[SearchAnswer | OptimizeAnswer]) -> None:
        table = matrix.render(entries, parse_sla(list(answer.sla)) if answer else ())
        (self.sweep_dir / "matrix.md").write_text(table + "\n")
        counts = Counter(e.status for e in entries)
        tally = ", ".join(f"{counts[s]} {s}" for s in Status if s != Status.PLANNED or s in counts)
        reused = f" ({self.n_reused} reused from earlier sweeps)" if self.n_reused else ""
        boundary = summary.get("boundary", "no point ran or was rejected")
        frontier = (f"\n\n{matrix.search_table(answer)}" if isinstance(answer, SearchAnswer) and len(answer.rows) > 1
                    else "")
        if isinstance(answer, OptimizeAnswer):
            boundary = answer.statement() + (f"\n[m9] rerun the best: {answer.rerun}" if answer.rerun else "")
            frontier = f"\n\n{candidates_table(answer)}" if answer.candidates else ""
        what = "optimum" if isinstance(answer, OptimizeAnswer) else "boundary"
        link = f"\n[m9] MLflow runs: {tracking.ui_hint(self.tracking, self.sweep_dir.name)}" if self.record.track else ""
        print(f"\n[m9] sweep {self.sweep_dir}: {len(entries)} points, {tally}{reused}\n\n{table}{frontier}\n\n"
              f"[m9] {what}: {boundary}\n[m9] report: {self.sweep_dir / 'report.md'}{link}", flush=True)

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

    def settle(self, overrides: Sequence[str]) -> int:
        """Record a point the planner settles (it starts no engine) in this process; a value the schema refuses
        is recorded as rejected with the schema's reason. Returns the point's job number."""
        try:
            cfg = self.compose(overrides)
        except ConfigError as exc:
            from m9.point import record_refused

            composed = self._compose(list(overrides))
            job = self._job(overrides, point_key(OmegaConf.to_container(composed, resolve=True), self.device))
            record_refused(self.tracking, job, compose.flat_params(composed), str(exc), tracked=not self.plan_only)
            return job.job_num
        self.run([(list(overrides), cfg)], here=True)
        return self.last_jobs[0][0]

    def _found(self, cfg: M9Config, bump: bool) -> tuple[str, Optional[PointRecord]]:
        """The point's key (its attempt: how many times this sweep measured the same config before) and the
        earlier sweep's record of it, if any. ``bump``: count this attempt (it is measured or adopted now)."""
        config = measured(cfg)
        base = point_key(config, self.device)
        key = point_key(config, self.device, self.attempts[base])
        found = self.finished.find(key)
        if bump or found is not None:
            self.attempts[base] += 1
        return key, found

    def _adopt(self, overrides: Sequence[str], key: str, found: PointRecord) -> tuple[Outcome, int]:
        job = self._job(overrides, key)
        _, outcome = adopt(found, job)
        self.n_reused += 1
        print(f"[m9] point {job.job_num} ({job.label}): {outcome.status.upper()}, reused from sweep "
              f"{found.sweep_id} job {found.job_num} (hydra.sweeper.resume=false measures it again)", flush=True)
        progress.current().end_point(outcome.status)
        return outcome, job.job_num

    def reuse(self, points: list[tuple[list[str], M9Config]]) -> list[Optional[Outcome]]:
        """Adopt the points an earlier sweep finished (resume), launching nothing; None for the others."""
        self.last_jobs = []
        outcomes: list[Optional[Outcome]] = []
        for overrides, cfg in points:
            key, found = self._found(cfg, bump=False)
            outcome, num = self._adopt(overrides, key, found) if found is not None else (None, -1)
            outcomes.append(outcome)
            self.last_jobs.append((num, found is not None))
        return outcomes

    def run(self, points: list[tuple[list[str], M9Config]], here: bool = False) -> list[Outcome]:
        """Run points and return their outcomes in order. A point an earlier sweep finished is adopted instead
        (resume); the rest go to the launcher as one batch, or run in this process when ``here`` (points the
        planner settles, which start no engine). ``last_jobs`` then holds each point's (job number, reused)."""
        jobs: list[tuple[int, bool]] = [(-1, False)] * len(points)
        outcomes: list[Optional[Outcome]] = [None] * len(points)
        waiting: list[tuple[int, list[str], M9Config, str]] = []
        for i, (overrides, cfg) in enumerate(points):
            key, found = self._found(cfg, bump=True)
            if found is None:
                waiting.append((i, overrides, cfg, key))
            else:
                outcomes[i], num = self._adopt(overrides, key, found)
                jobs[i] = (num, True)
        pending = [(i, cfg, self._job(overrides, key)) for i, overrides, cfg, key in waiting]  # numbered in a row
        for i, _, job in pending:
            jobs[i] = (job.job_num, False)
        self.last_jobs = jobs
        if here:
            from m9.point import run_point

            for i, cfg, job in pending:
                outcomes[i] = run_point(cfg, job)
        elif pending:
            returns = self.launcher.launch([list(job.overrides) for _, _, job in pending],
                                           initial_job_idx=pending[0][2].job_num)
            for (i, cfg, job), ret in zip(pending, returns):
                value = ret.return_value  # a job that raised is a bug in m9: this re-raises it, loudly
                if isinstance(value, LostJob):  # killed from outside, past its time limit, node lost: data
                    from m9.point import record_lost

                    value = record_lost(cfg, job, value.signature, value.kind, value.logs)
                outcomes[i] = value
        return outcomes  # type: ignore[return-value]
