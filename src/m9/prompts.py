"""A point's prompts and stop sequences as token ids, built once in the planning process and handed to the engine.

Sources, one per point: synthetic token ids (the default: ``workload.prompt_len`` ids drawn below the model's
vocabulary), text prompts (``workload.prompts``), a file (``workload.prompt_file``), or a template
(``workload.prompt_template``, ``{i}`` the prompt's index). Text is tokenized with the point's tokenizer (the
``tokenizers`` package on a ``tokenizer.json``; no framework import, nothing downloaded), so the planner sizes
pages and prefill from the real lengths. Stop sequences are tokenized alone, as servers do.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from m9.config import M9Config, WorkloadConfig

SOURCES = ("prompts", "prompt_file", "prompt_template")
"""The text sources of ``WorkloadConfig``; none set means synthetic token prompts."""


@dataclass(frozen=True)
class PromptSet:
    """The prompts of one round and the stop sequences, as token ids."""

    source: str
    """``synthetic`` or the workload key the texts came from."""
    token_ids: tuple[tuple[int, ...], ...]
    stop_ids: tuple[tuple[int, ...], ...] = ()

    @property
    def lengths(self) -> tuple[int, ...]:
        """Tokens per prompt, in order."""
        return tuple(len(ids) for ids in self.token_ids)


def tokenizer_file(folder: str) -> Path:
    """The file a tokenizer folder (or a ``tokenizer.json`` path) is read from."""
    path = Path(folder)
    if path.is_file():
        return path
    for name in ("tokenizer.json", "tokenizer.model"):
        if (path / name).is_file():
            return path / name
    return path / "tokenizer.json"


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int):
    from tokenizers import Tokenizer

    if path.endswith(".json"):
        return Tokenizer.from_file(path)
    # A sentencepiece-only folder (tokenizer.model): transformers converts it to a fast tokenizer, once.
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(Path(path).parent), local_files_only=True, use_fast=True).backend_tokenizer


def load_tokenizer(folder: str):
    """A ``tokenizers.Tokenizer`` for a local folder (cached per file version). Raises ValueError naming the key."""
    path = tokenizer_file(folder)
    if not Path(folder).exists():
        raise ValueError(f"model.tokenizer={folder}: no such folder or file")
    if not path.is_file():
        raise ValueError(f"model.tokenizer={folder}: no tokenizer.json (or tokenizer.model) in it")
    try:
        return _load(str(path), path.stat().st_mtime_ns)
    except Exception as exc:  # noqa: BLE001 - any parse failure is bad input, said in one line
        raise ValueError(f"model.tokenizer={folder}: {path.name} cannot be loaded: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def vocab_size(folder: str) -> int:
    """Token ids the tokenizer can produce (added tokens included)."""
    return load_tokenizer(folder).get_vocab_size(with_added_tokens=True)


def source(w: WorkloadConfig) -> str:
    """Where a workload's prompts come from: ``synthetic`` or the one text key set."""
    given = [k for k in SOURCES if getattr(w, k) is not None]
    return given[0] if given else "synthetic"


@functools.lru_cache(maxsize=8)
def _file_texts(path: str, mtime_ns: int) -> tuple[str, ...]:
    texts = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            if not path.endswith(".jsonl"):
                texts.append(line.rstrip("\n"))
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"workload.prompt_file={path}: line {n} is not JSON ({exc})") from None
            text = item if isinstance(item, str) else (item.get("prompt", item.get("text"))
                                                       if isinstance(item, dict) else None)
            if not isinstance(text, str):
                raise ValueError(f"workload.prompt_file={path}: line {n} has no \"prompt\" or \"text\" string")
            texts.append(text)
    return tuple(texts)


def texts(w: WorkloadConfig, num_prompts: int) -> list[str]:
    """The round's prompt texts (a text source must be set). Raises ValueError naming the key."""
    src = source(w)
    if src == "prompts":
        given = list(w.prompts or [])
        if not given:
            raise ValueError("workload.prompts: an empty list (leave it unset for synthetic prompts)")
    elif src == "prompt_file":
        path = Path(w.prompt_file).expanduser()
        if not path.is_file():
            raise ValueError(f"workload.prompt_file={w.prompt_file}: no such file")
        given = list(_file_texts(str(path), path.stat().st_mtime_ns))
        if not given:
            raise ValueError(f"workload.prompt_file={w.prompt_file}: no prompts in it")
    else:
        try:
            return [w.prompt_template.format(i=i) for i in range(num_prompts)]
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"workload.prompt_template={w.prompt_template!r}: {type(exc).__name__} {exc} "
                             "(the template may use {i}, the prompt's index)") from None
    return [given[i % len(given)] for i in range(num_prompts)]


