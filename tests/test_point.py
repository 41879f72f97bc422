"""One point's straight line, without Hydra: what lands on disk when the tracking store is down."""

from __future__ import annotations

import json

from conftest import compose_m9

from m9.point import run_point
from m9.session import Session
from m9.record.provenance import JobInfo


def test_a_store_that_is_down_costs_the_run_not_the_record(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    cfg = compose_m9(["engine.max_seqs=4", "engine.max_pages=3", "tracking.uri=http://127.0.0.1:9"])
    job = JobInfo("s", 0, ("engine.max_pages=3",), tmp_path / "0", point_key="k")
    outcome = run_point(cfg, job, Session())  # rejected by the planner: recorded without a trial
    assert outcome.status == "rejected"
    entry = json.loads((tmp_path / "0" / "record.json").read_text())
    assert entry["run_id"] is None and entry["tracking_error"].startswith("StoreUnreachable")
    assert entry["outcome"]["signature"].startswith("engine.max_pages=3 is too small")
    assert "warning: point 0: tracking store: StoreUnreachable" in capsys.readouterr().err
