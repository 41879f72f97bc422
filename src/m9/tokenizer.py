"""A point's tokenizer, read from a local folder with the ``tokenizers`` package (no framework import, nothing
downloaded): a ``tokenizer.json``, or a sentencepiece ``tokenizer.model`` that transformers converts once."""

from __future__ import annotations

import functools
from pathlib import Path

FILES = ("tokenizer.json", "tokenizer.model")
"""What makes a folder a tokenizer folder, in order of preference."""


def find(folder: Path) -> Path | None:
    """The file a tokenizer folder (or a tokenizer file itself) is read from, or None."""
    if folder.is_file():
        return folder
    return next((folder / name for name in FILES if (folder / name).is_file()), None)


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int):
    from tokenizers import Tokenizer

    if path.endswith(".json"):
        return Tokenizer.from_file(path)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(Path(path).parent), local_files_only=True, use_fast=True).backend_tokenizer


def load(folder: str, key: str = "model.tokenizer"):
    """A ``tokenizers.Tokenizer`` (cached per file version). Raises ValueError, one line naming ``key``."""
    if not Path(folder).exists():
        raise ValueError(f"{key}={folder}: no such folder or file")
    path = find(Path(folder))
    if path is None:
        raise ValueError(f"{key}={folder}: no {' or '.join(FILES)} in it")
    try:
        return _load(str(path), path.stat().st_mtime_ns)
    except Exception as exc:  # noqa: BLE001 - any parse failure is bad input, said in one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{key}={folder}: {path.name} cannot be loaded: {first}") from None


def vocab_size(folder: str) -> int:
    """Token ids the tokenizer can produce (added tokens included)."""
    return load(folder).get_vocab_size(with_added_tokens=True)
