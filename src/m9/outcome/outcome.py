"""What happened to a point: a few stable statuses users can filter on, a failure kind, and a short signature.

``status`` is a ``Status``: ``pass``, ``rejected`` (the planner refused it; it never started JAX), ``fail`` or
``planned``; a failure carries a ``failure_kind`` from ``FAILURE_KINDS`` and a one-line ``signature`` (exception
type and first line, or the signal).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Optional

from m9.plan import Plan
from m9.outcome.stats import RoundStats, trial_metrics



class Status(StrEnum):
    """A point's status: what users filter on (the MLflow ``status`` tag, the matrix, the search)."""

    PASS = "pass"
    FAIL = "fail"
    REJECTED = "rejected"  # the planner refused it; it never started JAX
    PLANNED = "planned"  # trial.plan_only: accepted by the planner, not run


PASS, REJECTED, FAIL, PLANNED = Status.PASS, Status.REJECTED, Status.FAIL, Status.PLANNED
FAILURE_KINDS = ("out_of_pages", "oom", "nan", "crash", "timeout", "truncated", "unserved", "engine_error",
                 # the point's whole job ended without a result (m9.sweep.jobs): the scheduler's view of it
                 "job_killed", "job_timeout", "job_oom")
# Kinds that follow from the config alone (page and memory arithmetic, the decode budget, prefill admission): the
# same point fails the same way every time, so a search trusts one trial. The others (a crash, NaNs, a hang, an
# unexpected error) may be the hardware or the runtime having a bad moment, and are confirmed by repeating.
DETERMINISTIC_KINDS = frozenset({"out_of_pages", "oom", "truncated", "unserved", "job_oom"})

_OOM_MARKERS = ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory", "MemoryError", "Scoped allocation")


