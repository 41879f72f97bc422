"""Run one planned point in an isolated child process and turn whatever happened into an Outcome.

The engine runs in a fresh interpreter (never a fork: JAX is not fork-safe) in its own process group, so an
exception, a signal, the OOM killer or a hang ends the child, not the sweep. The parent never imports JAX.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from m9.config import M9Config, to_dict
from m9.outcome import Outcome, classify
from m9.plan import Plan

WORKER_MODULE = "m9.engine.worker"
LOG_NAME = "trial.log"


def _child_env(cfg: M9Config) -> dict[str, str]:
    env = dict(os.environ)
    if cfg.trial.jax_platforms:
        env["JAX_PLATFORMS"] = cfg.trial.jax_platforms
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_trial(cfg: M9Config, plan: Plan, trial_dir: Path) -> Outcome:
    """Run the engine for an accepted plan under ``trial.timeout_s``; the child's log lands in ``trial_dir``."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    result_path = trial_dir / "result.json"
    result_path.unlink(missing_ok=True)
    request = {
        "config": to_dict(cfg),
        "max_pages": plan.max_pages,
        "num_prompts": plan.num_prompts,
        "spawned_at": time.time(),
    }
    (trial_dir / "request.json").write_text(json.dumps(request, indent=1))

    timed_out = None
    with open(trial_dir / LOG_NAME, "w") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, str(trial_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(cfg),
            start_new_session=True,  # its own process group: a timeout kills everything it started
        )
        try:
            returncode = child.wait(timeout=cfg.trial.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = cfg.trial.timeout_s
            os.killpg(child.pid, signal.SIGKILL)
            returncode = child.wait()

    result = json.loads(result_path.read_text()) if result_path.exists() else None
    return classify(
        plan,
        result,
        returncode,
        timed_out,
        max_new_tokens=cfg.workload.max_new_tokens,
        length_fixed=cfg.workload.length_fixed,
    )
