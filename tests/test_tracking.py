"""The MLflow store holds the same record as the journal: a point rebuilt from its run equals its journal entry."""

from __future__ import annotations

from conftest import compose_m9, store_at

from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.point import run_point
from m9.session import Session
from m9.record import tracking
from m9.record.journal import PointRecord, read_record
from m9.record.provenance import JobInfo
from m9.run.files import PointDir

TEXTS_THAT_LOOK_LIKE_VALUES = {"resolved.prompt_tokens": "16", "model.name": "8", "accelerator.name": "true",
                               "trial.inject_fault": None, "workload.prompt_template": "null-free {i}"}


def test_a_point_rebuilt_from_its_run_equals_its_journal_entry(tmp_path):
    cfg = compose_m9(["engine.max_seqs=4", "engine.max_pages=3", f"tracking.uri={store_at(tmp_path)}",
                      "workload.stop_tokens=[1,2]"])
    session = Session()
    store = session.store(cfg.tracking)
    store.init()
    job = JobInfo("s", 0, ("engine.max_pages=3",), tmp_path / "0", point_key="k0")
    assert run_point(cfg, job, session).status == Status.REJECTED  # the planner refused it; recorded without a trial
    journal = read_record(PointDir(tmp_path / "0").record)
    assert journal.run_id is not None
    assert tracking.find_point(store, "k0") == journal
    assert journal.params["workload.stop_tokens"] == [1, 2] and journal.params["engine.max_pages"] == 3

    # every kind of value a record holds: text that looks like a number, a bool or null, lists, repeats, runtime
    outcome = Outcome(Status.FAIL, FailureKind.CRASH, "2 of 3 repeats failed; repeat 1: killed by SIGKILL",
                      {"round_avg_tok_s": 123.5, "pages_in_use": 12, "repeats": 3}, ("a note", "another"),
                      {"backend": "cpu", "device_kind": "cpu", "device_count": 4, "jax_version": "0.10.2"},
                      ({"status": "pass", "failure_kind": None, "signature": "", "round_avg_tok_s": 120.0},
                       {"status": "fail", "failure_kind": "crash", "signature": "killed by SIGKILL"}))
    params = {**journal.params, **TEXTS_THAT_LOOK_LIKE_VALUES, "workload.prompts": ["a, b", "c"],
              "workload.length_fixed": True, "model.rope_theta": 500000.0, "engine.max_seqs_in_prefill": None}
    job1 = JobInfo("s", 1, ("engine.max_seqs=4", "+probe=x"), tmp_path / "1", point_key="k1")
    record = PointRecord("s", 1, job1.overrides, str(job1.output_dir), "k1", outcome, params,
                         reused_from={"sweep_id": "a", "job_num": 0, "run_id": None, "output_dir": "/x"})
    run_id = tracking.record_point(store, job1, record, [])
    assert tracking.find_point(store, "k1") == record.replace(run_id=run_id)


def test_the_ui_link_opens_the_runs_table_of_the_experiment_without_credentials(tmp_path):
    from m9.config import TrackingConfig
    from m9.record.tracking import Store

    local = Store(TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="links"))
    assert local.ui_link() is None  # no experiment yet: nothing to open
    experiment_id = local.init()
    assert local.ui_link() == (f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?"
                               "workflowType=machine_learning")
    assert local.ui_hint().endswith(f"(serve it: mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db)")
    server = Store(TrackingConfig(uri="https://ci:s3cret@mlflow.example/", experiment="links"))
    server._experiment_id = "7"  # what init() would have looked up on the server
    assert server.ui_hint() == "https://mlflow.example/#/experiments/7/runs?workflowType=machine_learning"
    assert Store(TrackingConfig(backend="none")).ui_link() is None
    assert server.ui_link("s1") == ("https://mlflow.example/#/experiments/7/runs?workflowType=machine_learning"
                                              "&searchFilter=tags.sweep_id%20%3D%20%27s1%27"
                                              "&orderByKey=attributes.run_name&orderByAsc=true")


def test_runs_are_named_by_what_sets_them_apart():
    from m9.record.tracking.runs import sweep_name

    job = JobInfo("s", 3, ("engine.max_seqs=57", "scheduler.max_rounds=16", "model.max_seqs=1",
                           "tracking.uri=sqlite:////x.db", "workload.n_rounds=3"), PointDir("/tmp").path,
                  shared=("workload.n_rounds=3",))
    assert job.run_name == "engine.max_seqs=57 max_rounds=16 model.max_seqs=1"  # a last part two keys share: in full
    assert JobInfo("s", 0, (), PointDir("/tmp").path).run_name == "default"
    assert sweep_name("m9 -m engine.max_seqs=2,4,8 tracking.uri=sqlite:////x.db", "grid",
                      "s") == "grid max_seqs=2,4,8 (s)"
    assert sweep_name("m9 -m hydra/sweeper=boundary hydra.sweeper.high=256 engine.max_seq_len=64", "boundary",
                      "s") == "boundary high=256 (s)"
