"""Compose every point of a command line and check it before anything launches; the schema's door into Hydra.

Hydra composes each job of a sweep only when it launches it, so a bad value in the last point of a grid would
fail after the first points ran, and its composition errors span several lines. Here the command line is expanded
the way Hydra's own ``BasicSweeper`` expands it (its override parser, created with the config loader, so ``glob()``,
``range()`` and ``choice()`` work, an experiment's ``hydra.sweeper.params`` first and the command line winning),
and each point is composed, converted into the frozen schema and checked up front; the first problem comes back as
one line naming the key: ``engine.max_seqs: Value 'x' ... Integer``. m9's sweepers use ``expand_overrides`` and
``check_point`` with Hydra's config loader; the entry point checks a single run with ``check``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from pathlib import Path
from typing import Any, Callable, Optional

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from m9 import plan
from m9.config import SECTIONS, ConfigError, M9Config
from m9.inputs import checkpoint, prompts
from m9.run.child import fault_gate

# Flags after which Hydra prints or inspects instead of running: nothing to check.
_INSPECT_FLAGS = {"--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--shell-completion", "-sc",
                  "--resolve", "--version"}
_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--package", "-p"}
_DIR_FLAGS = {"--config-dir", "-cd"}
MAX_POINTS = 4096
SCHEMA_NAME = "m9_schema"


class BadInput(ValueError):
    """A command line no point of which should run; the message is one line naming the key."""


# --- the schema in Hydra --------------------------------------------------------------------------------------


def _thaw(node: DictConfig) -> DictConfig:
    # OmegaConf marks nodes built from frozen dataclasses read-only, which would forbid Hydra from merging the
    # group files onto the schema. Types and key sets stay enforced; freezing happens again in ``to_object``.
    OmegaConf.set_readonly(node, None)
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _thaw(child)
    return node


def register_schema() -> None:
    """Register ``M9Config`` in Hydra's ConfigStore as the base every composed config is validated against, and
    the ``m9_mul`` resolver presets use to scale a knob with another (``max_pages: ${m9_mul:${.max_seqs},36}``)."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=_thaw(OmegaConf.structured(M9Config)))
    if not OmegaConf.has_resolver("m9_mul"):
        OmegaConf.register_new_resolver("m9_mul", lambda a, b: int(a) * int(b))


def from_hydra(cfg: DictConfig) -> M9Config:
    """Resolve and convert a composed config into the frozen schema: the only place a DictConfig is read. A value
    the schema refuses raises ``ConfigError`` (from the sections' own checks)."""
    for key in cfg:  # Hydra lets ``+section.key=...`` add keys to a structured config; the schema must refuse them
        node = cfg._get_node(key)
        if key not in SECTIONS:
            raise ValueError(f"{key}: not a key of M9Config")
        known = {f.name for f in dataclasses.fields(SECTIONS[key])}
        extra = [k for k in node if k not in known] if isinstance(node, DictConfig) else []
        if extra:
            raise ValueError(f"{key}.{extra[0]}: not a key of {SECTIONS[key].__name__}")
    merged = OmegaConf.merge(_thaw(OmegaConf.structured(M9Config)), cfg)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def flat_params(cfg: DictConfig) -> dict[str, Any]:
    """A composed config's values as run parameters (``engine.max_seqs``: ...), for a point the schema refused."""
    data = OmegaConf.to_container(cfg, resolve=True)
    return {f"{s}.{k}": v for s, values in data.items() if isinstance(values, dict) for k, v in values.items()}


# --- one point ------------------------------------------------------------------------------------------------


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


def compose_point(compose_fn: Callable[[list[str]], DictConfig], overrides: list[str]) -> M9Config:
    """Compose one point into the schema with its model source settled. A composition problem (key, type, group
    option, model source) raises BadInput; a value the schema refuses raises ``ConfigError`` (a search's probe
    turns that into a rejected point)."""
    try:
        composed = compose_fn(overrides)
        return checkpoint.resolve(from_hydra(composed))
    except (BadInput, ConfigError):
        raise
    except Exception as exc:
        raise BadInput(one_line(exc)) from exc


