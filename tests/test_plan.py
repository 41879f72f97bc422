"""The planner: the log's own verdicts on its presets, and the arithmetic behind them (no engine, no JAX)."""

from __future__ import annotations

import pytest
from conftest import CONF_DIR, compose_m9, no_engine, no_prompts

from m9 import compose
from m9.plan.edge import plan_point
from m9.record.journal import point_params


def _preset(experiment: str) -> dict[str, object]:
    """Plan of every point of a preset, keyed by the override that makes the point (the one not every point has)."""
    points = compose.expand(["-m", f"+experiment={experiment}"], CONF_DIR)
    return {next(o for o in pt if not all(o in p for p in points)): plan_point(compose_m9(pt)) for pt in points}


def test_phase_a_rejects_16_sequences_at_480_pages_with_528_needed():
    plans = _preset("log_phase_a")
    assert plans["engine.max_seqs=12"].accepted and plans["engine.max_seqs=14"].accepted
    a3 = plans["engine.max_seqs=16"]
    assert not a3.accepted
    assert a3.rejections == (
        "engine.max_pages=480 is too small for 16 sequences x ceil((32+2048)/64)=33 pages (est. 528 pages needed)",
    )


def test_phase_bc_predicts_the_decode_budget_plateau():
    plans = _preset("log_phase_bc")
    assert all(p.accepted for p in plans.values())
    assert plans["engine.max_seqs=20"].predicted_generated == 25_620
    assert plans["engine.max_seqs=56"].predicted_generated == 25_656
    assert plans["engine.max_seqs=56"].max_pages == 2016  # scaled pages: 36 x max_seqs
    assert all(p.truncation_predicted and "plateau at" in p.warnings[0] for p in plans.values())


def test_phase_d_prefill_probe_is_rejected_and_the_rest_planned():
    plans = _preset("log_phase_d")
    d1p = plans["+probe=log_d1p_s57_pref56"]
    assert d1p.rejections and "engine.max_seqs_in_prefill=56 must cover all prompts per round (57)" in d1p.rejections[0]
    others = [p for k, p in plans.items() if k != "+probe=log_d1p_s57_pref56"]
    assert len(others) == 6 and all(p.accepted for p in others)
    assert plans["+probe=log_d4_s60_prompts56"].prompt_lens == (32,) * 56
    assert plans["+probe=log_d1s_s57_tpr8_r80"].decode_budget == 32 * 80 * 8


def test_phase_e2_accepts_124_and_rejects_125_at_the_4096_page_cap():
    plans = _preset("log_phase_e2")
    assert plans["engine.max_seqs=124"].accepted
    assert plans["engine.max_seqs=124"].pages_required_est == 4092  # the log's pages_in_use=4092 free=4
    assert plans["engine.max_seqs=124"].predicted_generated == 124 * 2048  # length-fixed budget suffices
    e125 = plans["engine.max_seqs=125"]
    assert not e125.accepted and "(est. 4125 pages needed)" in e125.rejections[0]
    assert "engine.max_pages=4096 is too small" in e125.rejections[0]


def test_phase_e1_scales_pages_and_keeps_every_point_length_fixed():
    plans = _preset("log_phase_e1")
    assert len(plans) == 16 and all(p.accepted and not p.truncation_predicted for p in plans.values())
    assert plans["engine.max_seqs=113"].max_pages == 4068 and plans["engine.max_seqs=114"].max_pages == 4104


def test_phase_f_accepts_128_at_4224_pages_and_predicts_which_variants_truncate():
    plans = _preset("log_phase_f")
    assert all(p.accepted for p in plans.values())
    assert all(p.max_pages == 4224 == p.pages_required_est for p in plans.values())
    truncating = {k for k, p in plans.items() if p.truncation_predicted}
    assert truncating == {"+probe=log_f_opta", "+probe=log_f_optb"}  # the log's "Fixed 2048/prompt: no"
    assert plans["+probe=log_f_opto"].predicted_generated == 262_144


