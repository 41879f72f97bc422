"""The optimiser's loop alone (m9.sweep.study) on synthetic objectives, its space (Hydra's sweep syntax) and its
answer. No engine: what the loop is told stands in for what a trial shows; the planner is a predicate."""

import math
from collections import Counter

import pytest

from m9.compose import BadInput
from m9.outcome.status import Status
from m9.sweep.optimum import Candidate, OptimizeAnswer, Verdict
from m9.sweep.space import Knob, Space, parse_space
from m9.sweep.study import Loop, Settings

TPR, ROUNDS, QUEUE = (32, 64, 128, 256, 384), (8, 16, 32, 64, 128), (128, 256, 512, 1024)
SPACE = Space((Knob("scheduler.max_tokens_per_round", TPR), Knob("scheduler.max_rounds", ROUNDS),
               Knob("scheduler.max_queued_tokens", QUEUE)))  # 100 configurations


def _surfaces():
    """Throughput-like objectives: a peak somewhere in the space, a region the planner refuses (the decode
    budget), a region that fails at runtime."""
    def make(t0, r0, q0):
        def f(t, r, q):
            return (1000 + 300 * math.exp(-((math.log2(t) - t0) ** 2) / 2)
                    + 150 * math.exp(-((math.log2(r) - r0) ** 2) / 3) + 80 * math.exp(-((math.log2(q) - q0) ** 2) / 2))
        return f
    return [make(8, 6, 9), make(6, 4, 8), make(7, 5, 10)]


def _refused(t, r, q):
    return t * r > 256 * 64 or q > 4 * t


def _fails(t, r, q):
    return t == 64 and q >= 512


def _args(p):
    return p["scheduler.max_tokens_per_round"], p["scheduler.max_rounds"], p["scheduler.max_queued_tokens"]


@pytest.mark.parametrize("surface", range(3))
def test_the_loop_finds_the_grid_best_in_a_third_of_the_grid_and_never_launches_a_refused_point(surface):
    f = _surfaces()[surface]
    every = SPACE.every()
    grid_best = max(f(*_args(p)) for p in every if not _refused(*_args(p)) and not _fails(*_args(p)))
    budget = len(every) // 3
    hits, seeds = 0, range(20)
    for seed in seeds:
        launched = []

        def check(p):
            return Verdict(Status.REJECTED, kind="rejected") if _refused(*_args(p)) else None

        def measure(params, phase):
            launched.extend(params)
            return [Verdict(Status.FAIL, kind="crash") if _fails(*_args(p)) else Verdict(Status.PASS, f(*_args(p)))
                    for p in params]

        Loop(SPACE, Settings(trials=budget, seed=seed, confirm=0), check, measure).run()
        assert not [p for p in launched if _refused(*_args(p))]  # the planner's refusals never launch
        assert len(launched) <= budget
        hits += any(not _fails(*_args(p)) and f(*_args(p)) >= 0.99 * grid_best for p in launched)
    assert hits >= 0.9 * len(seeds), f"grid best found in {hits} of {len(seeds)} seeds"


def test_a_known_verdict_is_never_measured_again_and_a_flaky_one_once_more():
    measured = Counter()

    def measure(params, phase):
        out = []
        for p in params:
            measured[SPACE.key(p)] += 1
            t, r, q = _args(p)
            out.append(Verdict(Status.FAIL, kind="crash") if t == 32 else Verdict(Status.FAIL, kind="out_of_pages")
                       if t == 384 else Verdict(Status.PASS, float(t + r + q)))
        return out

    loop = Loop(SPACE, Settings(trials=len(SPACE.every()) * 2, seed=3, confirm=0), lambda p: None, measure)
    rows, _, stopped = loop.run()
    assert "known" in stopped  # the whole space, then nothing left to learn
    for key, n in measured.items():
        assert n == (2 if key[0] == 32 else 1), (key, n)  # a crash may be noise: one retry; the rest: once


def test_the_best_candidates_are_measured_again_and_a_difference_inside_the_spread_is_a_tie():
    noise = iter([0.0, 30.0, -30.0] * 50)

    def measure(params, phase):
        return [Verdict(Status.PASS, 1000.0 + (10.0 if _args(p) == (256, 64, 512) else 0.0) + next(noise))
                for p in params]

    loop = Loop(SPACE, Settings(trials=12, seed=0, confirm=2, repeats=3), lambda p: None, measure)
    rows, candidates, _ = loop.run()
    assert [len(c.values) for c in candidates] == [3, 3]
    assert sum(r.phase == "confirm" for r in rows) == 4  # two repeats each, as fresh measurements
    answer = OptimizeAnswer("round_avg_tok_s", "maximize", "tpe", 0, ("k",), 100, tuple(rows), tuple(candidates))
    assert answer.tie and "tie" in answer.statement()
    clear = OptimizeAnswer("round_avg_tok_s", "maximize", "tpe", 0, ("k",), 100, (),
                           (Candidate({}, "a", (), (1100.0, 1101.0)), Candidate({}, "b", (), (1000.0, 1002.0))))
    assert not clear.tie and "ahead" in clear.statement()


def test_the_space_reads_hydras_sweep_syntax():
    space = parse_space(["scheduler.max_tokens_per_round=choice(64,128,256)", "scheduler.max_rounds=range(16,80,16)",
                         "engine.max_seqs=interval(8,12)", "workload.length_fixed=true",
                         "engine.page_size=tag(log,interval(8,64))", "scheduler.max_rounds=8,16"])
    knobs = {k.key: k for k in space.knobs}
    assert knobs["scheduler.max_tokens_per_round"].choices == (64, 128, 256)
    assert knobs["scheduler.max_rounds"].choices == (8, 16)  # the last override of a key wins
    assert knobs["engine.max_seqs"].integer and knobs["engine.max_seqs"].values() == (8, 9, 10, 11, 12)
    assert knobs["engine.page_size"].log
    assert space.fixed == ("workload.length_fixed=true",)
    assert space.size == 3 * 2 * 5 * 57
    assert space.overrides(space.every()[0])[0] == "workload.length_fixed=true"


@pytest.mark.parametrize("overrides, says", [
    (["engine.max_seqs=8"], "needs a space"),
    (["engine.max_seqs=interval(12,8)"], "empty"),
    (["engine.page_size=tag(log,interval(0,64))"], "positive"),
])
def test_a_bad_space_is_one_line_naming_the_key(overrides, says):
    with pytest.raises(BadInput, match=says):
        parse_space(overrides)
