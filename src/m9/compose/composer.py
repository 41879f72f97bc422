"""One point: composed by Hydra's config loader exactly as a launcher composes a job (``load_sweep_config`` over the
command line's composition), converted into the frozen schema, and checked for everything bad input can be."""

from __future__ import annotations

import copy
import re
from typing import Any, Optional

from omegaconf import DictConfig, open_dict, read_write

from m9.compose.schema import from_hydra
from m9.config import ConfigError, M9Config
from m9.inputs import checkpoint
from m9.inputs.prompts import Prompts
from m9.plan import too_big_to_build
from m9.run.gate import fault_gate


class BadInput(ValueError):
    """A command line no point of which should run; the message is one line naming the key."""


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


class Composer:
    """Points composed as Hydra's launchers compose jobs: ``load_sweep_config`` over the command line's own
    composition (``master``: its Hydra settings and search path), once per distinct override list."""

    def __init__(self, loader: Any, master: DictConfig):
        self.loader, self.master, self.seen = loader, master, {}

    def __call__(self, overrides: list[str]) -> DictConfig:
        """The point's composed config, without its ``hydra`` section."""
        key = tuple(overrides)
        if key not in self.seen:
            cfg = self.loader.load_sweep_config(self.master, list(overrides))
            with read_write(cfg), open_dict(cfg):
                del cfg["hydra"]
            self.seen[key] = cfg
        return copy.deepcopy(self.seen[key])


def compose_point(composer: Composer, overrides: list[str]) -> M9Config:
    """Compose one point into the schema with its model source settled. A composition problem (key, type, group
    option, model source) raises BadInput; a value the schema refuses raises ``ConfigError`` (a search's probe
    turns that into a rejected point)."""
    try:
        return checkpoint.resolve(from_hydra(composer(overrides)))
    except (BadInput, ConfigError):
        raise
    except Exception as exc:
        raise BadInput(one_line(exc)) from exc


def check_point(composer: Composer, overrides: list[str], prompts: Optional[Prompts] = None) -> M9Config:
    """Compose one point and check everything bad input can be: composition, the schema's values, the model source,
    the workload's inputs (tokenizer, prompt file, stop sequences; built by ``prompts``, a process's cache) and the
    fault gate. Raises BadInput."""
    try:
        cfg = compose_point(composer, overrides)
    except ConfigError as exc:
        raise BadInput(str(exc)) from exc
    if not too_big_to_build(cfg):  # the planner will build them: so does the check, for bad input
        try:
            (prompts or Prompts()).build(cfg)
        except ValueError as exc:
            raise BadInput(str(exc)) from exc
    problem = fault_gate(cfg)
    if problem:
        raise BadInput(problem)
    return cfg
