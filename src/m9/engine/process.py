"""What an engine worker process keeps between its trials: the runtime, imported once (and joined to a point's
distributed runtime once), the last model it built, a count of the XLA compilations it ran, and what it paid before
its first trial (``prepare``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from m9.config import from_dict
from m9.protocol import HEARTBEAT_TIMEOUT_S, INIT_TIMEOUT_S, SHUTDOWN_TIMEOUT_S, model_key

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
"""JAX's monitoring event for one XLA compilation (``jax._src.dispatch.BACKEND_COMPILE_EVENT``)."""


def say(message: str) -> None:
    print(f"[m9.worker] {message}", flush=True)


class WorkerProcess:
    """What a worker keeps between trials: the imports' cost, paid once, the last model it built, and a count of
    the XLA compilations it ran."""

    def __init__(self) -> None:
        self.trials = 0
        self.model_key: str | None = None
        self.model = None
        self.distributed = False
        self.compiles = 0
        self.runtime = False
        self.paid: dict[str, float] = {}
        """Costs paid before the first trial (``--prepare``: the process's start, the imports, the model's build),
        reported by the trial that would otherwise have paid them."""

    def count_compile(self, event: str, duration: float, **kwargs) -> None:
        if event == COMPILE_EVENT:
            self.compiles += 1


def import_runtime(state: WorkerProcess):
    """JAX (and the engine's modules) imported, once per process; JAX's compile events counted from then on."""
    import jax

    if not state.runtime:
        jax.monitoring.register_event_duration_secs_listener(state.count_compile)
        from m9.engine import mesh, model, rounds  # noqa: F401 - Levanter's import cost, paid once, here

        state.runtime = True
    return jax


def build_model(state: WorkerProcess, cfg, mesh) -> None:
    """The point's model on its mesh (entered), kept by the process for the trials of the same model."""
    import jax

    from m9.engine.model import build_model

    state.model, state.model_key = None, None  # free the old weights before building the new ones
    state.paid.pop("model_build_s", None)
    state.model = jax.block_until_ready(build_model(cfg.model, cfg.engine.max_seq_len, cfg.engine.compute_dtype,
                                                    mesh))
    state.model_key = model_key(cfg)


def prepare(path: Path, state: WorkerProcess) -> None:
    """Before the first trial: import the runtime and build the model of the config a parent left in ``path`` (and
    deleted here), so that a sweep's first point finds them ready. The costs are the first trial's to report. A
    failure here is left for that trial to meet and report."""
    try:
        data = json.loads(path.read_text())
        path.unlink(missing_ok=True)
        state.paid["process_start_s"] = time.time() - data["spawned_at"]
        t = time.perf_counter()
        import_runtime(state)
        state.paid["import_s"] = time.perf_counter() - t
        from m9.engine.mesh import device_mesh, on

        cfg = from_dict(data["config"])
        mesh = device_mesh(cfg)
        with on(mesh, cfg):
            t = time.perf_counter()
            build_model(state, cfg, mesh)
            state.paid["model_build_s"] = time.perf_counter() - t
    except Exception as exc:  # noqa: BLE001 - see above
        say(f"not prepared ({type(exc).__name__}: {exc}); the first trial starts from the beginning")
        state.paid.pop("model_build_s", None)


def join_runtime(jax) -> None:
    """Join the point's JAX distributed runtime, one process per SLURM task (the coordinator address, process id
    and count come from the step's environment). Bounded waits: a peer that never comes, or dies, ends this
    process in seconds instead of JAX's minutes."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU hosts; accelerators use their own
    jax.distributed.initialize(initialization_timeout=INIT_TIMEOUT_S, heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
                               shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S)
    say(f"joined the distributed runtime: process {jax.process_index()} of {jax.process_count()}")
