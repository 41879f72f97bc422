"""Real models and prompts: a Hugging Face checkpoint folder and its tokenizer, text/file/template prompts, stop
sequences, and the checks that refuse a bad model source before any engine starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import CONF_DIR, TINY_MAX_SEQ_LEN, compose_m9
from hf_files import LINES, write_checkpoint, write_tokenizer
from m9 import preflight, prompts
from m9.journal import read_record
from m9.plan import make_plan

TEMPLATE = 'workload.prompt_template="Prompt {i}: Provide a concise overview of topic {i}."'
ENGINE = [f"engine.max_seq_len={TINY_MAX_SEQ_LEN}", "engine.page_size=8", "engine.max_seqs=4",
          "workload.max_new_tokens=24", "workload.n_rounds=1"]


@pytest.fixture(scope="module")
def hf(tmp_path_factory, tiny_model):
    """A tokenizer folder, and a checkpoint folder of the shared tiny model saved with that tokenizer."""
    root = tmp_path_factory.mktemp("hf")
    tok = write_tokenizer(root / "tokenizer")
    return SimpleNamespace(tok=tok, ckpt=write_checkpoint(root / "tiny-llama", tiny_model, tok))


def _decode_in_process(model, cfg):
    """One round of the real engine in this process; the round's stats."""
    from m9.engine.session import build_engine, make_requests, run_round

    plan = make_plan(cfg)
    assert plan.accepted, plan.rejections
    built = prompts.build(cfg, plan.num_prompts)
    engine = build_engine(model, cfg, plan.max_pages, plan.max_prefill_size)
    return run_round(engine, make_requests(cfg, [list(p) for p in built.token_ids], 0,
                                           [list(s) for s in built.stop_ids]))


