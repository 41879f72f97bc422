"""``m9 sync``: a sweep folder into a store, once. (A store that goes away mid-sweep and comes back:
tests/test_mlflow_server.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("recorded")]  # the recorded sweep made once


def _m9(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "m9", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)


def test_a_sweep_folder_synced_into_an_empty_store_reads_back_the_same_and_a_second_sync_writes_nothing(
        tmp_path, recorded_sweep):
    from m9.config import TrackingConfig
    from m9.record import tracking
    from m9.report import matrix

    sweep, db, _ = recorded_sweep
    first = _m9(tmp_path, "sync", str(sweep), "--tracking-uri", f"sqlite:///{tmp_path}/b.db")
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"[m9] sync {sweep}: 3 points written, 0 already there" in first.stdout

    def points(uri):
        store = tracking.Store(TrackingConfig(uri=uri))
        parent = tracking.find_sweep(store, "sweep")
        return parent, [r.replace(run_id=None) for r in tracking.load_points(store, parent)]

    (a_parent, a), (b_parent, b) = points(f"sqlite:///{db}"), points(f"sqlite:///{tmp_path}/b.db")
    assert len(b) == 3 and b == a and matrix.render(b) == matrix.render(a)  # the same records: the same report
    assert b_parent["status"] == "FINISHED" and b_parent["tags"]["command"] == a_parent["tags"]["command"]

    second = _m9(tmp_path, "sync", str(sweep), "--tracking-uri", f"sqlite:///{tmp_path}/b.db")
    assert f"[m9] sync {sweep}: 0 points written, 3 already there" in second.stdout, second.stdout + second.stderr
    assert len(points(f"sqlite:///{tmp_path}/b.db")[1]) == 3

    bad = _m9(tmp_path, "sync", str(tmp_path))
    assert bad.returncode == 2 and bad.stderr.strip() == f"m9 sync: error: {tmp_path}: not a sweep folder " \
                                                         "(no m9_sweep.json)"


def test_m9_report_on_a_store_that_missed_a_point_writes_it_before_reading(tmp_path, recorded_sweep):
    """The state an outage leaves (tests/test_mlflow_server.py makes it for real): a point the store did not take,
    its journal saying so, its sweep's run counting it pending; the next m9 command on the store is a report."""
    from mlflow.tracking import MlflowClient

    folder, db, _ = recorded_sweep
    sweep = tmp_path / "sweep"
    shutil.copytree(folder, sweep)
    shutil.copy(db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("m9").experiment_id
    (parent,) = client.search_runs([exp], "tags.kind = 'sweep'")
    client.set_tag(parent.info.run_id, "output_dir", str(sweep))  # the copy is the sweep's folder now
    (lost,) = client.search_runs([exp], "tags.kind = 'point' and tags.job_num = '1'")
    client.delete_run(lost.info.run_id)
    journal = sweep / "1" / "record.json"
    record = json.loads(journal.read_text())
    journal.write_text(json.dumps({**record, "output_dir": str(sweep / "1"), "run_id": None,
                                   "tracking_error": "MlflowException: API request failed"}))
    client.log_metric(parent.info.run_id, "store_pending", 1)

    report = _m9(tmp_path, "report", "--uri", uri, "sweep")
    assert report.returncode == 0, report.stderr[-3000:]
    assert "tracking store caught up with sweep sweep: 1 points written, 0 already there" in report.stdout
    (found,) = client.search_runs([exp], "tags.kind = 'point' and tags.job_num = '1'")
    assert found.info.status == "FINISHED" and found.data.tags["status"] == record["outcome"]["status"]
    assert client.get_run(parent.info.run_id).data.metrics["store_pending"] == 0
    again = _m9(tmp_path, "report", "--uri", uri, "sweep")
    assert again.returncode == 0 and "caught up" not in again.stdout  # nothing left to write
