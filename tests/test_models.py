"""Real models and prompts: a Hugging Face checkpoint folder and its tokenizer, text/file/template prompts, stop
sequences, and the checks that refuse a bad model source before any engine starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import CONF_DIR, TINY_MAX_SEQ_LEN, compose_m9, no_engine
from hf_files import LINES, LLAMA, folder, wide_tokenizer, write_checkpoint, write_tokenizer

from m9 import compose
from m9.inputs import prompts, tokenizer
from m9.plan.edge import plan_point
from m9.record.journal import point_params, read_record
from m9.run.files import TrialDir

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
    from m9.engine.rounds import build_engine, make_requests, run_round

    plan = plan_point(cfg)
    assert plan.accepted, plan.rejections
    built = prompts.Prompts().build(cfg)
    engine = build_engine(model, cfg, plan.max_pages, plan.max_prefill_size)
    return run_round(engine, make_requests(cfg, [list(p) for p in built.token_ids], 0,
                                           [list(s) for s in built.stop_ids]))


@pytest.mark.slow
def test_a_checkpoint_folder_with_text_prompts_decodes_exactly_the_tokens_of_its_weights_in_process(
        hf, tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "m9", f"model.checkpoint={hf.ckpt}", TEMPLATE, *ENGINE,
                           "workload.n_rounds=2", "tracking=none", "trial.worker=fresh", f"hydra.run.dir={run_dir}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = read_record(run_dir / "record.json")
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
    trial = TrialDir(run_dir)
    rounds = trial.read_result().rounds

    # the same weights, initialised in this process (random, seed 0), the same text through the tokenizer alone
    local = compose_m9([f"model.tokenizer={hf.tok}", TEMPLATE, *ENGINE])
    assert prompts.Prompts().build(local).token_ids == trial.read_request().prompts
    stats = _decode_in_process(tiny_model, local)
    assert [r.tokens_digest for r in rounds] == [stats.tokens_digest] * 2
    assert rounds[-1].seq_lens == stats.seq_lens == (24,) * 4


def test_the_planner_takes_prompt_lengths_from_the_tokenizer(hf, tmp_path):
    long_text = " ".join(LINES[-3:])
    tokenized = len(tokenizer.load(str(hf.tok)).encode(long_text).ids)
    assert tokenized > 16  # longer than the synthetic default, so the page estimate must grow
    base = [f"model.tokenizer={hf.tok}", "engine.page_size=8", "engine.max_seqs=4", "workload.max_new_tokens=16"]
    synthetic = plan_point(compose_m9(base))
    assert synthetic.prompt_lens == (16,) * 4 and synthetic.pages_required_est == 4 * 4
    text = [f"workload.prompts=['{long_text}']"]
    cfg = compose_m9(base + text)
    plan = plan_point(cfg)
    assert plan.prompt_lens == (tokenized,) * 4
    assert plan.pages_required_est == 4 * -(-(tokenized + 16) // 8) > synthetic.pages_required_est
    assert point_params(cfg, plan)["resolved.prompt_tokens"] == str(tokenized)

    # max_pages that the synthetic estimate accepts is rejected, naming the tokenized length
    capped = base + [f"engine.max_pages={synthetic.pages_required_est}"]
    assert plan_point(compose_m9(capped)).accepted
    rejected = plan_point(compose_m9(capped + text))
    assert rejected.rejections == (
        f"engine.max_pages=16 is too small for 4 sequences x ceil(({tokenized} (workload.prompts as tokenized)+16)/8)"
        f"={-(-(tokenized + 16) // 8)} pages (est. {plan.pages_required_est} pages needed)",)

    # a file and a template give their own lengths; prompts repeat in order to fill the round
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text("\n".join(json.dumps({"prompt": t}) for t in (LINES[0], LINES[-1])) + "\n")
    file_cfg = compose_m9(base + [f"workload.prompt_file={jsonl}"])
    from_file = plan_point(file_cfg)
    tok = tokenizer.load(str(hf.tok))
    a, b = (len(tok.encode(t).ids) for t in (LINES[0], LINES[-1]))
    assert from_file.prompt_lens == (a, b, a, b) and file_cfg.workload.prompt_source == "prompt_file"
    templated = plan_point(compose_m9(base + [TEMPLATE, "workload.num_prompts=3"]))
    assert templated.prompt_lens == tuple(len(tok.encode(LINES[i]).ids) for i in range(3))


def test_stop_sequences_are_tokenized_and_checked_against_the_engines_stop_buffers(hf):
    base = [f"model.tokenizer={hf.tok}", TEMPLATE]
    built = prompts.Prompts().build(compose_m9(base + ["workload.stop_sequences=['lazy dog']", "workload.stop_tokens=[2]"]))
    tok = tokenizer.load(str(hf.tok))
    assert built.stop_ids == (tuple(tok.encode("lazy dog", add_special_tokens=False).ids), (2,))
    plan = plan_point(compose_m9(base + ["workload.stop_tokens=[2]"]))
    assert plan.accepted and any("upper bounds" in w for w in plan.warnings)
    for extra, message in [
        (["workload.stop_tokens=[1,2,3,4,5]"], "5 stop sequences > engine.max_stop_seqs=4"),
        (["workload.stop_sequences=['lazy dog']", "engine.max_stop_tokens=1"], "tokens > engine.max_stop_tokens=1"),
        (["workload.stop_tokens=[999]"], "workload.stop_tokens: 999 is not a token id of the model"),
    ]:
        with pytest.raises(compose.BadInput, match=message):
            compose.check(base + extra, CONF_DIR)


def test_stop_sequences_reach_the_engine_left_padded():
    from m9.engine.rounds import INVALID, stop_array

    rows = stop_array([[5, 6, 7], [9]])
    assert rows.axis_names == ("stop_seq", "position")
    assert rows.array.tolist() == [[5, 6, 7], [INVALID, INVALID, 9]]  # Levanter matches them right-aligned
    assert stop_array([]) is None


@pytest.mark.slow
def test_stop_tokens_end_a_sequence_where_they_are_generated(tiny_model):
    from m9.engine.rounds import build_engine, make_requests

    cfg = compose_m9([*ENGINE, "engine.max_seqs=1"])
    plan = plan_point(cfg)
    prompt = [list(prompts.Prompts().build(cfg).token_ids[0])]

    def generate(stop_ids):
        engine = build_engine(tiny_model, cfg, plan.max_pages, plan.max_prefill_size)
        return [int(t) for t in engine.generate(make_requests(cfg, prompt, 0, stop_ids)).tokens[0]]

    free = generate([])
    assert len(free) == 24
    # greedy decoding of random weights is deterministic: a two-token stop on the pair generated 5th and 6th, beside
    # a one-token stop never generated, ends the sequence right after the pair's first occurrence
    pair = free[4:6]
    end = next(i for i in range(len(free) - 1) if free[i:i + 2] == pair) + 2
    unused = next(t for t in range(256) if t not in free)
    assert generate([[unused]]) == free
    assert generate([pair, [unused]]) == free[:end]
    # the same through the config, as a sweep runs it
    stopped = _decode_in_process(tiny_model, compose_m9([*ENGINE, "engine.max_seqs=1",
                                                         f"workload.stop_tokens=[{free[3]}]"]))
    assert stopped.seq_lens == (free.index(free[3]) + 1,)


def test_the_checkpoints_config_sets_the_shape_whatever_the_model_group_says(hf):
    cfg = compose_m9(["model=llama3_8b", f"model.checkpoint={hf.ckpt}"])
    m = cfg.model
    assert (m.vocab_size, m.hidden_dim, m.intermediate_dim, m.num_layers, m.num_heads, m.num_kv_heads, m.head_dim,
            m.rope_theta, m.rope_type) == (256, 64, 128, 2, 4, 2, 16, 10000.0, "default")
    assert m.tokenizer == str(hf.ckpt.resolve()) and m.name == "llama3_8b"  # a name the group gives stays
    assert plan_point(cfg).weight_bytes == plan_point(compose_m9()).weight_bytes


def test_a_vocabulary_the_model_axis_cannot_split_is_padded_for_random_weights_and_refused_for_a_checkpoint(hf):
    mesh = ["accelerator.chips_per_host=3", "mesh.axes=[vocab]"]  # 256 tokens over 3 chips
    assert plan_point(compose_m9(mesh)).accepted  # random weights: Levanter pads the vocabulary to 258
    (reason,) = plan_point(compose_m9([f"model.checkpoint={hf.ckpt}", *mesh])).rejections
    assert reason == ("mesh.model=3: model.vocab_size=256 not divisible by it, and a checkpoint's vocabulary is read "
                      "as saved, not padded (drop vocab from mesh.axes)")


MODEL_ERRORS = [
    (lambda root: ["model.checkpoint=/nonexistent/dir"], "model.checkpoint=/nonexistent/dir: no such folder"),
    (lambda root: ["model.checkpoint=meta-llama/Meta-Llama-3-8B"],
     "model.checkpoint=meta-llama/Meta-Llama-3-8B: no such folder (m9 loads local folders only"),
    (lambda root: [f"model.checkpoint={folder(root, 'gpt2', {'model_type': 'gpt2', 'architectures': ['GPT2LMHeadModel']})}"],
     "config.json describes model_type='gpt2' (GPT2LMHeadModel); m9 decodes Llama checkpoints"),
    (lambda root: [f"model.checkpoint={folder(root, 'bare', None)}"], "bare: no config.json in the folder"),
    (lambda root: [f"model.checkpoint={folder(root, 'noweights', LLAMA, {})}"],
     "no safetensors weights in the folder (looked for model.safetensors or model.safetensors.index.json)"),
    (lambda root: [f"model.checkpoint={folder(root, 'shards', LLAMA, {'model.safetensors.index.json': json.dumps({'weight_map': {'a': 'model-00001-of-00002.safetensors', 'b': 'model-00002-of-00002.safetensors'}}), 'model-00001-of-00002.safetensors': ''})}"],
     "1 of 2 shards named in model.safetensors.index.json are missing (first: model-00002-of-00002.safetensors)"),
    (lambda root: [f"model.checkpoint={folder(root, 'rope', {**LLAMA, 'rope_scaling': {'rope_type': 'longrope'}})}"],
     "rope_scaling type 'longrope' is not one Levanter reads"),
    (lambda root: [f"model.checkpoint={folder(root, 'bias', {**LLAMA, 'attention_bias': True})}"],
     "asks for attention/MLP biases"),
    (lambda root: [f"model.checkpoint={folder(root, 'badvocab', {**LLAMA, 'vocab_size': 'abc'})}"],
     "config.json has vocab_size='abc', not a positive integer"),
    (lambda root: [f"model.checkpoint={folder(root, 'act', {**LLAMA, 'hidden_act': 'mish'})}"],
     "config.json has hidden_act='mish'; Levanter's Llama takes"),
    (lambda root: [f"model.checkpoint={folder(root, 'llama3rope', {**LLAMA, 'rope_scaling': {'rope_type': 'llama3'}})}"],
     "rope_scaling of type 'llama3' lacks factor, low_freq_factor, high_freq_factor, original_max_position_embeddings"),
    (lambda root: [f"model.checkpoint={folder(root, 'tie', {**LLAMA, 'tie_word_embeddings': 'false'})}"],
     "config.json has tie_word_embeddings='false', not true or false"),
    (lambda root: [f"model.tokenizer={root}/prompts.txt"], "prompts.txt: no tokenizer.json"),
    (lambda root: [f"model.tokenizer={root}/tokenizer", "workload.prompt_template='{i.x}'"],
     "workload.prompt_template='{i.x}': AttributeError"),
    (lambda root: [f"model.tokenizer={wide_tokenizer(root)}"], "its vocabulary has 300 tokens, more than the "
                                                               "model's model.vocab_size=256"),
    (lambda root: [TEMPLATE], "workload.prompt_template: text needs a tokenizer (model.tokenizer=DIR"),
    (lambda root: ["workload.prompts=[]"], "workload.prompts: text needs a tokenizer"),
    (lambda root: ["workload.stop_tokens=[3]", "engine.max_stop_tokens=0"],
     "workload.stop_tokens: the engine has no stop buffer (engine.max_stop_tokens=0)"),
    (lambda root: ["workload.prompt_file=/nonexistent.jsonl", f"model.tokenizer={root}/tokenizer"],
     "workload.prompt_file=/nonexistent.jsonl: no such file"),
]


def _model_error_files(root):
    write_tokenizer(root / "tokenizer")
    (root / "prompts.txt").write_text("not a tokenizer\n")


@pytest.mark.parametrize("make_argv,message", MODEL_ERRORS, ids=[m.split(":")[0] for _, m in MODEL_ERRORS])
def test_a_bad_model_source_is_one_line_naming_the_key(make_argv, message, tmp_path, monkeypatch):
    _model_error_files(tmp_path)
    no_engine(monkeypatch)
    with pytest.raises(compose.BadInput) as err:
        compose.check(make_argv(tmp_path), CONF_DIR)
    assert "\n" not in str(err.value) and message in str(err.value), str(err.value)
    assert str(err.value).startswith(("model.", "workload."))


def test_bad_model_sources_are_refused_without_importing_the_engine(tmp_path):
    """The checks read files and arithmetic only: a process that ran all of them never imported JAX or Levanter."""
    _model_error_files(tmp_path)
    script = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import test_models as t\n"
        "from m9 import compose\nsaid = []\n"
        "for make_argv, _ in t.MODEL_ERRORS:\n"
        "    try: compose.check(make_argv(Path(sys.argv[2])), t.CONF_DIR)\n"
        "    except compose.BadInput as exc: said.append(str(exc))\n"
        "print(json.dumps([said, sorted(m for m in ('jax', 'levanter', 'haliax', 'equinox') if m in sys.modules)]))")
    proc = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said, engine_modules = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [m in text for (_, m), text in zip(MODEL_ERRORS, said)] == [True] * len(MODEL_ERRORS)
    assert engine_modules == []


@pytest.mark.slow
def test_cli_refuses_a_missing_checkpoint_before_any_engine(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "m9", "model.checkpoint=/nonexistent/dir"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "m9: error: model.checkpoint=/nonexistent/dir: no such folder"
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_a_checkpoint_with_its_own_head_dim_and_tied_embeddings_loads_the_weights_it_saved(hf, tmp_path):
    import jax
    import jax.numpy as jnp

    from m9.engine.model import build_model, load_checkpoint

    shape = ["model.head_dim=32", "model.tie_word_embeddings=true", f"model.tokenizer={hf.tok}"]
    model = build_model(compose_m9(shape).model, TINY_MAX_SEQ_LEN, "float32")
    folder = write_checkpoint(tmp_path / "wide-heads", model, hf.tok)
    # Levanter's converter writes head_dim = hidden/heads whatever the model's; a real checkpoint states its own
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "head_dim": 32}))
    cfg = compose_m9([f"model.checkpoint={folder}"])
    assert (cfg.model.head_dim, cfg.model.tie_word_embeddings) == (32, True)  # not hidden/heads = 16, not untied
    loaded = load_checkpoint(cfg.model, TINY_MAX_SEQ_LEN, jnp.float32)
    leaves, loaded_leaves = jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(loaded)
    assert [x.shape for x in leaves] == [x.shape for x in loaded_leaves]
    assert all(bool(jnp.array_equal(a, b)) for a, b in zip(leaves, loaded_leaves))
