"""The warm worker: one engine child that imports JAX and Levanter once, keeps the model it built, and runs the
points of a sweep one after another, each with a fresh engine (so JAX's in-memory compile cache serves repeated
shapes). Isolation holds: it is its own process group, under each trial's timeout and memory limit, killed with
the sweep. It survives the failures that leave its process healthy (``SURVIVABLE``: the engine ran out of pages,
or served short; only that engine is dropped), so a search pays imports and the model build only after real
faults. It is discarded, with a fresh one started for the next point, after any other failure (a crash, an OOM,
NaNs, a timeout, an unexpected error), after any failure of a point of several processes, for another model, or
when its memory grows past a high-water mark. ``trial.worker=fresh`` starts a new interpreter per trial instead.
"""

from __future__ import annotations

import atexit
import json
import subprocess
from typing import Optional

from m9.config import M9Config
from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.run.child import ChildExit, kill, rss_bytes, spawn
from m9.run.files import TrialDir
from m9.run.protocol import model_key

GROWTH_LIMIT = 2.0
"""Discard the worker once its resident memory is this many times what it held after its first trial (a leak)."""
LIMIT_FRACTION = 0.8
"""... or past this fraction of ``trial.memory_limit_gb``, before the next trial could be killed for it."""
SURVIVABLE = frozenset({FailureKind.OUT_OF_PAGES, FailureKind.TRUNCATED, FailureKind.UNSERVED})
"""Failures that cannot hurt the process: the page table refused an allocation (a clean error out of the engine's
own check, the engine dropped with the trial) or sequences came back short or empty (no error at all). The runtime,
the devices and the kept model are untouched. (An SLA miss is a pass here: it is judged on the record.)"""


def _key(cfg: M9Config) -> str:
    """What a worker is started for: the model it keeps (on its mesh) and the devices it was started with."""
    return json.dumps([model_key(cfg), cfg.accelerator.platform, cfg.accelerator.chips_per_host])


class WarmWorker:
    """One warm engine child."""

    def __init__(self, cfg: M9Config):
        self.key = _key(cfg)
        self.proc = spawn(["--serve"], cfg, stdout=subprocess.DEVNULL, stdin=subprocess.PIPE)
        self.baseline_rss: Optional[int] = None
        self.trials = 0

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def submit(self, trial: TrialDir) -> None:
        """Hand it the next trial (its request is already written)."""
        self.proc.stdin.write(f"{trial.path}\n".encode())
        self.proc.stdin.flush()
        self.trials += 1

    def close(self) -> None:
        """End it, whatever it is doing."""
        if self.alive():
            kill(self.proc, ChildExit(None))
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass


_worker: Optional[WarmWorker] = None


def acquire(cfg: M9Config) -> WarmWorker:
    """The worker for this point: the running one when it is alive and holds this model, else a new one."""
    global _worker
    if _worker is not None and (not _worker.alive() or _worker.key != _key(cfg)):
        discard()
    if _worker is None:
        _worker = WarmWorker(cfg)
    return _worker


def keeps(outcome: Outcome, processes: int = 1) -> bool:
    """Whether the worker may run the next point after this outcome: a pass, or a ``SURVIVABLE`` failure of a
    point run as one process. A point of several ``processes`` shares one JAX distributed runtime: a process that
    failed may have left its peers' collectives unmatched, and its outcome says nothing of how they failed, so
    after any failure there the worker goes."""
    if outcome.status == Status.PASS:
        return True
    return processes == 1 and outcome.failure_kind in SURVIVABLE


def after_trial(outcome: Outcome, cfg: M9Config, processes: int = 1) -> None:
    """Keep the worker only when it ``keeps`` after this outcome, is alive, and is below its high-water mark; else
    discard it, so that nothing of a real fault (a poisoned runtime, leaked buffers, a half-dead device) can touch
    the next point."""
    worker = _worker
    if worker is None:
        return
    if not keeps(outcome, processes) or not worker.alive():
        discard()
        return
    rss = rss_bytes(worker.proc.pid)
    if worker.baseline_rss is None:
        worker.baseline_rss = rss
    limit = cfg.trial.memory_limit_gb
    if rss > GROWTH_LIMIT * worker.baseline_rss or (limit and rss > LIMIT_FRACTION * limit * 2**30):
        discard()


def discard() -> None:
    """End the warm worker, if any; the next point starts a fresh one."""
    global _worker
    if _worker is not None:
        _worker.close()
        _worker = None


atexit.register(discard)
