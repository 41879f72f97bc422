"""The process boundary between a point's process and its engine worker: frozen types with their JSON form, read and
written by both sides (where they lie: ``m9.run.files``), and how the worker ended as the parent saw it
(``ChildExit``), which the outcome stage classifies. Standard library and the schema only, so that the launching
process reads the worker's words without importing the engine, the engine reads its orders without importing the
planner, and the classifier reads both without importing the process machinery.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Optional, Union

from m9.config import M9Config, from_dict, to_dict

INIT_TIMEOUT_S = 120
"""A multi-process point: every process must have joined the point's JAX distributed runtime within this long."""
HEARTBEAT_TIMEOUT_S = 20
"""... a peer that stops answering is declared dead after this long (JAX's own default is 100 s) ..."""
SHUTDOWN_TIMEOUT_S = 20
"""... and the runtime's shutdown barrier waits at most this long for the others."""
BEAT_S = 1.0
"""A multi-process point's engine child touches its trial's heartbeat file this often while its trial runs ..."""
SILENCE_S = 60
"""... and a peer whose engine has not beaten for this long is taken as stopped, frozen or gone: the processes still
running kill their engines and fail the point, naming it. Generous, so that a long compile holding the interpreter
is not taken for a hang; far below any trial timeout a global mesh would otherwise sit out in a collective."""


@dataclass(frozen=True)
class TrialRequest:
    """What the parent asks of the engine child for one trial."""

    config: M9Config
    max_pages: int
    """KV pages to build the engine with (the plan's)."""
    max_prefill_size: int
    """Prefill buffer to build the engine with (tokens, the plan's)."""
    prompts: tuple[tuple[int, ...], ...]
    """The round's prompts, as token ids (tokenized by the parent)."""
    stop_ids: tuple[tuple[int, ...], ...]
    """Stop sequences, as token ids."""
    spawned_at: float
    """When the parent handed the trial over (epoch seconds): the child's start-up cost is measured from it."""
    processes: int = 1
    """Processes of the point; more than one: the child joins the point's JAX distributed runtime."""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "config": to_dict(self.config)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrialRequest":
        return cls(**{**data, "config": from_dict(data["config"]), "prompts": _ids(data["prompts"]),
                      "stop_ids": _ids(data["stop_ids"])})


def model_key(cfg: M9Config) -> str:
    """What decides the weights a trial decodes with (a warm worker keeps a model for trials of the same key): the
    model section less the tokenizer (which stays with the planning process), the slot length, the dtype, and the
    mesh they are laid out on."""
    model = {k: v for k, v in asdict(cfg.model).items() if k != "tokenizer"}
    return json.dumps([model, cfg.engine.max_seq_len, cfg.engine.compute_dtype, cfg.mesh_shape, cfg.mesh.axes],
                      sort_keys=True)


def _ids(rows: list[list[int]]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(row) for row in rows)


@dataclass(frozen=True)
class RoundStats:
    """Measurements of one ``generate`` call (times in seconds, sizes in pages/tokens)."""

    round_total_s: float
    """Wall time of the call: reset + prefill + decode + output assembly."""
    prefill_s: float
    """From the call to the first decode iteration (includes prefill compilation in round 0)."""
    iter_s: tuple[float, ...]
    """Wall time of each outer decode iteration, in order."""
    seq_lens: tuple[int, ...]
    """Generated tokens per sequence, as returned (an unserved prompt shows as 0)."""
    pages_in_use_after_prefill: int
    """Pages with a nonzero reference count when decode starts."""
    pages_in_use_after_decode: int
    """Pages with a nonzero reference count when the call returns."""
    max_pages: int
    """Pages in the cache (the page table's length)."""
    nonfinite_logprobs: int
    """Sampled tokens whose logprob was NaN or infinite (non-finite logits)."""
    tokens_digest: str = ""
    """A hash of every generated token, in order: two trials decoded the same tokens exactly when it matches."""
    compiles: int = 0
    """XLA compilations during the call (0: every executable came from the process's cache)."""

    @property
    def round_total_generated(self) -> int:
        """Tokens generated in the round, prefill's first token included."""
        return sum(self.seq_lens)

    @property
    def decode_generated(self) -> int:
        """Tokens produced by decode iterations (one per served sequence came from prefill)."""
        return self.round_total_generated - sum(1 for n in self.seq_lens if n > 0)

    @property
    def decode_s(self) -> float:
        """Wall time of the decode iterations."""
        return sum(self.iter_s)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RoundStats":
        return cls(**{**data, "iter_s": tuple(data["iter_s"]), "seq_lens": tuple(data["seq_lens"])})


