"""The canonical record of a point: a ``PointRecord``, kept as ``record.json`` in the point's directory.

It is written before anything is sent to the tracking store, so a sweep's matrix and report can always be rebuilt
from its directory: with tracking off, on a remote launcher's shared filesystem, or when the store was down.
The tracking store holds the same record (``tracking.finish_point`` / ``tracking.load_points`` rebuild it from a
run), so every reader (analysis, matrix, plots, report, resume) takes one type from either source.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from m9.config import SECTIONS, M9Config, flatten
from m9.inputs import checkpoint
from m9.outcome.outcome import Outcome
from m9.outcome.status import Status
from m9.plan import Plan, describe
from m9.record.provenance import JobInfo, stack
from m9.record.redact import redact
from m9.run.files import PointDir, write_json

SWEEP = "m9_sweep.json"
DERIVED = "derived"
"""The param naming the config keys left unset whose recorded value m9 derived (``engine.max_pages``, ...)."""


def _text_params() -> frozenset[str]:
    """The params whose values are text (the schema's ``str`` fields and what ``point_params`` resolves as text): a
    store that keeps every param as text gives the others back by parsing them."""
    keys = {f"{name}.{key}" for name, section in SECTIONS.items()
            for key, hint in typing.get_type_hints(section).items() if hint in (str, Optional[str])}
    return frozenset(keys | {DERIVED, "resolved.prompt_source", "resolved.prompt_tokens", "resolved.weights",
                             "resolved.mesh", "resolved.checkpoint_config_sha256", "resolved.tokenizer_sha256"})


TEXT_PARAMS = _text_params()


@dataclass(frozen=True)
class PointRecord:
    """One point of a sweep, whatever happened to it: who it was, what it was set to, and its outcome."""

    sweep_id: str
    job_num: int
    overrides: tuple[str, ...]
    """The point's own command-line overrides (its grid cell)."""
    output_dir: str
    point_key: str
    """Hash of what was measured (see ``provenance.point_key``): equal keys are the same measurement."""
    outcome: Outcome
    params: Mapping[str, Any]
    """The flattened config (a key left unset holds the value used, named in ``derived``) and what the plan
    resolved beyond it (``resolved.*``), as recorded in MLflow."""
    run_id: Optional[str] = None
    """The point's MLflow run (None: tracking off, or the store failed: see ``tracking_error``)."""
    tracking_error: Optional[str] = None
    reused_from: Optional[Mapping[str, Any]] = None
    """Set on a point adopted from an earlier sweep by resume: that sweep's id, job, run and directory."""

    @property
    def status(self) -> Status:
        return self.outcome.status

    @property
    def metrics(self) -> Mapping[str, float]:
        return self.outcome.metrics

    @property
    def max_seqs(self) -> Optional[int]:
        return self.params.get("engine.max_seqs")

    @property
    def max_pages(self) -> Optional[int]:
        """Pages the engine got (``engine.max_pages``, derived when it was left unset)."""
        return self.params.get("engine.max_pages")

    @property
    def mesh(self) -> Optional[str]:
        """The engine's (data x model) mesh: ``1x4``, or ``1x8 over 2 hosts`` (``mesh.hosts=global``)."""
        return self.params.get("resolved.mesh")

    @property
    def prompts(self) -> Optional[int]:
        return self.params.get("workload.num_prompts")

    def replace(self, **changes: Any) -> "PointRecord":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``record.json``."""
        return {**asdict(self), "outcome": self.outcome.to_json(), "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PointRecord":
        """Inverse of ``to_json``."""
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        return cls(**{**known, "overrides": tuple(known["overrides"]), "outcome": Outcome.from_json(known["outcome"])})


def make_record(job: JobInfo, params: Mapping[str, Any], outcome: Outcome) -> PointRecord:
    """The record of one point, before it is tracked."""
    return PointRecord(sweep_id=job.sweep_id, job_num=job.job_num, overrides=tuple(redact(o) for o in job.overrides),
                       output_dir=str(job.output_dir), point_key=job.point_key, outcome=outcome,
                       params={k: redact(v) if isinstance(v, str) else v for k, v in params.items()})


def point_params(cfg: M9Config, plan: Plan) -> dict[str, Any]:
    """A point's params as recorded: the flattened config with the value used for each key left unset (named in
    ``derived``), what the plan resolved beyond the config (``resolved.*``), and where its weights and tokenizer
    came from."""
    used = {
        "engine.max_pages": plan.max_pages,
        "engine.max_prefill_size": plan.max_prefill_size,
        "engine.max_seqs_in_prefill": cfg.engine.imputed_max_seqs_in_prefill,
        "scheduler.max_tokens_per_round": cfg.imputed_max_tokens_per_round,
        "workload.num_prompts": cfg.imputed_num_prompts,
        "model.head_dim": cfg.model.head_size,
        "mesh.model": cfg.mesh_shape[1],
    }
    config = flatten(cfg)
    derived = {k: v for k, v in used.items() if config[k] is None and v is not None}
    resolved = {
        DERIVED: " ".join(sorted(derived)) or None,
        "resolved.num_seqs": cfg.num_seqs,
        "resolved.prompt_source": cfg.workload.prompt_source,
        "resolved.prompt_tokens": describe(plan.prompt_lens),
        "resolved.prompt_tokens_total": sum(plan.prompt_lens),
        "resolved.mesh": "x".join(map(str, cfg.mesh_shape)) + (f" over {cfg.accelerator.hosts} hosts"
                                                              if cfg.mesh.hosts == "global" and cfg.accelerator.hosts > 1
                                                              else ""),
        "resolved.chips": cfg.chips,
    }
    versions = {f"stack.{name}": v for name, v in stack().items()}
    params = {**config, **derived, **resolved, **checkpoint.provenance(cfg.model), **versions}
    return {k: redact(v) if isinstance(v, str) else v for k, v in params.items()}


def derived_keys(params: Mapping[str, Any]) -> frozenset[str]:
    """The config keys of a point's params whose value m9 derived (they were left unset)."""
    return frozenset((params.get(DERIVED) or "").split())


def write_record(record: PointRecord) -> Path:
    """Write (or rewrite, once the run id is known) a point's record in its output directory."""
    return write_json(PointDir(Path(record.output_dir)).record, record.to_json())


def read_record(path: Path) -> PointRecord:
    """A point's record from its ``record.json``."""
    return PointRecord.from_json(json.loads(path.read_text()))


def read_sweep(sweep_dir: Path) -> list[PointRecord]:
    """Every point record under a sweep directory, in job order."""
    records = (PointDir(p).record for p in sweep_dir.iterdir() if p.is_dir()) if sweep_dir.is_dir() else ()
    return sorted((read_record(p) for p in records if p.exists()), key=lambda r: r.job_num)


def write_sweep_meta(sweep_dir: Path, meta: dict[str, Any]) -> Path:
    """The sweep's own record (command, grid, parent run id), written by the launching process."""
    return write_json(sweep_dir / SWEEP, meta)


def read_sweep_meta(sweep_dir: Path) -> Optional[dict[str, Any]]:
    """The sweep record, or None for a directory m9 did not launch."""
    path = sweep_dir / SWEEP
    return json.loads(path.read_text()) if path.exists() else None
