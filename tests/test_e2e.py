"""The real command: a Hydra multirun in a subprocess against a temporary MLflow store."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata

import pytest
from conftest import store_at

from m9.record.probe import PROBE_TIMEOUT_S
from m9.run.files import TrialDir


def _m9(args: list[str], cwd, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "m9", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_multirun_of_two_points_records_two_mlflow_runs(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = store_at(tmp_path)
    sweep_dir = tmp_path / "sweep"
    proc = _m9(["-m", "engine.max_seqs=2,3", "engine.max_seq_len=128", "workload.max_new_tokens=20",
                "workload.n_rounds=2", f"tracking.uri={uri}", "tracking.experiment=e2e",
                f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| 0 | `engine.max_seqs=2" in proc.stdout and "| 1 | `engine.max_seqs=3" in proc.stdout
    # what every point shares is said once; each point's lines name only its own overrides; a shared warning once
    assert f"[m9] every point: engine.max_seq_len=128 workload.max_new_tokens=20 workload.n_rounds=2 " \
           f"tracking.uri={uri} tracking.experiment=e2e" in proc.stdout
    assert "[m9] point 0 (engine.max_seqs=2): running" in proc.stdout
    assert "[m9] point 1 (engine.max_seqs=3): PASS" in proc.stdout
    assert "warning: workload.n_rounds" not in proc.stdout  # the second round compiles nothing (asserted below)
    assert (sweep_dir / "matrix.md").read_text().count("| PASS |") == 2

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("e2e")
    (parent,) = client.search_runs([exp.experiment_id], "tags.kind = 'sweep'")
    runs = client.search_runs([exp.experiment_id], "tags.kind = 'point'", order_by=["tags.job_num ASC"])
    assert len(runs) == 2
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in runs)
    # the UI's table tells them apart: each point by what it sweeps, the sweep by its grid; the link m9 prints at
    # the start and the end opens that table (not the GenAI page a fresh browser gets), with how to serve the store
    assert [r.data.tags["mlflow.runName"] for r in runs] == ["max_seqs=2", "max_seqs=3"]
    assert parent.data.tags["mlflow.runName"] == "grid max_seqs=2,3 (sweep)"
    link = (f"[m9] MLflow runs: http://127.0.0.1:5000/#/experiments/{exp.experiment_id}/runs?"
            "workflowType=machine_learning&searchFilter=tags.sweep_id%20%3D%20%27sweep%27"
            f"&orderByKey=attributes.run_name&orderByAsc=true (serve it: mlflow ui --backend-store-uri {uri})")
    assert proc.stdout.count(link) == 2, proc.stdout[-2000:]
    for job_num, (run, max_seqs) in enumerate(zip(runs, (2, 3))):
        p, m, t = run.data.params, run.data.metrics, run.data.tags
        assert p["engine.max_seqs"] == str(max_seqs) and p["workload.max_new_tokens"] == "20"
        # a key left unset holds the value used, marked derived
        assert p["engine.max_pages"] == str(max_seqs * 3) and "engine.max_pages" in p["derived"].split()
        assert m["round_total_generated"] == max_seqs * 20
        assert m["length_fixed"] == 1.0 and m["pages_in_use"] == m["predicted_pages_in_use"]
        assert m["n_rounds_done"] == 2 and m["compiles"] > 0 and m["round_compiles"] == 0  # round 1: round 0's code
        for key in ("round_total_s", "round_avg_tok_s", "decode_avg_tok_s", "decode_iters", "iter_s_p50",
                    "iter_s_p90", "iter_s_max", "first_iter_s", "free_pages", "pages_in_use_after_prefill",
                    "free_pages_after_prefill", "peak_rss_bytes"):
            assert key in m, key
        assert t["status"] == "pass" and t["job_num"] == str(job_num)
        assert t["sweep_id"] == "sweep" and t["overrides"].startswith(f"engine.max_seqs={max_seqs}")
        assert t["backend"] == "cpu" and t["device_kind"] == "cpu"
        assert t["levanter_version"] == metadata.version("marin-levanter") == p["stack.levanter"]  # this venv's
        assert t["jax_version"] == metadata.version("jax") == p["stack.jax"] and t["m9_git_rev"]
        assert t["python_version"] == platform.python_version() == p["stack.python"]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"m9_config.json", "trial.log", "result.json"} <= artifacts


def test_rejected_single_run_exits_nonzero_and_is_recorded(tmp_path):
    """A rejected single point exits non-zero with the reason, records it, and never starts the engine."""
    uri = store_at(tmp_path)
    proc = _m9(["engine.max_seqs=4", "engine.max_pages=3", f"tracking.uri={uri}",
                f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert "REJECTED" in proc.stdout and "engine.max_pages=3 is too small" in proc.stdout
    assert not (tmp_path / "run" / "trial.log").exists()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("m9").experiment_id])
    assert run.data.tags["status"] == "rejected"
    assert "est. 68 pages needed" in run.data.tags["signature"]


def test_plan_only_sweep_prints_verdicts_without_running(tmp_path):
    proc = _m9(["-m", "+experiment=log_phase_e2", "trial.plan_only=true", "tracking=none",
                f"hydra.sweep.dir={tmp_path}/sweep"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 points, 0 pass, 0 fail, 1 rejected, 3 planned" in proc.stdout
    assert "| 124 | 1x8 over 2 hosts | 4096 | 124 | 32 | PLANNED |" in proc.stdout  # the log's mesh: the slice's 8 chips
    assert "predicted pages_in_use=4092" in proc.stdout
    assert "(est. 4125 pages needed)" in proc.stdout
    assert "[m9] boundary: the planner accepts through engine.max_seqs=124" in proc.stdout
    assert not list((tmp_path / "sweep").glob("*/trial.log"))


@pytest.mark.parametrize("multirun", [True, False])
def test_an_unreachable_store_is_refused_in_seconds_before_any_point(tmp_path, multirun):
    """MLflow's own client would retry for minutes: m9 probes the server first, with a bounded wait."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    args = ["-m", "engine.max_seqs=2,4"] if multirun else ["engine.max_seqs=2"]
    proc = subprocess.run([sys.executable, "-m", "m9", *args, "tracking.uri=http://127.0.0.1:9",
                           f"hydra.sweep.dir={tmp_path}/sweep", f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    # m9's own bounded probe said so, not MLflow's client after its minutes of retries
    assert proc.stderr.startswith("[m9] error: tracking store http://127.0.0.1:9: StoreUnreachable: no answer "
                                  f"within {PROBE_TIMEOUT_S:g}s")
    assert proc.stderr.strip().count("\n") == 0, proc.stderr  # one line
    assert not list(tmp_path.rglob("record.json")) and not list(tmp_path.rglob("trial.log"))  # no point started


@pytest.mark.slow
def test_repeats_are_fresh_trials_grouped_under_one_point(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = store_at(tmp_path)
    proc = _m9(["-m", "engine.max_seqs=2", "trial.repeats=3", "engine.max_seq_len=64", "workload.prompt_len=8",
                "workload.max_new_tokens=8", "workload.n_rounds=1", f"tracking.uri={uri}",
                f"hydra.sweep.dir={tmp_path}/sweep"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    entry = json.loads((tmp_path / "sweep" / "0" / "record.json").read_text())
    m = entry["outcome"]["metrics"]
    assert len(entry["outcome"]["repeats"]) == 3 and m["repeats_passed"] == 3
    assert m["round_avg_tok_s_min"] <= m["round_avg_tok_s"] <= m["round_avg_tok_s_max"]
    assert sorted(r["round_avg_tok_s"] for r in entry["outcome"]["repeats"])[1] == m["round_avg_tok_s"]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| 0 |"))
    assert f"{m['round_avg_tok_s']:.1f} [{m['round_avg_tok_s_min']:.1f}, {m['round_avg_tok_s_max']:.1f}]" in row
    assert all((tmp_path / "sweep" / "0" / f"repeat_{i}" / "trial.log").exists() for i in range(3))

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("m9").experiment_id], "tags.kind = 'point'")
    assert run.data.metrics["round_avg_tok_s_max"] == m["round_avg_tok_s_max"]
    history = client.get_metric_history(run.info.run_id, "repeat_round_avg_tok_s")
    assert sorted(h.step for h in history) == [0, 1, 2]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "repeat_2")} >= {"repeat_2/trial.log"}


@pytest.mark.slow
def test_the_headline_command_passes_on_the_default_config(tmp_path):
    proc = _m9(["-m", "engine.max_seqs=56,57,60", "tracking=none", f"hydra.sweep.dir={tmp_path}/sweep"],
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3 points, 3 pass, 0 fail, 0 rejected" in proc.stdout
    entry = json.loads((tmp_path / "sweep" / "2" / "record.json").read_text())
    assert entry["params"]["engine.max_prefill_size"] == 60 * 16  # sized to the prompts, recorded
    assert entry["outcome"]["metrics"]["worker_trial"] == 3  # one warm engine child ran all three


@pytest.mark.slow
def test_a_running_point_is_live_in_mlflow(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = store_at(tmp_path)
    MlflowClient(tracking_uri=uri).search_experiments()  # the schema first: readers racing its creation break it
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "m9", "-m", "engine.max_seqs=4", "workload.max_new_tokens=480",
                             "workload.n_rounds=3", f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path}/sweep"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen_running = None
    deadline = time.monotonic() + 300
    while proc.poll() is None and seen_running is None and time.monotonic() < deadline:
        time.sleep(0.5)
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("m9")
        runs = client.search_runs([exp.experiment_id], "tags.kind = 'point'") if exp else []
        for run in runs:
            series = client.get_metric_history(run.info.run_id, "iters/tokens")
            if run.info.status == "RUNNING" and series and "status" not in run.data.tags:
                seen_running = (run.info.run_id, max(m.value for m in series), len(series))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert seen_running is not None, "no point run was seen RUNNING with step metrics"
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(seen_running[0])
    assert run.info.status == "FINISHED" and run.data.tags["status"] == "pass"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "rounds/round_total_s")) == [0, 1, 2]
    tokens = client.get_metric_history(run.info.run_id, "iters/tokens")
    assert len(tokens) > seen_running[2] and max(m.value for m in tokens) > 0  # more arrived after we looked
    pages = [m.value for m in client.get_metric_history(run.info.run_id, "iters/pages_in_use")]
    assert max(pages) <= run.data.metrics["pages_in_use"]
    exp = client.get_experiment_by_name("m9")
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"  # the UI opens on its runs