@dataclass(frozen=True)
class Runtime:
    """What the child's JAX runtime reported."""

    backend: str
    device_kind: str
    device_count: int
    process_count: int
    local_device_count: int
    jax_version: str
    levanter_version: str


@dataclass(frozen=True)
class Sharding:
    """What the engine got on its mesh, read from its arrays."""

    mesh: tuple[int, int]
    """(data, model) as built."""
    devices: int
    """Devices the mesh spans."""
    weight_bytes_per_chip: int
    """The first device's part of every weight."""
    weight_bytes: int
    """Every weight, whole."""
    kv_cache_bytes_per_chip: int
    """The first device's part of the KV cache."""
    kv_cache_bytes: int
    """The KV cache, whole."""
    kv_cache_spec: str
    """How the KV pages are partitioned (``PartitionSpec(None, None, 'model', None)``: by kv_head)."""


@dataclass(frozen=True)
class ChildError:
    """An exception the child caught: the trial failed, the process lived."""

    type: str
    message: str
    traceback: str = ""


@dataclass(frozen=True)
class ChildExit:
    """How the engine worker ended, as the parent saw it."""

    returncode: Optional[int]
    """Exit status (negative: killed by that signal)."""
    peak_rss_bytes: int = 0
    """Largest resident size the parent observed."""
    timed_out_s: Optional[float] = None
    """Set when the parent killed the worker at ``trial.timeout_s``."""
    memory_kill: Optional[str] = None
    """Set when the parent killed the worker past ``trial.memory_limit_gb``."""
    lingered_s: Optional[float] = None
    """Set when the worker wrote its result but did not exit, and was killed that many seconds later."""
    peer_gone: Optional[str] = None
    """Set when the parent killed the worker because a peer process of the point stopped answering (why)."""


@dataclass(frozen=True)
class TrialResult:
    """What the child leaves for one trial, whatever happened (written once, whole)."""

    worker_pid: int
    worker_trial: int
    """1: the trial started its process; n: a warm worker's n-th trial."""
    fixed_costs: dict[str, float]
    """``process_start_s``, ``import_s``, ``model_build_s``, ``engine_build_s``: as far as the trial got."""
    rounds: tuple[RoundStats, ...] = ()
    runtime: Optional[Runtime] = None
    error: Optional[ChildError] = None
    complete: bool = False
    """True when every round ran."""
    peak_rss_bytes: int = 0
    jax_imported: bool = False
    """True when this trial paid for importing JAX and Levanter (the first of its process)."""
    model_built: bool = False
    """True when this trial built the model (False: a warm worker's kept model served it)."""
    sharding: Optional[Sharding] = None
    """The mesh and what it held, once the engine was built."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrialResult":
        sharding = data.get("sharding")
        return cls(**{**data, "rounds": tuple(RoundStats.from_json(r) for r in data.get("rounds", ())),
                      "runtime": Runtime(**data["runtime"]) if data.get("runtime") else None,
                      "error": ChildError(**data["error"]) if data.get("error") else None,
                      "sharding": Sharding(**{**sharding, "mesh": tuple(sharding["mesh"])}) if sharding else None})


@dataclass(frozen=True)
class IterationEvent:
    """A decode iteration started: tokens generated so far in the round and the pages they hold."""

    round: int
    iter: int
    tokens: int
    pages: int
    elapsed: float
    """Seconds since the round started."""
    iter_s: float
    """Seconds since the previous iteration started."""

    @property
    def tok_s(self) -> float:
        return self.tokens / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class RoundEvent:
    """A round ended."""

    round: int
    round_total_s: float
    round_total_generated: int
    pages_in_use: int

    @property
    def round_avg_tok_s(self) -> float:
        return self.round_total_generated / max(self.round_total_s, 1e-9)


ProgressEvent = Union[IterationEvent, RoundEvent]
_EVENTS = {"iter": IterationEvent, "round": RoundEvent}


def event_line(event: ProgressEvent) -> str:
    """One line of ``progress.jsonl``."""
    kind = next(k for k, t in _EVENTS.items() if isinstance(event, t))
    return json.dumps({"kind": kind, **asdict(event)}) + "\n"


def read_event(line: str) -> ProgressEvent:
    """Inverse of ``event_line``."""
    data = json.loads(line)
    return _EVENTS[data.pop("kind")](**data)
