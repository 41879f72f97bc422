"""Grid mode: what ``-m a=1,2 b=3,4`` does, with every point composed and checked before any launches."""

from __future__ import annotations

from typing import Optional

from m9.compose import expand_overrides
from m9.outcome.outcome import Outcome
from m9.sweep.driver import Driver


def run(driver: Driver, arguments: list[str], params: dict[str, str],
        max_batch_size: Optional[int] = None) -> list[Outcome]:
    """Expand the grid (a preset's ``params`` first, the command line winning), check every point, open the sweep
    with its grid, run the points in batches, and close it. Returns the outcomes in grid order."""
    points = expand_overrides([*(f"{k}={v}" for k, v in params.items()), *arguments], driver.loader)
    configs = [driver.check(point) for point in points]
    driver.open(points, len(points), "grid")
    size = max_batch_size or len(points)
    outcomes: list[Outcome] = []
    for start in range(0, len(points), size):
        outcomes += driver.run(list(zip(points, configs))[start:start + size])
    driver.close("FINISHED")
    return outcomes