def test_length_fixed_turns_a_short_budget_into_a_rejection():
    over = ["engine.max_seqs=4", "scheduler.max_tokens_per_round=1", "workload.max_new_tokens=256"]
    assert plan_point(compose_m9(over)).warnings
    strict = plan_point(compose_m9(over + ["workload.length_fixed=true"]))
    assert not strict.accepted and "generation will plateau at" in strict.rejections[0]


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (["engine.max_seq_len=64", "workload.max_new_tokens=64"], "engine.max_seq_len=64 < longest prompt + max_new_tokens = 16 + 64"),
        (["engine.max_seqs=2", "workload.num_prompts=3", "engine.max_seqs_in_prefill=8"], "engine.max_seqs=2 < 3"),
        (["engine.max_prefill_size=100"], "engine.max_prefill_size=100 < 8 prompts of 16 tokens = 128"),
        (["scheduler.max_rounds=1024"], "scheduler.max_rounds=1024 > engine.max_seq_len=512"),
        (["model=llama3_8b", "accelerator.memory_gib=16"], "GiB of one cpu chip"),
        (["engine.max_seq_len=300000000"], "engine.max_seqs=8 x engine.max_seq_len=300000000: engine state 326."),
        (["model=llama3_8b", "accelerator=h100_80gb", "mesh.model=1", "engine.compute_dtype=bfloat16",
          "engine.max_seq_len=4096", "engine.max_seqs=256", "workload.max_new_tokens=4000"],
         "KV cache 125.50 GiB (64256 pages x 16 tokens x 128 KiB/token) + weights 14.96 GiB > "
         "engine.hbm_utilization=0.9 x 79.6 GiB of one h100_80gb chip"),
    ],
)
def test_capacity_rejections_name_the_key_and_numbers(overrides, needle):
    plan = plan_point(compose_m9(overrides))
    assert not plan.accepted
    assert any(needle in r for r in plan.rejections), plan.rejections


def test_kv_and_weight_bytes_follow_the_model_shape():
    plan = plan_point(compose_m9(["model=llama3_8b", "engine=paged_2560", "engine.max_pages=4096"]))
    assert plan.kv_cache_bytes == 2 * 32 * 8 * 128 * 64 * 4096 * 2  # K and V, layers, kv heads, head, page, bf16
    assert 7.9e9 < plan.weight_bytes / 2 < 8.1e9  # ~8.03B parameters


