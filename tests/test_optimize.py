"""The optimiser's loop alone (m9.sweep.study) on synthetic objectives, its space (Hydra's sweep syntax) and its
answer. No engine: what the loop is told stands in for what a trial shows; the planner is a predicate."""

import math
from collections import Counter
from statistics import median

import pytest
from conftest import store_at

from m9.compose import BadInput
from m9.outcome.status import FailureKind, Status
from m9.outcome.verdict import Verdict
from m9.sweep.optimize.answer import Candidate, OptimizeAnswer
from m9.sweep.optimize.space import Knob, Space, parse_space
from m9.sweep.optimize.study import Loop, Settings

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


def _synthetic(f, launched: list):
    """The loop's planner and trials over a surface: refusals as the planner says them, failures and values as a
    trial would; every launched configuration appended to ``launched``."""
    def check(p):
        return Verdict(Status.REJECTED) if _refused(*_args(p)) else None

    def measure(params, phase):
        launched.extend(params)
        return [Verdict(Status.FAIL, FailureKind.CRASH) if _fails(*_args(p)) else Verdict(Status.PASS, value=f(*_args(p)))
                for p in params]
    return check, measure


@pytest.mark.parametrize("surface", range(3))
def test_the_loop_finds_the_grid_best_in_a_third_of_the_grid_and_never_launches_a_refused_point(surface):
    f = _surfaces()[surface]
    every = SPACE.every()
    grid_best = max(f(*_args(p)) for p in every if not _refused(*_args(p)) and not _fails(*_args(p)))
    budget = len(every) // 3
    hits, seeds = 0, range(20)
    for seed in seeds:
        launched = []
        Loop(SPACE, Settings(trials=budget, seed=seed, confirm=0), *_synthetic(f, launched)).run()
        assert not [p for p in launched if _refused(*_args(p))]  # the planner's refusals never launch
        assert len(launched) <= budget
        hits += any(not _fails(*_args(p)) and f(*_args(p)) >= 0.99 * grid_best for p in launched)
    assert hits >= 0.9 * len(seeds), f"grid best found in {hits} of {len(seeds)} seeds"


def test_the_gp_sampler_models_the_constraints_and_never_launches_a_refused_point():
    pytest.importorskip("torch", reason="hydra.sweeper.sampler=gp runs on PyTorch (m9[gp])")
    launched = []
    loop = Loop(SPACE, Settings(trials=8, sampler="gp", seed=0, confirm=0), *_synthetic(_surfaces()[0], launched))
    rows, candidates, stopped = loop.run()
    assert type(loop.study.sampler).__name__ == "GPSampler" and stopped == "budget of 8 measurements"
    assert len(launched) == 8 and not [p for p in launched if _refused(*_args(p))]
    assert len({SPACE.key(p) for p in launched}) == 8  # a known configuration is told, not measured again
    assert candidates and not _fails(*_args(candidates[0].params))


def test_numeric_choices_are_ordinal_to_the_sampler_and_its_random_start_skips_the_refusals():
    import optuna

    from m9.sweep.optimize.sampler import Encoding, startup_trials

    encoding = Encoding(Space((*SPACE.knobs, Knob("scheduler", ("default", "m6")))))
    assert isinstance(encoding.dists["scheduler.max_rounds"], optuna.distributions.IntDistribution)
    assert isinstance(encoding.dists["scheduler"], optuna.distributions.CategoricalDistribution)
    p = {**SPACE.every()[37], "scheduler": "m6"}
    assert encoding.to_space(encoding.to_study(p)) == p
    assert encoding.to_study(p)["scheduler.max_rounds"] == sorted(ROUNDS).index(p["scheduler.max_rounds"])

    def check(p):  # all but 12 of the 100 refused: Optuna's own random start would be spent before it began
        return None if _args(p)[0] in (256, 384) and _args(p)[2] >= 512 else Verdict(Status.REJECTED)

    settings = Settings(trials=8, seed=1, confirm=0)
    loop = Loop(SPACE, settings, check, lambda params, phase: [Verdict(Status.PASS, value=float(sum(_args(p))))
                                                               for p in params])
    loop.run()
    asked = [t for t in loop.study.trials if t.user_attrs.get("kind") != "rejected"]
    assert sum("fixed_params" in t.system_attrs for t in asked[:startup_trials(settings.trials)]) == startup_trials(settings.trials)


def test_a_known_verdict_is_never_measured_again_and_a_flaky_one_once_more():
    measured = Counter()

    def measure(params, phase):
        out = []
        for p in params:
            measured[SPACE.key(p)] += 1
            t, r, q = _args(p)
            out.append(Verdict(Status.FAIL, FailureKind.CRASH) if t == 32 else Verdict(Status.FAIL, FailureKind.OUT_OF_PAGES)
                       if t == 384 else Verdict(Status.PASS, value=float(t + r + q)))
        return out

    loop = Loop(SPACE, Settings(trials=len(SPACE.every()) * 2, seed=3, confirm=0), lambda p: None, measure)
    rows, _, stopped = loop.run()
    assert "known" in stopped  # the whole space, then nothing left to learn
    for key, n in measured.items():
        assert n == (2 if key[0] == 32 else 1), (key, n)  # a crash may be noise: one retry; the rest: once


