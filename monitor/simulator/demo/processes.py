"""The demo's child processes: each started in a process group of its own with its output in a
log file, waited for with a bound, and stopped by SIGTERM then, if it lingers, SIGKILL.

A group of its own: Ctrl-C at a terminal signals the whole foreground group at once, and a
daemon, a simulator and a Prometheus interrupted together would each stop in its own order
(the daemon would see every device vanish before it stops). Only the demo gets the Ctrl-C;
it stops the others one after the other.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path


class ChildError(RuntimeError):
    """A child could not start, or stopped by itself: the message names it and holds the end
    of its log."""


class Child:
    def __init__(self, name: str, command: Sequence[str], log: Path, cwd: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                process_group=0,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> ChildError:
        return ChildError(f"{self.name} {what}; the end of {self.log}:\n{self.tail()}")

    def wait_http(self, url: str, limit: float) -> None:
        """Until `url` answers 200, at most `limit` seconds; raises ChildError if the child
        exits or the time runs out."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if not self.running():
                raise self.failure(f"exited with status {self.proc.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise self.failure(f"did not answer {url} within {limit:g} s")

    def stop(self, limit: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after `limit` seconds; returns the exit status. Signals the
        child's whole group, so nothing it started outlives it."""
        if not self.running():
            return self.proc.returncode
        self._signal_group(signal.SIGTERM)
        try:
            return self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            return self.proc.wait(5)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone, group and all
            os.killpg(self.proc.pid, sig)
