"""Run one planned point in an isolated child process and turn whatever happened into an Outcome.

The engine runs in a fresh interpreter (never a fork: JAX is not fork-safe) in its own process group, so an
exception, a signal, the OOM killer or a hang ends the child, not the sweep. The parent never imports JAX.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

from m9.inputs import prompts
from m9.outcome import roofline
from m9.run import warm
from m9.run.child import kill, rss_bytes, spawn
from m9.config import M9Config, to_dict
from m9.engine.worker import LOG, PROGRESS, REQUEST, RESULT  # the child's file protocol (stdlib-only module top)
from m9.outcome.outcome import PASS, ChildExit, Outcome, classify
from m9.plan import Plan

LOG_NAME = LOG
_POLL_S = 0.2
RESULT_GRACE_S = 30.0


def run_trial(cfg: M9Config, plan: Plan, trial_dir: Path,
              on_progress: Optional[Callable[[dict], None]] = None, processes: int = 1) -> Outcome:
    """Run the engine for a plan under ``trial.timeout_s``; the child's log lands in ``trial_dir``.
    ``on_progress`` receives the child's decode-iteration events as they come. With ``trial.worker=warm`` the
    trial runs in the warm worker (started, or restarted, as needed) and the worker is discarded after anything
    but a pass; with ``fresh`` it runs in a new interpreter of its own. ``processes`` > 1: the child joins the
    point's JAX distributed runtime (``m9.multihost``)."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    result_path = trial_dir / RESULT
    result_path.unlink(missing_ok=True)
    (trial_dir / PROGRESS).unlink(missing_ok=True)
    prompt_set = prompts.build(cfg, plan.num_prompts)
    request = {
        "config": to_dict(cfg),
        "max_pages": plan.max_pages,
        "max_prefill_size": plan.max_prefill_size,
        "prompts": [list(ids) for ids in prompt_set.token_ids],
        "stop_ids": [list(ids) for ids in prompt_set.stop_ids],
        "spawned_at": time.time(),
        "processes": processes,
    }
    (trial_dir / REQUEST).write_text(json.dumps(request, indent=1))
    tail = _ProgressTail(trial_dir / PROGRESS, on_progress)
    if cfg.trial.worker == "warm":
        worker = warm.acquire(cfg)
        worker.submit(trial_dir)
        child, until_result = worker.proc, True
    else:
        with open(trial_dir / LOG_NAME, "w") as log:
            child = spawn([str(trial_dir)], cfg, stdout=log)
        until_result = False
    try:
        end = _watch(child, cfg, tail, result_path, until_result)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): the engine must not outlive the sweep
        kill(child, ChildExit(None))
        raise
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    outcome = classify(plan, result, end, max_new_tokens=cfg.workload.max_new_tokens,
                       length_fixed=cfg.workload.length_fixed)
    if outcome.status == PASS:
        last = result["rounds"][-1]
        decode_s = roofline.decode_time([r["iter_s"] for r in result["rounds"]])
        if decode_s is not None:
            measured = roofline.metrics(cfg, plan, tuple(last["seq_lens"]), decode_s, roofline.bandwidth(cfg))
            outcome = dataclasses.replace(outcome, metrics={**outcome.metrics, **measured})
    if until_result:
        warm.after_trial(outcome, cfg)
    return outcome


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


def _watch(child: subprocess.Popen, cfg: M9Config, tail: _ProgressTail, result_path: Path,
           until_result: bool = False) -> ChildExit:
    """Wait for the child, killing its process group past ``trial.timeout_s`` or ``trial.memory_limit_gb``, or
    ``RESULT_GRACE_S`` after it wrote its result without exiting (a runtime stuck in shutdown). A warm worker
    (``until_result``) is done when its result appears: it lives on for the next trial."""
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
            if until_result:
                tail.poll()
                return ChildExit(0, peak_rss_bytes=max(peak, rss_bytes(child.pid)))
        if result_seen is not None and time.monotonic() - result_seen > RESULT_GRACE_S:
            return kill(child, ChildExit(None, peak_rss_bytes=peak, lingered_s=RESULT_GRACE_S))
        rss = rss_bytes(child.pid)
        peak = max(peak, rss)
        if limit is not None and rss > limit:
            reason = (f"resident memory {rss / 2**30:.2f} GiB > trial.memory_limit_gb={cfg.trial.memory_limit_gb:g}"
                      " (killed)")
            return kill(child, ChildExit(None, peak_rss_bytes=peak, memory_kill=reason))
        if time.monotonic() > deadline:
            return kill(child, ChildExit(None, peak_rss_bytes=peak, timed_out_s=cfg.trial.timeout_s))
