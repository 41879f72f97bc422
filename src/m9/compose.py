"""Check every point of a command line before anything launches.

Hydra composes each job of a sweep only when it launches it, so a bad value in the last point of a grid would
fail after the first points ran; and its composition errors span several lines. Here a grid (command line sweeps
and an experiment's ``hydra.sweeper.params``) is expanded and each point composed and validated up front; the
first problem comes back as one line naming the key: ``engine.max_seqs: Value 'x' ... Integer``. m9's sweepers
use ``parse_grid``, ``grid`` and ``check_point`` with Hydra's own config loader; the entry point checks a single
run with ``check``.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Callable, Optional

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from m9.inputs import checkpoint
from m9.config import M9Config, from_hydra
from m9.plan import validate

# Flags after which Hydra prints or inspects instead of running: nothing to check.
_INSPECT_FLAGS = {"--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--shell-completion", "-sc",
                  "--resolve", "--version"}
_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--package", "-p"}
_DIR_FLAGS = {"--config-dir", "-cd"}
MAX_POINTS = 4096


class BadInput(ValueError):
    """A command line no point of which should run."""


def _split(argv: list[str]) -> tuple[Optional[list[str]], bool]:
    """The overrides (an extra ``--config-dir`` becomes a ``hydra.searchpath`` override) and the multirun flag;
    None when the command only inspects, or names another primary config (Hydra checks those itself)."""
    overrides, dirs, multirun = [], [], any(a in ("-m", "--multirun") for a in argv)
    args = iter(argv)
    for arg in args:
        flag = arg.split("=", 1)[0]
        if arg in _INSPECT_FLAGS or flag in _VALUE_FLAGS:
            return None, multirun
        if arg in ("-m", "--multirun"):
            multirun = True
        elif flag in _DIR_FLAGS:
            dirs.append(arg.split("=", 1)[1] if "=" in arg else next(args, ""))
        elif not arg.startswith("-"):
            overrides.append(arg)
    if dirs:
        overrides.insert(0, "hydra.searchpath=[" + ",".join(f"file://{Path(d).resolve()}" for d in dirs) + "]")
    return overrides, multirun


def _key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def one_line(exc: BaseException) -> str:
    """Condense a Hydra/OmegaConf composition error into ``key: reason``."""
    chain, seen = [], exc
    while seen is not None:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    texts = [str(e) for e in chain if str(e)]
    for text in texts:
        m = re.search(r"full_key: (\S+)", text)
        if m:
            return f"{m.group(1)}: {text.splitlines()[0]}"
    for text in texts:
        m = re.search(r"Could not find '([^']+)/([^']+)'", text)
        if m:
            options = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], flags=re.M)
            return f"{m.group(1)}: no option '{m.group(2)}' (available: {', '.join(options)})"
    for text in texts:
        m = re.search(r"Could not override '([^']+)'", text)
        if m:
            return f"{m.group(1)}: not a key of the config"
    return texts[0].splitlines()[0] if texts else type(exc).__name__


def parse_grid(overrides: list[str]) -> dict[str, list[str]]:
    """Each key's override lines, in command-line order: one line for a fixed key, one per value for a swept key.
    As in Hydra's basic sweeper, a key's last value wins and keeps its first place. Raises BadInput on Hydra's own
    grammar errors."""
    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(overrides)
    except Exception as exc:  # Hydra's own grammar errors
        raise BadInput(one_line(exc)) from exc
    latest = {o.get_key_element(): o for o in parsed}
    return {k: [f"{k}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line]
            for k, o in latest.items()}


def grid(axes: dict[str, list[str]]) -> list[list[str]]:
    """Every point of a grid (``parse_grid``'s axes), the last key varying fastest; at most ``MAX_POINTS``."""
    n = 1
    for lines in axes.values():
        n *= len(lines)
    if n > MAX_POINTS:
        raise BadInput(f"the sweep has {n} points; m9 checks and runs at most {MAX_POINTS} per command")
    return [list(point) for point in itertools.product(*axes.values())]


def check_point(compose: Callable[[list[str]], DictConfig], overrides: list[str], values: bool = True) -> M9Config:
    """Compose one point and validate it; a problem raises BadInput with one line naming the key. With
    ``values=False`` only the composition is checked (a search's probes: the planner judges their values)."""
    try:
        cfg = checkpoint.resolve(from_hydra(compose(overrides)))
    except BadInput:
        raise
    except Exception as exc:
        raise BadInput(one_line(exc)) from exc
    problems = validate(cfg) if values else []
    if problems:
        raise BadInput(problems[0])
    return cfg


def expand(argv: list[str], conf_dir: Path, config_name: str = "config") -> Optional[list[list[str]]]:
    """The overrides of every point the command line would run (None: nothing to check). Raises BadInput."""
    overrides, multirun = _split(argv)
    if overrides is None:
        return None
    try:
        axes = parse_grid(overrides)
    except BadInput:
        raise
    except Exception:  # noqa: BLE001 - glob() over group options needs Hydra's own loader: leave the check to it
        return None
    swept = {k: lines for k, lines in axes.items() if len(lines) > 1}
    if swept and not multirun:
        key, lines = next(iter(swept.items()))
        values = ",".join(line.split("=", 1)[1] for line in lines)
        raise BadInput(f"{_key_of(key)}: {values} is a sweep; add -m to run one point per value")
    fixed = [lines[0] for lines in axes.values() if len(lines) == 1]
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        try:
            base = compose(config_name=config_name, overrides=fixed, return_hydra_config=True)
        except Exception as exc:
            raise BadInput(one_line(exc)) from exc
    given = {_key_of(k) for k in axes}
    for key, value in (OmegaConf.select(base, "hydra.sweeper.params") or {}).items():
        if _key_of(key) in given:
            continue  # the command line wins over an experiment's own grid
        if not multirun:
            raise BadInput(f"{_key_of(key)}: the experiment sweeps it ({value}); add -m to run its points")
        axes.update(parse_grid([f"{key}={value}"]))
    return grid({k: lines for k, lines in axes.items()
                 if not _key_of(k).startswith("hydra") or _key_of(k) == "hydra.searchpath"})


def check(argv: list[str], conf_dir: Path, config_name: str = "config") -> list[list[str]]:
    """Compose and validate every point the command line would run; returns their overrides. Raises BadInput.
    The entry point checks a single run with it; a multirun is checked the same way by m9's sweeper."""
    points = expand(argv, conf_dir, config_name)
    if not points:
        return []
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        for point in points:
            check_point(lambda ov: compose(config_name=config_name, overrides=ov), point)
    return points


def is_multirun(argv: list[str]) -> bool:
    """True when the command line asks for a multirun (``-m`` / ``--multirun``)."""
    return _split(argv)[1]
