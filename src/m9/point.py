"""One point, as a straight line: plan -> run (isolated) -> outcome -> journal -> tracking -> summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from m9.run import multihost
from m9.run import progress
from m9.record import tracking
from m9.config import M9Config, to_dict
from m9.record.journal import ENTRY, make_record, point_params, write_record
from m9.outcome.outcome import FAIL, PLANNED, REJECTED, Outcome, combine, job_lost, planned, rejected
from m9.plan import Plan, make_plan, validate
from m9.record.provenance import JobInfo
from m9.run.trial import LOG_NAME, RESULT, run_trial


def run_point(cfg: M9Config, job: JobInfo) -> Outcome:
    """Plan the point, run it if the plan allows, and record what happened. Never raises for a failed trial."""
    if job.rank > 0:
        return _run_peer(cfg, job)
    plan = make_plan(cfg)
    display = progress.current()
    out = job.output_dir
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "m9_config.json"
    config_path.write_text(json.dumps(to_dict(cfg), indent=1))
    for warning in plan.warnings:
        print(f"[m9] warning: {warning}", flush=True)
    run_id, store_errors = None, []
    if cfg.trial.plan_only:
        outcome = planned(plan) if plan.accepted else rejected(plan)
    elif plan.accepted or (not cfg.trial.enforce_plan and not validate(cfg)):
        print(f"[m9] point {job.job_num} ({job.run_name}): running, log {out / LOG_NAME}", flush=True)
        run_id = _guarded(job, store_errors, lambda: tracking.start_point(cfg.tracking, job, point_params(cfg, plan)))
        live = tracking.LiveSeries(cfg.tracking, run_id) if run_id else None
        try:
            outcome = _run_trials(cfg, plan, job, display, live)
            if job.processes > 1:  # the other processes' trials ran alongside: the point passes only if all did
                wait = cfg.trial.timeout_s
                outcome = multihost.combine(outcome, multihost.gather(out, job.processes, wait), wait)
        except BaseException:  # interrupted: the run must not stay RUNNING
            if run_id:
                _guarded(job, store_errors, lambda: tracking.kill_point(cfg.tracking, run_id))
            raise
        if live is not None:
            live.flush()
    else:
        outcome = rejected(plan)
    artifacts = [config_path, *(d / name for d in _trial_dirs(cfg, out) for name in (LOG_NAME, RESULT))]
    return _record(cfg, job, plan, outcome, artifacts, run_id, store_errors)


def record_lost(cfg: M9Config, job: JobInfo, signature: str, kind: str, logs: tuple[str, ...] = ()) -> Outcome:
    """Record a point whose job ended without a result (run by the sweeping process, not the job): the failure the
    scheduler saw, on the run the job had opened if it got that far, else on a new one; journal first."""
    plan = make_plan(cfg)
    store_errors: list[str] = []
    run_id = _guarded(job, store_errors, lambda: tracking.job_run(cfg.tracking, job))
    artifacts = [*map(Path, logs), *(d / LOG_NAME for d in _trial_dirs(cfg, job.output_dir))]
    return _record(cfg, job, plan, job_lost(plan, kind, signature), artifacts, run_id, store_errors)


def _record(cfg: M9Config, job: JobInfo, plan: Plan, outcome: Outcome, artifacts: list[Path],
            run_id: Optional[str], store_errors: list[str]) -> Outcome:
    """Journal first (the store may be down, the record must not be lost), then the store: the outcome lands on
    ``run_id`` when the point's run is open, else on a run of its own; then the summary."""
    record = make_record(job, cfg, plan, outcome)
    write_record(record)
    if not cfg.trial.plan_only:  # a plan measures nothing: it is not tracked
        run_id = _guarded(job, store_errors, lambda: (
            tracking.finish_point(cfg.tracking, run_id, record, artifacts, job.output_dir) if run_id
            else tracking.record_point(cfg.tracking, job, record, artifacts, job.output_dir)))
        write_record(record.replace(run_id=run_id, tracking_error=store_errors[-1] if store_errors else None))
    print(summary(job, plan.max_pages, outcome), flush=True)
    progress.current().end_point(outcome.status)
    return outcome


