"""A real `mlflow server` on 127.0.0.1: a sweep records to it, and its REST API shows the nested runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base}/api/2.0/mlflow/{path}", data=data,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


class Server:
    """``mlflow server`` on a loopback port over one sqlite store: stopped and started again on the same port."""

    def __init__(self, tmp_path: Path):
        self.tmp_path, self.port, self.proc = tmp_path, _free_port(), None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.proc = subprocess.Popen(
            [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.tmp_path}/server.db",
             "--artifacts-destination", str(self.tmp_path / "art")],
            stdout=open(self.tmp_path / "server.log", "a"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            assert self.proc.poll() is None, (self.tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not come up in 120 s"
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def mlflow_server(server):
    return server.base


def test_sweep_records_parent_and_children_on_a_tracking_server(tmp_path, mlflow_server):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_TRACKING_URI"] = mlflow_server  # the standard way to point a tool at a shared server
    proc = subprocess.run(
        [sys.executable, "-m", "m9", "-m", "engine.max_seqs=2,3", "engine.max_seq_len=128",
         "workload.max_new_tokens=16", "workload.n_rounds=1", "tracking.experiment=served",
         f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    exp = _api(mlflow_server, "experiments/get-by-name?experiment_name=served")["experiment"]
    search = {"experiment_ids": [exp["experiment_id"]], "max_results": 100}
    parents = _api(mlflow_server, "runs/search", {**search, "filter": "tags.kind = 'sweep'"})["runs"]
    assert len(parents) == 1
    parent = parents[0]
    ptags = {t["key"]: t["value"] for t in parent["data"]["tags"]}
    assert parent["info"]["status"] == "FINISHED" and ptags["sweep_id"] == "sweep"
    assert ptags["boundary"].startswith("all points pass (engine.max_seqs 2..3)")
    assert "m9 -m engine.max_seqs=2,3" in ptags["command"]
    children = _api(mlflow_server, "runs/search", {
        **search, "filter": f"tags.mlflow.parentRunId = '{parent['info']['run_id']}'"})["runs"]
    assert len(children) == 2
    for child in children:
        tags = {t["key"]: t["value"] for t in child["data"]["tags"]}
        metrics = {m["key"]: m["value"] for m in child["data"]["metrics"]}
        assert tags["status"] == "pass" and tags["kind"] == "point" and tags["sweep_id"] == "sweep"
        assert metrics["round_total_generated"] == int(tags["overrides"].split()[0].split("=")[1]) * 16
    arts = _api(mlflow_server, f"artifacts/list?run_id={parent['info']['run_id']}")
    assert {"report.md", "throughput.png", "pages.png"} <= {f["path"] for f in arts.get("files", [])}


def test_credentials_in_the_tracking_uri_leave_no_trace(tmp_path, mlflow_server):
    """The server takes any basic auth; the secret must reach no param, tag, run name, artifact, log or report."""
    user, secret = "m9user", "s3cr3tT0ken"
    uri = mlflow_server.replace("http://", f"http://{user}:{secret}@")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    proc = subprocess.run(
        [sys.executable, "-m", "m9", "-m", "engine.max_seqs=2,3", "engine.max_seq_len=128",
         "workload.max_new_tokens=16", "workload.n_rounds=1", "tracking.experiment=secret",
         f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "credentials moved to MLFLOW_TRACKING_USERNAME/PASSWORD" in proc.stderr

    exp = _api(mlflow_server, "experiments/get-by-name?experiment_name=secret")["experiment"]
    runs = _api(mlflow_server, "runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 100})["runs"]
    assert len(runs) == 3 and all(r["info"]["status"] == "FINISHED" for r in runs)
    point = next(r for r in runs if any(t["key"] == "kind" and t["value"] == "point" for t in r["data"]["tags"]))
    params = {p["key"]: p["value"] for p in point["data"]["params"]}
    assert params["tracking.uri"] == mlflow_server  # recorded, without its userinfo
    leaks = [f"{where}: {text[:200]}" for where, text in [
        ("runs", json.dumps(runs)), ("stdout", proc.stdout), ("stderr", proc.stderr),
        *((str(p), p.read_bytes().decode(errors="replace")) for p in tmp_path.rglob("*") if p.is_file()
          and p.name != "server.log")]
        if secret in text or f"{user}:" in text or f"{user}@" in text]
    assert not leaks, leaks  # the server's store, artifacts, the sweep folder, Hydra's files, reports, logs


OUTAGE = ["-m", "engine.max_seqs=2,3,4", "engine.max_seq_len=64", "workload.prompt_len=8", "workload.max_new_tokens=8",
          "workload.n_rounds=1", "tracking.experiment=outage"]


def _points(base: str) -> list[dict]:
    exp = _api(base, "experiments/get-by-name?experiment_name=outage")["experiment"]
    return _api(base, "runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 100,
                                      "filter": "tags.kind = 'point' and tags.sweep_id = 'sweep'"})["runs"]


def _all_in_the_store_once(base: str) -> None:
    """Every point once, FINISHED with its status and metrics; none RUNNING."""
    runs = _points(base)
    tags = [{t["key"]: t["value"] for t in r["data"]["tags"]} for r in runs]
    assert sorted(t["job_num"] for t in tags) == ["0", "1", "2"], tags
    assert all(r["info"]["status"] == "FINISHED" for r in runs), [r["info"]["status"] for r in runs]
    assert all(t.get("status") == "pass" for t in tags)
    assert all(any(m["key"] == "round_avg_tok_s" for m in r["data"]["metrics"]) for r in runs)


def _sweep_with_an_outage(tmp_path, server, back_before_the_end: bool):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_TRACKING_URI"] = server.base
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, "-m", "m9", *OUTAGE, f"hydra.sweep.dir={sweep}"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600  # point 0 with imports and compilation, many times over
    while not (sweep / "1" / "request.json").exists():  # point 1 is decoding
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.1)
    server.stop()
    if back_before_the_end:
        while not (sweep / "1" / "record.json").exists():  # point 1 ends while the store is away
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
            time.sleep(0.1)
        server.start()
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return sweep, out, env


def test_a_store_down_during_a_point_catches_up_before_the_sweep_ends(tmp_path, server):
    sweep, out, _ = _sweep_with_an_outage(tmp_path, server, back_before_the_end=True)
    assert "tracking store caught up" in out, out[-3000:]
    _all_in_the_store_once(server.base)
    assert "3 points, 3 pass" in out


def test_a_store_back_after_the_sweep_gets_its_points_from_the_next_command_and_m9_sync_finds_nothing_left(
        tmp_path, server):
    sweep, out, env = _sweep_with_an_outage(tmp_path, server, back_before_the_end=False)
    assert f"are not in the tracking store yet (it does not answer); their journals are in {sweep}" in out, out[-3000:]
    server.start()
    # any sweep on the store: here two points the planner refuses, so that nothing runs
    nxt = subprocess.run([sys.executable, "-m", "m9", "-m", "engine.max_seqs=2,3", "engine.max_pages=1",
                          "tracking.experiment=outage", f"hydra.sweep.dir={tmp_path}/next"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert nxt.returncode == 0, nxt.stderr[-3000:]
    assert "tracking store caught up with sweep sweep: 2 points written" in nxt.stdout, nxt.stdout[-3000:]
    _all_in_the_store_once(server.base)
    exp = _api(server.base, "experiments/get-by-name?experiment_name=outage")["experiment"]
    parents = _api(server.base, "runs/search", {"experiment_ids": [exp["experiment_id"]],
                                                "filter": "tags.sweep_id = 'sweep' and tags.kind = 'sweep'"})["runs"]
    assert [p["info"]["status"] for p in parents] == ["FINISHED"]  # closed with the status the sweep ended with
    again = subprocess.run([sys.executable, "-m", "m9", "sync", str(sweep)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert f"[m9] sync {sweep}: 0 points written, 3 already there" in again.stdout, again.stdout + again.stderr
