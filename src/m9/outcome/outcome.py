"""What happened to a point: its status, a failure kind, a one-line signature (exception type and first line, the
signal, or the planner's reason), its measurements and predictions, and notes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from m9.config import M9Config
from m9.outcome.status import FailureKind, Status
from m9.plan import Plan


@dataclass(frozen=True)
class Outcome:
    """The record of one point, whatever happened to it."""

    status: Status
    failure_kind: Optional[FailureKind] = None
    """Set when status is ``fail``."""
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

    def to_json(self) -> dict[str, Any]:
        """Plain data (a journal entry's ``outcome``)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Outcome":
        """Inverse of ``to_json``."""
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        kind = known.get("failure_kind")
        return cls(**{**known, "status": Status(known["status"]), "failure_kind": FailureKind(kind) if kind else None,
                      "notes": tuple(known.get("notes", ())), "repeats": tuple(known.get("repeats", ()))})


def predictions(plan: Plan) -> dict[str, float]:
    """What the plan predicts, as metrics recorded beside the measurements (what it could not size is left out)."""
    values = {
        "pages_required_est": plan.pages_required_est,
        "decode_budget": plan.decode_budget,
        "predicted_pages_in_use": plan.predicted_pages_in_use,
        "predicted_round_total_generated": plan.predicted_generated,
        "kv_cache_bytes": plan.kv_cache_bytes,
        "weight_bytes": plan.weight_bytes,
        "predicted_kv_cache_bytes_per_chip": plan.kv_cache_bytes_per_chip,
        "predicted_weight_bytes_per_chip": plan.weight_bytes_per_chip,
        "state_bytes": plan.state_bytes,
    }
    return {k: v for k, v in values.items() if v is not None}


def not_run(cfg: M9Config, plan: Plan) -> Optional[Outcome]:
    """The point's outcome when its trial does not run, else None: it runs when the planner accepted it, or when the
    user overrules the planner (``trial.enforce_plan=false``) for a point it could size; ``trial.plan_only`` plans
    it and no more."""
    if cfg.trial.plan_only:
        return planned(plan) if plan.accepted else rejected(plan)
    return None if plan.accepted or (not cfg.trial.enforce_plan and plan.sized) else rejected(plan)


def rejected(plan: Plan) -> Outcome:
    """The planner refused the point."""
    return Outcome(status=Status.REJECTED, signature="; ".join(plan.rejections), metrics=predictions(plan))


def refused(reason: str) -> Outcome:
    """The schema refused a search's probe value: a rejection that had no plan to make."""
    return Outcome(status=Status.REJECTED, signature=reason)


def job_lost(plan: Plan, kind: FailureKind, signature: str) -> Outcome:
    """The point's job ended without a result: the scheduler's verdict, beside the plan's predictions."""
    return Outcome(status=Status.FAIL, failure_kind=kind, signature=signature, metrics=predictions(plan))


def planned(plan: Plan) -> Outcome:
    """The planner accepted the point and was asked only to plan it."""
    return Outcome(status=Status.PLANNED, metrics=predictions(plan), notes=plan.warnings)
