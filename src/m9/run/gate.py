"""The fault gate: ``trial.inject_fault`` is for m9's own tests, and runs only where the environment says so, so that
a stray override cannot crash a sweep's points. Checked once, with the command line (``m9.compose``): a point
refused here never reaches the planner, a launcher or an engine."""

from __future__ import annotations

import os
from typing import Optional

from m9.config import M9Config

FAULT_ENV = "M9_ALLOW_FAULT_INJECTION"
"""``trial.inject_fault`` runs only where the environment sets this to 1 (m9's own tests)."""


def fault_gate(cfg: M9Config, environ=os.environ) -> Optional[str]:
    """Why this point may not run, or None."""
    if cfg.trial.inject_fault is not None and environ.get(FAULT_ENV) != "1":
        return f"trial.inject_fault={cfg.trial.inject_fault} is for m9's own tests and needs {FAULT_ENV}=1"
    return None
