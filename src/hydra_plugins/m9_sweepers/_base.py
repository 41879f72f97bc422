"""What m9's sweepers share: the launcher and the session, the sweep's driver, closing the sweep with its answer
whatever ends it, and one line for each way it can end early. A sweeper adds its settings and ``search``."""

from __future__ import annotations

import sys
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


def register(name: str, conf: type) -> None:
    """Register a sweeper's settings as ``hydra/sweeper=NAME`` (the command line's check names the sweeper a
    setting belongs to from these: ``m9.compose.command.owner_hint``)."""
    from m9.compose.command import SWEEPER_PROVIDER

    ConfigStore.instance().store(group="hydra/sweeper", name=name, node=conf, provider=SWEEPER_PROVIDER)


def as_list(value: Any) -> list:
    """A setting given as a list in YAML, on the command line or in Python."""
    return list(OmegaConf.to_container(value)) if OmegaConf.is_config(value) else list(value or ())


class M9Sweeper(Sweeper):
    """A sweep with m9's driver; ``search`` runs the sweeper's own algorithm and returns its answer (None: a grid)."""

    def __init__(self, resume: bool = True, params: Optional[dict[str, Any]] = None):
        self.resume = resume
        self.params = {str(k): str(v) for k, v in (params or {}).items()}
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher = None
        self.session = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        from m9.session import Session

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)
        self.session = getattr(task_function, "session", None) or Session()  # the entry point's, else this one's

    def sweep(self, arguments: list[str]) -> Any:
        from m9.compose import BadInput
        from m9.run.files import write_failure
        from m9.sweep.driver import Driver, exit_status

        driver = Driver(self.hydra_context, self.config, self.launcher, self.session, resume=self.resume)
        try:
            answer = self.search(driver, list(arguments))
            driver.close("FINISHED", answer)
            return answer
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

    def search(self, driver: Any, arguments: list[str]) -> Any:
        """Run the sweep's points through ``driver``; returns the sweeper's answer (``m9.record.answer.Answer``)."""
        raise NotImplementedError
