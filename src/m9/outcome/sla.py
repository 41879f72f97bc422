"""Service-level conditions over a point's recorded metrics: ``round_avg_tok_s>=2000``, ``iter_s_p90<=0.05``.

A boundary search counts a passing point as stable only when it meets every condition (ANDed); the matrix and the
report name the conditions a point missed. In Hydra overrides, where ``>`` and ``<`` need quotes, the same
conditions read ``round_avg_tok_s:ge:2000``.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from m9.outcome.stats import metric_names

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_WORDS = {"ge": ">=", "le": "<=", "gt": ">", "lt": "<"}
_SPEC = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|>|<|:(?:ge|le|gt|lt):)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    """One SLA condition: ``metric op threshold``."""

    metric: str
    op: str
    threshold: float

    def holds(self, metrics: dict[str, float]) -> bool:
        """True when the metric is recorded and meets the threshold."""
        value = metrics.get(self.metric)
        return value is not None and _OPS[self.op](value, self.threshold)

    def shortfall(self, metrics: dict[str, float]) -> float:
        """How far ``metrics`` miss the condition, relative to its threshold: > 0 when missed (1 when the metric
        is not recorded), <= 0 when it holds (how much room is left)."""
        value = metrics.get(self.metric)
        if value is None:
            return 1.0
        below = self.threshold - value if self.op in (">=", ">") else value - self.threshold
        miss = below / (abs(self.threshold) or 1.0)
        return max(miss, 1e-9) if not self.holds(metrics) else min(miss, 0.0)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"


def parse_sla(specs: list[str] | tuple[str, ...] | None, key: str = "hydra.sweeper.sla") -> tuple[Condition, ...]:
    """Parse SLA conditions; a bad one raises ValueError naming ``key`` and the reason."""
    conditions = []
    known = metric_names()
    for spec in specs or ():
        m = _SPEC.match(str(spec))
        if not m:
            raise ValueError(f"{key}: {spec!r} is not 'metric>=number' (or metric:ge:number; ops >=, <=, >, <)")
        metric, op, number = m.groups()
        if metric not in known:
            raise ValueError(f"{key}: {metric!r} is not a recorded metric (e.g. {', '.join(sorted(known)[:6])}, ...)")
        conditions.append(Condition(metric, _WORDS.get(op.strip(":"), op), float(number)))
    return tuple(conditions)


def misses(conditions: tuple[Condition, ...], metrics: dict[str, float]) -> list[str]:
    """The conditions ``metrics`` miss, each as ``metric=value misses condition``."""
    return [f"{c.metric}={metrics.get(c.metric, float('nan')):g} misses {c}" for c in conditions
            if not c.holds(metrics)]
