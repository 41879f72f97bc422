"""The boundary search's logic alone, driven by verdict functions instead of trials."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m9.outcome.status import FailureKind, Status
from m9.outcome.verdict import Verdict
from m9.sweep.boundary.search import Search

PASS = Verdict(Status.PASS)


def _fail(deterministic: bool) -> Verdict:
    return Verdict(Status.FAIL, FailureKind.OUT_OF_PAGES if deterministic else FailureKind.CRASH, signature="boom")


def _run(search: Search, verdict) -> int:
    """Drive a search to the end; ``verdict(value, nth_trial_at_value)`` gives each trial's observation."""
    counts: dict[int, int] = {}
    rounds = 0
    while values := search.next_values():
        rounds += 1
        assert rounds < 10_000, "the search does not terminate"
        for v in values:
            assert search.low <= v <= search.high
            search.add(v, verdict(v, counts.get(v, 0)))
            counts[v] = counts.get(v, 0) + 1
    return search.trials


@settings(max_examples=400, deadline=None)
@given(boundary=st.integers(0, 256), confirm=st.integers(1, 3), deterministic=st.booleans())
def test_monotone_verdict_gives_the_exact_boundary_within_the_bound(boundary, confirm, deterministic):
    search = Search(1, 256, confirm=confirm)
    trials = _run(search, lambda v, n: PASS if v <= boundary else _fail(deterministic))
    r = search.result()
    assert r.ceiling == (boundary if boundary >= 1 else None)
    assert r.first_failure == (boundary + 1 if boundary < 256 else None)
    assert not r.non_monotone and not r.flaky and not r.exhausted
    assert trials <= math.ceil(math.log2(256)) + 2 * confirm + 2
    # the answer is confirmed: the ceiling passed `confirm` times, a flaky-kind failure failed `confirm` times
    if r.ceiling is not None:
        assert len(search.seen[r.ceiling]) >= confirm
    if r.first_failure is not None:
        assert len(search.seen[r.first_failure]) >= (1 if deterministic else confirm)


@settings(max_examples=200, deadline=None)
@given(low=st.integers(-5, 50), span=st.integers(0, 300), data=st.data(), batch=st.integers(1, 8))
def test_any_range_and_batch_width_finds_the_boundary(low, span, data, batch):
    high = low + span
    boundary = data.draw(st.integers(low - 1, high))
    search = Search(low, high, confirm=2, batch=batch)
    _run(search, lambda v, n: PASS if v <= boundary else _fail(False))
    r = search.result()
    assert r.ceiling == (boundary if boundary >= low else None)
    assert r.first_failure == (boundary + 1 if boundary < high else None)


def test_a_wider_batch_needs_fewer_rounds():
    def rounds(batch: int) -> int:
        search, n = Search(1, 256, confirm=2, batch=batch), 0
        while values := search.next_values():
            n += 1
            for v in values:
                search.add(v, PASS if v <= 100 else _fail(True))
        assert search.result().ceiling == 100
        return n

    assert rounds(8) < rounds(1) / 2


@settings(max_examples=300, deadline=None)
@given(outcomes=st.lists(st.booleans(), min_size=256, max_size=256), confirm=st.integers(1, 3))
def test_non_monotone_verdicts_end_with_a_consistent_answer_and_report_what_contradicts_it(outcomes, confirm):
    search = Search(1, 256, confirm=confirm)
    _run(search, lambda v, n: PASS if outcomes[v - 1] else _fail(False))
    r = search.result()
    if r.ceiling is not None:
        assert outcomes[r.ceiling - 1] and len(search.seen[r.ceiling]) >= confirm
    if r.first_failure is not None:
        assert not outcomes[r.first_failure - 1]
    if r.ceiling is not None and r.first_failure is not None:
        assert r.first_failure == r.ceiling + 1
    # every pass the search saw above the first failure is reported, none hidden
    seen_above = {v for v, obs in search.seen.items() if r.first_failure is not None and v > r.first_failure
                  and all(o.stable for o in obs)}
    assert set(r.non_monotone) == seen_above


def test_low_fails_but_high_passes_is_reported_as_non_monotone():
    search = Search(1, 64, confirm=2, knob="engine.max_seqs")
    _run(search, lambda v, n: PASS if v == 64 else _fail(False))
    r = search.result()
    assert r.ceiling is None and r.first_failure == 1 and r.non_monotone == (64,)
    assert "non-monotone: engine.max_seqs=64 passed above the first failure" in r.statement()


def test_a_flaky_ceiling_is_not_stable_and_the_search_moves_below_it():
    # 40 passes once and then crashes: flaky, so the ceiling is the next value below that always passes
    search = Search(1, 64, confirm=2)
    _run(search, lambda v, n: PASS if v < 40 or (v == 40 and n == 0) else _fail(False))
    r = search.result()
    assert r.ceiling == 39 and r.first_failure == 40 and r.flaky == (40,)


def test_deterministic_failures_are_not_repeated_but_flaky_ones_are():
    det = Search(1, 16, confirm=3)
    _run(det, lambda v, n: PASS if v <= 9 else _fail(True))
    assert len(det.seen[10]) == 1 and len(det.seen[9]) == 3
    flaky = Search(1, 16, confirm=3)
    _run(flaky, lambda v, n: PASS if v <= 9 else _fail(False))
    assert len(flaky.seen[10]) == 3


def test_a_trial_budget_stops_the_search_and_says_so():
    search = Search(1, 256, confirm=2, max_trials=3)
    _run(search, lambda v, n: PASS if v <= 100 else _fail(False))
    assert search.trials == 3 and search.result().exhausted


@pytest.mark.parametrize("low,high", [(5, 4)])
def test_an_empty_range_is_refused(low, high):
    with pytest.raises(ValueError):
        Search(low, high)
