"""The experiment matrix in the log's format: one markdown row per point."""

from __future__ import annotations

from typing import Any

COLUMNS = ("ID", "overrides", "max_seqs", "max_pages", "prompts", "status", "round_total_s", "round_avg_tok_s", "notes")


def status_label(outcome: dict[str, Any]) -> str:
    """``PASS``, ``REJECTED`` or ``FAIL (kind)``."""
    if outcome["status"] == "fail":
        return f"FAIL ({outcome['failure_kind']})"
    return outcome["status"].upper()


def _notes(outcome: dict[str, Any]) -> str:
    parts = [outcome["signature"]] if outcome["signature"] else []
    if outcome["status"] == "planned":
        m = outcome["metrics"]
        parts.append(f"predicted pages_in_use={m['predicted_pages_in_use']} "
                     f"round_total_generated={m['predicted_round_total_generated']}")
    parts += list(outcome["notes"])
    return "; ".join(p.replace("|", "\\|") for p in parts)


def row(entry: dict[str, Any]) -> tuple[str, ...]:
    """One journal entry as matrix cells."""
    outcome = entry["outcome"]
    metrics = outcome["metrics"]
    passed = outcome["status"] == "pass"
    return (
        str(entry["job_num"]),
        "`" + (" ".join(entry["overrides"]) or "default") + "`",
        str(entry["max_seqs"]),
        str(entry["max_pages"]),
        str(entry["prompts"]),
        status_label(outcome),
        f"{metrics['round_total_s']:.3f}s" if passed else "-",
        f"{metrics['round_avg_tok_s']:.1f}" if passed else "-",
        _notes(outcome),
    )


def render(entries: list[dict[str, Any]]) -> str:
    """Markdown table of a sweep's points."""
    aligns = ("---", "---", "---:", "---:", "---:", "---", "---:", "---:", "---")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(row(e)) + " |" for e in entries]
    return "\n".join(lines)
