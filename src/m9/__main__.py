"""``python -m m9`` / ``m9``: compose (Hydra) -> typed config -> one point. A multirun goes through m9's sweepers
(``hydra_plugins/m9_sweepers``), which check every point first and return each job's ``Outcome``."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from m9 import CONF_DIR
from m9.inputs import checkpoint
from m9.run import multihost
from m9 import compose as preflight
from m9.run import progress
from m9.record import tracking
from m9.config import from_hydra, register_schema
from m9.record.journal import read_sweep_meta
from m9.outcome.outcome import PASS, PLANNED, Outcome
from m9.point import run_point
from m9.record.provenance import JobInfo, local_device_kind, measured, point_key
from m9.record.redact import move_uri_credentials
from m9.sweep.driver import KEY_ENV


register_schema()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _run(cfg: DictConfig) -> Outcome:
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    # In a submitit job too (its runner ignores SIGTERM): SLURM's SIGTERM at a time limit or scancel stops the
    # point's trial and leaves its run KILLED; the sweep then records the job with SLURM's verdict.
    signal.signal(signal.SIGTERM, _terminate)
    m9cfg = checkpoint.resolve(from_hydra(cfg))
    rank, processes = multihost.processes()
    meta = read_sweep_meta(Path(hc.sweep.dir)) if multirun else None
    job = JobInfo(
        sweep_id=Path(hc.sweep.dir if multirun else hc.run.dir).name,
        job_num=hc.job.num if multirun else 0,
        overrides=tuple(hc.overrides.task),
        output_dir=Path(hc.runtime.output_dir),
        parent_run_id=meta.get("parent_run_id") if meta else None,
        point_key=hc.job.env_set.get(KEY_ENV) or point_key(measured(m9cfg), local_device_kind()),
        rank=rank,
        processes=processes,
    )
    if not multirun and not m9cfg.trial.plan_only:
        _open_store(m9cfg)
    outcome = run_point(m9cfg, job)
    if not multirun and outcome.status not in (PASS, PLANNED):
        sys.exit(1)  # a single point that did not pass is a failed command; in a sweep it is a data point
    return outcome


def _open_store(cfg) -> None:
    try:
        tracking.init_store(cfg.tracking)
    except Exception as exc:  # noqa: BLE001 - an unreachable store must stop the point before it runs, in one line
        print(f"[m9] error: {tracking.store_error(cfg.tracking, exc)}", file=sys.stderr, flush=True)
        sys.exit(3)


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the sweeper, which closes the sweep as KILLED


def main() -> None:
    """Console entry point: ``m9 report ...``, or hand over to Hydra (a single run is checked here first; a
    multirun's points are checked by the sweeper)."""
    sys.argv[1:], moved = move_uri_credentials(sys.argv[1:])  # before Hydra records the command line anywhere
    for line in moved:
        print(f"[m9] {line}", file=sys.stderr)
    if sys.argv[1:2] == ["report"]:
        from m9.report import command as report

        sys.exit(report.main(sys.argv[2:]))
    if not preflight.is_multirun(sys.argv[1:]):
        try:
            preflight.check(sys.argv[1:], CONF_DIR)
        except preflight.BadInput as exc:
            print(f"m9: error: {exc}", file=sys.stderr)
            sys.exit(2)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        _run()
    finally:
        progress.close_display()


if __name__ == "__main__":
    main()
