"""One point, as a straight line: plan -> run (isolated) -> outcome -> journal -> tracking -> summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

from m9.config import M9Config, to_dict
from m9.inputs import checkpoint, device, prompts
from m9.outcome.outcome import Outcome, job_lost, planned, refused, rejected
from m9.outcome.repeats import combine
from m9.outcome.status import FailureKind, Status
from m9.plan import Inputs, Plan, early_refusals, make_plan, too_big_to_build
from m9.plan import refused as refused_plan
from m9.record import tracking
from m9.record.journal import make_record, point_params, write_record
from m9.record.provenance import JobInfo
from m9.run import multihost, progress
from m9.run.child import fault_gate
from m9.run.protocol import ProgressEvent
from m9.run.trial import run_trial


def plan_point(cfg: M9Config, processes: Optional[int] = None) -> Plan:
    """The planning edge: the chip's memory and the point's inputs are read here and handed to the planner's
    arithmetic; the prompts are built unless there are too many to build, which the config alone tells.
    ``processes``: how many the point runs as, where it is about to run (a global mesh needs one per host)."""
    memory = device.memory_bytes(cfg.accelerator)
    too_big = too_big_to_build(cfg)
    if too_big:
        return refused_plan(cfg, early_refusals(cfg, memory, processes) or [too_big])
    built = prompts.build(cfg)
    return make_plan(cfg, Inputs(built.lengths, len(built.stop_ids), memory,
                                 checkpoint.max_position_embeddings(cfg.model), processes))


def run_point(cfg: M9Config, job: JobInfo) -> Outcome:
    """Plan the point, run it if the plan allows, and record what happened. Never raises for a failed trial."""
    if job.rank > 0:
        return _run_peer(cfg, job)
    plan = plan_point(cfg, None if cfg.trial.plan_only else job.processes)
    point = job.point_dir
    point.path.mkdir(parents=True, exist_ok=True)
    point.config.write_text(json.dumps(to_dict(cfg), indent=1))
    for warning in plan.warnings:
        progress.warn_once(warning)
    run_id, store_errors = None, []
    outcome = _without_trial(cfg, plan)
    if outcome is None:
        print(f"[m9] point {job.job_num} ({job.label}): running, log {point.trials(cfg.trial.repeats)[0].log}",
              flush=True)
        run_id = _guarded(job, store_errors, lambda: tracking.start_point(cfg.tracking, job, point_params(cfg, plan)))
        live = tracking.LiveSeries(cfg.tracking, run_id) if run_id else None
        try:
            outcome, peers = _run_trials(cfg, plan, job, live)
            if peers is not None:  # the other processes' trials ran alongside: the point passes only if all did
                wait = cfg.trial.timeout_s
                outcome = multihost.combine(outcome, multihost.gather(point, job.processes, wait, peers),
                                            peers.last_beats(), replicas=cfg.mesh.hosts == "replicas")
        except BaseException:  # interrupted: the run must not stay RUNNING
            if run_id:
                _guarded(job, store_errors, lambda: tracking.kill_point(cfg.tracking, run_id))
            raise
        if live is not None:
            live.flush()
    artifacts = [point.config, *(p for t in point.trials(cfg.trial.repeats) for p in (t.log, t.result))]
    return _record(cfg.tracking, job, point_params(cfg, plan), outcome, artifacts, run_id, store_errors,
                   tracked=not cfg.trial.plan_only)


def _without_trial(cfg: M9Config, plan: Plan) -> Optional[Outcome]:
    """The point's outcome when its trial does not run, else None (it runs when the planner accepted it, or the user
    overrules the planner, ``trial.enforce_plan=false``, for a point it could size). The fault gate refused the
    command line already; a job whose environment differs is refused here."""
    gate = fault_gate(cfg)
    if gate:
        return refused(gate)
    if cfg.trial.plan_only:
        return planned(plan) if plan.accepted else rejected(plan)
    return None if plan.accepted or (not cfg.trial.enforce_plan and plan.sized) else rejected(plan)


def record_lost(cfg: M9Config, job: JobInfo, signature: str, kind: FailureKind, logs: tuple[str, ...] = ()) -> Outcome:
    """Record a point whose job ended without a result (run by the sweeping process, not the job): the failure the
    scheduler saw, on the run the job had opened if it got that far, else on a new one; journal first."""
    plan = plan_point(cfg)
    store_errors: list[str] = []
    run_id = _guarded(job, store_errors, lambda: tracking.job_run(cfg.tracking, job))
    artifacts = [*map(Path, logs), *(t.log for t in job.point_dir.trials(cfg.trial.repeats))]
    return _record(cfg.tracking, job, point_params(cfg, plan), job_lost(plan, kind, signature), artifacts, run_id,
                   store_errors, tracked=True)


def record_refused(tracking_cfg, job: JobInfo, params: Mapping[str, Any], reason: str, tracked: bool) -> Outcome:
    """Record a search's probe whose value the schema refuses: a rejected point, with the values it was given."""
    return _record(tracking_cfg, job, params, refused(reason), [], None, [], tracked)


