"""A running point's progress as step metrics on its run, while it decodes."""

from __future__ import annotations

import sys
import time
from typing import Any

from m9.record.tracking.store import Store
from m9.protocol import IterationEvent, ProgressEvent, RoundEvent


class LiveSeries:
    """Per decode iteration ``iters/tokens``, ``iters/iter_s``, ``iters/tok_s``, ``iters/pages_in_use`` and
    ``iters/round``; per round ``rounds/*``. Batched (one write every ``every_s``); a store error turns it off with
    one warning, never the trial."""

    def __init__(self, store: Store, run_id: str, every_s: float = 2.0):
        self.client, self.run_id, self.every_s = store.client, run_id, every_s
        self.pending: list[Any] = []
        self.step = 0
        self.last = time.monotonic()
        self.broken = False

    def __call__(self, event: ProgressEvent) -> None:
        """Take one event of the engine child's progress."""
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        if isinstance(event, RoundEvent):
            values = {"round_total_s": event.round_total_s, "round_total_generated": event.round_total_generated,
                      "pages_in_use": event.pages_in_use, "round_avg_tok_s": event.round_avg_tok_s}
            self.pending += [Metric(f"rounds/{k}", float(v), now_ms, event.round) for k, v in values.items()]
        elif isinstance(event, IterationEvent):
            values = {"tokens": event.tokens, "iter_s": event.iter_s, "tok_s": event.tok_s,
                      "pages_in_use": event.pages, "round": event.round}
            self.pending += [Metric(f"iters/{k}", float(v), now_ms, self.step) for k, v in values.items()]
            self.step += 1
        if time.monotonic() - self.last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Write what is pending."""
        if self.broken or not self.pending:
            self.pending = []
            return
        try:
            for start in range(0, len(self.pending), 1000):
                self.client.log_batch(self.run_id, metrics=self.pending[start : start + 1000])
        except Exception as exc:  # noqa: BLE001 - a store hiccup must not touch the trial; the outcome lands later
            self.broken = True
            print(f"[m9] warning: live metrics stopped ({type(exc).__name__}); the outcome is still recorded",
                  file=sys.stderr, flush=True)
        self.pending, self.last = [], time.monotonic()
