"""What one m9 process keeps while it runs points: its warm worker, its terminal display, the prompts it has built
and the tracking stores it has opened. The entry point makes one session, passes it down to every stage that needs
it, and closes it when the process is done with points; nothing of it is a module's global."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from m9.config import TrackingConfig
from m9.inputs.prompts import Prompts
from m9.record.tracking import Store
from m9.run.progress import Display
from m9.run.workers import Workers


@dataclass
class Session:
    """One process's state between points."""

    workers: Workers = field(default_factory=Workers)
    """The warm worker (``trial.worker=warm``)."""
    prompts: Prompts = field(default_factory=Prompts)
    """Prompt sets built, shared by the points of a sweep that share a workload."""
    stores: dict[TrackingConfig, Store] = field(default_factory=dict)
    _display: Optional[Display] = None

    @property
    def display(self) -> Display:
        """Live progress: the sweep's (``show``), else a single point's, drawn from its first use."""
        if self._display is None:
            self._display = Display(1)
        return self._display

    def store(self, cfg: TrackingConfig) -> Store:
        """The tracking store ``cfg`` names, opened once per process (one client, the experiment looked up once)."""
        if cfg not in self.stores:
            self.stores[cfg] = Store(cfg)
        return self.stores[cfg]

    def show(self, total_points: Optional[int]) -> Display:
        """A sweep's display, in place of the one before."""
        if self._display is not None:
            self._display.close()
        self._display = Display(total_points)
        return self._display

    def close(self) -> None:
        """Stop the display and end the warm worker: the process is done with points."""
        if self._display is not None:
            self._display.close()
            self._display = None
        self.workers.close()

    def __getstate__(self) -> dict:
        """A session does not travel: a launcher that sends the task to another process (submitit pickles it) gives
        that process a session of its own."""
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()
