"""The boundary search (``hydra/sweeper=boundary``): the largest stable value of one knob, planner first.

    search    the search along one integer knob: pure logic over what each trial said
    mode      the sweep: the planner's ceiling, then real trials, every row of an outer grid together
    answer    what it found (``m9.record.answer.Answer``)
    report    its table, plot and report section
"""
