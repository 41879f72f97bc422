"""``python -m m9`` / ``m9``: compose (Hydra) -> typed config -> one point."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from m9 import preflight, progress, sweep
from m9.config import from_hydra, register_schema
from m9.journal import read_sweep_meta
from m9.point import run_point
from m9.provenance import JobInfo

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

register_schema()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _run(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    meta = read_sweep_meta(Path(hc.sweep.dir)) if multirun else None
    job = JobInfo(
        sweep_id=Path(hc.sweep.dir if multirun else hc.run.dir).name,
        job_num=hc.job.num if multirun else 0,
        overrides=tuple(hc.overrides.task),
        output_dir=Path(hc.runtime.output_dir),
        parent_run_id=meta.get("parent_run_id") if meta else None,
    )
    outcome = run_point(from_hydra(cfg), job)
    if not multirun and outcome.status not in ("pass", "planned"):
        sys.exit(1)  # a single point that did not pass is a failed command; in a sweep it is a data point


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through main(), which closes the sweep as KILLED


def main() -> None:
    """Console entry point: ``m9 report ...``, or check every point of the command line and hand over to Hydra."""
    if sys.argv[1:2] == ["report"]:
        from m9 import report

        sys.exit(report.main(sys.argv[2:]))
    try:
        sweep.expect_grid(preflight.check(sys.argv[1:], CONF_DIR))
    except preflight.BadInput as exc:
        print(f"m9: error: {exc}", file=sys.stderr)
        sys.exit(2)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        _run()
    except SystemExit as exc:
        # Hydra skips on_multirun_end when a sweep dies: close its parent run here, not leave it RUNNING.
        if exc.code not in (0, None):
            killed = isinstance(exc.code, int) and exc.code >= 128
            sweep.close_sweep("KILLED" if killed else "FAILED")
        raise
    except KeyboardInterrupt:
        sweep.close_sweep("KILLED")
        raise
    except BaseException:
        sweep.close_sweep("FAILED")
        raise
    finally:
        progress.close_display()


if __name__ == "__main__":
    main()
