"""Boundary search mode through the real command: planner first (no trial), frontiers, bad settings, and a real
search on the tiny model that agrees with a full grid."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import store_at

from m9.compose import BadInput
from m9.outcome.sla import misses, parse_sla
from m9.record.answer import load
from m9.sweep.boundary.answer import SearchAnswer
from m9.sweep.boundary.mode import check_spec

SPEC = dict(knob="engine.max_seqs", low=1, high=256, confirm=2, sla=[], max_trials=None, batch=1)


def _m9(args: list[str], cwd, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "m9", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _search(sweep_dir) -> SearchAnswer:
    answer = load(json.loads((sweep_dir / "m9_sweep.json").read_text())["answer"])
    assert isinstance(answer, SearchAnswer)
    assert load(json.loads((sweep_dir / "search.json").read_text())) == answer
    return answer


@pytest.mark.parametrize("change,message", [
    ({"knob": "engine.max_sex"}, "hydra.sweeper.knob=engine.max_sex: not a config key"),
    ({"knob": "engine.compute_dtype"}, "hydra.sweeper.knob=engine.compute_dtype: a search needs an integer knob"),
    ({"knob": "workload.length_fixed"}, "a search needs an integer knob"),
    ({"low": 9, "high": 3}, "hydra.sweeper.low=9 must be <= hydra.sweeper.high=3"),
    ({"confirm": 0}, "hydra.sweeper.confirm=0 must be >= 1"),
    ({"sla": ["round_avg_tok_s=>5"]}, "hydra.sweeper.sla: 'round_avg_tok_s=>5' is not 'metric>=number'"),
    ({"sla": ["tok_per_day>=5"]}, "hydra.sweeper.sla: 'tok_per_day' is not a recorded metric"),
])
def test_bad_search_settings_are_one_line_naming_the_key(change, message):
    with pytest.raises(BadInput) as err:
        check_spec(**{**SPEC, **change})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_sla_conditions_in_both_spellings():
    conditions = parse_sla(["round_avg_tok_s>=2000", "iter_s_p90:le:0.05"])
    assert [str(c) for c in conditions] == ["round_avg_tok_s>=2000", "iter_s_p90<=0.05"]
    assert misses(conditions, {"round_avg_tok_s": 2500.0, "iter_s_p90": 0.04}) == []
    assert misses(conditions, {"round_avg_tok_s": 1500.0, "iter_s_p90": 0.04}) == [
        "round_avg_tok_s=1500 misses round_avg_tok_s>=2000"]


def _e2_plan_only(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    """A planner-only search over the log's phase E2 shape; ``extra`` goes after the experiment."""
    proc = _m9(["-m", "+experiment=log_phase_e2", *extra, "hydra/sweeper=boundary", "hydra.sweeper.low=1",
                "hydra.sweeper.high=256", "trial.plan_only=true", "tracking=none", f"hydra.sweep.dir={tmp_path}/sweep"],
               cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_planner_first_search_over_the_logs_phase_e2_finds_124_without_a_trial(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _e2_plan_only(tmp_path)
    (row,) = _search(sweep).rows
    b = row.boundary
    assert (b.ceiling, b.first_rejection, b.first_failure) == (124, 125, None)
    assert "est. 4125 pages needed" in b.rejection_reason
    assert row.trials == 0 and row.planner_probes <= 2 + 8  # bisection on the plan alone
    assert not list(sweep.glob("*/trial.log")) and not list(sweep.glob("*/request.json"))  # nothing launched
    entries = {json.loads(p.read_text())["params"]["engine.max_seqs"]: json.loads(p.read_text())["outcome"]["status"]
               for p in sweep.glob("*/record.json")}
    assert entries == {125: "rejected", 124: "planned"}  # the first rejection is recorded as a point, for free
    assert "[m9] boundary: the planner accepts through engine.max_seqs=124" in proc.stdout
    report = (sweep / "report.md").read_text()
    assert "## Search" in report and "| 124 | 125 | rejected |" in report


def test_a_probe_value_the_schema_refuses_is_a_rejected_point_not_an_error(tmp_path):
    """Levanter's queue rule lives in the schema: past it, a probe cannot even be built into a config. The search
    records it as rejected, with the schema's reason and the values it was given, for free."""
    proc = _m9(["-m", "hydra/sweeper=boundary", "hydra.sweeper.low=1", "hydra.sweeper.high=64",
                "scheduler.max_queued_tokens=16", "trial.plan_only=true", "tracking=none",
                f"hydra.sweep.dir={tmp_path}/sweep"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = _search(tmp_path / "sweep").rows
    assert (row.boundary.ceiling, row.boundary.first_rejection) == (16, 17)
    assert row.boundary.rejection_reason.startswith("scheduler.max_queued_tokens=16 must be >= max(engine.max_seqs=17")
    entries = {json.loads(p.read_text())["params"]["engine.max_seqs"]: json.loads(p.read_text())["outcome"]
               for p in (tmp_path / "sweep").glob("*/record.json")}
    assert entries[17]["status"] == "rejected" and entries[17]["signature"] == row.boundary.rejection_reason
    assert entries[16]["status"] == "planned"


def test_other_swept_keys_give_one_search_each_a_frontier(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _e2_plan_only(tmp_path, "engine.max_pages=2048,4096")
    rows = {r.overrides[1]: r.boundary.ceiling for r in _search(sweep).rows}
    assert rows == {"engine.max_pages=2048": 62, "engine.max_pages=4096": 124}  # floor(pages / 33)
    assert "| `+experiment=log_phase_e2 engine.max_pages=2048 trial.plan_only=true tracking=none` | 62 | 63 |" \
        in proc.stdout
    assert (sweep / "frontier.png").read_bytes().startswith(b"\x89PNG")


def test_searching_a_knob_that_is_also_given_values_is_refused(tmp_path):
    proc = _m9(["-m", "hydra/sweeper=boundary", "engine.max_seqs=2,4", "tracking=none",
                f"hydra.sweep.dir={tmp_path}/sweep"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("m9: error: engine.max_seqs: searched by hydra.sweeper.knob; give its range as "
                                   "hydra.sweeper.low / hydra.sweeper.high instead of values")


@pytest.mark.slow
def test_a_real_search_finds_what_a_full_grid_finds(tmp_path):
    """Tiny model, a runtime boundary the planner does not check (an SLA over measured tokens: 8 new tokens per
    sequence, at most 24 in the round, so stable through 3 sequences). The grid after the search reuses the
    search's measurements and runs only what is missing."""
    shape = ["engine.max_seq_len=64", "workload.prompt_len=8", "workload.max_new_tokens=8", "workload.n_rounds=1",
             f"tracking.uri={store_at(tmp_path)}"]
    search = _m9(["-m", "hydra/sweeper=boundary", "hydra.sweeper.low=1", "hydra.sweeper.high=5",
                  "hydra.sweeper.sla=[round_total_generated:le:24]", *shape, f"hydra.sweep.dir={tmp_path}/search"],
                 cwd=tmp_path)
    assert search.returncode == 0, search.stderr[-3000:]
    (row,) = _search(tmp_path / "search").rows
    assert (row.boundary.ceiling, row.boundary.first_failure, row.boundary.failure_kinds) == (3, 4, {"sla": 2})
    assert row.trials == 6  # 1, 5, then 3, 4, then the ceiling and the (SLA, so repeated) failure confirmed

    grid = _m9(["-m", "engine.max_seqs=1,2,3,4,5", *shape, f"hydra.sweep.dir={tmp_path}/grid"], cwd=tmp_path)
    assert grid.returncode == 0, grid.stderr[-3000:]
    assert "5 points, 5 pass, 0 fail, 0 rejected (4 reused from earlier sweeps)" in grid.stdout
    entries = [json.loads(p.read_text()) for p in (tmp_path / "grid").glob("*/record.json")]
    sla = parse_sla(["round_total_generated<=24"])
    ok = sorted(e["params"]["engine.max_seqs"] for e in entries
                if e["outcome"]["status"] == "pass" and not misses(sla, e["outcome"]["metrics"]))
    grid_ceiling = max(v for v in ok if all(u in ok for u in range(1, v + 1)))
    assert grid_ceiling == row.boundary.ceiling
    assert "SLA miss: round_total_generated=32 misses round_total_generated<=24" in \
        (tmp_path / "search" / "report.md").read_text()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("m9").experiment_id
    (parent,) = client.search_runs([exp], "tags.kind = 'sweep' and tags.mode = 'boundary'")
    assert parent.data.metrics["ceiling"] == 3 and parent.data.metrics["search_trials"] == 6
    assert parent.data.tags["first_failure"] == "engine.max_seqs=4" and parent.data.tags["failure_kind"] == "sla"
    assert parent.data.tags["failure_signature"].startswith("round_total_generated=32 misses")
    assert len(client.search_runs([exp], "tags.kind = 'point'")) == 6 + 1  # the grid ran only max_seqs=2
