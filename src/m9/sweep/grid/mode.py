"""Grid mode: what ``-m a=1,2 b=3,4`` does, with every point composed and checked before any launches."""

from __future__ import annotations

from typing import Optional

from m9.compose import expand_overrides
from m9.sweep.driver import Driver
from m9.sweep.launched import Launched


def run(driver: Driver, arguments: list[str], params: dict[str, str],
        max_batch_size: Optional[int] = None) -> list[Launched]:
    """Expand the grid (a preset's ``params`` first, the command line winning), check every point, open the sweep
    with its grid, and run the points in batches. Returns them in grid order."""
    points = expand_overrides([*(f"{k}={v}" for k, v in params.items()), *arguments], driver.loader)
    configs = [driver.check(point) for point in points]
    driver.open(points, len(points), "grid")
    size = max_batch_size or len(points)
    launched: list[Launched] = []
    for start in range(0, len(points), size):
        launched += driver.run(list(zip(points, configs))[start:start + size])
    return launched