def test_the_best_candidates_are_measured_again_and_a_difference_inside_the_spread_is_a_tie():
    noise = iter([0.0, 30.0, -30.0] * 50)

    def measure(params, phase):
        return [Verdict(Status.PASS, value=1000.0 + (10.0 if _args(p) == (256, 64, 512) else 0.0) + next(noise))
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


# --- the real thing: the tiny model, the planner, the store ---------------------------------------------------------

# 12 configurations; the planner refuses the 6 that would truncate before anything starts (a decode budget short of
# 8 x 256 tokens, e.g. floor(512/48)*48*min(4,8) = 1920). A budget of the 6 others: the whole grid, in the end.
SPACE_ARGS = ["scheduler.max_tokens_per_round=choice(1,4,16)", "scheduler.max_rounds=choice(1,48)",
              "scheduler.max_queued_tokens=choice(16,32)", "workload.length_fixed=true"]
OPTIMIZE = ["-m", "hydra/sweeper=optimize", *SPACE_ARGS, "hydra.sweeper.trials=6", "hydra.sweeper.confirm=2",
            "hydra.sweeper.repeats=2"]
KNOBS = ("scheduler.max_tokens_per_round", "scheduler.max_rounds", "scheduler.max_queued_tokens")


def _m9(tmp_path, name, args):
    import os
    import signal
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen([sys.executable, "-m", "m9", *args, f"tracking.uri={store_at(tmp_path)}",
                             f"hydra.sweep.dir={tmp_path}/{name}"], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _history(path):
    import json

    try:
        return json.loads(path.read_text())["rows"]
    except (FileNotFoundError, ValueError):  # not written yet, or caught mid-rename
        return []


def _config(params_or_overrides) -> tuple:
    if isinstance(params_or_overrides, dict):
        return tuple(int(params_or_overrides[k]) for k in KNOBS)
    values = dict(o.split("=", 1) for o in params_or_overrides)
    return tuple(int(values[k]) for k in KNOBS)


@pytest.mark.slow
def test_a_killed_optimisation_resumes_and_its_answer_is_the_full_grids_best_at_full_length(tmp_path):
    import json
    import time

    from mlflow.tracking import MlflowClient

    # SIGKILL of the launching process as soon as the first measurement is on record
    first = _m9(tmp_path, "a", OPTIMIZE)
    deadline = time.monotonic() + 600  # the sweep's first point, imports and compilation included, many times over
    while not any(r["phase"] == "search" and r["verdict"]["status"] == "pass" for r in _history(tmp_path / "a" /
                                                                                              "optimize.json")):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0][-3000:]
        time.sleep(0.2)
    first.kill()
    first.communicate(timeout=120)
    measured_before = {_config(r["params"]) for r in _history(tmp_path / "a" / "optimize.json")
                       if r["verdict"]["status"] == "pass"}

    second = _m9(tmp_path, "b", OPTIMIZE)
    out, _ = second.communicate(timeout=900)
    assert second.returncode == 0, out[-3000:]
    rows = _history(tmp_path / "b" / "optimize.json")
    refused = [r for r in rows if r["verdict"]["status"] == "rejected"]
    assert len(refused) == 6 and all("generation will plateau" in r["verdict"]["signature"] for r in refused)
    for r in refused:  # told to the sampler, never launched
        assert not (tmp_path / "b" / str(r["verdict"]["job"]) / "request.json").exists()
    seeded = {_config(r["params"]) for r in rows if r["phase"] == "seed" and r["verdict"]["reused"]}
    assert seeded == measured_before  # the killed sweep's measurements continue the study ...
    searched = [r for r in rows if r["phase"] == "search"]
    assert not seeded & {_config(r["params"]) for r in searched}  # ... and are not measured again
    assert len(seeded) + len(searched) == 6 and sum(r["phase"] == "confirm" for r in rows) == 2

    answer = json.loads((tmp_path / "b" / "m9_sweep.json").read_text())["answer"]
    assert answer["_target_"] == "m9.sweep.optimize.answer.OptimizeAnswer"
    best = answer["candidates"][0]
    for r in rows:
        if _config(r["params"]) == _config(best["params"]):  # every measurement of the answer: full length
            assert r["verdict"]["status"] == "pass" and r["verdict"]["metrics"]["min_seq_len"] == 256
    assert "[m9] optimum: best round_avg_tok_s" in out
    assert "[m9] rerun the best: python -m m9 " in out

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("m9").experiment_id
    keys = [r.data.tags["point_key"] for r in client.search_runs([exp], "tags.kind = 'point'")
            if r.data.tags.get("status") not in (None, "rejected")]
    assert len(keys) == len(set(keys)) == 8  # 6 configurations + 2 confirmations, each measured once in all
    parent = client.get_run(json.loads((tmp_path / "b" / "m9_sweep.json").read_text())["parent_run_id"])
    assert parent.data.tags["best_rerun"] == answer["rerun"]

    # The full grid on the same store: every point is known, so it measures nothing and has the same numbers
    grid = _m9(tmp_path, "c", ["-m", *(a.replace("choice(", "").rstrip(")") for a in SPACE_ARGS)])
    out, _ = grid.communicate(timeout=900)
    assert grid.returncode == 0, out[-3000:]
    assert "12 points, 6 pass, 0 fail, 6 rejected (12 reused from earlier sweeps)" in out and ": running" not in out
    passed = {}
    for path in (tmp_path / "c").glob("*/record.json"):
        record = json.loads(path.read_text())
        if record["outcome"]["status"] == "pass":
            passed[_config(record["overrides"])] = record["outcome"]["metrics"]["round_avg_tok_s"]
    grid_best = max(passed, key=passed.get)
    # Its first measurement was the best the search saw, so it was a candidate: the answer is it, or a candidate
    # whose median is no further below it than the noise its repeats showed
    spread = max(max(c["values"]) - min(c["values"]) for c in answer["candidates"])
    assert grid_best in {_config(c["params"]) for c in answer["candidates"]}
    assert _config(best["params"]) == grid_best or passed[grid_best] - median(best["values"]) <= spread, (
        answer["candidates"], passed)
