"""A configuration loaded in a forked child, so that the daemon keeps only what it loaded.

Reading a province makes millions of short-lived objects (the entries read from the YAML,
their places for messages) among the few that stay (sites, probes, names). CPython's
allocator gives memory back to the system only by whole arenas, and every arena of the load
keeps a few of the objects that stay: after a load of 100,000 sites the daemon held about
230 MB for about 50 MB of configuration, for the rest of its life, and again after each
reload. A child does the load and sends the validated Config (or its problems) back through
a pipe; the daemon unpickles it into memory of its own, packed, and the child's is gone.

This is only a way of doing the same load: when no child can do it (no fork on this system,
the child died, killed for memory, or its result could not be sent), the caller loads in
its own process, as before.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Callable

from monitor.config import pickled
from monitor.config.load import Config, without_cyclic_gc
from monitor.config.problems import ConfigError, ConfigProblem

# A load of 100,000 sites takes about 10 s of CPU; a child still at it after this long is
# taken for stuck, and the caller loads in its own process instead.
CHILD_LIMIT_SECONDS = 300.0


def load_in_child(load: Callable[[], Config]) -> Config | None:
    """`load()` run in a forked child: its Config, or its ConfigError raised here; None when
    no child could do it, and the caller should load itself."""
    if not hasattr(os, "fork"):
        return None
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the child: load, send, and leave without running the parent's cleanups
        os.close(read_end)
        _child(load, write_end)
    os.close(write_end)
    data = _read_within(read_end, CHILD_LIMIT_SECONDS)
    if data is None:  # a child that hangs (a lock another thread held at the fork) is ended
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if data is None or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return None
    try:
        with without_cyclic_gc():  # as for the load itself: 100,000 sites of new objects
            outcome, value = pickled.loads(data)
    except Exception:  # a result that did not come whole is no result
        return None
    if outcome == "refused":
        problems: list[ConfigProblem] = value
        raise ConfigError(problems)
    assert isinstance(value, Config)
    return value


def _read_within(fd: int, limit: float) -> bytes | None:
    """All the child sends, or None if it has not finished sending within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    chunks: list[bytes] = []
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _child(load: Callable[[], Config], write_end: int) -> None:
    code = 1
    try:
        try:
            outcome: tuple[str, object] = ("config", load())
        except ConfigError as error:
            outcome = ("refused", error.problems)
        with without_cyclic_gc():  # each site's fields make a tuple: no walk over them all
            data = pickled.dumps(outcome)
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
        code = 0
    finally:
        os._exit(code)
