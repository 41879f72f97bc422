"""Every config file composes into the schema; bad keys and types fail at compose time, naming the key."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import CONF_DIR, compose_m9
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ConfigKeyError, ValidationError

from m9.config import EngineConfig, M9Config, flatten, from_dict, to_dict
from m9.inputs import checkpoint

OPTIONAL = ("experiment", "probe")  # global deltas, added with +group=option
GROUPS = sorted(p.name for p in CONF_DIR.iterdir()
                if p.is_dir() and p.name not in OPTIONAL and not p.name.startswith("_"))


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in _options(g)], ids=lambda x: str(x)
)
def test_every_group_option_composes_to_the_schema(group, option):
    cfg = compose_m9([f"{group}={option}"])
    assert isinstance(cfg, M9Config)
    section = getattr(cfg, group)
    assert dataclasses.is_dataclass(section)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(section, dataclasses.fields(section)[0].name, None)


@pytest.mark.parametrize("group,option", [(g, o) for g in OPTIONAL for o in _options(g)], ids=lambda x: str(x))
def test_every_preset_and_probe_composes_to_the_schema(group, option):
    sweeper = ["hydra/sweeper=optimize"] if option.endswith("_optimize") else []  # its settings are the optimiser's
    cfg = compose_m9([*sweeper, f"+{group}={option}"])
    assert isinstance(cfg, M9Config) and cfg != compose_m9()


def test_every_group_has_at_least_one_option():
    assert set(GROUPS) >= {"engine", "scheduler", "model", "workload", "tracking"}
    assert all(_options(g) for g in GROUPS)


def test_default_composition_is_the_cpu_tiny_point():
    cfg = compose_m9()
    assert cfg.model.name == "tiny"
    assert cfg.engine.imputed_max_seqs_in_prefill == cfg.engine.max_seqs == 8  # every prompt in one prefill
    assert cfg.tracking.backend == "mlflow"


def test_the_schema_is_the_one_source_of_defaults():
    """The default options add nothing to the dataclasses: what `python -m m9` runs is `M9Config()` (its model
    named, as every point's is once resolved)."""
    assert compose_m9() == checkpoint.resolve(M9Config())
    for group, option in [("engine", "default"), ("scheduler", "default"), ("workload", "default"),
                          ("model", "tiny"), ("tracking", "mlflow"), ("accelerator", "cpu")]:
        assert (CONF_DIR / group / f"{option}.yaml").read_text().strip().startswith("#")
        assert not [ln for ln in (CONF_DIR / group / f"{option}.yaml").read_text().splitlines()
                    if ln.strip() and not ln.lstrip().startswith("#")], f"{group}/{option} repeats the schema"


def test_length_fixed_scheduler_follows_max_seqs():
    cfg = compose_m9(["scheduler=length_fixed", "engine.max_seqs=113"])
    assert cfg.scheduler.max_tokens_per_round == 113
    assert cfg.scheduler.max_queued_tokens == 113
    assert cfg.scheduler.max_rounds == 64


def test_unknown_key_fails_naming_it():
    with pytest.raises(ConfigCompositionException) as err:
        compose_m9(["engine.max_sex=8"])
    assert "engine.max_sex" in str(err.value) + str(err.value.__cause__)


def test_wrong_type_fails_naming_the_key():
    with pytest.raises((ConfigCompositionException, ValidationError, ConfigKeyError)) as err:
        compose_m9(["engine.max_seqs=lots"])
    assert "engine.max_seqs" in str(err.value) + str(err.value.__cause__)


def test_unknown_group_option_fails():
    with pytest.raises(MissingConfigException) as err:
        compose_m9(["model=gpt5"])
    # Hydra's own words for a missing option, not merely any error that echoes the override
    assert "Could not find 'model/gpt5'" in str(err.value)
    assert "Available options in 'model':" in str(err.value) and "\ttiny" in str(err.value)


def test_dict_round_trip_and_flatten():
    cfg = compose_m9(["engine.max_seqs=6", "engine.max_pages=100"])
    assert from_dict(to_dict(cfg)) == cfg
    flat = flatten(cfg)
    assert flat["engine.max_seqs"] == 6 and flat["engine.max_pages"] == 100
    assert set(k.split(".")[0] for k in flat) == {f.name for f in dataclasses.fields(M9Config)}
    assert EngineConfig().max_pages is None
