"""How the schema's sections refuse a value: ``ConfigError``, one line naming the key."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A value no point could run with; the message names the key."""


def positive(section: str, **values: Any) -> None:
    for key, value in values.items():
        if value is not None and value <= 0:
            raise ConfigError(f"{section}.{key}={value} must be > 0")


def one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} must be one of {', '.join(allowed)}")
