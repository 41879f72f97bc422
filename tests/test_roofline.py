"""The roofline arithmetic, by hand on the tiny model (the end-to-end numbers are checked in test_report)."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import compose_m9

from m9.outcome import roofline
from m9.plan.edge import plan_point
from m9.plan.sizes import kv_bytes_per_token, step_weight_bytes_per_chip

# tiny model, float32: KV 2 x 2 layers x 2 kv heads x 16 x 4 B = 512 B/token; matmul parameters
# 2 x (64*4*16*2 + 64*2*16*2 + 3*64*128) + 256*64 (LM head) = 90,112, norms 5 x 64 = 320; a step reads
# (90,112 + 320) x 4 B; all weights, the embedding table included, are (90,112 + 256*64 + 320) x 4 B
STEP, WEIGHTS, KV_TOKEN, MATMUL = 361_728, 427_264, 512, 90_112


def test_bytes_and_flops_of_a_decode_follow_the_weights_and_the_kv_context():
    cfg = compose_m9(["engine.max_seqs=2", "accelerator.bandwidth_gbps=10", "accelerator.peak_tflops=2"])
    plan = plan_point(cfg)
    assert plan.weight_bytes == WEIGHTS and step_weight_bytes_per_chip(cfg) == STEP  # one chip reads it all
    assert kv_bytes_per_token(cfg) == KV_TOKEN
    # two 16-token prompts, 4 tokens each (1 from prefill): 3 decode steps of 2 tokens; each decoded token attends
    # to 17, 18, 19 tokens: 54 per sequence
    m = roofline.metrics(cfg, plan, (4, 4), 0.001, roofline.bandwidth(cfg))
    assert m["decode_bytes"] == 3 * STEP + 108 * KV_TOKEN
    assert m["decode_flops"] == 2 * MATMUL * 6 + 4 * 2 * 4 * 16 * 108
    assert m["achieved_gbps"] == pytest.approx(m["decode_bytes"] / 0.001 / 1e9)
    assert m["roofline_frac"] == pytest.approx(m["achieved_gbps"] / 10)
    assert m["arith_intensity"] == pytest.approx(m["decode_flops"] / m["decode_bytes"])
    assert m["ridge_intensity"] == pytest.approx(2e12 / 10e9)
    assert m["compute_frac"] == pytest.approx(m["achieved_tflops"] / 2)


def test_each_sequence_pairs_with_its_own_prompt_and_clones_follow_their_prompt():
    cfg = compose_m9(["engine.max_seqs=4", "workload.num_prompts=2", "workload.n_generations=2"])
    plan = dataclasses.replace(plan_point(cfg), prompt_lens=(10, 20))
    # sequences (10, 10, 20, 20) decode 3, 3, 1 and 0 tokens: 3 steps (the longest), context 2 x (3*10 + 6) + 21
    m = roofline.metrics(cfg, plan, (4, 4, 2, 1), 0.001, None)
    assert m["decode_bytes"] == 3 * STEP + (2 * (3 * 10 + 6) + 21) * KV_TOKEN
    assert m["decode_flops"] == 2 * MATMUL * 7 + 4 * 2 * 4 * 16 * (2 * (3 * 10 + 6) + 21)


def test_a_narrow_round_takes_more_steps_and_reads_the_weights_more_often():
    cfg = compose_m9(["engine.max_seqs=2", "scheduler.max_tokens_per_round=1"])
    m = roofline.metrics(cfg, plan_point(cfg), (4, 4), 0.001, None)
    assert m["decode_bytes"] == 6 * STEP + 108 * KV_TOKEN  # one token per step: 6 steps
    assert "roofline_frac" not in m  # no bandwidth known: bytes and intensity only


def test_tied_embeddings_are_counted_once():
    untied = plan_point(compose_m9(["engine.max_seqs=2"]))
    tied = plan_point(compose_m9(["engine.max_seqs=2", "model.tie_word_embeddings=true"]))
    assert untied.weight_bytes - tied.weight_bytes == 256 * 64 * 4


def test_a_single_rounds_compiling_first_iteration_counts_at_the_others_median():
    assert roofline.decode_time([[9.0, 1.0, 2.0, 3.0]]) == 1.0 + 2.0 + 3.0 + 2.0
    assert roofline.decode_time([[9.0, 1.0], [1.5, 1.5]]) == 3.0  # later rounds compile nothing
    assert roofline.decode_time([[9.0]]) is None


def test_bandwidth_comes_from_the_preset_else_this_hosts_measurement():
    assert roofline.bandwidth(compose_m9(["accelerator=h100_80gb"])) == 3350
    assert roofline.bandwidth(compose_m9(["accelerator.bandwidth_gbps=12.5"])) == 12.5
    assert roofline.bandwidth(compose_m9(["accelerator.platform=cuda"])) is None
    measured = roofline.bandwidth(compose_m9())
    assert measured > 0 and roofline.bandwidth(compose_m9()) == measured  # once per process


def test_on_a_mesh_each_chip_reads_its_shards_and_the_mesh_bandwidth_is_every_chips():
    one = compose_m9(["engine.max_seqs=2", "accelerator.bandwidth_gbps=10"])
    two = compose_m9(["engine.max_seqs=2", "accelerator.bandwidth_gbps=10", "accelerator.chips_per_host=2"])
    m1 = roofline.metrics(one, plan_point(one), (4, 4), 0.001, roofline.bandwidth(one))
    m2 = roofline.metrics(two, plan_point(two), (4, 4), 0.001, roofline.bandwidth(two))
    # tiny model over 2 chips: q/k/v, output projection and MLP halved; LM head (256 x 64) and norms on both
    step_per_chip = (STEP // 4 - 256 * 64 - 320) // 2 * 4 + (256 * 64 + 320) * 4
    assert step_weight_bytes_per_chip(two) == step_per_chip and step_weight_bytes_per_chip(one) == STEP
    assert m2["decode_bytes_per_chip"] == 3 * step_per_chip + 108 * KV_TOKEN // 2  # its half of the KV context
    assert m2["decode_bytes"] == 2 * m2["decode_bytes_per_chip"] and m2["bandwidth_gbps"] == 20
    assert m2["decode_flops"] == m1["decode_flops"]  # the work is the same; it is spread, not repeated
