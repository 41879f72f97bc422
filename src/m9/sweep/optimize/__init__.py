"""The optimiser (``hydra/sweeper=optimize``): the fastest configuration of a space of knobs, Optuna's ask/tell with
the planner's refusals and failures as constraints.

    space     the search space, from Hydra's sweep syntax
    sampler   which Optuna sampler proposes, and how the space looks to it
    study     the loop: ask, plan, measure or recall, tell; then confirm the best
    mode      the sweep: the loop over the driver, its evidence written as it goes
    answer    what it found (``m9.record.answer.Answer``)
    report    its tables, plots and report section
"""
