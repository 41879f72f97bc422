"""``python -m m9`` / ``m9``: compose (Hydra) -> typed config -> one point. A multirun goes through m9's sweepers
(``hydra_plugins/m9_sweepers``), which check every point first and return each job's ``Outcome``."""

from __future__ import annotations

import dataclasses
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from m9 import CONF_DIR, CONF_PACKAGE, compose
from m9.config import M9Config
from m9.inputs import checkpoint
from m9.outcome.outcome import Outcome
from m9.outcome.status import Status
from m9.point import run_point
from m9.record import tracking
from m9.record.provenance import JobInfo, local_device_kind, measured, point_key
from m9.record.redact import move_uri_credentials
from m9.run import multihost, progress
from m9.run.files import PointDir

compose.register_schema()


@hydra.main(version_base="1.3", config_path=CONF_PACKAGE, config_name="config")
def _run(cfg: DictConfig) -> Outcome:
    # In a submitit job too (its runner ignores SIGTERM): SLURM's SIGTERM at a time limit or scancel stops the
    # point's trial and leaves its run KILLED; the sweep then records the job with SLURM's verdict.
    signal.signal(signal.SIGTERM, _terminate)
    m9cfg = checkpoint.resolve(compose.from_hydra(cfg))
    job = _job(m9cfg)
    single = HydraConfig.get().mode != RunMode.MULTIRUN
    if single and not m9cfg.trial.plan_only:
        _open_store(m9cfg)
    outcome = run_point(m9cfg, job)
    if single and outcome.status not in (Status.PASS, Status.PLANNED):
        sys.exit(1)  # a single point that did not pass is a failed command; in a sweep it is a data point
    return outcome


def _job(cfg: M9Config) -> JobInfo:
    """Who this point is: the identity m9's sweep left in its directory, or, for a single run (or a sweep m9's
    sweepers did not make), what Hydra says of it."""
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    job = JobInfo.read(PointDir(Path(hc.sweep.dir) / str(hc.job.num))) if multirun else None  # where the sweep puts it
    if job is None:
        job = JobInfo(sweep_id=Path(hc.sweep.dir if multirun else hc.run.dir).name,
                      job_num=hc.job.num if multirun else 0, overrides=tuple(hc.overrides.task),
                      output_dir=Path(hc.runtime.output_dir), point_key=point_key(measured(cfg), local_device_kind()))
    rank, processes = multihost.processes()
    return dataclasses.replace(job, rank=rank, processes=processes)


def _open_store(cfg: M9Config) -> None:
    try:
        tracking.init_store(cfg.tracking)
    except Exception as exc:  # noqa: BLE001 - an unreachable store must stop the point before it runs, in one line
        print(f"[m9] error: {tracking.store_error(cfg.tracking, exc)}", file=sys.stderr, flush=True)
        sys.exit(3)


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the sweeper, which closes the sweep as KILLED


def main() -> None:
    """Console entry point: ``m9 report ...``, or hand over to Hydra (a single run is checked here first; a
    multirun's points are checked by the sweeper). Ctrl-C ends in one line and exit status 130."""
    sys.argv[1:], moved = move_uri_credentials(sys.argv[1:])  # before Hydra records the command line anywhere
    for line in moved:
        print(f"[m9] {line}", file=sys.stderr)
    if sys.argv[1:2] == ["report"]:
        from m9.report.command import main as report

        sys.exit(report(sys.argv[2:]))
    if sys.argv[1:2] == ["sync"]:
        from m9.record.sync import main as sync

        sys.exit(sync(sys.argv[2:]))
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if not compose.is_multirun(sys.argv[1:]):
            compose.check(sys.argv[1:], CONF_DIR)
        else:  # the points are the sweeper's to check; its own settings are composed before it exists
            compose.check_sweeper_settings(sys.argv[1:], CONF_DIR)
        _run()
    except compose.BadInput as exc:
        print(f"m9: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # a sweep says what it recorded itself (m9_sweepers); a single point here
        print("m9: interrupted: the point was not recorded (a run it had opened is closed as KILLED)", file=sys.stderr)
        sys.exit(130)
    finally:
        progress.close_display()


if __name__ == "__main__":
    main()
