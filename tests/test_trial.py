"""A planned point run through the isolated child process, end to end but without Hydra or MLflow."""

from __future__ import annotations

import pytest
from conftest import compose_m9, no_engine

from m9.outcome.status import Status
from m9.plan.edge import plan_point
from m9.run.files import TrialDir
from m9.run.trial import run_trial
from m9.run.workers import Workers


def test_trial_runs_in_a_child_and_reports_the_logs_metrics(tmp_path):
    cfg = compose_m9(["engine.max_seqs=3", "engine.max_seq_len=128", "workload.max_new_tokens=24",
                      "workload.n_rounds=2", "accelerator.platform=cpu", "trial.worker=fresh"])
    plan = plan_point(cfg)
    trial = TrialDir(tmp_path)
    outcome = run_trial(cfg, plan, trial, Workers())  # trial.worker=fresh: a worker of its own
    assert outcome.status == Status.PASS, (outcome.signature, trial.log.read_text()[-2000:])
    m = outcome.metrics
    assert m["round_total_generated"] == 3 * 24 == m["predicted_round_total_generated"]
    assert m["length_fixed"] == 1 and m["empty_seqs"] == 0
    assert m["pages_in_use"] == plan.predicted_pages_in_use
    assert m["free_pages"] == plan.max_pages - m["pages_in_use"]
    assert m["round_avg_tok_s"] == m["round_total_generated"] / m["round_total_s"]
    assert m["decode_avg_tok_s"] > 0 and m["decode_iters"] >= 1
    assert m["iter_s_p50"] <= m["iter_s_p90"] <= m["iter_s_max"]
    assert m["n_rounds_done"] == 2
    result = trial.read_result()
    assert len(result.rounds) == 2 and result.jax_imported and result.model_built  # a fresh interpreter's trial
    assert m["first_round_s"] == result.rounds[0].round_total_s  # round 0's cost, kept apart from the headline
    assert result.rounds[0].compiles > 0 and m["compiles"] == sum(r.compiles for r in result.rounds)
    assert result.rounds[1].compiles == 0 == m["round_compiles"]  # the second round runs the first round's code
    for cost in ("process_start_s", "import_s", "model_build_s", "engine_build_s"):
        assert m[cost] > 0
    assert m["peak_rss_bytes"] > 100 * 2**20
    assert outcome.runtime["backend"] == "cpu" and outcome.runtime["jax_version"]
    assert "round 1:" in trial.log.read_text()


@pytest.mark.parametrize("worker", ["warm", "fresh"])
def test_the_engine_guard_fires_when_a_trial_starts_a_worker(tmp_path, monkeypatch, worker):
    """``no_engine`` patches ``spawn`` where the run stage calls it: a trial that would start a worker fails."""
    no_engine(monkeypatch)
    cfg = compose_m9(["engine.max_seqs=3", f"trial.worker={worker}"])
    with pytest.raises(pytest.fail.Exception, match="an engine child was started"):
        run_trial(cfg, plan_point(cfg), TrialDir(tmp_path), Workers())


def test_an_engine_child_starts_without_pytorch_where_pytorch_is_installed():
    """transformers (imported by Levanter) imports PyTorch wherever it is installed; the child's environment says not
    to, and m9's engine modules import in it without it."""
    import subprocess
    import sys

    pytest.importorskip("torch")  # installed here by the test extra (m9[gp])
    from m9.run.child import child_env

    code = "import sys, m9.engine.rounds, m9.engine.model; print(sorted(m for m in ('torch', 'jax') if m in sys.modules))"
    ran = subprocess.run([sys.executable, "-c", code], env=child_env(compose_m9()), capture_output=True, text=True,
                         timeout=300)
    assert ran.stdout.split() == ["['jax']"], ran.stderr[-2000:]
