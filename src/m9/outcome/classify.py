"""Turn what the engine child left behind (its ``TrialResult``, or how it ended) into an ``Outcome``."""

from __future__ import annotations

import signal
from dataclasses import asdict
from typing import Optional

from m9.config import M9Config
from m9.outcome.outcome import Outcome, predictions
from m9.outcome.stats import trial_metrics
from m9.outcome.status import FailureKind, Status
from m9.plan import Plan
from m9.protocol import ChildExit
from m9.protocol import ChildError, TrialResult

_OOM_MARKERS = ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory", "MemoryError", "Scoped allocation")


def _error_kind_and_line(error: ChildError) -> tuple[FailureKind, str]:
    # The informative line is often deep in a JAX runtime error (a host callback's traceback): find it.
    lines = [ln.strip() for ln in (error.message or "").splitlines() if ln.strip()]
    for kind, markers in ((FailureKind.OUT_OF_PAGES, ("Out of free pages",)), (FailureKind.OOM, _OOM_MARKERS)):
        for line in lines:
            for marker in markers:
                if marker in line:
                    return kind, line[line.index(marker):][:300]
        if any(m in error.type for m in markers):
            return kind, lines[0][:300] if lines else ""
    return FailureKind.ENGINE_ERROR, lines[0][:300] if lines else ""


def _exit_signature(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode} without a result"


def classify(cfg: M9Config, plan: Plan, result: Optional[TrialResult], end: ChildExit) -> Outcome:
    """The trial's outcome: its measurements beside the plan's predictions, and the first thing that went wrong."""
    num_seqs, max_new_tokens, length_fixed = cfg.num_seqs, cfg.workload.max_new_tokens, cfg.workload.length_fixed
    metrics = predictions(plan)
    notes: list[str] = [f"plan overridden: {r}" for r in plan.rejections]
    rounds = list(result.rounds) if result else []
    runtime = asdict(result.runtime) if result and result.runtime else {}
    if result is not None:
        metrics.update(result.fixed_costs)
        metrics["worker_trial"] = result.worker_trial  # 1: the trial started its process; n: a warm worker's n-th
    if result is not None and result.sharding is not None:  # what the mesh held, read from the arrays
        got = result.sharding
        metrics.update(chips=got.devices, weight_bytes_per_chip=got.weight_bytes_per_chip,
                       kv_cache_bytes_per_chip=got.kv_cache_bytes_per_chip)
        runtime["mesh"] = "x".join(map(str, got.mesh))
        for name in ("weight_bytes_per_chip", "kv_cache_bytes_per_chip"):
            if metrics[name] != metrics.get(f"predicted_{name}"):
                notes.append(f"{name}={metrics[name]} differs from predicted {metrics.get(f'predicted_{name}')}")
    metrics["peak_rss_bytes"] = max(result.peak_rss_bytes if result else 0, end.peak_rss_bytes)
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

    def failed(kind: FailureKind, signature: str) -> Outcome:
        return Outcome(Status.FAIL, kind, signature, metrics, tuple(notes), runtime)

    complete = bool(result and result.complete)  # the child wrote its whole result: how it then exited is a note
    if complete and (end.lingered_s is not None or end.returncode):
        notes.append(f"child did not exit cleanly after its result ({_exit_signature(end.returncode or -9)}"
                     + (f" after {end.lingered_s:g}s" if end.lingered_s is not None else "") + ")")
    if not complete and end.memory_kill is not None:
        return failed(FailureKind.OOM, end.memory_kill)
    if not complete and end.peer_gone is not None:
        return failed(FailureKind.TIMEOUT, f"stopped waiting on a peer: {end.peer_gone} (killed)")
    if not complete and end.timed_out_s is not None:
        return failed(FailureKind.TIMEOUT, f"no result after trial.timeout_s={end.timed_out_s:g}s (killed)")
    if result is not None and result.error is not None:
        kind, line = _error_kind_and_line(result.error)
        return failed(kind, f"{result.error.type}: {line}" if line else result.error.type)
    if not complete or not rounds:
        return failed(FailureKind.CRASH, _exit_signature(end.returncode if end.returncode is not None else -1))
    if metrics["nonfinite_logprobs"]:
        return failed(FailureKind.NAN, f"{metrics['nonfinite_logprobs']} non-finite logprobs")
    served = len(rounds[-1].seq_lens) - metrics["empty_seqs"]
    if served < num_seqs:
        return failed(FailureKind.UNSERVED, f"{num_seqs - served} of {num_seqs} sequences came back empty or missing "
                                            "(prompts the prefill did not admit)")
    if not metrics["length_fixed"]:
        short = f"min sequence {metrics['min_seq_len']} < max_new_tokens={max_new_tokens}"
        if length_fixed:
            return failed(FailureKind.TRUNCATED, short)
        notes.append(f"not length-fixed: {short}")
    return Outcome(Status.PASS, None, "", metrics, tuple(notes), runtime)
