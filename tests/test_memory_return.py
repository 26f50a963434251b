"""Freed memory goes back to the system when the daemon asks (monitor/core/memory.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Run apart: the test process' own heap would blur the figures. 100,000 blocks of 2 KiB come
# from malloc's heap (past pymalloc's 512 bytes, under glibc's mmap threshold); one kept
# block above them stops glibc from trimming the heap's top on its own when they are freed.
_PROBE = textwrap.dedent(
    """
    import re
    from monitor.core.memory import release_freed_memory

    def rss_mb():
        status = open("/proc/self/status").read()
        return int(re.search(r"VmRSS:\\s+(\\d+)", status).group(1)) / 1024

    blocks = [bytes(2048) + bytes([i % 256]) for i in range(100_000)]
    keep = bytes(2048) + b"!"
    filled = rss_mb()
    del blocks
    freed = rss_mb()
    returned = release_freed_memory()
    print(filled, freed, rss_mb(), returned, len(keep))
    """
)


def test_memory_freed_by_the_daemon_is_returned_to_the_system_when_asked() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    filled, freed, after, returned = float(out[0]), float(out[1]), float(out[2]), out[3]
    assert filled - freed < 50, "glibc returned the blocks by itself: the probe proves nothing"
    assert returned == "True"
    assert freed - after > 150, f"RSS {freed:.0f} MB -> {after:.0f} MB after the trim"
