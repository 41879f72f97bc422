"""Hydra callbacks, in the launching process: open the store and the sweep before any job starts; close the sweep
and print its matrix and boundary when it ends."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from m9.config import TrackingConfig


def _tracking(config: DictConfig) -> TrackingConfig:
    return TrackingConfig(**OmegaConf.to_container(config.tracking, resolve=True))


def _loud(step):
    # Hydra turns a callback's exception into a warning and carries on; a broken sweep record is an m9 bug, and
    # a sweep must not run unrecorded, so stop with a clear message instead.
    def wrapped(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            step(self, config, **kwargs)
        except Exception as exc:
            print(f"[m9] error in {step.__name__}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(3) from exc

    return wrapped


class M9Callback(Callback):
    """Creates the tracking store once, and brackets a multirun with its sweep record and parent run."""

    @_loud
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from m9 import tracking

        tracking.init_store(_tracking(config))

    @_loud
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from m9 import progress, sweep, tracking

        tcfg = _tracking(config)
        tracking.init_store(tcfg)
        meta = sweep.open_sweep(tcfg, Path(config.hydra.sweep.dir),
                                track=not config.trial.plan_only)  # a plan-only sweep measures nothing: no runs
        progress.open_display(meta["n_points"])

    @_loud
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from m9 import matrix, progress, sweep

        progress.close_display()
        entries, summary = sweep.close_sweep("FINISHED") or ([], {})
        sweep_dir = Path(config.hydra.sweep.dir)
        table = matrix.render(entries)
        (sweep_dir / "matrix.md").write_text(table + "\n")
        counts = Counter(e["outcome"]["status"] for e in entries)
        tally = ", ".join(f"{counts[s]} {s}" for s in ("pass", "fail", "rejected", "planned")
                          if s != "planned" or s in counts)
        boundary = summary.get("boundary", "no point ran or was rejected")
        print(f"\n[m9] sweep {sweep_dir}: {len(entries)} points, {tally}\n\n{table}\n\n"
              f"[m9] boundary: {boundary}\n[m9] report: {sweep_dir / 'report.md'}", flush=True)