def test_auto_max_pages_is_the_estimate_and_is_recorded():
    cfg = compose_m9(["engine.max_seqs=5", "workload.max_new_tokens=100"])
    plan = plan_point(cfg)
    assert plan.max_pages == plan.pages_required_est == 5 * -(-(16 + 100) // 16)
    params = point_params(cfg, plan)
    # recorded as the value used, marked derived (not a null beside a copy)
    assert params["engine.max_pages"] == plan.max_pages and "engine.max_pages" in params["derived"].split()
    assert not [k for k in params if k.startswith("resolved.max_pages")]


def test_the_defaults_plan():
    assert plan_point(compose_m9()).accepted


@pytest.mark.parametrize("max_seqs", [56, 57, 60])
def test_the_headline_points_plan_on_the_default_config_with_the_prefill_sized_to_the_prompts(max_seqs):
    cfg = compose_m9([f"engine.max_seqs={max_seqs}"])
    plan = plan_point(cfg)
    assert plan.accepted, plan.rejections
    # Levanter's own default (one 512-token sequence) would hold 32 of the 16-token prompts; m9 sizes it to all
    assert plan.max_prefill_size == 16 * -(-max_seqs * 16 // 16)
    params = point_params(cfg, plan)
    assert params["engine.max_prefill_size"] == plan.max_prefill_size
    assert "engine.max_prefill_size" in params["derived"].split()


def test_a_set_prefill_size_is_kept_and_a_small_round_keeps_levanters_default():
    assert plan_point(compose_m9(["engine.max_seqs=4"])).max_prefill_size == 512  # ceil(512 / 16) pages
    cfg = compose_m9(["engine.max_seqs=4", "engine.max_prefill_size=100"])
    plan = plan_point(cfg)
    params = point_params(cfg, plan)
    assert plan.max_prefill_size == params["engine.max_prefill_size"] == 100
    assert "engine.max_prefill_size" not in params["derived"].split() and "engine.max_pages" in params["derived"]


@pytest.mark.parametrize("overrides,needle", [
    (["engine.max_seqs=1000000000", "scheduler.max_queued_tokens=1000000000"],
     "engine.max_pages (unset: 17000000000 pages for 1000000000 sequences): engine state 9071.08 GiB"),
    (["workload.num_prompts=1000000000"], "engine.max_seqs=8 < 1000000000 sequences per round"),
    (["workload.prompt_len=1000000000"], "engine.max_seq_len=512 < longest prompt + max_new_tokens = 1000000000"),
])
def test_absurd_sizes_are_refused_by_arithmetic_before_any_prompt_is_built(overrides, needle, monkeypatch):
    no_prompts(monkeypatch)
    plan = plan_point(compose_m9(overrides))
    assert any(needle in r for r in plan.rejections), plan.rejections
    assert plan.prompt_lens == () and plan.pages_required_est is None  # refused before the prompts existed
    assert compose.check(overrides, CONF_DIR)  # and the command line's check builds nothing for it either


def test_the_prompt_guard_fires_when_a_point_builds_its_prompts(monkeypatch):
    no_prompts(monkeypatch)
    with pytest.raises(pytest.fail.Exception, match="the prompts were built"):
        plan_point(compose_m9())
    with pytest.raises(pytest.fail.Exception, match="the prompts were built"):
        compose.check([], CONF_DIR)


def test_the_memory_check_counts_the_engine_state_that_grows_with_slots_and_their_length():
    cfg = compose_m9(["engine.max_seq_len=4096", "workload.max_new_tokens=16"])  # 8 slots, tiny model, f32
    plan = plan_point(cfg)
    prefill = plan.max_prefill_size  # one full sequence: 4096 tokens
    slots = 8 * (8 * 4096 + 8 * 256 + 4 * 4 * 16)  # tokens + logprobs, two page lists, stop buffers
    prefill_rows = 8 * 8 * 4096 + 12 * prefill  # prompt rows on host and device, prefill queue
    logits = (prefill + 8) * 256 * 4  # a prefill batch's and a decode step's
    assert plan.state_bytes == slots + prefill_rows + 12 * 512 + logits
    # the same point on a chip too small for its state alone is refused, naming the keys that make it
    small = plan_point(compose_m9(["engine.max_seq_len=4096", "workload.max_new_tokens=16",
                                   f"accelerator.memory_gib={plan.state_bytes / 2**30}"]))
    assert not small.accepted and small.rejections[0].startswith("engine.max_seqs=8 x engine.max_seq_len=4096")


H100_8B = ["model=llama3_8b", "accelerator=h100_80gb", "engine.compute_dtype=bfloat16", "engine.max_seq_len=4096",
           "engine.max_seqs=256", "workload.max_new_tokens=4000"]


def test_the_mesh_defaults_to_every_chip_of_a_host_and_the_planner_checks_one_chips_share():
    cfg = compose_m9(H100_8B)  # 125.5 GiB of KV cache: refused on one chip (above), planned over the host's 8
    plan = plan_point(cfg)
    assert cfg.mesh_shape == (1, 8) and plan.accepted, plan.rejections
    assert plan.kv_cache_bytes_per_chip * 8 == plan.kv_cache_bytes  # kv_head (8 KV heads) split 8 ways
    # q/k/v, the output projection and the MLP split; embeddings, LM head and norms on every chip
    tables = (2 * 128256 * 4096 + (2 * 32 + 1) * 4096) * 2
    assert plan.weight_bytes_per_chip == (plan.weight_bytes - tables) // 8 + tables
    assert compose_m9(["accelerator=cpu"]).mesh_shape == (1, 1)


def test_the_70b_preset_plans_over_eight_h100s_and_is_refused_on_one_with_its_per_chip_numbers():
    shape = ["model=llama3_70b", "accelerator=h100_80gb", "engine.compute_dtype=bfloat16", "engine.max_seqs=32",
             "engine.max_seq_len=4096", "workload.max_new_tokens=2048"]
    assert plan_point(compose_m9(shape)).accepted
    (reason,) = plan_point(compose_m9([*shape, "mesh.model=1"])).rejections
    assert reason.startswith("model.name=llama3_70b: engine state") and "weights 131.42 GiB >" in reason
    assert reason.endswith("x 79.6 GiB of one h100_80gb chip (mesh 1x1)")
    (half,) = plan_point(compose_m9([*shape, "mesh.model=2"])).rejections  # 2 chips: still too big for each
    assert "weights 67.67 GiB (of 131.42 GiB over mesh.model=2)" in half and "/ 2 chips)" in half


@pytest.mark.parametrize("overrides,reason", [
    (["accelerator.chips_per_host=4", "mesh.model=4"],
     "mesh.model=4: model.num_kv_heads=2 not divisible by it (mesh.axes splits kv_head, heads, mlp over the model axis)"),
    (["mesh.model=8"], "mesh.data=1 x mesh.model=8 = 8 chips > accelerator.chips_per_host=1 of one cpu host"),
    (["accelerator=h100_80gb", "mesh.data=2"], "mesh.data=2 x mesh.model=8 = 16 chips > accelerator.chips_per_host=8"),
    (["accelerator.chips_per_host=3", "mesh.axes=[mlp]"], "mesh.model=3: model.intermediate_dim=128 not divisible"),
    (["accelerator=tpu_v5p_16", "mesh.model=8"], "mesh.data=1 x mesh.model=8 = 8 chips > accelerator.chips_per_host=4 "
     "of one tpu_v5p_16 host (mesh.hosts=global spans the slice's hosts)"),
    (["accelerator=tpu_v5p_16", "mesh.hosts=global", "mesh.data=2"], "mesh.data=2 x mesh.model=8 = 16 chips > the 8 "
     "of the tpu_v5p_16 slice (accelerator.hosts=2 x chips_per_host=4)"),
    (["accelerator=tpu_v5p_16", "mesh.hosts=global", "mesh.model=3", "mesh.axes=[heads]"],
     "mesh.hosts=global: mesh.data=1 x mesh.model=3 = 3 chips do not split evenly over accelerator.hosts=2"),
])
def test_a_mesh_the_host_cannot_give_or_the_model_cannot_split_is_refused_before_anything_runs(overrides, reason,
                                                                                              monkeypatch):
    no_engine(monkeypatch)
    plan = plan_point(compose_m9(overrides))
    assert plan.rejections == (next(r for r in plan.rejections if reason in r),)


def test_a_global_mesh_spans_the_slice_and_needs_one_process_per_host():
    cfg = compose_m9(["+experiment=log_phase_f"])  # the log's mode: Llama-8B over the v5p-16's 8 chips
    assert (cfg.mesh.hosts, cfg.mesh_shape, cfg.chips) == ("global", (1, 8), 8)
    plan = plan_point(cfg, processes=2)
    assert plan.accepted, plan.rejections
    assert plan.kv_cache_bytes_per_chip * 8 == plan.kv_cache_bytes  # 8 KV heads, one per chip
    (reason,) = plan_point(cfg, processes=1).rejections
    assert reason == ("mesh.hosts=global spans accelerator.hosts=2 processes, one per host; this point runs as 1 "
                      "(hydra.launcher.nodes x tasks_per_node)")
    replicas = compose_m9(["+experiment=log_phase_f", "mesh.hosts=replicas"])
    assert replicas.mesh_shape == (1, 4) and plan_point(replicas, processes=2).accepted  # a copy per host


def test_what_the_mesh_leaves_on_every_chip_is_counted_whole():
    split = plan_point(compose_m9(["accelerator.chips_per_host=2"]))  # tiny model over 2: kv_head, heads, mlp
    whole = plan_point(compose_m9(["accelerator.chips_per_host=2", "mesh.axes=[heads,mlp]"]))  # Levanter's default
    assert split.kv_cache_bytes_per_chip * 2 == split.kv_cache_bytes
    assert whole.kv_cache_bytes_per_chip == whole.kv_cache_bytes  # kv_head not split: the cache on every chip
    assert whole.weight_bytes_per_chip > split.weight_bytes_per_chip  # and the q/k/v projections too
    vocab = plan_point(compose_m9(["accelerator.chips_per_host=3", "mesh.model=3", "mesh.axes=[vocab]"]))
    assert vocab.weight_bytes > split.weight_bytes  # 256 tokens padded to 258 for 3 shards
