"""The trial's child process: ``python -m m9.engine.worker TRIAL_DIR`` (one trial, then exit), or
``python -m m9.engine.worker --serve [--prepare FILE]`` (a warm worker: the trial directories named on stdin, one per
line; with ``--prepare``, it imports the runtime and builds the model of the config in FILE first, while its parent
is still opening the sweep).

For each trial it reads the ``TrialRequest`` in ``TRIAL_DIR`` (``m9.protocol``), builds the model (a warm worker
keeps the last one and builds again only for another model) and a fresh engine, runs the rounds, appending progress
events as it goes, and writes the ``TrialResult``: fixed costs, per-round stats, and the exception if one was raised.
Its output goes to the trial's log. Whatever kills this process without a result (a signal, the OOM killer, a hang)
is classified by the parent, which then never reuses it.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import resource
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import IO, Optional

from m9.engine.process import WorkerProcess, build_model, import_runtime, join_runtime, prepare, say
from m9.protocol import (
    BEAT_S,
    ChildError,
    IterationEvent,
    RoundEvent,
    Runtime,
    Sharding,
    TrialRequest,
    TrialResult,
    event_line,
    model_key,
)
from m9.run.files import TrialDir


def _iteration_hook(progress: IO[str], round_idx: int, fault: str | None):
    """Called as each decode iteration starts: appends a progress event for the parent, and fires
    ``trial.inject_fault`` at the first one (the command line's check let it through: ``m9.run.gate``)."""
    start = time.perf_counter()
    previous = [start]

    def hook(i: int, tokens: int, pages: int) -> None:
        now = time.perf_counter()
        progress.write(event_line(IterationEvent(round_idx, i, tokens, pages, now - start, now - previous[0])))
        progress.flush()
        previous[0] = now
        if i != 0 or fault not in ("sigkill", "segfault", "hang"):
            return
        say(f"injecting fault {fault}")
        if fault == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif fault == "segfault":
            ctypes.string_at(0)
        else:
            threading.Event().wait()

    return hook


def run(trial: TrialDir, state: WorkerProcess) -> int:
    """Run the trial described in ``trial``; returns 0 when it completed, 1 when it raised."""
    started = time.time()
    request = trial.read_request()
    state.trials += 1
    got = _Trial(fixed={"process_start_s": state.paid.pop("process_start_s", started - request.spawned_at)},
                 first=state.trials == 1)
    beat = _Heartbeat(trial.heartbeat) if request.processes > 1 else None  # the point's other processes watch it
    try:
        _decode(request, trial, state, got)
        code = 0
    except BaseException as exc:  # noqa: BLE001 - every failure is data for the parent
        got.error = ChildError(type(exc).__name__, str(exc), traceback.format_exc())
        say(f"error {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        traceback.print_exc(file=sys.stdout)
        code = 1
    sys.stdout.flush()
    try:
        trial.write_result(TrialResult(
            worker_pid=os.getpid(), worker_trial=state.trials, fixed_costs=got.fixed, rounds=tuple(got.rounds),
            runtime=got.runtime, error=got.error, complete=got.error is None,
            peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, jax_imported=got.first,
            model_built=got.built, sharding=got.sharding))
    finally:
        if beat is not None:
            beat.stop()
    return code


class _Heartbeat:
    """Touches a file every ``BEAT_S`` from a thread of its own, until stopped (once more then: the last beat is
    when the trial ended). A process stopped (a frozen host), gone, or stuck with its interpreter held stops
    beating; its peers then stop waiting for it (``m9.run.multihost.Peers``). One that hangs with the interpreter
    free beats on: its trial's timeout ends that."""

    def __init__(self, path: Path):
        self.path, self.done = path, threading.Event()
        self.touch()
        self.thread = threading.Thread(target=self._run, name="m9-heartbeat", daemon=True)
        self.thread.start()

    def touch(self) -> None:
        self.path.touch()  # an existing file's mtime set to now

    def _run(self) -> None:
        while not self.done.wait(BEAT_S):
            self.touch()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
        self.touch()


@dataclass
class _Trial:
    """What a trial has got so far: the result is written from it whatever happens."""

    fixed: dict[str, float]
    first: bool
    rounds: list = field(default_factory=list)
    runtime: Optional[Runtime] = None
    error: Optional[ChildError] = None
    built: bool = False
    sharding: Optional[Sharding] = None


def _decode(request: TrialRequest, trial: TrialDir, state: WorkerProcess, got: _Trial) -> None:
    """Import the runtime (once per process), lay the point's mesh over this process's devices, build or reuse the
    model on it, build a fresh engine, and run the rounds."""
    cfg, fixed = request.config, got.fixed
    t = time.perf_counter()
    jax = import_runtime(state)
    if request.processes > 1 and not state.distributed:
        join_runtime(jax)
        state.distributed = True

    from m9.engine.mesh import check_same_requests, device_mesh, measure, on
    from m9.engine.model import poison_weights
    from m9.engine.rounds import build_engine, make_requests, run_round

    fixed["import_s"] = state.paid.pop("import_s", time.perf_counter() - t)
    if got.first:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s: %(message)s")
    devices = jax.devices()
    got.runtime = Runtime(backend=jax.default_backend(), device_kind=devices[0].device_kind,
                          device_count=len(devices), process_count=jax.process_count(),
                          local_device_count=jax.local_device_count(), jax_version=jax.__version__,
                          levanter_version=metadata.version("marin-levanter"))
    say(f"runtime {got.runtime}, trial {state.trials} of this process")
    mesh = device_mesh(cfg)
    if cfg.mesh.hosts == "global" and jax.process_count() > 1:
        check_same_requests(_digest(request))
    with on(mesh, cfg):
        t = time.perf_counter()
        if state.model_key != model_key(cfg):
            build_model(state, cfg, mesh)
            got.built = True
        elif "model_build_s" in state.paid:  # built by --prepare, for this trial
            got.built = True
        model = state.model
        fixed["model_build_s"] = state.paid.pop("model_build_s", time.perf_counter() - t)
        if cfg.trial.inject_fault == "nan_weights":
            say("injecting fault nan_weights")
            model = poison_weights(model)  # a poisoned copy: the kept model stays clean
        t = time.perf_counter()
        engine = build_engine(model, cfg, request.max_pages, request.max_prefill_size, mesh)
        fixed["engine_build_s"] = time.perf_counter() - t
        got.sharding = measure(mesh, model, engine.gen_state.cache)
        say(f"model {fixed['model_build_s']:.2f}s, engine {fixed['engine_build_s']:.2f}s, {got.sharding}")
        _rounds(cfg, request, trial, state, engine, got, make_requests, run_round)
    del engine  # its KV cache goes before the next trial's engine is built


def _rounds(cfg, request: TrialRequest, trial: TrialDir, state: WorkerProcess, engine, got: _Trial, make_requests,
            run_round) -> None:
    """The measured rounds, each reported as it ends."""
    prompts = [list(ids) for ids in request.prompts]
    stop_ids = [list(ids) for ids in request.stop_ids]
    with open(trial.progress, "w") as progress:
        for r in range(cfg.workload.n_rounds):
            hook = _iteration_hook(progress, r, cfg.trial.inject_fault)
            before = state.compiles
            stats = run_round(engine, make_requests(cfg, prompts, r, stop_ids), on_iter=hook)
            stats = replace(stats, compiles=state.compiles - before)
            got.rounds.append(stats)
            progress.write(event_line(RoundEvent(r, stats.round_total_s, stats.round_total_generated,
                                                 stats.pages_in_use_after_decode)))
            progress.flush()
            say(f"round {r}: {stats.round_total_s:.3f}s, {stats.round_total_generated} tokens, "
                 f"{len(stats.iter_s)} decode iters, pages_in_use={stats.pages_in_use_after_decode}, "
                 f"{stats.compiles} compilations")


def _digest(request: TrialRequest) -> bytes:
    """What must be the same on every process of a global mesh: the request, less when it was handed over."""
    same = {k: v for k, v in request.to_json().items() if k != "spawned_at"}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).digest()


def _log_to(path: Path) -> None:
    """Send this process's output, the runtime's C-level output included, to a trial's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def serve(prepared: Optional[Path] = None) -> int:
    """A warm worker: run each trial directory named on stdin, until stdin closes (``prepared``: first import and
    build what the config there needs). The parent keeps the process after a failure that spares it
    (``FailureKind.spares_worker``): such a trial's engine lived only in its frames, freed with the exception when
    ``run`` returns, and ``state`` keeps just the model. After any other failure the parent discards the process, so
    a trial that failed that way is the last one it runs."""
    state = WorkerProcess()
    if prepared is not None:
        prepare(prepared, state)
    for line in sys.stdin:
        trial = TrialDir(Path(line.strip()))
        _log_to(trial.log)
        run(trial, state)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(serve(Path(sys.argv[3]) if sys.argv[2:3] == ["--prepare"] else None))
    sys.exit(run(TrialDir(Path(sys.argv[1])), WorkerProcess()))
