"""Run one planned point in an isolated child process and turn whatever happened into an Outcome.

The engine runs in a fresh interpreter (never a fork: JAX is not fork-safe) in its own process group, so an
exception, a signal, the OOM killer or a hang ends the child, not the sweep. The parent never imports JAX.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from m9.config import M9Config, to_dict
from m9.engine.worker import PROGRESS, REQUEST, RESULT  # the child's file protocol (stdlib-only module top)
from m9.outcome import ChildExit, Outcome, classify
from m9.plan import Plan

WORKER_MODULE = "m9.engine.worker"
LOG_NAME = "trial.log"
_POLL_S = 0.2
RESULT_GRACE_S = 30.0
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_PDEATHSIG = 1
try:
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the parent's own cleanup still applies
    _PRCTL = None


def _child_env(cfg: M9Config) -> dict[str, str]:
    env = dict(os.environ)
    if cfg.trial.jax_platforms:
        env["JAX_PLATFORMS"] = cfg.trial.jax_platforms
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_trial(cfg: M9Config, plan: Plan, trial_dir: Path,
              on_progress: Optional[Callable[[dict], None]] = None) -> Outcome:
    """Run the engine for a plan under ``trial.timeout_s``; the child's log lands in ``trial_dir``.
    ``on_progress`` receives the child's decode-iteration events as they come."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    result_path = trial_dir / RESULT
    result_path.unlink(missing_ok=True)
    (trial_dir / PROGRESS).unlink(missing_ok=True)
    request = {
        "config": to_dict(cfg),
        "max_pages": plan.max_pages,
        "num_prompts": plan.num_prompts,
        "spawned_at": time.time(),
    }
    (trial_dir / REQUEST).write_text(json.dumps(request, indent=1))

    with open(trial_dir / LOG_NAME, "w") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, str(trial_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(cfg),
            start_new_session=True,  # its own process group: a kill takes everything it started
            preexec_fn=_die_with_parent,
        )
        try:
            end = _watch(child, cfg, _ProgressTail(trial_dir / PROGRESS, on_progress), result_path)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): the engine must not outlive the sweep
            _kill(child, ChildExit(None))
            raise

    result = json.loads(result_path.read_text()) if result_path.exists() else None
    return classify(plan, result, end, max_new_tokens=cfg.workload.max_new_tokens,
                    length_fixed=cfg.workload.length_fixed)


def _die_with_parent() -> None:
    # In the child, between fork and exec: if the parent is SIGKILLed (no chance to clean up), the kernel kills the
    # engine. prctl was looked up in the parent: nothing that takes locks (dlopen) runs in the forked child.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class _ProgressTail:
    """Hands new complete lines of the child's progress file to a callback."""

    def __init__(self, path: Path, callback: Optional[Callable[[dict], None]]):
        self.path, self.callback, self.offset, self.partial = path, callback, 0, ""

    def poll(self) -> None:
        if self.callback is None or not self.path.exists():
            return
        with open(self.path) as f:
            f.seek(self.offset)
            chunk = f.read()
            self.offset = f.tell()
        lines = (self.partial + chunk).split("\n")
        self.partial = lines.pop()
        for line in lines:
            if line:
                self.callback(json.loads(line))


def _watch(child: subprocess.Popen, cfg: M9Config, tail: _ProgressTail, result_path: Path) -> ChildExit:
    """Wait for the child, killing its process group past ``trial.timeout_s`` or ``trial.memory_limit_gb``, or
    ``RESULT_GRACE_S`` after it wrote its result without exiting (a runtime stuck in shutdown)."""
    deadline = time.monotonic() + cfg.trial.timeout_s
    limit = int(cfg.trial.memory_limit_gb * 2**30) if cfg.trial.memory_limit_gb else None
    peak, result_seen = 0, None
    while True:
        try:
            return ChildExit(child.wait(timeout=_POLL_S), peak_rss_bytes=peak)
        except subprocess.TimeoutExpired:
            pass
        tail.poll()
        if result_seen is None and result_path.exists():
            result_seen = time.monotonic()
        if result_seen is not None and time.monotonic() - result_seen > RESULT_GRACE_S:
            return _kill(child, ChildExit(None, peak_rss_bytes=peak, lingered_s=RESULT_GRACE_S))
        rss = _rss_bytes(child.pid)
        peak = max(peak, rss)
        if limit is not None and rss > limit:
            reason = (f"resident memory {rss / 2**30:.2f} GiB > trial.memory_limit_gb={cfg.trial.memory_limit_gb:g}"
                      " (killed)")
            return _kill(child, ChildExit(None, peak_rss_bytes=peak, memory_kill=reason))
        if time.monotonic() > deadline:
            return _kill(child, ChildExit(None, peak_rss_bytes=peak, timed_out_s=cfg.trial.timeout_s))


def _kill(child: subprocess.Popen, end: ChildExit) -> ChildExit:
    os.killpg(child.pid, signal.SIGKILL)
    return dataclasses.replace(end, returncode=child.wait())
