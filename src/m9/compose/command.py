"""The command line: read by Hydra's own argument parser, its sweep expanded by Hydra's own ``BasicSweeper`` (its
override parser created with the config loader, so ``glob()``, ``range()`` and ``choice()`` work; an experiment's
``hydra.sweeper.params`` first, the command line winning), and every point composed and checked before anything
launches. Hydra composes a sweep's jobs only as it launches them, so a bad value in a grid's last point would fail
after its first points ran, and its composition errors span several lines; here the first problem is one line
naming the key: ``engine.max_seqs: Value 'x' ... Integer``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

from hydra import initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from m9.compose.composer import BadInput, Composer, check_point, one_line
from m9.inputs.prompts import Prompts

MAX_POINTS = 4096
SWEEPER_PROVIDER = "m9"
"""The ConfigStore provider of m9's ``hydra/sweeper`` options (``hydra_plugins.m9_sweepers``)."""
DEFAULT_SWEEPER = "m9"
"""The ``hydra/sweeper`` option ``conf/config.yaml`` chooses (the grid)."""


def read_argv(argv: list[str]) -> tuple[Optional[list[str]], bool]:
    """The overrides (an extra ``--config-dir`` becomes a ``hydra.searchpath`` override) and the multirun flag, as
    Hydra's own parser reads them; None when the command only inspects (``--cfg``, ``--help``, ``--info``, ...) or
    names another primary config: Hydra checks those itself."""
    if "--version" in argv:  # argparse would print it and exit here; Hydra does that itself
        return None, False
    args = get_args_parser().parse_args(argv)
    if (args.help or args.hydra_help or args.cfg or args.info or args.shell_completion or args.resolve
            or args.package or args.config_path or args.config_name or args.experimental_rerun):
        return None, args.multirun
    overrides = list(args.overrides)
    if args.config_dir:
        overrides.insert(0, f"hydra.searchpath=[file://{Path(args.config_dir).resolve()}]")
    return overrides, args.multirun


def is_multirun(argv: list[str]) -> bool:
    """True when the command line asks for a multirun (``-m`` / ``--multirun``)."""
    return read_argv(argv)[1]


def key_of(override: str) -> str:
    """``engine.max_seqs`` of ``+engine.max_seqs=8``."""
    return override.split("=", 1)[0].lstrip("+~")


def _parsed(overrides: list[str], config_loader: Any) -> list:
    """Hydra's reading of the overrides (its parser with the config loader: ``glob()`` lists a group's options), each
    sweep checked for what a grid can run. Raises BadInput."""
    try:
        parsed = OverridesParser.create(config_loader=config_loader).parse_overrides(overrides)
        sizes = []
        for o in parsed:
            if not o.is_sweep_override():
                continue
            key = key_of(o.get_key_element())
            if not o.is_discrete_sweep():
                raise BadInput(f"{key}: an interval sweep needs an optimising sweeper; a grid takes values "
                               "(a,b,c), range() or choice()")
            sizes.append(sum(1 for _ in o.sweep_string_iterator()))
            if not sizes[-1]:
                raise BadInput(f"{key}: {o.input_line.split('=', 1)[1]} gives no value (a glob() matches the options "
                               "of a config group)")
    except BadInput:
        raise
    except OverrideParseException as exc:  # Hydra's grammar: say which override, and how to quote its value
        raise BadInput(_unreadable(overrides, config_loader) or one_line(exc)) from exc
    except Exception as exc:  # a glob over a group that is not there, ...
        raise BadInput(one_line(exc)) from exc
    if math.prod(sizes) > MAX_POINTS:
        raise BadInput(f"the sweep has more than {MAX_POINTS} points; m9 checks and runs at most {MAX_POINTS} per "
                       "command")
    return parsed


def _unreadable(overrides: list[str], config_loader: Any) -> Optional[str]:
    """The first override Hydra's grammar cannot read, as one line: its key, Hydra's reason, and the value quoted
    as Hydra reads any text (``{``, ``}``, ``[``, ``]``, commas, spaces and ``=`` need it)."""
    for override in overrides:
        try:
            OverridesParser.create(config_loader=config_loader).parse_overrides([override])
        except OverrideParseException as exc:
            key, _, value = override.partition("=")
            reason = str(exc).splitlines()[0]
            quoted = value.replace("\\", "\\\\").replace('"', '\\"')
            return (f"{key.lstrip('+~') or override}: Hydra cannot read the value {value!r} ({reason}); quote it "
                    f"for Hydra, and the whole override for the shell: '{key}=\"{quoted}\"'")
    return None


def expand_overrides(overrides: list[str], config_loader: Any) -> list[list[str]]:
    """Every point of a sweep, as Hydra's ``BasicSweeper.split_arguments`` makes them (a key's last value winning at
    its first place, the last key varying fastest); a fixed override keeps the text it was typed with (Hydra's own
    spelling escapes a URI's colons). At most ``MAX_POINTS``. Raises BadInput."""
    parsed = _parsed(overrides, config_loader)
    typed = {o.get_key_element(): o.input_line for o in parsed if not o.is_sweep_override()}
    (points,) = BasicSweeper.split_arguments(parsed, None)
    return [[typed.get(line.split("=", 1)[0], line) for line in point] for point in points]


