"""Bad input: every invalid override gives one line naming the key, before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import CONF_DIR

from m9 import compose

BATTERY = [
    (["engine.max_seqs=0"], "engine.max_seqs=0 must be > 0"),
    (["engine.page_size=-16"], "engine.page_size=-16 must be > 0"),
    (["-m", "engine.max_seqs=4,-1"], "engine.max_seqs=-1 must be > 0"),
    (["workload.max_new_tokens=0"], "workload.max_new_tokens=0 must be > 0"),
    (["engine.max_seqs=lots"], "engine.max_seqs: Value 'lots' of type 'str' could not be converted to Integer"),
    (["engine.max_pages=1.5"], "engine.max_pages: Value '1.5' of type 'float' could not be converted to Integer"),
    (["workload.length_fixed=maybe"], "workload.length_fixed: Value 'maybe' is not a valid bool"),
    (["engine.max_sex=8"], "engine.max_sex: Key 'max_sex' not in 'EngineConfig'"),
    (["+engine.foo=1"], "engine.foo: not a key of EngineConfig"),
    (["enginex.a=1"], "enginex: Key 'enginex' not in 'M9Config'"),
    (["model=gpt5"], "model: no option 'gpt5' (available: llama3_70b, llama3_8b, tiny)"),
    (["scheduler=nope"], "scheduler: no option 'nope' (available: default, length_fixed, m6)"),
    (["scheduler.max_queued_tokens=4"], "scheduler.max_queued_tokens=4 must be >= max(engine.max_seqs=8"),
    (["-m", "scheduler.max_tokens_per_round=8,600"], "scheduler.max_queued_tokens=512 must be >= max("),
    (["engine.compute_dtype=int8"], "engine.compute_dtype='int8' must be one of"),
    (["trial.inject_fault=sigkill"], "needs M9_ALLOW_FAULT_INJECTION=1"),
    (["engine.max_seqs=2,4"], "engine.max_seqs: 2,4 is a sweep; add -m"),
    (["-m", "+experiment=log_phase_a", "model.num_heads=5"], "model.num_heads=5 must be a multiple of"),
    (["+experiment=log_phase_a"], "engine.max_seqs: the experiment sweeps it (12,14,16); add -m"),
    (["workload.prompt_template={j}"], "workload.prompt_template: Hydra cannot read the value '{j}' (no viable "
     "alternative at input '{j}'); quote it for Hydra, and the whole override for the shell: "
     "'workload.prompt_template=\"{j}\"'"),
    (["tracking.uri=ftp://127.0.0.1/x"], "tracking.uri: ftp:// is not a store MLflow keeps runs in; a tracking URI is "
     "sqlite:///PATH, http(s)://HOST:PORT, postgresql://, mysql://, mssql://, file:PATH or databricks"),
]


@pytest.mark.parametrize("argv,message", BATTERY, ids=[" ".join(a) for a, _ in BATTERY])
def test_bad_input_is_one_line_naming_the_key(argv, message, monkeypatch):
    monkeypatch.delenv("M9_ALLOW_FAULT_INJECTION", raising=False)
    with pytest.raises(compose.BadInput) as err:
        compose.check(argv, CONF_DIR)
    text = str(err.value)
    assert "\n" not in text
    assert message in text, text


def test_the_whole_grid_is_checked_including_an_experiments_own_params():
    assert len(compose.check(["-m", "engine.max_seqs=2,4", "workload.max_new_tokens=8,16,32"], CONF_DIR)) == 6
    assert len(compose.check(["-m", "+experiment=log_phase_e2"], CONF_DIR)) == 4
    # the command line's sweep wins over the experiment's, at the experiment's place (as in Hydra's BasicSweeper)
    points = compose.expand(["-m", "+experiment=log_phase_e2", "engine.max_seqs=100"], CONF_DIR)
    assert points == [["engine.max_seqs=100", "+experiment=log_phase_e2"]]


def test_a_keys_last_value_wins_as_in_hydra():
    assert compose.check(["-m", "engine.max_seqs=2,4", "engine.max_seqs=8"], CONF_DIR) == [["engine.max_seqs=8"]]
    # one point of an experiment: its swept key given on the command line
    assert len(compose.check(["+experiment=log_phase_a", "engine.max_seqs=12", "trial.plan_only=true"],
                               CONF_DIR)) == 1


@pytest.mark.parametrize("argv, message", [
    (["-m", "+experiment=log_phase_f_optimize"], "hydra.sweeper.trials: a setting of hydra/sweeper=optimize, not of "
     "hydra/sweeper=m9 (this command's sweeper); add hydra/sweeper=optimize to the command line"),
    (["-m", "hydra/sweeper=boundary", "hydra.sweeper.objective=per_seq_tok_s"], "hydra.sweeper.objective: a "
     "setting of hydra/sweeper=optimize, not of hydra/sweeper=boundary"),
    (["-m", "hydra.sweeper.trialz=3"], "hydra.sweeper.trialz: Key 'trialz' not in 'GridSweeperConf'"),
])
def test_a_setting_of_another_sweeper_names_the_sweeper_to_choose(argv, message):
    # the check the entry point makes before Hydra composes a multirun (Hydra would say only "not in ...Conf")
    with pytest.raises(compose.BadInput) as err:
        compose.check_sweeper_settings(argv, CONF_DIR)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_preset_composes_with_the_sweeper_it_is_written_for():
    settings = compose.check_sweeper_settings(["-m", "hydra/sweeper=optimize", "+experiment=log_phase_f_optimize"],
                                              CONF_DIR)
    assert settings._target_.endswith(".OptimizeSweeper")
    assert (settings.trials, settings.confirm, settings.repeats) == (24, 3, 3)  # the preset's, over the defaults
    assert settings.params["scheduler.max_rounds"] == "choice(16,32,64,80)"


def test_inspection_commands_are_left_to_hydra():
    assert compose.check(["--cfg", "job", "engine.max_seqs=lots"], CONF_DIR) == []


def test_cli_prints_one_line_exits_2_and_leaves_nothing_behind(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "m9", "-m", "engine.max_seqs=2,4", "engine.page_size=0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "m9: error: engine.page_size=0 must be > 0"
    assert proc.stdout == ""
    assert not (tmp_path / "outputs").exists()  # no sweep dir, no store: nothing started


SWEEPS = [
    ["model=glob(*)"],
    ["scheduler=glob(*,exclude=m6)", "engine.max_seqs=2,4"],
    ["engine.max_seqs=range(2,9,3)", "workload.max_new_tokens=choice(8,16)"],
    ["engine.max_seqs=2,4", "engine.max_seqs=8,16", "workload.prompt_len=4"],
    ["+experiment=log_phase_e2", "engine.max_pages=2048,4096"],
    ["+experiment=log_phase_d"],
    ["workload.prompt_template='Prompt {i}: a, b'", "engine.max_seqs=sort(4,2)"],
    ["tracking.uri=sqlite:////tmp/x.db", "trial.plan_only=true", "engine.max_seqs=2,4"],
]


@pytest.mark.parametrize("line", SWEEPS, ids=lambda line: " ".join(line))
def test_sweeps_expand_exactly_as_hydras_basic_sweeper_expands_them(line):
    """The same line through Hydra's BasicSweeper (its parser with the config loader, an experiment's own
    ``hydra.sweeper.params`` first) gives the same points, in the same order."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        parser = OverridesParser.create(config_loader=loader)
        fixed = [o for o in line if "," not in o.split("=", 1)[1] and "(" not in o]
        base = hydra_compose(config_name="config", overrides=fixed, return_hydra_config=True)
        params = [f"{k}={v}" for k, v in (OmegaConf.select(base, "hydra.sweeper.params") or {}).items()]
        (hydras,) = BasicSweeper.split_arguments(parser.parse_overrides([*params, *line]), None)

    def values(points):  # what each point sets, key by key, whatever the spelling of its lines
        return [[(o.get_key_element(), o.value()) for o in OverridesParser.create().parse_overrides(p)] for p in points]

    assert values(compose.expand(["-m", *line], CONF_DIR)) == values(hydras)
    assert len(hydras) > 1


