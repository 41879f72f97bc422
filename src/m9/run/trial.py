"""Run one planned point's trial in an isolated engine worker and turn whatever happened into an Outcome.

The engine runs in a fresh interpreter (never a fork: JAX is not fork-safe) in its own process group, so an
exception, a signal, the OOM killer or a hang ends the worker, not the sweep. The parent never imports JAX; the two
sides speak ``m9.protocol``, and the outcome stage classifies what the worker left (``m9.outcome.classify``).
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from typing import Callable, Optional

from m9.config import M9Config
from m9.inputs.prompts import Prompts
from m9.outcome import roofline
from m9.outcome.classify import classify
from m9.outcome.outcome import Outcome
from m9.outcome.status import Status
from m9.plan import Plan
from m9.protocol import ChildExit, ProgressEvent, TrialRequest, read_event
from m9.run import child
from m9.run.files import TrialDir
from m9.run.multihost import Peers
from m9.run.workers import Workers

_POLL_S = 0.2
RESULT_GRACE_S = 30.0


def run_trial(cfg: M9Config, plan: Plan, trial: TrialDir, workers: Workers, prompts: Optional[Prompts] = None,
              on_progress: Optional[Callable[[ProgressEvent], None]] = None, processes: int = 1,
              peers: Optional[Peers] = None) -> Outcome:
    """Run the engine for a plan under ``trial.timeout_s``; the worker's log lands in the trial's directory.
    ``on_progress`` receives the worker's progress events as they come. With ``trial.worker=warm`` the trial runs in
    the warm worker of ``workers`` (started, or restarted, as needed), kept after a pass or a failure that spares it
    and ended after any other (``m9.run.workers.keeps``); with ``fresh`` it runs in a new interpreter of its own.
    ``processes`` > 1: the worker joins the point's JAX distributed runtime, and is killed when one of its ``peers``
    stops answering (``m9.run.multihost``). ``prompts``: the process's built prompt sets (else built afresh)."""
    built = (prompts or Prompts()).build(cfg)
    trial.path.mkdir(parents=True, exist_ok=True)
    trial.write_request(TrialRequest(config=cfg, max_pages=plan.max_pages, max_prefill_size=plan.max_prefill_size,
                                     prompts=built.token_ids, stop_ids=built.stop_ids, spawned_at=time.time(),
                                     processes=processes))
    tail = _ProgressTail(trial, on_progress)
    warm = cfg.trial.worker == "warm"
    if warm:
        proc = workers.submit(cfg, trial)
    else:
        with open(trial.log, "w") as log:
            proc = child.spawn([str(trial.path)], cfg, stdout=log)
    try:
        end = _watch(proc, cfg, tail, trial, warm, peers)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): the engine must not outlive the sweep
        child.kill(proc, ChildExit(None))
        raise
    result = trial.read_result()
    outcome = classify(cfg, plan, result, end)
    if outcome.status == Status.PASS:
        decode_s = roofline.decode_time([r.iter_s for r in result.rounds])
        if decode_s is not None:
            measured = roofline.metrics(cfg, plan, result.rounds[-1].seq_lens, decode_s, roofline.bandwidth(cfg))
            outcome = dataclasses.replace(outcome, metrics={**outcome.metrics, **measured})
    if warm:
        workers.after_trial(outcome, cfg, processes)
    return outcome


class _ProgressTail:
    """Hands new complete lines of the child's progress file to a callback, as events."""

    def __init__(self, trial: TrialDir, callback: Optional[Callable[[ProgressEvent], None]]):
        self.path, self.callback, self.offset, self.partial = trial.progress, callback, 0, ""

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
                self.callback(read_event(line))


def _watch(proc: subprocess.Popen, cfg: M9Config, tail: _ProgressTail, trial: TrialDir,
           until_result: bool = False, peers: Optional[Peers] = None) -> ChildExit:
    """Wait for the child, killing its process group past ``trial.timeout_s`` or ``trial.memory_limit_gb``,
    ``RESULT_GRACE_S`` after it wrote its result without exiting (a runtime stuck in shutdown), or when one of its
    ``peers`` stops answering. A warm worker (``until_result``) is done when its result appears: it lives on for
    the next trial."""
    deadline = time.monotonic() + cfg.trial.timeout_s
    limit = int(cfg.trial.memory_limit_gb * 2**30) if cfg.trial.memory_limit_gb else None
    peak, result_seen = 0, None
    while True:
        try:
            return ChildExit(proc.wait(timeout=_POLL_S), peak_rss_bytes=peak)
        except subprocess.TimeoutExpired:
            pass
        tail.poll()
        if result_seen is None and trial.result.exists():
            result_seen = time.monotonic()
            if until_result:
                tail.poll()
                return ChildExit(0, peak_rss_bytes=max(peak, child.rss_bytes(proc.pid)))
        if result_seen is not None and time.monotonic() - result_seen > RESULT_GRACE_S:
            return child.kill(proc, ChildExit(None, peak_rss_bytes=peak, lingered_s=RESULT_GRACE_S))
        rss = child.rss_bytes(proc.pid)
        peak = max(peak, rss)
        if limit is not None and rss > limit:
            reason = (f"resident memory {rss / 2**30:.2f} GiB > trial.memory_limit_gb={cfg.trial.memory_limit_gb:g}"
                      " (killed)")
            return child.kill(proc, ChildExit(None, peak_rss_bytes=peak, memory_kill=reason))
        if time.monotonic() > deadline:
            return child.kill(proc, ChildExit(None, peak_rss_bytes=peak, timed_out_s=cfg.trial.timeout_s))
        gone = peers.first_silent() if peers is not None and result_seen is None else None
        if gone:
            return child.kill(proc, ChildExit(None, peak_rss_bytes=peak, peer_gone=gone))
