"""Where a point's model comes from: a local Hugging Face Llama checkpoint folder, read without importing a framework.

``resolve`` runs once per point, right after the composed config becomes an ``M9Config``: the model's shape keys
are replaced by the checkpoint's own ``config.json`` (the YAML need not repeat them), the tokenizer folder is
settled, and anything that cannot load fails here, as one line naming the key, before any engine starts. The
engine child then loads the weights through Levanter's converter (``m9.engine.model``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from m9.config import M9Config, ModelConfig
from m9.inputs import tokenizer

CONFIG = "config.json"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
ROPE_KEYS = {"default": (), "linear": ("factor",), "yarn": ("factor",),
             "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")}
"""``rope_scaling`` types Levanter's Llama reads (its registered rotary embeddings) and the keys each needs."""
ACTIVATIONS = ("relu", "relu2", "silu", "swish", "gelu", "gelu_new", "quick_gelu", "tanh")
"""``hidden_act`` values Levanter's ``ActivationFunctionEnum`` maps to a function (its pinned release)."""
SHAPE_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
RANDOM_NAME = "tiny"
"""``model.name`` of random weights when none is given (the schema's default shape)."""


class ModelSourceError(ValueError):
    """A checkpoint or tokenizer that cannot serve the point; the message names the key."""


@functools.lru_cache(maxsize=32)
def _read_json(path: str, mtime_ns: int) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def read_config(folder: Path) -> dict[str, Any]:
    """A checkpoint's ``config.json`` (cached per file version)."""
    path = folder / CONFIG
    return _read_json(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def file_sha(path: Path) -> str:
    """A file's sha256 (16 hex digits), computed once per file version."""
    st = path.stat()
    return _sha256(str(path), st.st_mtime_ns, st.st_size)


def _rope_type(hf: dict[str, Any]) -> str:
    scaling = hf.get("rope_scaling") or {}
    return scaling.get("rope_type") or scaling.get("type") or "default"


def shape_from_config(hf: dict[str, Any]) -> dict[str, Any]:
    """ModelConfig's shape keys from a Hugging Face Llama ``config.json``."""
    heads = hf["num_attention_heads"]
    return {
        "vocab_size": hf["vocab_size"],
        "hidden_dim": hf["hidden_size"],
        "intermediate_dim": hf["intermediate_size"],
        "num_layers": hf["num_hidden_layers"],
        "num_heads": heads,
        "num_kv_heads": hf.get("num_key_value_heads") or heads,
        "head_dim": hf.get("head_dim") or hf["hidden_size"] // heads,
        "rope_theta": float(hf.get("rope_theta", 10000.0)),
        "rope_type": _rope_type(hf),
        "tie_word_embeddings": hf.get("tie_word_embeddings", False),
    }


def _checkpoint_folder(value: str) -> Path:
    folder = Path(value).expanduser()
    key = f"model.checkpoint={value}"
    if not folder.exists():
        hint = " (m9 loads local folders only: download it first, e.g. `huggingface-cli download REPO --local-dir DIR`)"
        raise ModelSourceError(f"{key}: no such folder{hint if not value.startswith(('/', '.', '~')) else ''}")
    if not folder.is_dir():
        raise ModelSourceError(f"{key}: not a folder (a Hugging Face checkpoint folder holds {CONFIG} and safetensors)")
    if not (folder / CONFIG).is_file():
        raise ModelSourceError(f"{key}: no {CONFIG} in the folder")
    try:
        hf = read_config(folder)
    except (OSError, ValueError) as exc:
        raise ModelSourceError(f"{key}: {CONFIG} cannot be read: {exc}") from None
    if not isinstance(hf, dict):
        raise ModelSourceError(f"{key}: {CONFIG} is not a JSON object")
    model_type = hf.get("model_type")
    if model_type != "llama":
        arch = ", ".join(hf.get("architectures") or []) or "no architectures"
        raise ModelSourceError(f"{key}: {CONFIG} describes model_type={model_type!r} ({arch}); m9 decodes Llama "
                               "checkpoints (model_type 'llama') only")
    _check_architecture(hf, f"{key}: {CONFIG}")
    _check_weights(folder, key)
    return folder.resolve()


def _check_architecture(hf: dict[str, Any], where: str) -> None:
    """What Levanter's Llama can build from a config: positive integer sizes, its activations, no biases, a rope
    scaling it registers with the keys that scaling needs, boolean flags."""
    missing = [k for k in SHAPE_KEYS if k not in hf]
    if missing:
        raise ModelSourceError(f"{where} lacks {', '.join(missing)}")
    for k in (*SHAPE_KEYS, "num_key_value_heads", "head_dim"):
        value = hf.get(k)
        if value is not None and (type(value) is not int or value <= 0):
            raise ModelSourceError(f"{where} has {k}={value!r}, not a positive integer")
    if hf.get("hidden_act", "silu") not in ACTIVATIONS:
        raise ModelSourceError(f"{where} has hidden_act={hf.get('hidden_act')!r}; Levanter's Llama takes "
                               f"{', '.join(ACTIVATIONS)}")
    for flag in ("attention_bias", "mlp_bias", "tie_word_embeddings"):
        if type(hf.get(flag, False)) is not bool:
            raise ModelSourceError(f"{where} has {flag}={hf[flag]!r}, not true or false")
    if hf.get("attention_bias") or hf.get("mlp_bias"):
        raise ModelSourceError(f"{where} asks for attention/MLP biases, which Levanter's Llama does not have")
    scaling = hf.get("rope_scaling")
    if scaling is not None and not isinstance(scaling, dict):
        raise ModelSourceError(f"{where} has rope_scaling={scaling!r}, not an object or null")
    rope = _rope_type(hf)
    if rope not in ROPE_KEYS:
        raise ModelSourceError(f"{where} rope_scaling type {rope!r} is not one Levanter reads ({', '.join(ROPE_KEYS)})")
    lacking = [k for k in ROPE_KEYS[rope] if k not in (scaling or {})]
    if lacking:
        raise ModelSourceError(f"{where} rope_scaling of type {rope!r} lacks {', '.join(lacking)}")


def _check_weights(folder: Path, key: str) -> None:
    """The safetensors file, or every shard a sharded checkpoint's index names, is present."""
    if (folder / WEIGHTS[0]).is_file():
        return
    index = folder / WEIGHTS[1]
    if not index.is_file():
        raise ModelSourceError(f"{key}: no safetensors weights in the folder (looked for {' or '.join(WEIGHTS)})")
    try:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise ModelSourceError(f"{key}: {WEIGHTS[1]} cannot be read ({type(exc).__name__}: {exc})") from None
    missing = [s for s in shards if not (folder / s).is_file()]
    if missing:
        raise ModelSourceError(f"{key}: {len(missing)} of {len(shards)} shards named in {WEIGHTS[1]} are missing "
                               f"(first: {missing[0]})")


def tokenizer_folder(model: ModelConfig) -> Optional[Path]:
    """The tokenizer a point uses: ``model.tokenizer``, else the checkpoint's folder when it holds one, else None."""
    if model.tokenizer is not None:
        return Path(model.tokenizer).expanduser()
    if model.checkpoint is not None:
        folder = Path(model.checkpoint).expanduser()
        if tokenizer.find(folder) is not None:
            return folder
    return None


def resolve(cfg: M9Config) -> M9Config:
    """The point with its model settled: shape from the checkpoint's ``config.json``, the tokenizer folder, and a
    name. Raises ``ModelSourceError`` (one line naming the key) for a checkpoint or tokenizer that cannot serve."""
    model = cfg.model
    changes: dict[str, Any] = {}
    if model.checkpoint is not None:
        folder = _checkpoint_folder(model.checkpoint)
        changes.update(shape_from_config(read_config(folder)), checkpoint=str(folder))
        if model.name is None:
            changes["name"] = folder.name
    elif model.name is None:
        changes["name"] = RANDOM_NAME
    folder = tokenizer_folder(model)
    if folder is not None:
        changes["tokenizer"] = str(folder.resolve())
    model = dataclasses.replace(model, **changes)
    if model.tokenizer is not None:
        try:
            size = tokenizer.vocab_size(model.tokenizer)
        except ValueError as exc:
            raise ModelSourceError(str(exc)) from None
        if size > model.vocab_size:
            raise ModelSourceError(
                f"model.tokenizer={model.tokenizer}: its vocabulary has {size} tokens, more than the model's "
                f"model.vocab_size={model.vocab_size}; token ids past it have no embedding")
    return dataclasses.replace(cfg, model=model)


def provenance(model: ModelConfig) -> dict[str, Any]:
    """What the weights and tokenizer of a point were, recorded beside its config (``resolved.*``)."""
    out: dict[str, Any] = {"resolved.weights": "checkpoint" if model.checkpoint else f"random(seed={model.seed})"}
    files = {"resolved.checkpoint_config_sha256": Path(model.checkpoint) / CONFIG if model.checkpoint else None}
    if model.tokenizer:
        files["resolved.tokenizer_sha256"] = tokenizer.find(Path(model.tokenizer))
    out.update({key: file_sha(path) for key, path in files.items() if path is not None and path.is_file()})
    return out


def max_position_embeddings(model: ModelConfig) -> Optional[int]:
    """The checkpoint's position limit (``max_position_embeddings`` in its config.json), when it has one."""
    if model.checkpoint is None or not Path(model.checkpoint).is_dir():
        return None
    return read_config(Path(model.checkpoint)).get("max_position_embeddings")
