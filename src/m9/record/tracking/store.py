"""The tracking store: its URI, one client per store and process, the experiment, and how values become text."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote, urlparse

from m9.config import TrackingConfig
from m9.record.journal import TEXT_PARAMS
from m9.record.probe import check_reachable
from m9.record.redact import redact

DEFAULT_DB = Path("outputs") / "mlflow.db"
PARAM_MAX = 6000  # MLflow's cap on a param value (chars)
TAG_MAX = 5000
_EXPERIMENT_KIND = "mlflow.experimentKind"
# MLflow retries a failing HTTP request 7 times with exponential backoff (minutes) by default: a store that dies
# mid-sweep would stall every point that long. Users' own settings win.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def store_error(cfg: TrackingConfig, exc: BaseException) -> str:
    """One line for a store that could not be opened, credentials masked."""
    return redact(f"tracking store {resolve_uri(cfg)}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")


def resolve_uri(cfg: TrackingConfig) -> str:
    """``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else a sqlite store at ``outputs/mlflow.db`` under the cwd."""
    if cfg.uri:
        return cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path.cwd() / DEFAULT_DB).resolve()}"


def _artifact_location(uri: str) -> Optional[str]:
    # A local sqlite store keeps artifacts beside the database, not in whatever the cwd is; a server decides itself.
    if urlparse(uri).scheme == "sqlite":
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return None


def client(cfg: TrackingConfig):
    """The store's MLflow client."""
    return _client_for(resolve_uri(cfg))


@functools.lru_cache(maxsize=8)
def _client_for(uri: str):
    # One client per store and process: a sqlite store's client opens its database engine once, not per call.
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


_EXPERIMENT_IDS: dict[tuple[str, str], str] = {}


def init_store(cfg: TrackingConfig) -> Optional[str]:
    """Create the store's schema and the experiment if missing; returns the experiment id (None when disabled).
    Looked up once per process and store."""
    if cfg.backend == "none":
        return None
    uri = resolve_uri(cfg)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    if (uri, cfg.experiment) not in _EXPERIMENT_IDS:
        check_reachable(uri)
    experiment_id = experiment_id_of(cfg)
    if experiment_id is None:  # MLflow 3's UI opens an experiment on its GenAI overview unless it holds model runs
        experiment_id = client(cfg).create_experiment(cfg.experiment, artifact_location=_artifact_location(uri),
                                                      tags={_EXPERIMENT_KIND: "custom_model_development"})
        _EXPERIMENT_IDS[uri, cfg.experiment] = experiment_id
    return experiment_id


def experiment_id_of(cfg: TrackingConfig) -> Optional[str]:
    """The experiment's id, None if it does not exist (yet)."""
    key = (resolve_uri(cfg), cfg.experiment)
    if key not in _EXPERIMENT_IDS:
        experiment = client(cfg).get_experiment_by_name(cfg.experiment)
        if experiment is None:
            return None
        _EXPERIMENT_IDS[key] = experiment.experiment_id
    return _EXPERIMENT_IDS[key]


UI_DEFAULT = "http://127.0.0.1:5000"  # where ``mlflow ui`` serves a local store


def ui_link(cfg: TrackingConfig, sweep_id: Optional[str] = None) -> Optional[str]:
    """The MLflow UI's runs table of the experiment (with ``sweep_id``: that sweep's run and its points, side by
    side), without the URI's credentials; None when tracking is off or the experiment does not exist yet.
    ``workflowType=machine_learning`` opens the runs table whatever the browser remembers: MLflow 3's UI otherwise
    opens an experiment on its GenAI (traces) page by a switch kept per browser, whatever the experiment's tags say.
    The UI nests child runs under their parent, collapsed, when sorted by date; sorted by name they are listed flat.
    A local store is served by ``mlflow ui --backend-store-uri URI``."""
    if cfg.backend == "none":
        return None
    try:
        experiment_id = experiment_id_of(cfg)
    except Exception:  # noqa: BLE001 - a store that does not answer has no link to give; it is said elsewhere
        return None
    if experiment_id is None:
        return None
    uri = resolve_uri(cfg)
    parts = urlparse(uri)
    base = (parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl().rstrip("/")  # a link has no credentials
            if parts.scheme in ("http", "https") else UI_DEFAULT)
    view = "workflowType=machine_learning"
    if sweep_id is not None and "'" not in sweep_id:
        view += (f"&searchFilter={quote(f'tags.sweep_id = {chr(39)}{sweep_id}{chr(39)}')}"
                 "&orderByKey=attributes.run_name&orderByAsc=true")
    return redact(f"{base}/#/experiments/{experiment_id}/runs?{view}")


def ui_hint(cfg: TrackingConfig, sweep_id: Optional[str] = None) -> str:
    """How to open the store's UI: its link, and for a local store the command that serves it."""
    link = ui_link(cfg, sweep_id)
    if link is None:
        return ""
    uri = resolve_uri(cfg)
    serve = "" if urlparse(uri).scheme in ("http", "https") else f" (serve it: mlflow ui --backend-store-uri {uri})"
    return redact(f"{link}{serve}")


def text(value: Any, cap: int) -> str:
    """A tag's or param's value as MLflow keeps it: text (values that are not text as JSON), credentials masked."""
    return redact(value if isinstance(value, str) else json.dumps(value))[:cap]


def param_value(key: str, value: str) -> Any:
    """Inverse of ``text`` for a param: text params as they are, the others parsed back from JSON."""
    if key in TEXT_PARAMS:
        return None if value == "null" else value
    try:
        return json.loads(value)
    except ValueError:  # a store written before params were JSON: Python's spellings
        return {"True": True, "False": False, "None": None}.get(value, value)