@pytest.mark.slow
def test_a_checkpoint_folder_with_text_prompts_decodes_exactly_the_tokens_of_its_weights_in_process(
        hf, tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "m9", f"model.checkpoint={hf.ckpt}", TEMPLATE, *ENGINE,
                           "tracking=none", "trial.worker=fresh", f"hydra.run.dir={run_dir}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = read_record(run_dir / "outcome.json")
    params = record.params
    # the shape came from the checkpoint's config.json, the tokenizer from its folder; both are recorded
    assert params["model.name"] == "tiny-llama" and params["model.checkpoint"] == str(hf.ckpt.resolve())
    assert params["model.tokenizer"] == str(hf.ckpt.resolve()) and params["model.vocab_size"] == 256
    assert params["resolved.weights"] == "checkpoint"
    assert len(params["resolved.checkpoint_config_sha256"]) == len(params["resolved.tokenizer_sha256"]) == 16
    assert params["resolved.prompt_source"] == "prompt_template"
    # no bandwidth given on a CPU: the engine process measured its host's, and the roofline used it
    assert record.metrics["bandwidth_gbps"] > 0
    assert record.metrics["roofline_frac"] == record.metrics["achieved_gbps"] / record.metrics["bandwidth_gbps"]
    rounds = json.loads((run_dir / "result.json").read_text())["rounds"]

    # the same weights, initialised in this process (random, seed 0), the same text through the tokenizer alone
    local = compose_m9([f"model.tokenizer={hf.tok}", TEMPLATE, *ENGINE])
    assert prompts.build(local, 4).token_ids == tuple(
        tuple(ids) for ids in json.loads((run_dir / "request.json").read_text())["prompts"])
    stats = _decode_in_process(tiny_model, local)
    assert rounds[0]["tokens_digest"] == stats.tokens_digest
    assert tuple(rounds[0]["seq_lens"]) == stats.seq_lens == (24,) * 4


def test_the_planner_takes_prompt_lengths_from_the_tokenizer(hf, tmp_path):
    long_text = " ".join(LINES[-3:])
    tokenized = len(prompts.load_tokenizer(str(hf.tok)).encode(long_text).ids)
    assert tokenized > 16  # longer than the synthetic default, so the page estimate must grow
    base = [f"model.tokenizer={hf.tok}", "engine.page_size=8", "engine.max_seqs=4", "workload.max_new_tokens=16"]
    synthetic = make_plan(compose_m9(base))
    assert synthetic.prompt_lens == (16,) * 4 and synthetic.pages_required_est == 4 * 4
    text = [f"workload.prompts=['{long_text}']"]
    plan = make_plan(compose_m9(base + text))
    assert plan.prompt_lens == (tokenized,) * 4
    assert plan.pages_required_est == 4 * -(-(tokenized + 16) // 8) > synthetic.pages_required_est
    assert plan.resolved_params()["resolved.prompt_tokens"] == str(tokenized)

    # max_pages that the synthetic estimate accepts is rejected, naming the tokenized length
    capped = base + [f"engine.max_pages={synthetic.pages_required_est}"]
    assert make_plan(compose_m9(capped)).accepted
    rejected = make_plan(compose_m9(capped + text))
    assert rejected.rejections == (
        f"engine.max_pages=16 is too small for 4 sequences x ceil(({tokenized} (workload.prompts as tokenized)+16)/8)"
        f"={-(-(tokenized + 16) // 8)} pages (est. {plan.pages_required_est} pages needed)",)

    # a file and a template give their own lengths; prompts repeat in order to fill the round
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text("\n".join(json.dumps({"prompt": t}) for t in (LINES[0], LINES[-1])) + "\n")
    from_file = make_plan(compose_m9(base + [f"workload.prompt_file={jsonl}"]))
    tok = prompts.load_tokenizer(str(hf.tok))
    a, b = (len(tok.encode(t).ids) for t in (LINES[0], LINES[-1]))
    assert from_file.prompt_lens == (a, b, a, b) and from_file.prompt_source == "prompt_file"
    templated = make_plan(compose_m9(base + [TEMPLATE, "workload.num_prompts=3"]))
    assert templated.prompt_lens == tuple(len(tok.encode(LINES[i]).ids) for i in range(3))


def test_stop_sequences_are_tokenized_and_checked_against_the_engines_stop_buffers(hf):
    base = [f"model.tokenizer={hf.tok}", TEMPLATE]
    built = prompts.build(compose_m9(base + ["workload.stop_sequences=['lazy dog']", "workload.stop_tokens=[2]"]), 8)
    tok = prompts.load_tokenizer(str(hf.tok))
    assert built.stop_ids == (tuple(tok.encode("lazy dog", add_special_tokens=False).ids), (2,))
    plan = make_plan(compose_m9(base + ["workload.stop_tokens=[2]"]))
    assert plan.accepted and any("upper bounds" in w for w in plan.warnings)
    for extra, message in [
        (["workload.stop_tokens=[1,2,3,4,5]"], "5 stop sequences > engine.max_stop_seqs=4"),
        (["workload.stop_sequences=['lazy dog']", "engine.max_stop_tokens=1"], "tokens > engine.max_stop_tokens=1"),
        (["workload.stop_tokens=[999]"], "workload.stop_tokens: 999 is not a token id of the model"),
    ]:
        with pytest.raises(preflight.BadInput, match=message):
            preflight.check(base + extra, CONF_DIR)


@pytest.mark.slow
def test_a_stop_token_ends_a_sequence_where_it_is_generated(tiny_model):
    cfg = compose_m9([*ENGINE, "engine.max_seqs=1"])
    free = _decode_in_process(tiny_model, cfg)
    assert free.seq_lens == (24,)
    # greedy decoding of random weights: stop at the token the first run generated 6th; it must end there
    from m9.engine.session import build_engine, make_requests

    plan = make_plan(cfg)
    engine = build_engine(tiny_model, cfg, plan.max_pages, plan.max_prefill_size)
    result = engine.generate(make_requests(cfg, [list(p) for p in prompts.build(cfg, 1).token_ids], 0))
    sixth = int(result.tokens[0][5])
    first = [int(t) for t in result.tokens[0]].index(sixth)
    stopped = _decode_in_process(tiny_model, compose_m9([*ENGINE, "engine.max_seqs=1", f"workload.stop_tokens=[{sixth}]"]))
    assert stopped.seq_lens == (first + 1,)


def _gpt2_folder(root: Path) -> Path:
    folder = root / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
                                                    "vocab_size": 50257, "n_embd": 768}))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def _wide_tokenizer(root: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(LINES, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    (root / "wide").mkdir()
    tok.save(str(root / "wide" / "tokenizer.json"))
    return root / "wide"


MODEL_ERRORS = [
    (lambda root: ["model.checkpoint=/nonexistent/dir"], "model.checkpoint=/nonexistent/dir: no such folder"),
    (lambda root: ["model.checkpoint=meta-llama/Meta-Llama-3-8B"],
     "model.checkpoint=meta-llama/Meta-Llama-3-8B: no such folder (m9 loads local folders only"),
    (lambda root: [f"model.checkpoint={_gpt2_folder(root)}"],
     "config.json describes model_type='gpt2' (GPT2LMHeadModel); m9 decodes Llama checkpoints"),
    (lambda root: [f"model.tokenizer={_wide_tokenizer(root)}"], "its vocabulary has 300 tokens, more than the "
                                                               "model's model.vocab_size=256"),
    (lambda root: [TEMPLATE], "workload.prompt_template: text needs a tokenizer (model.tokenizer=DIR"),
    (lambda root: ["workload.prompt_file=/nonexistent.jsonl", f"model.tokenizer={root}/tokenizer"],
     "workload.prompt_file=/nonexistent.jsonl: no such file"),
]


@pytest.mark.parametrize("make_argv,message", MODEL_ERRORS, ids=[m.split(":")[0] for _, m in MODEL_ERRORS])
def test_a_bad_model_source_is_one_line_naming_the_key_in_under_a_second(make_argv, message, tmp_path):
    write_tokenizer(tmp_path / "tokenizer")
    argv = make_argv(tmp_path)
    start = time.perf_counter()
    with pytest.raises(preflight.BadInput) as err:
        preflight.check(argv, CONF_DIR)
    elapsed = time.perf_counter() - start
    assert "\n" not in str(err.value) and message in str(err.value), str(err.value)
    assert str(err.value).startswith(("model.", "workload."))
    assert elapsed < 1.0, f"{elapsed:.2f}s"


@pytest.mark.slow
def test_cli_refuses_a_missing_checkpoint_before_any_engine(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "m9", "model.checkpoint=/nonexistent/dir"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "m9: error: model.checkpoint=/nonexistent/dir: no such folder"
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "mlflow.db").exists()
