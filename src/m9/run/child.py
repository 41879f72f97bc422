"""The engine child process: started as a fresh interpreter (never a fork: JAX is not fork-safe) in its own process
group, killed with this process even when this one dies by SIGKILL, measured (resident memory) and killed whole."""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import subprocess
import sys

from m9.config import M9Config
from m9.protocol import ChildExit

WORKER_MODULE = "m9.engine.worker"
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_PDEATHSIG = 1
try:
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the parent's own cleanup still applies
    _PRCTL = None


_CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
_DEVICE_COUNT = "--xla_force_host_platform_device_count"


def child_env(cfg: M9Config) -> dict[str, str]:
    """This process's environment, with the point's ``JAX_PLATFORMS`` (and on a CPU host of several chips, as many
    XLA host devices) and without tracking credentials (the engine child never talks to the store)."""
    env = {k: v for k, v in os.environ.items() if k not in _CREDENTIALS}
    if cfg.accelerator.platform:
        env["JAX_PLATFORMS"] = cfg.accelerator.platform
    if cfg.accelerator.platform == "cpu" and cfg.accelerator.chips_per_host > 1:  # a CPU host made into N devices
        flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(_DEVICE_COUNT)]
        env["XLA_FLAGS"] = " ".join([*flags, f"{_DEVICE_COUNT}={cfg.accelerator.chips_per_host}"])
    if cfg.accelerator.platform == "cuda":  # JAX's default 0.75 would refuse what hbm_utilization=0.9 plans
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")
    env["HF_HUB_OFFLINE"] = "1"  # checkpoints and tokenizers are local folders: nothing is downloaded mid-sweep
    # Levanter imports transformers, which imports PyTorch wherever it is installed (5 s of a child's 13 s start
    # here); a JAX engine reading safetensors needs none of it
    env.setdefault("USE_TORCH", "0")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def spawn(args: list[str], cfg: M9Config, stdout, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    """The engine child: a fresh interpreter in its own process group, killed with this process."""
    return subprocess.Popen(
        [sys.executable, "-m", WORKER_MODULE, *args],
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        env=child_env(cfg),
        start_new_session=True,  # its own process group: a kill takes everything it started
        preexec_fn=_die_with_parent,
    )


def _die_with_parent() -> None:
    # In the child, between fork and exec: if the parent is SIGKILLed (no chance to clean up), the kernel kills the
    # engine. prctl was looked up in the parent: nothing that takes locks (dlopen) runs in the forked child.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def kill(child: subprocess.Popen, end: ChildExit) -> ChildExit:
    """Kill the child's whole process group; ``end`` with the exit status it died with."""
    os.killpg(child.pid, signal.SIGKILL)
    return dataclasses.replace(end, returncode=child.wait())