@pytest.mark.slow
def test_a_sweep_over_the_model_axis_records_its_mesh(tmp_path):
    """``-m mesh.model=1,2,4`` on a CPU host made into 4 devices: every point decodes the same tokens, and its mesh
    and one chip's bytes are in MLflow and the matrix."""
    from mlflow.tracking import MlflowClient

    uri = store_at(tmp_path)
    proc = _m9(["-m", "mesh.model=1,2,4", "accelerator.chips_per_host=4", "model.num_kv_heads=4",
                "engine.max_seqs=4", "engine.max_seq_len=64", "workload.prompt_len=8", "workload.max_new_tokens=8",
                "workload.n_rounds=1", f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path}/sweep"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for job, mesh in enumerate(("1x1", "1x2", "1x4")):
        assert f"| {job} | `mesh.model={mesh[2]}` | 4 | {mesh} |" in proc.stdout
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("m9").experiment_id], "tags.kind = 'point'",
                              order_by=["tags.job_num ASC"])
    assert [r.data.tags["mesh"] for r in runs] == ["1x1", "1x2", "1x4"]
    assert [r.data.params["resolved.mesh"] for r in runs] == ["1x1", "1x2", "1x4"]
    kv = [r.data.metrics["kv_cache_bytes_per_chip"] for r in runs]
    assert kv[0] == 2 * kv[1] == 4 * kv[2] and all(r.data.tags["status"] == "pass" for r in runs)
    assert all(r.data.metrics["kv_cache_bytes_per_chip"] == r.data.metrics["predicted_kv_cache_bytes_per_chip"]
               for r in runs)
    digests = {TrialDir(tmp_path / "sweep" / str(j)).read_result().rounds[0].tokens_digest for j in range(3)}
    assert len(digests) == 1  # the same tokens on 1, 2 and 4 chips