def check_point(compose_fn: Callable[[list[str]], DictConfig], overrides: list[str]) -> M9Config:
    """Compose one point and check everything bad input can be: composition, the schema's values, the model source,
    the workload's inputs (tokenizer, prompt file, stop sequences) and the fault gate. Raises BadInput."""
    try:
        cfg = compose_point(compose_fn, overrides)
    except ConfigError as exc:
        raise BadInput(str(exc)) from exc
    if not plan.too_big_to_build(cfg):  # the planner will build them: so does the check, for bad input
        try:
            prompts.build(cfg)
        except ValueError as exc:
            raise BadInput(str(exc)) from exc
    problem = fault_gate(cfg)
    if problem:
        raise BadInput(problem)
    return cfg


# --- the command line -----------------------------------------------------------------------------------------


def _axes(overrides: list[str], config_loader: Any) -> dict[str, list[str]]:
    """Each key's override lines as Hydra's ``BasicSweeper`` reads them: Hydra's override parser created with the
    config loader (so ``glob()`` lists a group's options), one line per value of a swept key, a key's last value
    winning at its first place; a fixed override keeps the text it was typed with. Raises BadInput."""
    try:
        parsed = OverridesParser.create(config_loader=config_loader).parse_overrides(overrides)
        axes: dict[str, list[str]] = {}
        for o in parsed:
            key = o.get_key_element()
            if not o.is_sweep_override():
                axes[key] = [o.input_line]  # as typed (Hydra's own spelling would escape a URI's colons)
            elif o.is_discrete_sweep():
                axes[key] = [f"{key}={v}" for v in itertools.islice(o.sweep_string_iterator(), MAX_POINTS + 1)]
                if not axes[key]:
                    raise BadInput(f"{_key_of(key)}: {o.input_line.split('=', 1)[1]} gives no value (a glob() "
                                   "matches the options of a config group)")
            else:
                raise BadInput(f"{_key_of(key)}: an interval sweep needs an optimising sweeper; a grid takes values "
                               "(a,b,c), range() or choice()")
    except BadInput:
        raise
    except Exception as exc:  # Hydra's own grammar errors, a glob over a group that is not there, ...
        raise BadInput(one_line(exc)) from exc
    return axes


def expand_overrides(overrides: list[str], config_loader: Any) -> list[list[str]]:
    """Every point of a sweep, as Hydra's ``BasicSweeper`` makes them (see ``_axes``), the last key varying
    fastest; at most ``MAX_POINTS``. Raises BadInput."""
    axes = _axes(overrides, config_loader)
    n = 1
    for lines in axes.values():
        n = min(n * len(lines), MAX_POINTS + 1)
    if n > MAX_POINTS:
        raise BadInput(f"the sweep has more than {MAX_POINTS} points; m9 checks and runs at most {MAX_POINTS} per "
                       "command")
    return [list(point) for point in itertools.product(*axes.values())]


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


class _Composer:
    """Hydra's compose API inside an initialised Hydra, once per distinct override list (a single run's point is
    the composition its experiment's grid was read from)."""

    def __init__(self, config_name: str):
        self.config_name, self.seen = config_name, {}

    def with_hydra(self, overrides: list[str]) -> DictConfig:
        key = tuple(overrides)
        if key not in self.seen:
            self.seen[key] = compose(config_name=self.config_name, overrides=list(overrides), return_hydra_config=True)
        return self.seen[key]

    def __call__(self, overrides: list[str]) -> DictConfig:
        cfg = copy.deepcopy(self.with_hydra(overrides))
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
        return cfg


