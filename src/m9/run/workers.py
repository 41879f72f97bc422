"""Warm workers: one engine worker process that imports JAX and Levanter once, keeps the model it built, and runs the
points of a sweep one after another, each with a fresh engine (so JAX's in-memory compile cache serves repeated
shapes). Isolation holds: it is its own process group, under each trial's timeout and memory limit, killed with the
sweep. It survives the failures that leave its process healthy (``FailureKind.spares_worker``: the engine ran out of
pages, or served short; only that engine is dropped), so a search pays imports and the model build only after real
faults. It is ended, with a fresh one started for the next point, after any other failure (a crash, an OOM, NaNs, a
timeout, an unexpected error), after any failure of a point of several processes, for another model, or when its
memory grows past a high-water mark. ``trial.worker=fresh`` starts a new worker per trial instead.

A process keeps its warm worker in its session (``m9.session``), which ends it when the process is done with points.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from m9.config import M9Config, to_dict
from m9.outcome.outcome import Outcome
from m9.outcome.status import Status
from m9.protocol import ChildExit, model_key
from m9.run import child
from m9.run.files import TrialDir

GROWTH_LIMIT = 2.0
"""End the worker once its resident memory is this many times what it held after its first trial (a leak)."""
LIMIT_FRACTION = 0.8
"""... or past this fraction of ``trial.memory_limit_gb``, before the next trial could be killed for it."""


def _key(cfg: M9Config) -> str:
    """What a worker is started for: the model it keeps (on its mesh) and the devices it was started with."""
    return json.dumps([model_key(cfg), cfg.accelerator.platform, cfg.accelerator.chips_per_host])


def keeps(outcome: Outcome, processes: int = 1) -> bool:
    """Whether a warm worker may run the next point after this outcome: a pass, or a failure that spares the worker
    of a point run as one process. A point of several ``processes`` shares one JAX distributed runtime: a process
    that failed may have left its peers' collectives unmatched, and its outcome says nothing of how they failed, so
    after any failure there the worker goes."""
    if outcome.status == Status.PASS:
        return True
    return processes == 1 and outcome.failure_kind is not None and outcome.failure_kind.spares_worker


class Workers:
    """The warm worker of one process (at most one at a time)."""

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.key: Optional[str] = None
        self.baseline_rss: Optional[int] = None
        self.trials = 0
        self.prepared: Optional[Path] = None

    def alive(self) -> bool:
        """True while the warm worker's process runs."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, cfg: M9Config, prepare: bool = False) -> subprocess.Popen:
        """The worker for this point, started now unless the running one is alive and holds this model.
        ``prepare``: it imports the runtime and builds the point's model at once, so that a caller that starts it
        before it has a trial to give (a sweep that is still opening its record) finds them ready (``submit``)."""
        if self.proc is not None and (not self.alive() or self.key != _key(cfg)):
            self.close()
        if self.proc is None:
            args = ["--serve"]
            if prepare:
                fd, path = tempfile.mkstemp(prefix="m9-prepare-", suffix=".json")  # the worker reads and deletes it
                with os.fdopen(fd, "w") as f:
                    json.dump({"config": to_dict(cfg), "spawned_at": time.time()}, f)
                args += ["--prepare", path]
            self.proc = child.spawn(args, cfg, stdout=subprocess.DEVNULL, stdin=subprocess.PIPE)
            self.key, self.baseline_rss, self.trials = _key(cfg), None, 0
            self.prepared = Path(args[-1]) if prepare else None
        return self.proc

    def submit(self, cfg: M9Config, trial: TrialDir) -> subprocess.Popen:
        """Hand the worker for ``cfg`` its next trial (the request is written already); returns its process."""
        proc = self.start(cfg)
        proc.stdin.write(f"{trial.path}\n".encode())
        proc.stdin.flush()
        self.trials += 1
        return proc

    def after_trial(self, outcome: Outcome, cfg: M9Config, processes: int = 1) -> None:
        """Keep the worker only when it ``keeps`` after this outcome, is alive, and is below its high-water mark;
        else end it, so that nothing of a real fault (a poisoned runtime, leaked buffers, a half-dead device) can
        touch the next point."""
        if self.proc is None:
            return
        if not keeps(outcome, processes) or not self.alive():
            self.close()
            return
        rss = child.rss_bytes(self.proc.pid)
        if self.baseline_rss is None:
            self.baseline_rss = rss
        limit = cfg.trial.memory_limit_gb
        if rss > GROWTH_LIMIT * self.baseline_rss or (limit and rss > LIMIT_FRACTION * limit * 2**30):
            self.close()

    def close(self) -> None:
        """End the warm worker, whatever it is doing; the next point starts a fresh one."""
        proc, self.proc, self.key = self.proc, None, None
        if self.prepared is not None:  # a worker that never got to read it
            self.prepared.unlink(missing_ok=True)
            self.prepared = None
        if proc is None:
            return
        if proc.poll() is None:
            child.kill(proc, ChildExit(None))
        if proc.stdin:
            try:
                proc.stdin.close()
            except OSError:
                pass
