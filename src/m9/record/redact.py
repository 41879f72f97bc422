"""Keep credentials out of every record: params, tags, run names, journals, logs, matrices and reports.

A tracking URI may carry credentials (``https://user:token@mlflow.internal``). Before Hydra sees the command line,
``move_uri_credentials`` takes them out of ``tracking.uri`` and hands them to MLflow the way MLflow expects them
(``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, inherited by every job process and never recorded), so
no config, override or Hydra output file ever holds them. ``redact`` is the second line: every text m9 writes to
the store or prints about a store goes through it.
"""

from __future__ import annotations

import os
import re
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@'\"]+)@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:[a-z_]*token|password|passwd|secret|api[_-]?key|key|sig|signature)=)"
                           r"[^&\s'\"]+")
_URI_KEYS = ("tracking.uri",)


def redact(text: str) -> str:
    """``text`` with the userinfo of every URI in it and secret-looking query values masked."""
    if "://" not in text and "=" not in text:
        return text
    return _SECRET_QUERY.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<scheme>{MASK}@", text))


def _without_userinfo(parts: SplitResult) -> str:
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))


def move_uri_credentials(argv: list[str], environ=os.environ) -> tuple[list[str], list[str]]:
    """Take credentials out of ``tracking.uri=...`` overrides: the user and password go to MLflow's environment
    variables (of this process and the jobs it starts), the URI stays without them. Returns the new argv and a
    message per moved credential (for one line on stderr)."""
    out, said = [], []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") in _URI_KEYS and "@" in value and "://" in value:
            parts = urlsplit(value)
            if parts.username is not None:
                environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username)
                if parts.password is not None:
                    environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
                arg = f"{key}={_without_userinfo(parts)}"
                said.append(f"{key.lstrip('+~')}: credentials moved to MLFLOW_TRACKING_USERNAME/PASSWORD for this "
                            "sweep's processes; they are not recorded")
        out.append(arg)
    return out, said