def _record(tracking_cfg, job: JobInfo, params: Mapping[str, Any], outcome: Outcome, artifacts: list[Path],
            run_id: Optional[str], store_errors: list[str], tracked: bool) -> Outcome:
    """Journal first (the store may be down, the record must not be lost), then the store: the outcome lands on
    ``run_id`` when the point's run is open, else on a run of its own; then the summary."""
    record = make_record(job, params, outcome)
    try:
        write_record(record)
        unjournaled = None
    except OSError as exc:  # a full disk, a read-only folder: the store still gets the point, then the sweep stops
        unjournaled = exc
    if tracked:  # a plan measures nothing: it is not tracked
        run_id = _guarded(job, store_errors, lambda: (
            tracking.finish_point(tracking_cfg, run_id, record, artifacts, job.output_dir) if run_id
            else tracking.record_point(tracking_cfg, job, record, artifacts, job.output_dir)))
        if unjournaled is None:
            write_record(record.replace(run_id=run_id, tracking_error=store_errors[-1] if store_errors else None))
    if unjournaled is not None:
        raise unjournaled
    print(summary(job, record.max_pages, outcome), flush=True)
    progress.current().end_point(outcome.status)
    return outcome


def _run_peer(cfg: M9Config, job: JobInfo) -> Outcome:
    """Process ``job.rank > 0`` of a multi-process point: the same trial beside process 0, its outcome left for
    process 0 to record (nothing of its own goes to the journal or the store)."""
    multihost.clear(job.point_dir, job.rank)
    plan = plan_point(cfg, None if cfg.trial.plan_only else job.processes)
    outcome = _without_trial(cfg, plan)
    if outcome is not None:  # process 0 records the point as it sees it
        if not cfg.trial.plan_only:  # process 0 may be waiting for it: say at once why this process did not run
            multihost.leave(job.point_dir, job.rank, Outcome(Status.FAIL, FailureKind.ENGINE_ERROR,
                                                             f"did not run here: {outcome.signature}"))
        return outcome
    where = job.point_dir.for_rank(job.rank)
    where.path.mkdir(parents=True, exist_ok=True)
    print(f"[m9] point {job.job_num} rank {job.rank}/{job.processes}: running, log {where.trials(1)[0].log}",
          flush=True)
    outcome, _ = _run_trials(cfg, plan, job, None)
    multihost.leave(job.point_dir, job.rank, outcome)
    return outcome


def _guarded(job: JobInfo, errors: list[str], write):
    """A write to the tracking store that must not end the sweep when the store is down or locked: a warning, the
    error appended to ``errors``, and None; the point's record is its journal entry either way."""
    try:
        return write()
    except Exception as exc:  # noqa: BLE001 - see above
        errors.append(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        print(f"[m9] warning: point {job.job_num}: tracking store: {errors[-1]}; its record is "
              f"{job.point_dir.entry}", file=sys.stderr, flush=True)
        return None


def _run_trials(cfg: M9Config, plan: Plan, job: JobInfo, live) -> tuple[Outcome, Optional[multihost.Peers]]:
    """The point's trial, or its ``trial.repeats`` fresh trials one after another, combined, and (a point of
    several processes) the last trial's peers as this process watched them. Progress events go to the terminal
    display and, when tracked, to the point's live MLflow series."""
    display = progress.current()

    def on_progress(event: ProgressEvent) -> None:
        display.trial(event)
        if live is not None:
            live(event)

    trials, peers, repeats = [], None, cfg.trial.repeats
    for i, trial in enumerate(job.point_dir.for_rank(job.rank).trials(repeats)):
        label = str(job.job_num) + (f" repeat {i + 1}/{repeats}" if repeats > 1 else "")
        display.start_point(label, cfg.workload.n_rounds)
        peers = multihost.Peers(job.point_dir, job.rank, job.processes, i, repeats) if job.processes > 1 else None
        blocking = peers if cfg.mesh.hosts == "global" else None  # a global mesh's engine waits on its peers
        trials.append(run_trial(cfg, plan, trial, on_progress=on_progress, processes=job.processes, peers=blocking))
    return (trials[0] if len(trials) == 1 else combine(trials)), peers


def summary(job: JobInfo, max_pages: Optional[int], outcome: Outcome) -> str:
    """A few lines a person reads after one point."""
    m = outcome.metrics
    head = f"[m9] point {job.job_num} ({job.label}): {outcome.status.upper()}"
    if outcome.status == Status.REJECTED:
        return f"{head}\n     {outcome.signature}"
    if outcome.status == Status.PLANNED:
        return (f"{head}: max_pages={max_pages} predicted pages_in_use={m['predicted_pages_in_use']} "
                f"round_total_generated={m['predicted_round_total_generated']}"
                + "".join(f"\n     note: {n}" for n in outcome.notes))
    if outcome.status == Status.FAIL:
        log = job.point_dir.trials(1)[0].log
        return f"{head} ({outcome.failure_kind}): {outcome.signature}\n     log: {log}"
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
