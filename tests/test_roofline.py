"""The roofline arithmetic, by hand on the tiny model (the end-to-end numbers are checked in test_report)."""

from __future__ import annotations

import pytest

from conftest import compose_m9
from m9 import roofline
from m9.plan import make_plan

# tiny model, float32: KV 2 x 2 layers x 2 kv heads x 16 x 4 B = 512 B/token; matmul parameters
# 2 x (64*4*16*2 + 64*2*16*2 + 3*64*128) + 256*64 = 90,112; weights (90,112 + 256*64 + 5*64) x 4 B = 427,264 B
WEIGHTS, KV_TOKEN, MATMUL = 427_264, 512, 90_112


def test_bytes_and_flops_of_a_decode_follow_the_weights_and_the_kv_context():
    cfg = compose_m9(["engine.max_seqs=2", "accelerator.bandwidth_gbps=10", "accelerator.peak_tflops=2"])
    plan = make_plan(cfg)
    assert plan.weight_bytes == WEIGHTS and roofline.kv_bytes_per_token(cfg) == KV_TOKEN
    # two 16-token prompts, 4 tokens each (1 from prefill): 3 decode steps of 2 tokens; each decoded token attends
    # to 17, 18, 19 tokens: 54 per sequence
    m = roofline.metrics(cfg, plan, (4, 4), 0.001, roofline.bandwidth(cfg, {}))
    assert m["decode_bytes"] == 3 * WEIGHTS + 108 * KV_TOKEN
    assert m["decode_flops"] == 2 * MATMUL * 6 + 4 * 2 * 4 * 16 * 108
    assert m["achieved_gbps"] == pytest.approx(m["decode_bytes"] / 0.001 / 1e9)
    assert m["roofline_frac"] == pytest.approx(m["achieved_gbps"] / 10)
    assert m["arith_intensity"] == pytest.approx(m["decode_flops"] / m["decode_bytes"])
    assert m["ridge_intensity"] == pytest.approx(2e12 / 10e9)
    assert m["compute_frac"] == pytest.approx(m["achieved_tflops"] / 2)


def test_a_narrow_round_takes_more_steps_and_reads_the_weights_more_often():
    cfg = compose_m9(["engine.max_seqs=2", "scheduler.max_tokens_per_round=1"])
    m = roofline.metrics(cfg, make_plan(cfg), (4, 4), 0.001, None)
    assert m["decode_bytes"] == 6 * WEIGHTS + 108 * KV_TOKEN  # one token per step: 6 steps
    assert "roofline_frac" not in m  # no bandwidth known: bytes and intensity only


def test_bandwidth_comes_from_the_preset_else_the_hosts_measurement():
    preset = compose_m9(["accelerator=h100_80gb"])
    assert roofline.bandwidth(preset, {"host_bandwidth_gbps": 12.0}) == 3350
    assert not roofline.wants_measurement(preset)
    cpu = compose_m9()
    assert roofline.wants_measurement(cpu) and roofline.bandwidth(cpu, {"host_bandwidth_gbps": 12.0}) == 12.0
    assert roofline.measure_host_bandwidth(mib=16, repeats=1) > 0
