"""Where a point came from: its place in the sweep, and the code and library versions that ran it."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from m9.record.redact import redact
from m9.run.files import PointDir, write_json


_UNNAMED = ("tracking.", "hydra.", "hydra/")
"""Keys no name needs: where a point is recorded and how Hydra runs it say nothing of what it measures."""


def short_name(overrides) -> str:
    """Overrides as a UI column is wide: each key by its last dotted part where that is unambiguous
    (``engine.max_seqs=57`` -> ``max_seqs=57``), recording and Hydra settings left out, credentials masked."""
    lines = [o for o in overrides if not o.lstrip("+~").startswith(_UNNAMED)]
    keys = [o.split("=", 1)[0].lstrip("+~") for o in lines]
    lasts = [k.rsplit(".", 1)[-1] for k in keys]
    named = [f"{last if lasts.count(last) == 1 else key}={o.split('=', 1)[1]}" if "=" in o else o
             for o, key, last in zip(lines, keys, lasts)]
    return redact(" ".join(named))


@dataclass(frozen=True)
class JobInfo:
    """A point's identity within its sweep: made once, by the sweep that launches the point (and written into the
    point's directory for the job to read), or by the entry point for a single run."""

    sweep_id: str
    """Name of the sweep (or single run) directory."""
    job_num: int
    """Index of the point in the sweep (0 for a single run)."""
    overrides: tuple[str, ...]
    """The command-line overrides that make this point, as typed."""
    output_dir: Path
    """The point's own directory: trial log, result, config and journal entry."""
    parent_run_id: Optional[str] = None
    """The sweep's tracking run, when the point belongs to a tracked sweep."""
    point_key: str = ""
    """What the point measures, hashed (see :func:`point_key`): how a resumed sweep finds it again."""
    shared: tuple[str, ...] = ()
    """Overrides every point of its sweep shares: said once for the sweep, left out of the point's label."""
    rank: int = 0
    """This process's rank when the point runs as several processes (``m9.run.multihost``); only rank 0 records."""
    processes: int = 1
    """How many processes run the point."""

    @property
    def override_string(self) -> str:
        """Overrides as one space-separated string."""
        return " ".join(self.overrides)

    @property
    def run_name(self) -> str:
        """The run's name in the UI's table: what sets the point apart, each key by its last part
        (``max_seqs=57 max_rounds=16``), or ``default``."""
        return short_name(o for o in self.overrides if o not in self.shared) or "default"

    @property
    def label(self) -> str:
        """What sets the point apart in its sweep, for the lines a person reads: its overrides less the shared."""
        return redact(" ".join(o for o in self.overrides if o not in self.shared) or "default")

    @property
    def point_dir(self) -> PointDir:
        return PointDir(self.output_dir)

    def write(self) -> None:
        """Leave the identity in the point's directory, for the job that runs it (``read``)."""
        data = {**asdict(self), "output_dir": str(self.output_dir)}
        for runtime_only in ("rank", "processes"):
            del data[runtime_only]
        write_json(self.point_dir.job, data)

    @classmethod
    def read(cls, point: PointDir) -> Optional["JobInfo"]:
        """The identity a sweep left in ``point`` (None: not launched by m9's sweepers)."""
        if not point.job.exists():
            return None
        data = json.loads(point.job.read_text())
        return cls(**{**data, "overrides": tuple(data["overrides"]), "shared": tuple(data["shared"]),
                      "output_dir": Path(data["output_dir"])})


@functools.cache
def git_revision() -> str:
    """m9's git commit (``-dirty`` when the tree has local changes), or ``unknown`` outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


STACK = {"levanter": "marin-levanter", "jax": "jax", "jaxlib": "jaxlib", "transformers": "transformers"}
"""The libraries whose versions decide what a number means (``stack``), by their distribution names."""


@functools.cache
def stack() -> dict[str, str]:
    """The stack a point runs on: Python and the engine's libraries, read without importing them. Recorded with each
    point (params ``stack.*``) and part of its key, so two stacks are never mixed in one sweep or compared unsaid."""
    return {"python": platform.python_version(), **{name: _version(dist) for name, dist in STACK.items()}}


@functools.cache
def versions() -> dict[str, str]:
    """The code and the stack that run a point (tags of its run, and part of its key)."""
    return {"m9_git_rev": git_revision(), **{f"{name}_version": v for name, v in stack().items()}}


@functools.cache
def local_device_kind() -> str:
    """The accelerator of this host, read without importing JAX: NVIDIA GPUs by name and count, a TPU VM's type,
    else the CPU model."""
    if shutil.which("nvidia-smi"):
        try:
            names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                   text=True, timeout=20, check=True).stdout.split("\n")
            names = [n.strip() for n in names if n.strip()]
            if names:
                return f"gpu:{names[0]} x{len(names)}"
        except (OSError, subprocess.SubprocessError):
            pass
    if os.environ.get("TPU_ACCELERATOR_TYPE"):
        return f"tpu:{os.environ['TPU_ACCELERATOR_TYPE']}"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"cpu:{model or 'unknown'} x{os.cpu_count()}"


# Settings that say where a point is recorded, whether it only plans, or which process runs it: not what it
# measures (a warm and a fresh worker decode the same tokens; a test checks it).
_NOT_MEASURED = {"tracking": None, "trial": {"plan_only", "worker"}}


def measured(cfg) -> dict[str, Any]:
    """What a point key hashes of a point: its resolved config, and the contents behind its file paths (the
    checkpoint's config, the tokenizer, the prompt file), so a file edited in place is a new measurement and not a
    resumed one."""
    from m9.config import to_dict
    from m9.inputs import checkpoint, prompts

    return {**to_dict(cfg), "inputs": {**checkpoint.provenance(cfg.model), "prompts": prompts.digest(cfg.workload)}}


def point_key(config: dict[str, Any], device: str, attempt: int = 0) -> str:
    """A point's identity for resuming: its resolved config (less tracking and display settings), the code and
    library versions that run it, the device it runs on, and which attempt of an identical point it is (a search's
    confirmations and a grid's repeated values are separate measurements)."""
    measured = {}
    for section, values in config.items():
        skip = _NOT_MEASURED.get(section, set())
        if skip is None:
            continue
        measured[section] = {k: v for k, v in values.items() if k not in skip}
    payload = {"config": measured, "versions": versions(), "device": device, "attempt": attempt}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _start_ticks(pid: int) -> Optional[str]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]  # field 22, after the command name in parentheses
    except (OSError, IndexError):
        return None


def process_identity() -> str:
    """``host:pid:start`` of this process: names it uniquely even after its pid is reused."""
    return f"{os.uname().nodename}:{os.getpid()}:{_start_ticks(os.getpid())}"


def process_gone(identity: str) -> bool:
    """True when ``identity`` (from :func:`process_identity`) names a process of this host that no longer runs;
    False when it runs, or lives on another host (nothing can be said from here)."""
    host, _, rest = identity.partition(":")
    pid, _, start = rest.partition(":")
    if host != os.uname().nodename or not pid.isdigit():
        return False
    return _start_ticks(int(pid)) != start
