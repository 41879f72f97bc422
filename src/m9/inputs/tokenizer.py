"""A point's tokenizer: a fast tokenizer's ``tokenizer.json``, read with the ``tokenizers`` package (no framework
import, nothing downloaded). Hugging Face checkpoints ship one; a folder with only a sentencepiece
``tokenizer.model`` can be given one with ``AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)``."""

from __future__ import annotations

import functools
from pathlib import Path

FILE = "tokenizer.json"


def find(path: Path) -> Path | None:
    """The ``tokenizer.json`` of a folder (or the path itself when it names a ``.json`` file), or None."""
    if path.is_file():
        return path if path.suffix == ".json" else None
    return path / FILE if (path / FILE).is_file() else None


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def load(folder: str, key: str = "model.tokenizer"):
    """A ``tokenizers.Tokenizer`` (cached per file version). Raises ValueError, one line naming ``key``."""
    if not Path(folder).exists():
        raise ValueError(f"{key}={folder}: no such folder or file")
    path = find(Path(folder))
    if path is None:
        raise ValueError(f"{key}={folder}: no {FILE} (m9 reads fast tokenizers; "
                         "AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR) writes one)")
    try:
        return _load(str(path), path.stat().st_mtime_ns)
    except Exception as exc:  # noqa: BLE001 - any parse failure is bad input, said in one line
        first = (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:200]
        raise ValueError(f"{key}={folder}: {path.name} cannot be loaded: {first}") from None


def vocab_size(folder: str) -> int:
    """Token ids the tokenizer can produce (added tokens included)."""
    return load(folder).get_vocab_size(with_added_tokens=True)
