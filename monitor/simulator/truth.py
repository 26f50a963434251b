"""The simulator's ground truth: what it did and what each device served, in order, as it happened.

Tests of what a person on duty sees (a state, a page, a panel, a report) compare it with this
record, never with what the code under test computed. So the record is made by the world at
the moment a change takes effect, never reconstructed afterwards, and it says only physical
facts: a fault applied, a device that answers or not and why, a health fact that changed.

Each record is one JSON object (README "Ground truth" lists the types):

    {"seq": 7, "wall": 1750000012.5, "sim": 1750000720.0, "type": "serves",
     "site": "gw-ubnd-muong-nha", "answering": false, "why": "link"}

`seq` counts from 1; `wall` is the real UTC clock when the record was made, `sim` the
simulated UTC time of the change. Records are kept in memory as their JSON text (the control
serves them from there, `GET /truth?after=N`) and, with `--truth FILE`, appended to FILE one
line each, flushed per record, so a reader following the file never sees half a day.

The cost is one `json.dumps` and a list append per record (a file write too with `--truth`);
the world makes records only when something changes, so a quiet district costs nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

CONDITIONS = ("mains", "battery_low", "amplifier_ok", "transmitter_ok", "door_open")


class Truth:
    """An append-only log of records; written from the event loop, read from any thread."""

    def __init__(self, sink: TextIO | None = None, wall: Callable[[], float] = time.time) -> None:
        self._sink = sink
        self._wall = wall
        self._lines: list[str] = []
        self._lock = threading.Lock()  # a reader's slice never sees a record without its seq

    def __len__(self) -> int:
        return len(self._lines)

    def record(self, sim: float, kind: str, **fields: object) -> None:
        """Append one record of type `kind` dated simulated time `sim` (and the wall clock)."""
        with self._lock:
            body = {
                "seq": len(self._lines) + 1,
                "wall": round(self._wall(), 6),
                "sim": round(sim, 6),
                "type": kind,
                **fields,
            }
            line = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
            self._lines.append(line)
            if self._sink is not None:
                self._sink.write(line + "\n")
                self._sink.flush()

    def lines_after(self, seq: int = 0) -> list[str]:
        """The JSON text of every record with a seq greater than `seq`."""
        with self._lock:
            return self._lines[max(0, seq) :]

    def records(self, after: int = 0) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines_after(after)]

    def body(self, after: int = 0) -> bytes:
        """`{"records": [...]}` as the control serves it, built from the stored text."""
        return ('{"records":[' + ",".join(self.lines_after(after)) + "]}").encode()
