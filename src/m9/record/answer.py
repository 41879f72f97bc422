"""What a sweeper answers, as the sweep's record keeps it and its report shows it: one protocol every sweeper's answer
implements, so that closing, printing and reporting a sweep never ask which sweeper ran.

An answer is kept in ``m9_sweep.json`` (and in ``<name>.json`` beside it) with ``_target_``, the import path of its
class, as Hydra names what it instantiates: ``m9 report`` reads any sweeper's answer back without knowing the
sweepers, and a new sweeper's answer is reported without a line changed here or in ``m9.report``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional, Protocol, Sequence, runtime_checkable

from m9.record.journal import PointRecord

TARGET = "_target_"


@runtime_checkable
class Answer(Protocol):
    """A sweeper's answer."""

    name: ClassVar[str]
    """Its file in the sweep folder (``<name>.json``)."""
    sla: tuple[str, ...]
    """The SLA conditions it judged passes by (the matrix notes a pass that misses one)."""

    def statement(self) -> str:
        """The answer in a sentence."""

    def summary(self, records: Sequence[PointRecord]) -> dict[str, Any]:
        """The facts the sweep's parent run records (tags and metrics), from the answer and the sweep's points."""

    def title(self) -> str:
        """What the sweep was, in a few words: the report's title."""

    def headline(self) -> str:
        """What the terminal shows at the end of the sweep, under the matrix: ``boundary: ...``, ``optimum: ...``
        (more lines may follow, each starting ``[m9] ``)."""

    def tables(self) -> str:
        """Markdown tables printed under the matrix at the end of the sweep ('' for none)."""

    def section(self, records: Sequence[PointRecord]) -> list[str]:
        """The report's section on the answer (markdown lines)."""

    def plots(self, out_dir: Path) -> list[Path]:
        """The answer's own plots, written into ``out_dir``."""

    def to_json(self) -> dict[str, Any]:
        """Plain data (``from_json`` reads it back)."""


def dump(answer: Answer) -> dict[str, Any]:
    """The answer as ``m9_sweep.json`` keeps it: its data, and the class that reads it back."""
    cls = type(answer)
    return {TARGET: f"{cls.__module__}.{cls.__qualname__}", **answer.to_json()}


def load(data: Optional[Mapping[str, Any]]) -> Optional[Answer]:
    """An answer kept by ``dump``; None for none, or for one this m9 cannot read (another version's: the sweep is
    then reported from its points alone)."""
    if not isinstance(data, Mapping) or not isinstance(data.get(TARGET), str):
        return None
    module, _, name = data[TARGET].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        return cls.from_json({k: v for k, v in data.items() if k != TARGET})
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):
        return None
