"""The sweeper classes Hydra instantiates. Thin: they parse their settings and hand the work to ``m9.sweep``
(imported when a sweep starts, not when Hydra scans its plugins)."""

from __future__ import annotations

import sys
from typing import Any, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.m9_sweepers import config as _config  # noqa: F401 - registers hydra/sweeper=m9|boundary


class _M9Sweeper(Sweeper):
    """Setup shared by both sweepers: the launcher, and a driver made when the sweep starts."""

    def __init__(self, resume: bool = True, params: Optional[dict[str, Any]] = None):
        self.resume = resume
        self.params = {str(k): str(v) for k, v in (params or {}).items()}
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from m9.compose import BadInput
        from m9.run.files import write_failure
        from m9.sweep.driver import Driver, exit_status

        driver = Driver(self.hydra_context, self.config, self.launcher, resume=self.resume)
        try:
            return self._sweep(driver, list(arguments))
        except BadInput as exc:
            print(f"m9: error: {exc}", file=sys.stderr, flush=True)
            driver.close("FAILED")
            raise SystemExit(2) from exc
        except BaseException as exc:  # Ctrl-C, SIGTERM, a bug: the sweep's record is closed, never left RUNNING
            failed = write_failure(exc, driver.sweep_dir) if isinstance(exc, Exception) else None
            if failed is not None:  # the machine's disk or folder, not m9: one line, what is recorded, what to do
                reason, fix = failed
                try:
                    driver.close("FAILED", reason=reason)
                except OSError:
                    pass  # the sweep's own files cannot be written either; its run in the store is closed
                print(f"m9: error: {reason}: {driver.recorded()} of {driver.n_points or 'its'} points recorded in "
                      f"{driver.sweep_dir}; {fix} and run the same command to resume", file=sys.stderr, flush=True)
                raise SystemExit(1) from None
            status = exit_status(exc)
            driver.close(status)
            if status != "KILLED":
                raise
            print(f"m9: interrupted: {driver.recorded()} of {driver.n_points or 'its'} points recorded in "
                  f"{driver.sweep_dir}; run the same command to resume", file=sys.stderr, flush=True)
            raise SystemExit(130 if isinstance(exc, KeyboardInterrupt) else exc.code) from None

    def _sweep(self, driver: Any, arguments: list[str]) -> Any:
        raise NotImplementedError


class GridSweeper(_M9Sweeper):
    """``hydra/sweeper=m9``: every combination of the swept values."""

    def __init__(self, max_batch_size: Optional[int] = None, resume: bool = True,
                 params: Optional[dict[str, Any]] = None):
        super().__init__(resume, params)
        self.max_batch_size = max_batch_size

    def _sweep(self, driver: Any, arguments: list[str]) -> Any:
        from m9.sweep import grid

        return grid.run(driver, arguments, self.params, self.max_batch_size)


class BoundarySweeper(_M9Sweeper):
    """``hydra/sweeper=boundary``: the largest stable value of one knob."""

    def __init__(self, knob: str = "engine.max_seqs", low: int = 1, high: int = 256, confirm: int = 2,
                 sla: Any = (), max_trials: Optional[int] = None, batch: Optional[int] = None, resume: bool = True,
                 params: Optional[dict[str, Any]] = None):
        super().__init__(resume, params)
        self.settings = dict(knob=knob, low=low, high=high, confirm=confirm, max_trials=max_trials, batch=batch,
                             sla=list(OmegaConf.to_container(sla)) if OmegaConf.is_config(sla) else list(sla or ()))

    def _sweep(self, driver: Any, arguments: list[str]) -> Any:
        from m9.sweep import boundary
        from m9.sweep.driver import runs_here

        settings = dict(self.settings)
        if settings["batch"] is None:  # one point at a time in this process, else a parallel launcher's width
            settings["batch"] = 1 if runs_here(self.launcher) else 4
        spec = boundary.check_spec(**settings)
        answer = boundary.run(driver, spec, arguments, self.params)
        driver.close("FINISHED", answer)
        s = answer.summary()
        print(f"[m9] search: {s['search_trials']} trials ({s['search_reused']} reused from earlier sweeps), "
              f"{s['search_planner_probes']} planner probes ({s['search_rejected_free']} rejected for free)"
              + (f"; {len(answer.rows)} searches (the frontier above)" if len(answer.rows) > 1 else ""), flush=True)
        return answer


class OptimizeSweeper(_M9Sweeper):
    """``hydra/sweeper=optimize``: the fastest configuration of a space of knobs."""

    def __init__(self, objective: str = "round_avg_tok_s", direction: str = "maximize", sampler: str = "tpe",
                 seed: int = 0, trials: int = 30, batch: Optional[int] = None, confirm: int = 3, repeats: int = 3,
                 sla: Any = (), resume: bool = True, params: Optional[dict[str, Any]] = None):
        super().__init__(resume, params)
        self.settings = dict(objective=objective, direction=direction, sampler=sampler, seed=seed, trials=trials,
                             batch=batch, confirm=confirm, repeats=repeats,
                             sla=list(OmegaConf.to_container(sla)) if OmegaConf.is_config(sla) else list(sla or ()))

    def _sweep(self, driver: Any, arguments: list[str]) -> Any:
        from m9.sweep import optimize
        from m9.sweep.driver import runs_here

        settings = dict(self.settings)
        if settings["batch"] is None:
            settings["batch"] = 1 if runs_here(self.launcher) else 4
        spec = optimize.check_spec(**settings)
        answer = optimize.run(driver, spec, arguments, self.params)
        driver.close("FINISHED", answer)
        return answer