def master(config_loader: Any, overrides: list[str], config_name: str = "config") -> DictConfig:
    """The command line's own composition, as Hydra's multirun makes it before its sweeper starts: the Hydra settings
    (the sweeper's, an experiment's ``hydra.sweeper.params``) and what every point is composed over. Raises
    BadInput, a setting of another of m9's sweepers named with the sweeper to choose."""
    try:
        return config_loader.load_configuration(config_name=config_name, overrides=list(overrides),
                                                run_mode=RunMode.MULTIRUN)
    except Exception as exc:
        line = one_line(exc)
        key = line.split(":", 1)[0]
        current = next((o.split("=", 1)[1] for o in reversed(overrides) if key_of(o) == "hydra/sweeper"),
                       DEFAULT_SWEEPER)
        hint = owner_hint(key.removeprefix("hydra.sweeper."), current) if key.startswith("hydra.sweeper.") else None
        raise BadInput(hint or line) from exc


def owner_hint(key: str, current: str) -> Optional[str]:
    """For a setting ``hydra.sweeper.KEY`` that ``hydra/sweeper=CURRENT`` lacks and another of m9's sweepers has:
    the line naming that sweeper and how to choose it; None otherwise. Read from the options m9's sweepers register
    in Hydra's ConfigStore, so a new sweeper is named here without a line changed."""
    options = ConfigStore.instance().repo.get("hydra", {}).get("sweeper", {})
    settings = {name.removesuffix(".yaml"): {str(k) for k in node.node.keys() if not str(k).startswith("_")}
                for name, node in options.items() if node.provider == SWEEPER_PROVIDER}
    owners = [name for name, keys in settings.items() if key in keys]
    if current not in settings or key in settings[current] or not owners:
        return None
    return (f"hydra.sweeper.{key}: a setting of hydra/sweeper={owners[0]}, not of hydra/sweeper={current} "
            f"(this command's sweeper); add hydra/sweeper={owners[0]} to the command line")


def points(multirun: bool, overrides: list[str], config_loader: Any, base: DictConfig) -> list[list[str]]:
    """The command line's points, its experiment's own grid first (``base``: the command line's composition)."""
    parsed = _parsed(overrides, config_loader)  # bad grammar first
    swept = [o for o in parsed if o.is_sweep_override()]
    if swept and not multirun:
        o = swept[0]
        values = ",".join(o.sweep_string_iterator())
        raise BadInput(f"{key_of(o.get_key_element())}: {values} is a sweep; add -m to run one point per value")
    params = {str(k): str(v) for k, v in (OmegaConf.select(base, "hydra.sweeper.params") or {}).items()}
    typed = {key_of(o) for o in overrides}
    for key, value in params.items():
        if not multirun and key_of(key) not in typed:
            raise BadInput(f"{key_of(key)}: the experiment sweeps it ({value}); add -m to run its points")
    every = expand_overrides([*(f"{k}={v}" for k, v in params.items()), *overrides], config_loader)
    return [[o for o in p if not key_of(o).startswith("hydra") or key_of(o) == "hydra.searchpath"] for p in every]


def _fixed(overrides: list[str], config_loader: Any) -> list[str]:
    """The overrides that are no sweep, as typed: what the command line's own composition takes."""
    return [o.input_line for o in _parsed(overrides, config_loader) if not o.is_sweep_override()]


def _with_hydra(argv: list[str], conf_dir: Path, config_name: str, check: bool) -> list[list[str]]:
    overrides, multirun = read_argv(argv)
    if overrides is None:
        return []
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        base = master(loader, _fixed(overrides, loader), config_name)
        found = points(multirun, overrides, loader, base)
        if check:
            composer, prompts = Composer(loader, base), Prompts()
            for point in found:
                check_point(composer, point, prompts)
    return found


def check_sweeper_settings(argv: list[str], conf_dir: Path, config_name: str = "config") -> Optional[DictConfig]:
    """A multirun's ``hydra.sweeper.*`` settings against the sweeper it runs, before Hydra composes them (it would
    say only ``Key 'trials' not in 'GridSweeperConf'`` for a preset written for another of m9's sweepers); returns
    them as composed (None: nothing but m9's defaults and a grid's values, nothing to check). The points are the
    sweeper's to check. Raises BadInput naming the fix."""
    overrides, multirun = read_argv(argv)
    if overrides is None or not multirun or not any("experiment" in o or "sweeper" in o for o in overrides):
        return None
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        return master(loader, _fixed(overrides, loader), config_name).hydra.sweeper


def expand(argv: list[str], conf_dir: Path, config_name: str = "config") -> list[list[str]]:
    """The overrides of every point the command line would run ([] when it only inspects). Raises BadInput."""
    return _with_hydra(argv, conf_dir, config_name, check=False)


def check(argv: list[str], conf_dir: Path, config_name: str = "config") -> list[list[str]]:
    """Compose and check every point the command line would run; returns their overrides. Raises BadInput. The entry
    point checks a command line with it before Hydra starts; a sweeper checks its points the same way."""
    return _with_hydra(argv, conf_dir, config_name, check=True)