def _points(multirun: bool, overrides: list[str], composer: _Composer) -> list[list[str]]:
    """Inside an initialised Hydra: the command line's points, its experiment's own grid first."""
    loader = GlobalHydra.instance().config_loader()
    axes = _axes(overrides, loader)  # bad grammar first, before anything is composed
    swept = {k: lines for k, lines in axes.items() if len(lines) > 1}
    if swept and not multirun:
        key, lines = next(iter(swept.items()))
        values = ",".join(line.split("=", 1)[1] for line in lines)
        raise BadInput(f"{_key_of(key)}: {values} is a sweep; add -m to run one point per value")
    try:
        base = composer.with_hydra([lines[0] for lines in axes.values() if len(lines) == 1])
    except Exception as exc:
        raise BadInput(_sweeper_hint(one_line(exc), overrides)) from exc
    params = {str(k): str(v) for k, v in (OmegaConf.select(base, "hydra.sweeper.params") or {}).items()}
    typed = {_key_of(k) for k in axes}
    for key, value in params.items():
        if not multirun and _key_of(key) not in typed:
            raise BadInput(f"{_key_of(key)}: the experiment sweeps it ({value}); add -m to run its points")
    points = expand_overrides([*(f"{k}={v}" for k, v in params.items()), *overrides], loader)
    return [[o for o in p if not _key_of(o).startswith("hydra") or _key_of(o) == "hydra.searchpath"] for p in points]


def expand(argv: list[str], conf_dir: Path, config_name: str = "config") -> Optional[list[list[str]]]:
    """The overrides of every point the command line would run (None: nothing to check). Raises BadInput."""
    overrides, multirun = _split(argv)
    if overrides is None:
        return None
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        return _points(multirun, overrides, _Composer(config_name))


def check(argv: list[str], conf_dir: Path, config_name: str = "config") -> list[list[str]]:
    """Compose and check every point the command line would run; returns their overrides. Raises BadInput.
    The entry point checks a single run with it; a multirun is checked the same way by m9's sweeper."""
    overrides, multirun = _split(argv)
    if overrides is None:
        return []
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        composer = _Composer(config_name)
        points = _points(multirun, overrides, composer)
        for point in points:
            check_point(composer, point)
    return points


def check_sweeper_settings(argv: list[str], conf_dir: Path, config_name: str = "config") -> None:
    """A multirun's ``hydra.sweeper.*`` settings against the sweeper it runs. Hydra composes them before any of
    m9's code: a setting of another of m9's sweepers (a preset written for ``hydra/sweeper=optimize`` run without
    it) would be Hydra's ``Key 'trials' not in 'GridSweeperConf'``. Raises BadInput naming the fix."""
    overrides, multirun = _split(argv)
    if overrides is None or not multirun or not any("experiment" in o or "sweeper" in o for o in overrides):
        return  # nothing but m9's defaults and the grid's values: nothing for this check to find
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        try:
            parsed = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader()).parse_overrides(
                overrides)
            fixed = [o.input_line for o in parsed if not o.is_sweep_override()]  # as Hydra composes a multirun
            compose(config_name=config_name, overrides=fixed, return_hydra_config=True)
        except Exception as exc:
            raise BadInput(_sweeper_hint(one_line(exc), overrides)) from exc


def _sweeper_hint(line: str, overrides: list[str]) -> str:
    """A ``hydra.sweeper`` key another of m9's sweepers has: which one, and how to choose it; else Hydra's words."""
    from hydra_plugins.m9_sweepers.config import owner_hint

    m = re.match(r"hydra\.sweeper\.(\w+): ", line)
    current = next((o.split("=", 1)[1] for o in reversed(overrides) if _key_of(o) == "hydra/sweeper"), "m9")
    return (owner_hint(m.group(1), current) if m else None) or line


def is_multirun(argv: list[str]) -> bool:
    """True when the command line asks for a multirun (``-m`` / ``--multirun``)."""
    return _split(argv)[1]
