"""Failures are data: a real multirun where points are killed, hang, run out of pages, blow a memory limit, or
decode NaNs, between healthy points. Every point must be recorded with the right status and kind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import store_at

pytestmark = pytest.mark.slow

CASES = {
    "healthy_a": "",
    "sigkill": "trial:\n  inject_fault: sigkill\n",
    "segfault": "trial:\n  inject_fault: segfault\n",
    "hang": "trial:\n  inject_fault: hang\n  timeout_s: 40\n",
    # max_pages below what 8 sequences x 17 pages need; the planner would refuse, so enforcement is off
    "out_of_pages": "engine:\n  max_pages: 40\ntrial:\n  enforce_plan: false\n",
    "memory": "trial:\n  memory_limit_gb: 0.4\n",
    "nan_weights": "trial:\n  inject_fault: nan_weights\n",
    "healthy_b": "engine:\n  max_seqs: 4\n",
}
EXPECTED = {
    "healthy_a": ("pass", None, ""),
    "sigkill": ("fail", "crash", "killed by SIGKILL"),
    "segfault": ("fail", "crash", "killed by SIGSEGV"),
    "hang": ("fail", "timeout", "no result after trial.timeout_s=40s"),
    "out_of_pages": ("fail", "out_of_pages", "Out of free pages during allocation"),
    "memory": ("fail", "oom", "> trial.memory_limit_gb=0.4"),
    "nan_weights": ("fail", "nan", "non-finite logprobs"),
    "healthy_b": ("pass", None, ""),
}


def test_every_fault_is_recorded_and_the_sweep_completes(tmp_path):
    from mlflow.tracking import MlflowClient

    conf = tmp_path / "conf" / "case"
    conf.mkdir(parents=True)
    for name, body in CASES.items():
        (conf / f"{name}.yaml").write_text("# @package _global_\n" + body)
    uri = store_at(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["M9_ALLOW_FAULT_INJECTION"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "m9", "-m", "-cd", str(tmp_path / "conf"), f"+case={','.join(CASES)}",
         "workload.max_new_tokens=128", "workload.n_rounds=1", f"tracking.uri={uri}",
         f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(CASES)} points, 2 pass, {len(CASES) - 2} fail, 0 rejected" in proc.stdout

    client = MlflowClient(tracking_uri=uri)
    exp_id = client.get_experiment_by_name("m9").experiment_id
    runs = client.search_runs([exp_id], "tags.kind = 'point'")
    assert len(runs) == len(CASES)  # nothing missing from the store
    (parent,) = client.search_runs([exp_id], "tags.kind = 'sweep'")
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_fail"] == len(CASES) - 2
    by_case = {r.data.tags["overrides"].split()[0].split("=")[1]: r for r in runs}
    for name, (status, kind, signature) in EXPECTED.items():
        tags = by_case[name].data.tags
        assert tags["status"] == status, (name, tags)
        assert tags.get("failure_kind", None) == kind, (name, tags)
        assert signature in tags.get("signature", ""), (name, tags.get("signature"))
        artifacts = {a.path for a in client.list_artifacts(by_case[name].info.run_id)}
        assert "trial.log" in artifacts, name
    assert "plan overridden: engine.max_pages=40 is too small" in by_case["out_of_pages"].data.tags["notes"]
    assert by_case["healthy_b"].data.metrics["round_total_generated"] == 4 * 128