def _synthetic(cfg: M9Config, num_prompts: int) -> tuple[tuple[int, ...], ...]:
    import numpy as np

    rng = np.random.default_rng(cfg.workload.seed)  # the same ids every round, and for every point with this seed
    ids = rng.integers(0, cfg.model.vocab_size, size=(num_prompts, cfg.workload.prompt_len)).tolist()
    return tuple(tuple(row) for row in ids)


def _stop_ids(cfg: M9Config) -> tuple[tuple[int, ...], ...]:
    w, e = cfg.workload, cfg.engine
    stops: list[tuple[int, ...]] = []
    if w.stop_sequences:
        tok = load_tokenizer(cfg.model.tokenizer)
        for text in w.stop_sequences:
            ids = tuple(tok.encode(text, add_special_tokens=False).ids)
            if not ids:
                raise ValueError(f"workload.stop_sequences: {text!r} tokenizes to no tokens")
            if len(ids) > e.max_stop_tokens:
                raise ValueError(f"workload.stop_sequences: {text!r} is {len(ids)} tokens > "
                                 f"engine.max_stop_tokens={e.max_stop_tokens}")
            stops.append(ids)
    for t in w.stop_tokens:
        if not 0 <= t < cfg.model.vocab_size:
            raise ValueError(f"workload.stop_tokens: {t} is not a token id of the model "
                             f"(0 <= id < model.vocab_size={cfg.model.vocab_size})")
        stops.append((t,))
    if len(stops) > e.max_stop_seqs:
        raise ValueError(f"workload.stop_sequences + workload.stop_tokens: {len(stops)} stop sequences > "
                         f"engine.max_stop_seqs={e.max_stop_seqs}")
    return tuple(stops)


def _key(cfg: M9Config, num_prompts: int) -> str:
    tok = cfg.model.tokenizer
    version = tokenizer_file(tok).stat().st_mtime_ns if tok and tokenizer_file(tok).is_file() else None
    return json.dumps([cfg.workload.__dict__, cfg.engine.max_stop_seqs, cfg.engine.max_stop_tokens,
                       cfg.model.vocab_size, tok, version, num_prompts], sort_keys=True, default=str)


def build(cfg: M9Config, num_prompts: int) -> PromptSet:
    """The point's prompts (``num_prompts`` of them) and stop sequences as token ids. Raises ValueError with one
    line naming the key when the workload cannot be built (no tokenizer for text, an unreadable file, a stop
    sequence beyond the engine's stop buffers)."""
    key = _key(cfg, num_prompts)
    if key not in _BUILT:
        if len(_BUILT) > 64:
            _BUILT.clear()
        _BUILT[key] = _build(cfg, num_prompts)
    return _BUILT[key]


_BUILT: dict[str, PromptSet] = {}


def _build(cfg: M9Config, num_prompts: int) -> PromptSet:
    w, tok_folder = cfg.workload, cfg.model.tokenizer
    src = source(w)
    given = [k for k in SOURCES if getattr(w, k) is not None]
    if len(given) > 1:
        raise ValueError(f"workload.{given[1]}: set one prompt source (workload.{given[0]} is set too)")
    needs_tokenizer = [f"workload.{k}" for k in (*given, "stop_sequences") if getattr(w, k)]
    if needs_tokenizer and tok_folder is None:
        raise ValueError(f"{needs_tokenizer[0]}: text needs a tokenizer (model.tokenizer=DIR, or a model.checkpoint "
                         "folder that holds one)")
    stops = _stop_ids(cfg)
    if src == "synthetic":
        return PromptSet(src, _synthetic(cfg, num_prompts), stops)
    tok = load_tokenizer(tok_folder)
    encoded = tok.encode_batch(texts(w, num_prompts), add_special_tokens=w.add_special_tokens)
    ids = tuple(tuple(e.ids) for e in encoded)
    for i, row in enumerate(ids):
        if not row:
            raise ValueError(f"workload.{src}: prompt {i} tokenizes to no tokens")
    return PromptSet(src, ids, stops)


def describe(lengths: tuple[int, ...]) -> str:
    """``16`` when every prompt has that length, else ``9-14``."""
    if not lengths:
        return "-"
    low, high = min(lengths), max(lengths)
    return str(low) if low == high else f"{low}-{high}"
