"""Is the tracking server there? One bounded HTTP probe before anything is recorded: MLflow's own client retries a
dead server for minutes before it says anything."""

from __future__ import annotations

import os
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 5.0


def check_reachable(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise ``StoreUnreachable`` unless an HTTP(S) tracking server answers within ``timeout_s`` (any HTTP answer,
    even 401, counts): MLflow's own client would retry a dead server for minutes before saying anything."""
    if urlparse(uri).scheme not in ("http", "https"):
        return
    context = None
    if uri.startswith("https") and os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        context = ssl._create_unverified_context()  # noqa: S323 - the user asked MLflow for the same
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s, context=context).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreUnreachable(f"no answer within {timeout_s:g}s ({reason})") from None


class StoreUnreachable(ConnectionError):
    """The tracking server did not answer the preflight probe."""
