"""The engine adapter on the real Levanter engine with the tiny model (in this process; one model, small shapes)."""

from __future__ import annotations

import pytest
from conftest import TINY_MAX_SEQ_LEN as MAX_SEQ_LEN
from conftest import compose_m9
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m9.inputs import prompts
from m9.plan.edge import plan_point

pytest.importorskip("levanter")

from m9.engine.rounds import build_engine, make_requests, run_round  # noqa: E402


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


def _point(**over):
    base = [f"engine.max_seq_len={MAX_SEQ_LEN}", "engine.page_size=8", "workload.n_rounds=1"]
    return compose_m9(base + [f"{k}={v}" for k, v in over.items()])


def _run(model, cfg):
    plan = plan_point(cfg)
    assert plan.accepted, plan.rejections
    engine = build_engine(model, cfg, plan.max_pages, plan.max_prefill_size)
    prompt_set = prompts.Prompts().build(cfg)
    return plan, run_round(engine, make_requests(cfg, [list(p) for p in prompt_set.token_ids], 0,
                                                 [list(s) for s in prompt_set.stop_ids]))


@pytest.mark.parametrize("max_seqs,prompt_len,new", [(3, 5, 20), (4, 8, 17), (2, 13, 40)])
def test_every_sequence_gets_max_new_tokens_and_pages_match_the_engine_formula(model, max_seqs, prompt_len, new):
    cfg = _point(**{"engine.max_seqs": max_seqs, "workload.prompt_len": prompt_len, "workload.max_new_tokens": new})
    plan, stats = _run(model, cfg)
    assert stats.seq_lens == (new,) * max_seqs
    expected_pages = sum(-(-(prompt_len + new - 1) // 8) for _ in range(max_seqs))
    assert stats.pages_in_use_after_decode == expected_pages
    assert stats.pages_in_use_after_decode == plan.predicted_pages_in_use
    assert stats.pages_in_use_after_prefill == max_seqs * -(-prompt_len // 8)
    assert stats.round_total_generated == plan.predicted_generated == max_seqs * new
    assert stats.nonfinite_logprobs == 0
    assert len(stats.iter_s) >= 1 and stats.round_total_s >= sum(stats.iter_s)


def test_small_decode_budget_truncates_evenly_as_planned(model):
    # budget = floor(128/32)*32*min(2, 4) = 256 decode tokens + 4 from prefill < 4 x 100 asked
    cfg = _point(**{"engine.max_seqs": 4, "scheduler.max_tokens_per_round": 2, "workload.max_new_tokens": 100})
    plan, stats = _run(model, cfg)
    assert plan.truncation_predicted and plan.warnings
    assert stats.round_total_generated == plan.predicted_generated == 260
    assert max(stats.seq_lens) - min(stats.seq_lens) <= 1
    assert stats.pages_in_use_after_decode == plan.predicted_pages_in_use


def test_explicit_max_pages_is_what_the_engine_gets(model):
    cfg = _point(**{"engine.max_seqs": 2, "engine.max_pages": 50, "workload.max_new_tokens": 10})
    plan, stats = _run(model, cfg)
    assert stats.max_pages == 50 and plan.max_pages == 50


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    max_seqs=st.integers(1, 6),
    prompt_frac=st.floats(0.3, 1.0),
    prompt_len=st.integers(1, 24),
    new=st.integers(1, 60),
    page_size=st.sampled_from([4, 8, 16]),
    max_rounds=st.sampled_from([4, 8, 16]),
    tpr=st.integers(1, 6),
)
def test_plan_predicts_what_the_engine_measures(model, max_seqs, prompt_frac, prompt_len, new, page_size,
                                                max_rounds, tpr):
    prompts = max(1, round(max_seqs * prompt_frac))
    cfg = _point(**{"engine.max_seqs": max_seqs, "workload.num_prompts": prompts, "workload.prompt_len": prompt_len,
                    "workload.max_new_tokens": new, "engine.page_size": page_size,
                    "scheduler.max_rounds": max_rounds, "scheduler.max_tokens_per_round": min(tpr, max_seqs)})
    plan, stats = _run(model, cfg)
    assert stats.round_total_generated == plan.predicted_generated
    assert stats.pages_in_use_after_decode == plan.predicted_pages_in_use
    assert plan.predicted_pages_in_use <= plan.max_pages
