"""Where a point came from: its place in the sweep, and the code and library versions that ran it."""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class JobInfo:
    """A point's identity within its sweep (taken from Hydra once, at the entry point)."""

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

    @property
    def override_string(self) -> str:
        """Overrides as one space-separated string."""
        return " ".join(self.overrides)

    @property
    def run_name(self) -> str:
        """A readable run name: the overrides, or ``default``."""
        return self.override_string or "default"


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


@functools.cache
def versions() -> dict[str, str]:
    """Versions that decide what a number means, read without importing the libraries."""
    return {
        "m9_git_rev": git_revision(),
        "levanter_version": _version("marin-levanter"),
        "jax_version": _version("jax"),
        "jaxlib_version": _version("jaxlib"),
    }
