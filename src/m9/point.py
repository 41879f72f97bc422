"""One point, as a straight line: plan -> run (isolated) or refuse -> record -> summary. Each step is a stage's
function; this module only says their order."""

from __future__ import annotations

from m9.config import M9Config
from m9.outcome.outcome import Outcome, not_run
from m9.plan.edge import plan_point
from m9.record.journal import point_params
from m9.record.recorder import PointRecorder, artifacts
from m9.record.provenance import JobInfo
from m9.report.summary import point_summary
from m9.run.trials import Where, run_peer, run_trials
from m9.session import Session


def run_point(cfg: M9Config, job: JobInfo, session: Session) -> Outcome:
    """Plan the point, run it if the plan allows, and record what happened. Never raises for a failed trial."""
    plan = plan_point(cfg, None if cfg.trial.plan_only else job.processes, session.prompts)
    where = Where(job.point_dir, job.job_num, job.rank, job.processes)
    if job.rank > 0:  # another process of a multi-process point: it runs beside process 0, which records
        return run_peer(cfg, plan, where, session)
    for warning in plan.warnings:
        session.display.warn_once(warning)
    recorder = PointRecorder(session.store(cfg.tracking), job, point_params(cfg, plan),
                             tracked=not cfg.trial.plan_only)
    recorder.write_config(cfg)
    outcome = not_run(cfg, plan)
    if outcome is None:
        print(f"[m9] point {job.job_num} ({job.label}): running, log "
              f"{job.point_dir.trials(cfg.trial.repeats)[0].log}", flush=True)
        live = recorder.start()  # the point's run, live in the UI while it decodes
        try:
            outcome = run_trials(cfg, plan, where, session, live)
        except BaseException:  # interrupted: the run must not stay RUNNING
            recorder.killed()
            raise
    record = recorder.finish(outcome, artifacts(cfg, job))
    print(point_summary(job, record), flush=True)
    session.display.end_point(outcome.status)
    return outcome
