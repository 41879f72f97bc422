"""Where and how a point runs: the tracking store, the accelerator it decodes on, and the trial's own settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from m9.config.checks import ConfigError, one_of, positive

FAULTS = ("sigkill", "hang", "nan_weights", "segfault")
"""``trial.inject_fault`` values (m9's own tests; gated by the run stage, see ``m9.run.gate``)."""


TRACKING_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "file", "databricks")
"""URI schemes MLflow keeps runs behind (a database's ``+driver`` suffix aside; a bare path is a file store)."""


@dataclass(frozen=True)
class TrackingConfig:
    """Where trial records go."""

    backend: str = "mlflow"
    """``mlflow`` or ``none``."""
    uri: Optional[str] = None
    """Tracking URI (``sqlite:///...`` or ``http://host:port``). None: ``$MLFLOW_TRACKING_URI`` or the local store."""
    experiment: str = "m9"
    """MLflow experiment name."""

    def __post_init__(self) -> None:
        one_of("tracking.backend", self.backend, ("mlflow", "none"))
        scheme = urlsplit(self.uri).scheme.split("+")[0] if self.uri else ""
        if scheme and scheme not in TRACKING_SCHEMES:
            raise ConfigError(f"tracking.uri: {scheme}:// is not a store MLflow keeps runs in; a tracking URI is "
                              "sqlite:///PATH, http(s)://HOST:PORT, postgresql://, mysql://, mssql://, file:PATH or "
                              "databricks")


@dataclass(frozen=True)
class AcceleratorConfig:
    """The hardware a point runs on (``conf/accelerator``: vendor data-sheet figures per chip). An engine process
    decodes on a mesh of the host's chips (``mesh``): the planner checks one chip's share of weights and KV cache,
    with the engine state every chip holds, against one chip's memory; the roofline compares a point's bytes per
    second with the bandwidth of the chips it used."""

    name: str = "cpu"
    """Label recorded with every run."""
    platform: Optional[str] = "cpu"
    """``JAX_PLATFORMS`` for the engine (``cpu``, ``tpu``, ``cuda``). None: JAX's own choice."""
    chips_per_host: int = 1
    """Accelerator chips per host: what ``mesh.model`` defaults to. On ``platform=cpu``, the devices XLA makes of the
    host (m9 starts the engine with ``--xla_force_host_platform_device_count``), to try a mesh on any machine."""
    hosts: int = 1
    """Hosts of the slice, one engine process each (a SLURM task per host): what ``mesh.hosts=global`` spans."""
    memory_gib: Optional[float] = None
    """Memory per chip (GiB). None: the host's RAM on ``platform=cpu``, else unchecked."""
    bandwidth_gbps: Optional[float] = None
    """Memory bandwidth per chip (GB/s, HBM on accelerators). None: measured once per process that runs points, on
    its host (``platform=cpu``), else no roofline."""
    peak_tflops: Optional[float] = None
    """Peak dense bf16 TFLOP/s per chip (the roofline's ridge point). None: unknown."""

    def __post_init__(self) -> None:
        positive("accelerator", chips_per_host=self.chips_per_host, hosts=self.hosts, memory_gib=self.memory_gib,
                  bandwidth_gbps=self.bandwidth_gbps, peak_tflops=self.peak_tflops)


@dataclass(frozen=True)
class TrialConfig:
    """How one point is executed."""

    timeout_s: float = 1800.0
    """Wall-clock limit for the engine child process (s); past it the child is killed and the point is recorded."""
    memory_limit_gb: Optional[float] = None
    """Host memory (GiB, resident) the engine child may use; past it the child is killed and recorded as ``oom``."""
    plan_only: bool = False
    """Plan and print the points without running or tracking them (accepted points show as ``planned``)."""
    enforce_plan: bool = True
    """False runs a point the planner rejected (its reasons become notes): to watch the engine fail for real."""
    inject_fault: Optional[str] = None
    """Test-only fault in the child: ``sigkill``, ``hang``, ``nan_weights``, ``segfault``. Refused unless the
    environment has M9_ALLOW_FAULT_INJECTION=1, so it cannot be turned on by a stray override."""
    worker: str = "warm"
    """``warm``: points run one after another in one engine child that keeps its imports and model (discarded
    after a crash, OOM, NaNs, a hang or an engine error, for another model, or on memory growth; kept after out of
    pages, truncation or an unserved prompt, which harm only the engine); ``fresh``: a new interpreter per trial."""
    repeats: int = 1
    """Fresh trials of the point, grouped under it: its record gives the median, min and max of the throughput
    metrics, and it passes only if every trial passes."""

    def __post_init__(self) -> None:
        positive("trial", timeout_s=self.timeout_s, memory_limit_gb=self.memory_limit_gb, repeats=self.repeats)
        one_of("trial.worker", self.worker, ("warm", "fresh"))
        if self.inject_fault is not None:
            one_of("trial.inject_fault", self.inject_fault, FAULTS)
