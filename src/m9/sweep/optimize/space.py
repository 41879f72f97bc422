"""An optimisation's search space, read from Hydra's sweep syntax on the command line (or a preset's ``params``).

- ``key=a,b,c`` and ``key=choice(a,b,c)``: one of these values;
- ``key=range(64,512,64)``: one of ``range``'s values (a choice, in order);
- ``key=interval(8,128)``: any value from 8 to 128, both included: an integer for an integer key (the schema says),
  else a float; ``tag(log, interval(...))`` samples on a log scale.

Every other override is fixed: shared by every trial. Pure: no Optuna, no engine.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep

from m9.compose import BadInput, one_line
from m9.config import is_integer_type, key_type

Value = Any
"""A knob's value: int, float, bool or str, as Hydra parsed it."""
Params = dict[str, Value]
"""One configuration: each knob's value, by key."""

MAX_ENUMERATED = 1024
"""A finite space up to this many configurations is planned and looked up in the store whole, before any trial."""


@dataclass(frozen=True)
class Knob:
    """One swept key: a set of values, or an interval."""

    key: str
    choices: tuple[Value, ...] = ()
    """The values of a choice (empty for an interval)."""
    low: Optional[float] = None
    high: Optional[float] = None
    integer: bool = False
    """An interval of integers (the key's type in the schema)."""
    log: bool = False

    @property
    def finite(self) -> bool:
        return bool(self.choices) or self.integer

    def values(self) -> tuple[Value, ...]:
        """Every value, for a finite knob."""
        if self.choices:
            return self.choices
        return tuple(range(int(self.low), int(self.high) + 1))

    def line(self, value: Value) -> str:
        """The override that sets this knob to ``value``."""
        if isinstance(value, float) and value.is_integer() and self.integer:
            value = int(value)
        return f"{self.key}={value}"


@dataclass(frozen=True)
class Space:
    """The knobs an optimisation searches, and the overrides every trial shares."""

    knobs: tuple[Knob, ...]
    fixed: tuple[str, ...] = ()

    @property
    def size(self) -> Optional[int]:
        """How many configurations there are (None: an interval of floats)."""
        if not all(k.finite for k in self.knobs):
            return None
        return math.prod(len(k.values()) for k in self.knobs)

    def overrides(self, params: Mapping[str, Value]) -> list[str]:
        """One trial's override line: the fixed overrides, then each knob's value."""
        return [*self.fixed, *(k.line(params[k.key]) for k in self.knobs)]

    def key(self, params: Mapping[str, Value]) -> tuple[Value, ...]:
        """What identifies a configuration (its values in knob order)."""
        return tuple(_plain(params[k.key]) for k in self.knobs)

    def every(self) -> list[Params]:
        """Every configuration of a finite space, the last knob varying fastest."""
        return [dict(zip((k.key for k in self.knobs), combo))
                for combo in itertools.product(*(k.values() for k in self.knobs))]

    def label(self, params: Mapping[str, Value]) -> str:
        """``max_tokens_per_round=256 max_rounds=64``: the knobs' last names and values."""
        return " ".join(f"{k.key.rsplit('.', 1)[-1]}={_plain(params[k.key])}" for k in self.knobs)


def _plain(value: Value) -> Value:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def parse_space(overrides: list[str], config_loader: Any = None) -> Space:
    """The space in ``overrides``; bad syntax or an empty space raises BadInput naming the key."""
    try:
        parsed = OverridesParser.create(config_loader=config_loader).parse_overrides(overrides)
    except Exception as exc:  # Hydra's grammar errors
        raise BadInput(one_line(exc)) from exc
    entries: dict[str, Knob | str] = {}  # a key's last override wins (the command line over a preset)
    for o in parsed:
        key = o.get_key_element()
        if not o.is_sweep_override():
            entries[key] = o.input_line
            continue
        if o.is_discrete_sweep():
            values = tuple(dict.fromkeys(o.sweep_iterator()))  # once each, in order
            if not values:
                raise BadInput(f"{key}: {o.input_line.split('=', 1)[1]} gives no value")
            entries[key] = Knob(key, choices=values)
            continue
        sweep = o.value()
        assert isinstance(sweep, IntervalSweep)
        low, high, integer = float(sweep.start), float(sweep.end), is_integer_type(key_type(key) or "")
        if integer:
            low, high = float(math.ceil(low)), float(math.floor(high))
        if low > high:
            raise BadInput(f"{key}: interval({sweep.start:g}, {sweep.end:g}) is empty")
        log = "log" in sweep.tags
        if log and low <= 0:
            raise BadInput(f"{key}: a log interval needs a positive start, not {sweep.start:g}")
        entries[key] = Knob(key, low=low, high=high, integer=integer, log=log)
    knobs = tuple(e for e in entries.values() if isinstance(e, Knob))
    fixed = tuple(e for e in entries.values() if isinstance(e, str))
    if not knobs:
        raise BadInput("an optimisation needs a space: sweep at least one key, e.g. "
                       "scheduler.max_tokens_per_round=choice(64,128,256) or engine.max_seqs=interval(8,128)")
    return Space(knobs, fixed)
