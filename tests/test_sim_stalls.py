"""The simulator's watch on its own event loop: a held-up loop is reported with its length, so a
probe that timed out in a whole-stack run can be told apart from a district that was late."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from monitor.simulator.stalls import StallWatch


async def test_a_held_up_loop_is_logged_and_counted_with_its_length(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = StallWatch(every=0.02, report_seconds=0.2)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.1)
        with caplog.at_level(logging.WARNING, logger="monitor.simulator.stalls"):
            time.sleep(0.5)  # noqa: ASYNC251 -- the whole loop held, as a slow call in it would
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert watch.stalls >= 1
    assert 0.45 <= watch.worst < 1.5
    lines = [r.getMessage() for r in caplog.records if "held up" in r.getMessage()]
    assert lines and any(f"{watch.worst:.2f} s" in line for line in lines)
    assert watch.stats() == {"stalls": watch.stalls, "worst_seconds": round(watch.worst, 3)}
