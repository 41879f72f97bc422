"""The trial-level metrics of a trial's rounds (``RoundStats``, filled by the engine child), in the log's names."""

from __future__ import annotations

from m9.protocol import RoundStats


def percentile(values: list[float] | tuple[float, ...], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def trial_metrics(rounds: list[RoundStats], max_new_tokens: int) -> dict[str, float]:
    """The log's metrics for a trial. Headline numbers come from the last round: with more than one round it
    excludes compilation, which lands in the first round's ``first_iter_s`` and ``prefill_s``."""
    last, first = rounds[-1], rounds[0]
    served = sum(1 for n in last.seq_lens if n > 0)
    steady_iters = [t for r in rounds for t in (r.iter_s[1:] if r is first else r.iter_s)]
    metrics = {
        "round_total_s": last.round_total_s,
        "round_total_generated": last.round_total_generated,
        "round_avg_tok_s": last.round_total_generated / last.round_total_s if last.round_total_s else 0.0,
        "decode_avg_tok_s": last.decode_generated / last.decode_s if last.decode_s else 0.0,
        # what one user sees: decode tokens per second per served sequence (the interactivity side of the
        # throughput frontier; an SLA such as per_seq_tok_s:ge:20 asks for the most sequences at that speed)
        "per_seq_tok_s": (last.decode_generated / last.decode_s / served) if last.decode_s and served else 0.0,
        "decode_iters": len(last.iter_s),
        "prefill_s": last.prefill_s,
        "first_round_s": first.round_total_s,
        "first_prefill_s": first.prefill_s,
        "first_iter_s": first.iter_s[0] if first.iter_s else 0.0,
        "iter_s_p50": percentile(steady_iters, 50),
        "iter_s_p90": percentile(steady_iters, 90),
        "iter_s_max": max(steady_iters, default=0.0),
        "pages_in_use_after_prefill": last.pages_in_use_after_prefill,
        "free_pages_after_prefill": last.max_pages - last.pages_in_use_after_prefill,
        "pages_in_use": last.pages_in_use_after_decode,
        "free_pages": last.max_pages - last.pages_in_use_after_decode,
        "length_fixed": int(all(n == max_new_tokens for r in rounds for n in r.seq_lens)),
        "min_seq_len": min(last.seq_lens, default=0),
        "empty_seqs": sum(1 for n in last.seq_lens if n == 0),
        "nonfinite_logprobs": sum(r.nonfinite_logprobs for r in rounds),
        "n_rounds_done": len(rounds),
        "compiles": sum(r.compiles for r in rounds),
        "round_compiles": last.compiles,  # 0: the headline round ran compiled code only
    }
    return metrics


def metric_names() -> frozenset[str]:
    """Names of the metrics ``trial_metrics`` records (what an SLA may name)."""
    probe = RoundStats(1.0, 0.1, (0.5,), (1,), 1, 1, 1, 0)
    return frozenset(trial_metrics([probe], 1))