@dataclass(frozen=True)
class Outcome:
    """The record of one point, whatever happened to it."""

    status: Status
    failure_kind: Optional[str] = None
    """One of ``FAILURE_KINDS`` when status is ``fail``."""
    signature: str = ""
    """Rejection reason, or exception type and first line, or signal name."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Measurements (the log's names) and predictions (``predicted_*``)."""
    notes: tuple[str, ...] = ()
    """Short facts for the matrix's notes column."""
    runtime: dict[str, Any] = field(default_factory=dict)
    """Backend, device kind and library versions reported by the child."""
    repeats: tuple[dict[str, Any], ...] = ()
    """With ``trial.repeats`` > 1: each trial's status, failure and throughput, in order (``metrics`` then hold
    medians, with ``*_min`` / ``*_max`` beside the throughput metrics)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Outcome":
        """Inverse of ``dataclasses.asdict`` (a journal entry's ``outcome``)."""
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        return cls(**{**known, "status": Status(known["status"]), "notes": tuple(known.get("notes", ())),
                      "repeats": tuple(known.get("repeats", ()))})


@dataclass(frozen=True)
class ChildExit:
    """How the engine child ended, as the parent saw it."""

    returncode: Optional[int]
    """Exit status (negative: killed by that signal)."""
    peak_rss_bytes: int = 0
    """Largest resident size the parent observed."""
    timed_out_s: Optional[float] = None
    """Set when the parent killed the child at ``trial.timeout_s``."""
    memory_kill: Optional[str] = None
    """Set when the parent killed the child past ``trial.memory_limit_gb``."""
    lingered_s: Optional[float] = None
    """Set when the child wrote its result but did not exit, and was killed that many seconds later."""


def _error_kind_and_line(error: dict) -> tuple[str, str]:
    # The informative line is often deep in a JAX runtime error (a host callback's traceback): find it.
    lines = [ln.strip() for ln in (error.get("message") or "").splitlines() if ln.strip()]
    for kind, markers in (("out_of_pages", ("Out of free pages",)), ("oom", _OOM_MARKERS)):
        for line in lines:
            for marker in markers:
                if marker in line:
                    return kind, line[line.index(marker):][:300]
        if any(m in error.get("type", "") for m in markers):
            return kind, lines[0][:300] if lines else ""
    return "engine_error", lines[0][:300] if lines else ""


def _exit_signature(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode} without a result"


def rejected(plan: Plan) -> Outcome:
    """The planner refused the point."""
    return Outcome(status=REJECTED, signature="; ".join(plan.rejections), metrics=_predictions(plan))


def job_lost(plan: Plan, kind: str, signature: str) -> Outcome:
    """The point's job ended without a result: the scheduler's verdict, beside the plan's predictions."""
    return Outcome(status=FAIL, failure_kind=kind, signature=signature, metrics=_predictions(plan))


def planned(plan: Plan) -> Outcome:
    """The planner accepted the point and was asked only to plan it."""
    return Outcome(status=PLANNED, metrics=_predictions(plan), notes=plan.warnings)


def _predictions(plan: Plan) -> dict[str, float]:
    return {
        "max_pages": plan.max_pages,
        "pages_required_est": plan.pages_required_est,
        "decode_budget": plan.decode_budget,
        "predicted_pages_in_use": plan.predicted_pages_in_use,
        "predicted_round_total_generated": plan.predicted_generated,
        "kv_cache_bytes": plan.kv_cache_bytes,
        "weight_bytes": plan.weight_bytes,
    }


def classify(
    plan: Plan, result: Optional[dict], end: ChildExit, max_new_tokens: int, length_fixed: bool
) -> Outcome:
    """Turn what the child left behind (its result file, or how it ended) into an Outcome."""
    metrics = _predictions(plan)
    notes: list[str] = [f"plan overridden: {r}" for r in plan.rejections]
    result = result or {}
    runtime = result.get("runtime", {})
    metrics.update({k: v for k, v in result.get("fixed_costs", {}).items()})
    metrics["peak_rss_bytes"] = max(result.get("peak_rss_bytes", 0), end.peak_rss_bytes)
    if "worker" in result:  # 1: the trial started its process; more: a warm worker's n-th trial
        metrics["worker_trial"] = result["worker"]["trial"]
    rounds = [RoundStats(**{**r, "iter_s": tuple(r["iter_s"]), "seq_lens": tuple(r["seq_lens"])})
              for r in result.get("rounds", [])]
    if rounds:
        metrics.update(trial_metrics(rounds, max_new_tokens))
        notes.append(f"pages_in_use={metrics['pages_in_use']} free={metrics['free_pages']}")
        notes.append(f"round_total_generated={metrics['round_total_generated']}")
        if metrics["pages_in_use"] != plan.predicted_pages_in_use:
            notes.append(f"pages_in_use differs from predicted {plan.predicted_pages_in_use}")
        if metrics["round_total_generated"] != plan.predicted_generated:
            notes.append(f"round_total_generated differs from predicted {plan.predicted_generated}")
        if metrics["empty_seqs"]:
            notes.append(f"{metrics['empty_seqs']} sequences came back empty")

    def failed(kind: str, signature: str) -> Outcome:
        return Outcome(FAIL, kind, signature, metrics, tuple(notes), runtime)

    complete = bool(result.get("complete"))  # the child wrote its whole result: how it then exited is a note
    if complete and (end.lingered_s is not None or end.returncode):
        notes.append(f"child did not exit cleanly after its result ({_exit_signature(end.returncode or -9)}"
                     + (f" after {end.lingered_s:g}s" if end.lingered_s is not None else "") + ")")
    if not complete and end.memory_kill is not None:
        return failed("oom", end.memory_kill)
    if not complete and end.timed_out_s is not None:
        return failed("timeout", f"no result after trial.timeout_s={end.timed_out_s:g}s (killed)")
    if "error" in result:
        kind, line = _error_kind_and_line(result["error"])
        return failed(kind, f"{result['error']['type']}: {line}" if line else result["error"]["type"])
    if not complete or not rounds:
        return failed("crash", _exit_signature(end.returncode if end.returncode is not None else -1))
    if metrics["nonfinite_logprobs"]:
        return failed("nan", f"{metrics['nonfinite_logprobs']} non-finite logprobs")
    served = len(rounds[-1].seq_lens) - metrics["empty_seqs"]
    if served < plan.num_seqs:
        return failed("unserved", f"{plan.num_seqs - served} of {plan.num_seqs} sequences came back empty or missing "
                                  "(prompts the prefill did not admit)")
    if not metrics["length_fixed"]:
        short = f"min sequence {metrics['min_seq_len']} < max_new_tokens={max_new_tokens}"
        if length_fixed:
            return failed("truncated", short)
        notes.append(f"not length-fixed: {short}")
    return Outcome(PASS, None, "", metrics, tuple(notes), runtime)


SPREAD_METRICS = ("round_total_s", "round_avg_tok_s", "decode_avg_tok_s", "iter_s_p50", "iter_s_p90")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def combine(trials: list[Outcome]) -> Outcome:
    """One point's outcome from its repeated trials: it passes only if every trial passed; metrics are medians,
    with min and max beside the throughput metrics; each trial stays listed in ``repeats``."""
    n = len(trials)
    keys = sorted({k for t in trials for k in t.metrics})
    metrics: dict[str, float] = {}
    for key in keys:
        values = [t.metrics[key] for t in trials if t.metrics.get(key) is not None]
        if values:
            metrics[key] = _median(values)
            if key in SPREAD_METRICS:
                metrics[f"{key}_min"], metrics[f"{key}_max"] = min(values), max(values)
    metrics["repeats"] = n
    metrics["repeats_passed"] = sum(t.status == PASS for t in trials)
    repeats = tuple({"status": t.status, "failure_kind": t.failure_kind, "signature": t.signature,
                     **{k: t.metrics[k] for k in SPREAD_METRICS if k in t.metrics}} for t in trials)
    notes = list(dict.fromkeys(note for t in trials for note in t.notes))
    failed = [(i, t) for i, t in enumerate(trials) if t.status != PASS]
    if "round_avg_tok_s" in metrics:
        notes.append(f"{n} repeats: round_avg_tok_s median {metrics['round_avg_tok_s']:.1f} "
                     f"(min {metrics['round_avg_tok_s_min']:.1f}, max {metrics['round_avg_tok_s_max']:.1f})")
    if not failed:
        return Outcome(PASS, None, "", metrics, tuple(notes), trials[0].runtime, repeats)
    i, first = failed[0]
    signature = f"{len(failed)} of {n} repeats failed; repeat {i}: {first.signature}"
    return Outcome(first.status, first.failure_kind, signature, metrics, tuple(notes), first.runtime, repeats)
