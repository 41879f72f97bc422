"""Hydra callbacks: create the tracking store before any job starts; print the matrix when a sweep ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from m9.config import TrackingConfig


def _tracking(config: DictConfig) -> TrackingConfig:
    return TrackingConfig(**OmegaConf.to_container(config.tracking, resolve=True))


class M9Callback(Callback):
    """Runs in the launching process, around the jobs."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from m9 import tracking

        tracking.init_store(_tracking(config))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from m9 import tracking

        tracking.init_store(_tracking(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from m9.journal import read_sweep
        from m9.matrix import render

        sweep_dir = Path(config.hydra.sweep.dir)
        entries = read_sweep(sweep_dir)
        table = render(entries)
        (sweep_dir / "matrix.md").write_text(table + "\n")
        counts = {}
        for e in entries:
            counts[e["outcome"]["status"]] = counts.get(e["outcome"]["status"], 0) + 1
        tally = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("pass", "fail", "rejected", "planned")
                          if s != "planned" or s in counts)
        print(f"\n[m9] sweep {sweep_dir}: {len(entries)} points, {tally}\n\n{table}\n", flush=True)
