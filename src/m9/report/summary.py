"""What a person reads after one point: its status line and, for a pass, its headline numbers."""

from __future__ import annotations

from m9.outcome.status import Status
from m9.record.journal import PointRecord
from m9.record.provenance import JobInfo


def point_summary(job: JobInfo, record: PointRecord) -> str:
    """A few lines on one recorded point."""
    outcome, max_pages = record.outcome, record.max_pages
    m = outcome.metrics
    head = f"[m9] point {job.job_num} ({job.label}): {outcome.status.upper()}"
    if outcome.status == Status.REJECTED:
        return f"{head}\n     {outcome.signature}"
    if outcome.status == Status.PLANNED:  # its notes are the plan's warnings, said once for the sweep already
        return (f"{head}: max_pages={max_pages} predicted pages_in_use={m['predicted_pages_in_use']} "
                f"round_total_generated={m['predicted_round_total_generated']}")
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
