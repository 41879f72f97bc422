"""``python -m m9`` / ``m9``: compose (Hydra) -> typed config -> one point."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from m9 import preflight
from m9.config import from_hydra, register_schema
from m9.point import run_point
from m9.provenance import JobInfo

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

register_schema()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _run(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    job = JobInfo(
        sweep_id=Path(hc.sweep.dir if multirun else hc.run.dir).name,
        job_num=hc.job.num if multirun else 0,
        overrides=tuple(hc.overrides.task),
        output_dir=Path(hc.runtime.output_dir),
    )
    outcome = run_point(from_hydra(cfg), job)
    if not multirun and outcome.status not in ("pass", "planned"):
        sys.exit(1)  # a single point that did not pass is a failed command; in a sweep it is a data point


def main() -> None:
    """Console entry point: check every point of the command line, then hand over to Hydra."""
    try:
        preflight.check(sys.argv[1:], CONF_DIR)
    except preflight.BadInput as exc:
        print(f"m9: error: {exc}", file=sys.stderr)
        sys.exit(2)
    _run()


if __name__ == "__main__":
    main()
