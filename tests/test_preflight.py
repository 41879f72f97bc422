"""Bad input: every invalid override gives one line naming the key, before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import CONF_DIR
from m9 import compose as preflight

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
    (["model=gpt5"], "model: no option 'gpt5' (available: llama3_8b, tiny)"),
    (["scheduler=nope"], "scheduler: no option 'nope' (available: default, length_fixed, m6)"),
    (["scheduler.max_queued_tokens=4"], "scheduler.max_queued_tokens=4 must be >= max(engine.max_seqs=8"),
    (["-m", "scheduler.max_tokens_per_round=8,600"], "scheduler.max_queued_tokens=512 must be >= max("),
    (["engine.compute_dtype=int8"], "engine.compute_dtype='int8' must be one of"),
    (["trial.inject_fault=sigkill"], "needs M9_ALLOW_FAULT_INJECTION=1"),
    (["engine.max_seqs=2,4"], "engine.max_seqs: 2,4 is a sweep; add -m"),
    (["-m", "+experiment=log_phase_a", "model.num_heads=5"], "model.num_heads=5 must be a multiple of"),
    (["+experiment=log_phase_a"], "engine.max_seqs: the experiment sweeps it (12,14,16); add -m"),
]


@pytest.mark.parametrize("argv,message", BATTERY, ids=[" ".join(a) for a, _ in BATTERY])
def test_bad_input_is_one_line_naming_the_key(argv, message, monkeypatch):
    monkeypatch.delenv("M9_ALLOW_FAULT_INJECTION", raising=False)
    with pytest.raises(preflight.BadInput) as err:
        preflight.check(argv, CONF_DIR)
    text = str(err.value)
    assert "\n" not in text
    assert message in text, text


def test_the_whole_grid_is_checked_including_an_experiments_own_params():
    assert len(preflight.check(["-m", "engine.max_seqs=2,4", "workload.max_new_tokens=8,16,32"], CONF_DIR)) == 6
    assert len(preflight.check(["-m", "+experiment=log_phase_e2"], CONF_DIR)) == 4
    # the command line's sweep wins over the experiment's
    points = preflight.expand(["-m", "+experiment=log_phase_e2", "engine.max_seqs=100"], CONF_DIR)
    assert points == [["+experiment=log_phase_e2", "engine.max_seqs=100"]]


def test_a_keys_last_value_wins_as_in_hydra():
    assert preflight.check(["-m", "engine.max_seqs=2,4", "engine.max_seqs=8"], CONF_DIR) == [["engine.max_seqs=8"]]
    # one point of an experiment: its swept key given on the command line
    assert len(preflight.check(["+experiment=log_phase_a", "engine.max_seqs=12", "trial.plan_only=true"],
                               CONF_DIR)) == 1


def test_inspection_commands_are_left_to_hydra():
    assert preflight.check(["--cfg", "job", "engine.max_seqs=lots"], CONF_DIR) == []


def test_cli_prints_one_line_exits_2_and_leaves_nothing_behind(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "m9", "-m", "engine.max_seqs=2,4", "engine.page_size=0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "m9: error: engine.page_size=0 must be > 0"
    assert proc.stdout == ""
    assert not (tmp_path / "outputs").exists()  # no sweep dir, no store: nothing started
