"""Progress: drawn on a terminal with points done, pass/fail counts, ETA and the trial's tokens; silent otherwise."""

from __future__ import annotations

import io

from rich.console import Console

from m9.run.progress import Display
from m9.protocol import IterationEvent, RoundEvent


def test_terminal_display_shows_sweep_and_trial_progress():
    out = io.StringIO()
    d = Display(3, enabled=True, console=Console(file=out, force_terminal=True, width=160))
    d.start_point("0", n_rounds=2)
    d.trial(IterationEvent(round=1, iter=4, tokens=900, pages=3, elapsed=0.5, iter_s=0.1))
    d.trial(RoundEvent(round=1, round_total_s=0.6, round_total_generated=950, pages_in_use=3))  # moves nothing
    d._progress.refresh()
    text = out.getvalue()
    assert "round 2 iter 4 tokens 900 1,800 tok/s" in text
    d.end_point("pass")
    d.end_point("fail")
    d._progress.refresh()
    d.close()
    assert "2/3" in out.getvalue() and "1 fail 1 pass" in out.getvalue()


def test_quiet_when_stdout_is_not_a_terminal(capsys):
    d = Display(3)  # pytest captures stdout: not a terminal
    assert not d.enabled
    d.start_point("0", 1)
    d.trial(IterationEvent(round=0, iter=0, tokens=1, pages=1, elapsed=1.0, iter_s=1.0))
    d.end_point("pass")
    d.close()
    assert capsys.readouterr().out == ""
    assert d.counts == {"pass": 1}
