"""One point's outcome from its repeated trials (``trial.repeats``)."""

from __future__ import annotations

from m9.outcome.outcome import Outcome
from m9.outcome.status import Status

SPREAD_METRICS = ("round_total_s", "round_avg_tok_s", "decode_avg_tok_s", "iter_s_p50", "iter_s_p90")


def median(values: list[float]) -> float:
    """The median (the mean of the middle two for an even count)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def combine(trials: list[Outcome]) -> Outcome:
    """It passes only if every trial passed; metrics are medians, with min and max beside the throughput metrics;
    each trial stays listed in ``repeats``."""
    n = len(trials)
    keys = sorted({k for t in trials for k in t.metrics})
    metrics: dict[str, float] = {}
    for key in keys:
        values = [t.metrics[key] for t in trials if t.metrics.get(key) is not None]
        if values:
            metrics[key] = median(values)
            if key in SPREAD_METRICS:
                metrics[f"{key}_min"], metrics[f"{key}_max"] = min(values), max(values)
    metrics["repeats"] = n
    metrics["repeats_passed"] = sum(t.status == Status.PASS for t in trials)
    repeats = tuple({"status": t.status, "failure_kind": t.failure_kind, "signature": t.signature,
                     **{k: t.metrics[k] for k in SPREAD_METRICS if k in t.metrics}} for t in trials)
    notes = list(dict.fromkeys(note for t in trials for note in t.notes))
    failed = [(i, t) for i, t in enumerate(trials) if t.status != Status.PASS]
    if "round_avg_tok_s" in metrics:
        notes.append(f"{n} repeats: round_avg_tok_s median {metrics['round_avg_tok_s']:.1f} "
                     f"(min {metrics['round_avg_tok_s_min']:.1f}, max {metrics['round_avg_tok_s_max']:.1f})")
    if not failed:
        return Outcome(Status.PASS, None, "", metrics, tuple(notes), trials[0].runtime, repeats)
    i, first = failed[0]
    signature = f"{len(failed)} of {n} repeats failed; repeat {i}: {first.signature}"
    return Outcome(first.status, first.failure_kind, signature, metrics, tuple(notes), first.runtime, repeats)
