"""The tracking store: ``Store``, one store and experiment as a process talks to it (its URI, MLflow's client, the
experiment's id, one line for a store that cannot be opened, the UI's link), and how values become text. A process
keeps its stores in its session (``m9.session``): one client per store, the experiment looked up once."""

from __future__ import annotations

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
UI_DEFAULT = "http://127.0.0.1:5000"
"""Where ``mlflow ui`` serves a local store."""
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
"""MLflow retries a failing HTTP request 7 times with exponential backoff (minutes) by default: a server that dies
mid-sweep would stall every point that long. Set for this process (and the jobs it starts) when a server's store is
opened; users' own settings win."""


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


class Store:
    """One tracking store and experiment (``tracking.*``), as this process talks to it."""

    def __init__(self, cfg: TrackingConfig):
        self.cfg = cfg
        self.uri = resolve_uri(cfg)
        self.enabled = cfg.backend != "none"
        """False with ``tracking=none``: nothing is recorded."""
        self._client = None
        self._experiment_id: Optional[str] = None
        self._checked = False

    @property
    def client(self):
        """MLflow's client for this store, made once (a sqlite store's client opens its database engine once)."""
        if self._client is None:
            from mlflow.tracking import MlflowClient

            if urlparse(self.uri).scheme in ("http", "https"):
                for key, value in _HTTP_DEFAULTS.items():
                    os.environ.setdefault(key, value)
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def init(self) -> Optional[str]:
        """Create the store's schema and the experiment if missing; returns the experiment id (None when tracking is
        off). A server is probed first, once (``probe``): MLflow's own client retries a dead one for minutes."""
        if not self.enabled:
            return None
        if self.uri.startswith("sqlite:///"):
            Path(self.uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        if not self._checked:
            check_reachable(self.uri)
            self._checked = True
        if self.experiment_id() is None:  # MLflow 3's UI opens an experiment on its GenAI overview unless it holds
            self._experiment_id = self.client.create_experiment(  # model runs
                self.cfg.experiment, artifact_location=_artifact_location(self.uri),
                tags={_EXPERIMENT_KIND: "custom_model_development"})
        return self._experiment_id

    def experiment_id(self) -> Optional[str]:
        """The experiment's id, None if it does not exist (yet)."""
        if self._experiment_id is None:
            experiment = self.client.get_experiment_by_name(self.cfg.experiment)
            self._experiment_id = experiment.experiment_id if experiment is not None else None
        return self._experiment_id

    def error(self, exc: BaseException) -> str:
        """One line for a store that could not be opened, credentials masked."""
        return redact(f"tracking store {self.uri}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")

    def exists(self) -> bool:
        """Tracking is on and the store is there to read (a local sqlite file exists; a server is assumed)."""
        return self.enabled and (not self.uri.startswith("sqlite:///") or Path(self.uri[len("sqlite:///"):]).exists())

    def ui_link(self, sweep_id: Optional[str] = None) -> Optional[str]:
        """The MLflow UI's runs table of the experiment (with ``sweep_id``: that sweep's run and its points, side by
        side), without the URI's credentials; None when tracking is off or the experiment does not exist yet.
        ``workflowType=machine_learning`` opens the runs table whatever the browser remembers: MLflow 3's UI otherwise
        opens an experiment on its GenAI (traces) page by a switch kept per browser, whatever the experiment's tags
        say. The UI nests child runs under their parent, collapsed, when sorted by date; sorted by name they are
        listed flat. A local store is served by ``mlflow ui --backend-store-uri URI``."""
        if not self.enabled:
            return None
        try:
            experiment_id = self.experiment_id()
        except Exception:  # noqa: BLE001 - a store that does not answer has no link to give; it is said elsewhere
            return None
        if experiment_id is None:
            return None
        parts = urlparse(self.uri)
        base = (parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl().rstrip("/")  # a link has no credentials
                if parts.scheme in ("http", "https") else UI_DEFAULT)
        view = "workflowType=machine_learning"
        if sweep_id is not None and "'" not in sweep_id:
            view += (f"&searchFilter={quote(f'tags.sweep_id = {chr(39)}{sweep_id}{chr(39)}')}"
                     "&orderByKey=attributes.run_name&orderByAsc=true")
        return redact(f"{base}/#/experiments/{experiment_id}/runs?{view}")

    def ui_hint(self, sweep_id: Optional[str] = None) -> str:
        """How to open the store's UI: its link, and for a local store the command that serves it."""
        link = self.ui_link(sweep_id)
        if link is None:
            return ""
        serve = ("" if urlparse(self.uri).scheme in ("http", "https")
                 else f" (serve it: mlflow ui --backend-store-uri {self.uri})")
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
