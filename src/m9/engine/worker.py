"""The trial's child process: ``python -m m9.engine.worker TRIAL_DIR`` (one trial, then exit), or
``python -m m9.engine.worker --serve`` (a warm worker: the trial directories named on stdin, one per line).

For each trial it reads ``TRIAL_DIR/request.json`` (the typed config and the plan's sizes), builds the model (a
warm worker keeps the last one and builds again only for another model) and a fresh engine, runs the rounds, and
writes ``TRIAL_DIR/result.json``: fixed costs, per-round stats, and the exception if one was raised. Its output
goes to ``TRIAL_DIR/trial.log``. Whatever kills this process without a result (a signal, the OOM killer, a hang)
is classified by the parent, which then never reuses it.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import resource
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import IO

REQUEST = "request.json"
RESULT = "result.json"
PROGRESS = "progress.jsonl"
LOG = "trial.log"


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)  # the parent never sees a half-written result


def _say(message: str) -> None:
    print(f"[m9.worker] {message}", flush=True)


def _iteration_hook(progress: IO[str], round_idx: int, fault: str | None):
    """Called as each decode iteration starts: appends a progress event for the parent's display, and fires
    ``trial.inject_fault`` at the first one (the planner refuses it unless M9_ALLOW_FAULT_INJECTION=1)."""
    start = time.perf_counter()
    previous = [start]

    def hook(i: int, tokens: int, pages: int) -> None:
        now = time.perf_counter()
        event = {"round": round_idx, "iter": i, "tokens": tokens, "pages": pages, "elapsed": now - start,
                 "iter_s": now - previous[0]}
        previous[0] = now
        progress.write(json.dumps(event) + "\n")
        progress.flush()
        if i != 0 or fault not in ("sigkill", "segfault", "hang"):
            return
        _say(f"injecting fault {fault}")
        if fault == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif fault == "segfault":
            ctypes.string_at(0)
        else:
            threading.Event().wait()

    return hook


class _Process:
    """What a worker keeps between trials: the imports' cost, paid once, and the last model it built."""

    def __init__(self) -> None:
        self.trials = 0
        self.model_key: str | None = None
        self.model = None
        self.distributed = False


def model_key(config: dict) -> str:
    """What decides the weights a trial decodes with: the model section (less the tokenizer, which stays with the
    planning process), the slot length, the dtype."""
    model = {k: v for k, v in config["model"].items() if k != "tokenizer"}
    return json.dumps([model, config["engine"]["max_seq_len"], config["engine"]["compute_dtype"]], sort_keys=True)


def run(trial_dir: Path, state: _Process) -> int:
    """Run the trial described in ``trial_dir``; returns 0 when it completed, 1 when it raised."""
    started = time.time()
    request = json.loads((trial_dir / REQUEST).read_text())
    state.trials += 1
    result: dict = {"fixed_costs": {"process_start_s": started - request["spawned_at"]}, "rounds": [],
                    "worker": {"pid": os.getpid(), "trial": state.trials}}
    fixed = result["fixed_costs"]
    try:
        t = time.perf_counter()
        import jax

        if request.get("processes", 1) > 1 and not state.distributed:
            _join_runtime(jax)
            state.distributed = True

        from m9.config import from_dict
        from m9.engine.model import build_model, poison_weights
        from m9.plan import FAULT_ENV
        from m9.engine.session import build_engine, make_requests, run_round

        fixed["import_s"] = time.perf_counter() - t
        if state.trials == 1:
            logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s: %(message)s")
        cfg = from_dict(request["config"])
        if cfg.trial.inject_fault and os.environ.get(FAULT_ENV) != "1":
            raise RuntimeError(f"trial.inject_fault needs {FAULT_ENV}=1")
        devices = jax.devices()
        result["runtime"] = {
            "backend": jax.default_backend(),
            "device_kind": devices[0].device_kind,
            "device_count": len(devices),
            "process_count": jax.process_count(),
            "local_device_count": jax.local_device_count(),
            "jax_version": jax.__version__,
            "levanter_version": metadata.version("marin-levanter"),
        }
        _say(f"runtime {result['runtime']}, trial {state.trials} of this process")

        t = time.perf_counter()
        key = model_key(request["config"])
        if state.model_key != key:
            state.model, state.model_key = None, None  # free the old weights before building the new ones
            state.model = jax.block_until_ready(build_model(cfg.model, cfg.engine.max_seq_len,
                                                            cfg.engine.compute_dtype))
            state.model_key = key
        model = state.model
        fixed["model_build_s"] = time.perf_counter() - t
        if cfg.trial.inject_fault == "nan_weights":
            _say("injecting fault nan_weights")
            model = poison_weights(model)  # a poisoned copy: the kept model stays clean
        t = time.perf_counter()
        engine = build_engine(model, cfg, request["max_pages"], request["max_prefill_size"])
        fixed["engine_build_s"] = time.perf_counter() - t
        _say(f"model {fixed['model_build_s']:.2f}s, engine {fixed['engine_build_s']:.2f}s")

        prompts, stop_ids = request["prompts"], request["stop_ids"]
        with open(trial_dir / PROGRESS, "w") as progress:
            for r in range(cfg.workload.n_rounds):
                hook = _iteration_hook(progress, r, cfg.trial.inject_fault)
                stats = run_round(engine, make_requests(cfg, prompts, r, stop_ids), on_iter=hook)
                result["rounds"].append(asdict(stats))
                progress.write(json.dumps({"round_done": r, "round_total_s": stats.round_total_s,
                                           "round_total_generated": stats.round_total_generated,
                                           "pages_in_use": stats.pages_in_use_after_decode}) + "\n")
                progress.flush()
                _say(
                    f"round {r}: {stats.round_total_s:.3f}s, {stats.round_total_generated} tokens, "
                    f"{len(stats.iter_s)} decode iters, pages_in_use={stats.pages_in_use_after_decode}"
                )
        del engine  # its KV cache goes before the next trial's engine is built
        result["complete"] = True
        code = 0
    except BaseException as exc:  # noqa: BLE001 - every failure is data for the parent
        result["error"] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        }
        _say(f"error {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        traceback.print_exc(file=sys.stdout)
        code = 1
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sys.stdout.flush()
    _write_json(trial_dir / RESULT, result)
    return code


def _join_runtime(jax) -> None:
    """Join the point's JAX distributed runtime, one process per SLURM task (the coordinator address, process id
    and count come from the step's environment). Bounded waits: a peer that never comes, or dies, ends this
    process in seconds instead of JAX's minutes."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU hosts; accelerators use their own
    jax.distributed.initialize(initialization_timeout=120, heartbeat_timeout_seconds=20, shutdown_timeout_seconds=20)
    _say(f"joined the distributed runtime: process {jax.process_index()} of {jax.process_count()}")


def _log_to(path: Path) -> None:
    """Send this process's output, the runtime's C-level output included, to a trial's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def serve() -> int:
    """A warm worker: run each trial directory named on stdin, until stdin closes. The parent discards the
    process after any failure, so a trial that raised here is the last one it runs."""
    state = _Process()
    for line in sys.stdin:
        trial_dir = Path(line.strip())
        _log_to(trial_dir / LOG)
        run(trial_dir, state)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        sys.exit(serve())
    sys.exit(run(Path(sys.argv[1]), _Process()))
