"""``python -m m9`` / ``m9``: the command line checked, then Hydra composes and runs each point in this process's
session (a multirun through m9's sweepers, ``hydra_plugins/m9_sweepers``, which check every point first)."""

from __future__ import annotations

import dataclasses
import signal
import sys
from pathlib import Path
from typing import Any, Optional

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
from m9.record.provenance import JobInfo, local_device_kind, measured, point_key
from m9.record.redact import move_uri_credentials
from m9.run.files import PointDir
from m9.session import Session

compose.register_schema()


class Task:
    """What Hydra runs for each point: one point of m9 in this process's session. A launcher that sends the task to
    another process (submitit pickles it) gives that process a session of its own, closed with its point."""

    def __init__(self) -> None:
        self.session = Session()
        self.sent = False

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()
        self.sent = True

    def __call__(self, cfg: DictConfig) -> Outcome:
        # In a submitit job too (its runner ignores SIGTERM): SLURM's SIGTERM at a time limit or scancel stops the
        # point's trial and leaves its run KILLED; the sweep then records the job with SLURM's verdict.
        signal.signal(signal.SIGTERM, _terminate)
        try:
            m9cfg = checkpoint.resolve(compose.from_hydra(cfg))
            single = HydraConfig.get().mode != RunMode.MULTIRUN
            if single and not m9cfg.trial.plan_only:
                _open_store(self.session, m9cfg)
            outcome = run_point(m9cfg, _job(m9cfg), self.session)
        finally:
            if self.sent:  # a job's process is done with points once its point is
                self.session.close()
        if single and outcome.status not in (Status.PASS, Status.PLANNED):
            sys.exit(1)  # a single point that did not pass is a failed command; in a sweep it is a data point
        return outcome


def _job(cfg: M9Config) -> JobInfo:
    """Who this point is: the identity m9's sweep left in its directory, or, for a single run (or a sweep m9's
    sweepers did not make), what Hydra says of it; and which of the point's processes this is, as the launcher
    that started it says (``process()`` of an m9 launcher, else one process)."""
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    job = JobInfo.read(PointDir(Path(hc.sweep.dir) / str(hc.job.num))) if multirun else None  # where the sweep puts it
    if job is None:
        job = JobInfo(sweep_id=Path(hc.sweep.dir if multirun else hc.run.dir).name,
                      job_num=hc.job.num if multirun else 0, overrides=tuple(hc.overrides.task),
                      output_dir=Path(hc.runtime.output_dir), point_key=point_key(measured(cfg), local_device_kind()))
    rank, processes = _process(hc.launcher.get("_target_") if multirun else None)
    return dataclasses.replace(job, rank=rank, processes=processes)


def _process(launcher_target: Optional[str]) -> tuple[int, int]:
    """(rank, processes) of this point's process, from the launcher's own environment."""
    if not launcher_target:
        return 0, 1
    from hydra.utils import get_class

    process = getattr(get_class(launcher_target), "process", None)
    return process() if callable(process) else (0, 1)


def _open_store(session: Session, cfg: M9Config) -> None:
    store = session.store(cfg.tracking)
    try:
        store.init()
    except Exception as exc:  # noqa: BLE001 - an unreachable store must stop the point before it runs, in one line
        print(f"[m9] error: {store.error(exc)}", file=sys.stderr, flush=True)
        sys.exit(3)


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the sweeper, which closes the sweep as KILLED


def main() -> None:
    """Console entry point: ``m9 report ...``, ``m9 sync ...``, or the command line checked and handed to Hydra (a
    single run's point is checked here; a multirun's points by its sweeper). Ctrl-C ends in one line and exit
    status 130."""
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
    task = Task()
    try:
        if not compose.is_multirun(sys.argv[1:]):
            compose.check(sys.argv[1:], CONF_DIR)
        else:  # the points are the sweeper's to check; its own settings are composed before it exists
            compose.check_sweeper_settings(sys.argv[1:], CONF_DIR)
        hydra.main(version_base="1.3", config_path=CONF_PACKAGE, config_name="config")(task)()
    except compose.BadInput as exc:
        print(f"m9: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # a sweep says what it recorded itself (m9_sweepers); a single point here
        print("m9: interrupted: the point was not recorded (a run it had opened is closed as KILLED)", file=sys.stderr)
        sys.exit(130)
    finally:
        task.session.close()


if __name__ == "__main__":
    main()