def _run_peer(cfg: M9Config, job: JobInfo) -> Outcome:
    """Process ``job.rank > 0`` of a multi-process point: the same trial beside process 0, its outcome left for
    process 0 to record (nothing of its own goes to the journal or the store)."""
    plan = make_plan(cfg)
    if not plan.accepted and cfg.trial.enforce_plan:
        return rejected(plan)  # process 0 records the rejection
    where = multihost.rank_dir(job.output_dir, job.rank)
    where.mkdir(parents=True, exist_ok=True)
    print(f"[m9] point {job.job_num} rank {job.rank}/{job.processes}: running, log {where / LOG_NAME}", flush=True)
    outcome = _run_trials(cfg, plan, job, progress.current(), None)
    multihost.leave(job.output_dir, job.rank, outcome)
    return outcome


def _guarded(job: JobInfo, errors: list[str], write):
    """A write to the tracking store that must not end the sweep when the store is down or locked: a warning, the
    error appended to ``errors``, and None; the point's record is its journal entry either way."""
    try:
        return write()
    except Exception as exc:  # noqa: BLE001 - see above
        errors.append(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        print(f"[m9] warning: point {job.job_num}: tracking store: {errors[-1]}; its record is "
              f"{job.output_dir / ENTRY}", file=sys.stderr, flush=True)
        return None


def _trial_dirs(cfg: M9Config, out: Path) -> list[Path]:
    """Where each trial of a point leaves its log and result: the point's directory, or one per repeat."""
    return [out] if cfg.trial.repeats == 1 else [out / f"repeat_{i}" for i in range(cfg.trial.repeats)]


def _run_trials(cfg: M9Config, plan: Plan, job: JobInfo, display, live) -> Outcome:
    """The point's trial, or its ``trial.repeats`` fresh trials one after another, combined. Progress events go to
    the terminal display and, when tracked, to the point's live MLflow series."""
    def on_progress(event: dict) -> None:
        display.trial(event)
        if live is not None:
            live(event)

    trials = []
    for i, trial_dir in enumerate(_trial_dirs(cfg, multihost.rank_dir(job.output_dir, job.rank))):
        label = str(job.job_num) + (f" repeat {i + 1}/{cfg.trial.repeats}" if cfg.trial.repeats > 1 else "")
        display.start_point(label, cfg.workload.n_rounds)
        trials.append(run_trial(cfg, plan, trial_dir, on_progress=on_progress, processes=job.processes))
    return trials[0] if len(trials) == 1 else combine(trials)


def summary(job: JobInfo, max_pages: int, outcome: Outcome) -> str:
    """A few lines a person reads after one point."""
    m = outcome.metrics
    head = f"[m9] point {job.job_num} ({job.run_name}): {outcome.status.upper()}"
    if outcome.status == REJECTED:
        return f"{head}\n     {outcome.signature}"
    if outcome.status == PLANNED:
        return (f"{head}: max_pages={max_pages} predicted pages_in_use={m['predicted_pages_in_use']} "
                f"round_total_generated={m['predicted_round_total_generated']}"
                + "".join(f"\n     note: {n}" for n in outcome.notes))
    if outcome.status == FAIL:
        return f"{head} ({outcome.failure_kind}): {outcome.signature}\n     log: {job.output_dir / LOG_NAME}"
    lines = [
        head,
        f"     round_total_s={m['round_total_s']:.3f}  round_total_generated={m['round_total_generated']}  "
        f"round_avg_tok_s={m['round_avg_tok_s']:.1f}  decode_avg_tok_s={m['decode_avg_tok_s']:.1f}",
        f"     decode_iters={m['decode_iters']}  iter p50/p90/max={m['iter_s_p50']:.4f}/{m['iter_s_p90']:.4f}/"
        f"{m['iter_s_max']:.4f}s  first_iter_s={m['first_iter_s']:.2f} (compile)",
        f"     pages_in_use={m['pages_in_use']} free={m['free_pages']} of max_pages={max_pages}  "
        f"length_fixed={bool(m['length_fixed'])}  peak_rss={m.get('peak_rss_bytes', 0) / 2**20:.0f} MiB",
    ]
    lines += [f"     note: {n}" for n in outcome.notes if not n.startswith(("pages_in_use=", "round_total_generated="))]
    return "\n".join(lines)
