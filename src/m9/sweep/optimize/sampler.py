"""The sampler's side of an optimisation: which Optuna sampler proposes, after how many random measurements, and
how the space looks to it (numeric choices ordinal, other choices categories, intervals as they are)."""

from __future__ import annotations

import optuna

from m9.sweep.optimize.space import Params, Space


def startup_trials(trials: int) -> int:
    """Random measurements before the model proposes, for a budget of ``trials``: a quarter of a small budget, at
    most 10."""
    return min(10, max(2, trials // 4))


def make_sampler(name: str, seed: int, trials: int, batch: int) -> optuna.samplers.BaseSampler:
    """Optuna's ``name`` sampler (tpe, gp or random) for a budget of ``trials``, proposing ``batch`` at once."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = startup_trials(trials)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=batch > 1, n_startup_trials=startup)


def _distribution(knob) -> optuna.distributions.BaseDistribution:
    if knob.choices:
        return optuna.distributions.CategoricalDistribution(knob.choices)
    if knob.integer:
        return optuna.distributions.IntDistribution(int(knob.low), int(knob.high), log=knob.log)
    return optuna.distributions.FloatDistribution(knob.low, knob.high, log=knob.log)


class Encoding:
    """The space as Optuna sees it. Numeric choices are ordinal: the sampler is given the index of a value in its
    sorted list, so that neighbouring values are neighbours to TPE's Parzen estimators and to the GP's kernel (as
    categories, 16 and 32 rounds are as unlike as 16 and 1). Other choices stay categories; intervals are intervals."""

    def __init__(self, space: Space):
        self.dists: dict[str, optuna.distributions.BaseDistribution] = {}
        self.ordinal: dict[str, tuple] = {}
        for knob in space.knobs:
            values = knob.choices
            if values and len(set(values)) == len(values) and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                self.ordinal[knob.key] = tuple(sorted(values))
                self.dists[knob.key] = optuna.distributions.IntDistribution(0, len(values) - 1)
            else:
                self.dists[knob.key] = _distribution(knob)

    def to_space(self, params: dict) -> Params:
        return {k: self.ordinal[k][v] if k in self.ordinal else v for k, v in params.items()}

    def to_study(self, params: Params) -> dict:
        return {k: self.ordinal[k].index(v) if k in self.ordinal else v for k, v in params.items()}