def test_glob_over_a_group_is_one_point_per_option():
    points = compose.check(["-m", "model=glob(*)", "trial.plan_only=true"], CONF_DIR)
    assert [p[0] for p in points] == [f"model={o}" for o in sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))]
    # fixed overrides keep the text they were typed with (Hydra would write trial.plan_only=True)
    assert all(p[1] == "trial.plan_only=true" for p in points)


@pytest.mark.parametrize("line,message", [
    (["-m", "engine.hbm_utilization=interval(0.5,0.9)"],
     "engine.hbm_utilization: an interval sweep needs an optimising sweeper; a grid takes values (a,b,c), range()"),
    (["-m", "engine.max_seqs=range(1,100000)", "workload.prompt_len=range(1,100)"],
     "the sweep has more than 4096 points; m9 checks and runs at most 4096 per command"),
    (["-m", "nope=glob(*)"], "nope: glob(*) gives no value (a glob() matches the options of a config group)"),
    (["model=glob(*)"], "model: llama3_70b,llama3_8b,tiny is a sweep; add -m to run one point per value"),
])
def test_what_a_grid_cannot_run_is_one_line(line, message):
    with pytest.raises(compose.BadInput) as err:
        compose.check(line, CONF_DIR)
    assert "\n" not in str(err.value) and message in str(err.value), str(err.value)


def test_the_quoting_a_grammar_error_suggests_is_read_by_hydra():
    with pytest.raises(compose.BadInput) as err:
        compose.check(["workload.prompt_template={j}"], CONF_DIR)
    suggested = str(err.value).rsplit("for the shell: ", 1)[1].strip("'")
    assert compose.expand([suggested], CONF_DIR) == [[suggested]]  # the value Hydra could not read, read
