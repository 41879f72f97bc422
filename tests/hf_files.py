"""Hugging Face files the model tests build themselves: a tokenizer trained on a few lines, and a checkpoint of
m9's own random tiny Llama saved through Levanter's converter (nothing downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

LINES = [f"Prompt {i}: Provide a concise overview of topic {i}." for i in range(40)] + [
    "The quick brown fox jumps over the lazy dog.",
    "Paged attention keeps the KV cache in fixed-size pages.",
    "How many sequences can this engine decode at once, at full length?",
]


def write_tokenizer(folder: Path, vocab_size: int = 120) -> Path:
    """A word-level BPE tokenizer with ``<s>``/``</s>``, trained on ``LINES``, saved as a fast tokenizer folder;
    its post-processor puts ``<s>`` before every text, as Llama's does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(LINES, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"]))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(folder)
    return folder


def write_checkpoint(folder: Path, model, tokenizer_folder: Path) -> Path:
    """Save a model built in this process (m9's random tiny Llama) as a Hugging Face checkpoint folder, with the
    tokenizer, through Levanter's converter."""
    import haliax as hax
    import jax
    import numpy as np
    from jax.sharding import Mesh
    from levanter.compat.hf_checkpoints import HFCheckpointConverter
    from levanter.models.llama import LlamaConfig
    from transformers import AutoTokenizer
    from transformers import LlamaConfig as HfLlamaConfig

    converter = HFCheckpointConverter(LlamaConfig, HfConfigClass=HfLlamaConfig,
                                      tokenizer=AutoTokenizer.from_pretrained(str(tokenizer_folder)))
    with hax.partitioning.set_mesh(Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("data", "model"))):
        converter.save_pretrained(model, str(folder), save_tokenizer=True)
    return folder


def folder(root: Path, name: str, config: dict | None, weights: dict[str, str] | None = None) -> Path:
    """A checkpoint-like folder: ``config.json`` (None: none) and weight files by name."""
    folder = root / name
    folder.mkdir()
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    for file, text in (weights if weights is not None else {"model.safetensors": ""}).items():
        (folder / file).write_text(text)
    return folder


LLAMA = {"model_type": "llama", "vocab_size": 256, "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 2, "num_attention_heads": 4}


def wide_tokenizer(root: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(LINES, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    (root / "wide").mkdir()
    tok.save(str(root / "wide" / "tokenizer.json"))
    return root / "wide"
