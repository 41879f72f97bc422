"""A point's prompts and stop sequences as token ids, built once in the planning process and handed to the engine.

Sources, one per point: synthetic token ids (the default: ``workload.prompt_len`` ids drawn below the model's
vocabulary), text prompts (``workload.prompts``), a file (``workload.prompt_file``), or a template
(``workload.prompt_template``, ``{i}`` the prompt's index). Text is tokenized with the point's tokenizer
(``m9.inputs.tokenizer``), so the planner sizes
pages and prefill from the real lengths. Stop sequences are tokenized alone, as servers do.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from m9.config import M9Config, WorkloadConfig
from m9.inputs import tokenizer


@dataclass(frozen=True)
class PromptSet:
    """The prompts of one round and the stop sequences, as token ids."""

    token_ids: tuple[tuple[int, ...], ...]
    stop_ids: tuple[tuple[int, ...], ...] = ()

    @property
    def lengths(self) -> tuple[int, ...]:
        """Tokens per prompt, in order."""
        return tuple(len(ids) for ids in self.token_ids)


@functools.lru_cache(maxsize=8)
def _file_texts(path: str, mtime_ns: int) -> tuple[str, ...]:
    try:
        with open(path, encoding="utf-8") as f:
            return _parse_lines(path, f.read().splitlines())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"workload.prompt_file={path}: cannot be read ({exc})") from None


def _parse_lines(path: str, lines: list[str]) -> tuple[str, ...]:
    """Prompts of a file: every non-blank line of a text file; of a ``.jsonl``, each line's string or its
    ``prompt`` / ``text`` field."""
    if not path.endswith(".jsonl"):
        return tuple(line for line in lines if line.strip())
    texts = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
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
    src = w.prompt_source
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
        except Exception as exc:  # noqa: BLE001 - str.format's whole range of errors, said in one line
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
        tok = tokenizer.load(cfg.model.tokenizer)
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
        if e.max_stop_tokens < 1:
            raise ValueError("workload.stop_tokens: the engine has no stop buffer (engine.max_stop_tokens=0)")
        stops.append((t,))
    if len(stops) > e.max_stop_seqs:
        raise ValueError(f"workload.stop_sequences + workload.stop_tokens: {len(stops)} stop sequences > "
                         f"engine.max_stop_seqs={e.max_stop_seqs}")
    return tuple(stops)


def _version(file: Path | None) -> int | None:
    """A file's modification time (what invalidates a cached prompt set), or None."""
    return file.stat().st_mtime_ns if file is not None and file.is_file() else None


def _key(cfg: M9Config, num_prompts: int) -> str:
    w, tok = cfg.workload, cfg.model.tokenizer
    tok_file = tokenizer.find(Path(tok)) if tok and Path(tok).exists() else None
    prompt_file = Path(w.prompt_file).expanduser() if w.prompt_file else None
    return json.dumps([w.__dict__, cfg.engine.max_stop_seqs, cfg.engine.max_stop_tokens, cfg.model.vocab_size,
                       tok, _version(tok_file), _version(prompt_file), num_prompts], sort_keys=True, default=str)


class Prompts:
    """The prompt sets one process has built, by what they depend on (the workload, the engine's stop buffers, the
    tokenizer's and the prompt file's versions): a sweep's points that share a workload build it once. Held by the
    process's session (``m9.session``); a new one builds afresh."""

    LIMIT = 64
    """Prompt sets kept (a set can hold many thousands of token ids)."""

    def __init__(self) -> None:
        self._built: dict[str, PromptSet] = {}

    def build(self, cfg: M9Config) -> PromptSet:
        """The point's prompts (``imputed_num_prompts`` of them) and stop sequences as token ids. Raises ValueError
        with one line naming the key when the workload cannot be built (no tokenizer for text, an unreadable file, a
        stop sequence beyond the engine's stop buffers). Call it only for a point whose sizes are sound
        (``plan.early_refusals``): it builds every prompt."""
        num_prompts = cfg.imputed_num_prompts
        key = _key(cfg, num_prompts)
        if key not in self._built:
            if len(self._built) >= self.LIMIT:
                self._built.clear()
            self._built[key] = _build(cfg, num_prompts)
        return self._built[key]


def _build(cfg: M9Config, num_prompts: int) -> PromptSet:
    w, tok_folder = cfg.workload, cfg.model.tokenizer
    src = w.prompt_source
    needs_tokenizer = ([] if src == "synthetic" else [f"workload.{src}"]) + (
        ["workload.stop_sequences"] if w.stop_sequences else [])
    if needs_tokenizer and tok_folder is None:
        raise ValueError(f"{needs_tokenizer[0]}: text needs a tokenizer (model.tokenizer=DIR, or a model.checkpoint "
                         "folder that holds one)")
    stops = _stop_ids(cfg)
    if src == "synthetic":
        return PromptSet(_synthetic(cfg, num_prompts), stops)
    tok = tokenizer.load(tok_folder)
    encoded = tok.encode_batch(texts(w, num_prompts), add_special_tokens=w.add_special_tokens)
    ids = tuple(tuple(e.ids) for e in encoded)
    for i, row in enumerate(ids):
        if not row:
            raise ValueError(f"workload.{src}: prompt {i} tokenizes to no tokens")
    return PromptSet(ids, stops)


def digest(w: WorkloadConfig) -> str:
    """A hash of the prompt file's contents ("" without one): what a point key needs beside the config, so that a
    prompt file edited in place is a new measurement (the tokenizer's own hash is in the model's provenance)."""
    if not w.prompt_file:
        return ""
    path = Path(w.prompt_file).expanduser()
    if not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
